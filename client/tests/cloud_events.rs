//! Event-driven drift on moto: a dev cluster on moto's EC2 reads cloud
//! events from a moto SQS queue (`canon dev --events-queue`). moto emits
//! no CloudTrail events, so the test makes the rogue EC2 call and then
//! sends the CloudTrail-shaped event into the queue, as EventBridge would.
//! With a 60 s tick, the rogue rule is healed within seconds of its event,
//! and the drift says an event found it; the same event delivered twice
//! records one drift; an event of Canon's own call (its role session)
//! pokes nothing, and the queue is left empty either way. `/metrics`
//! counts the drift in the event's detection and heal latency histograms.
//!
//! An account's queue (`canon account add … --events-queue URL`) is read
//! the same way from the moment the policy names it until it no longer
//! does.
//!
//! Without AWS, `canon dev --sim-events` does the same from the simulated
//! cloud's own CloudTrail-shaped feed: a rogue's call (not Canon's) is
//! healed within seconds, long before the tick.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use canon_cloud::{AwsCloud, AwsConfig, Cloud, Scope};
use canon_model::{Action, CloudRef, Ipv4Cidr, Peer, Protocol, Region, Rule};
use canon_node::cloud_events::accounts::POLICY_LOOK;
use canon_node::cloud_events::EventsQueue;
use canon_node::dev::{DevCloud, DevCluster, DevOptions};
use serde_json::Value;

mod support;
use support::cloudtrail::{deliver, ingress_event, queue, time_of};
use support::dev_cluster::{canon, client_toml, dev_on_aws, metrics_page, on_moto};
use support::rogue::{add_all_traffic_rule, admits_all};
use support::story::example;

#[path = "../../cloud/tests/support/moto.rs"]
mod moto;

/// The tick: far longer than any heal the test waits for.
const TICK: Duration = Duration::from_secs(60);

/// What the test waits for an event's heal, at most: well under the tick.
const EVENT_HEAL_BOUND: Duration = Duration::from_secs(20);

async fn json(config: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, out, err) = canon(config, &all).await;
    assert_eq!(code, 0, "canon {args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("canon {args:?}: {e}: {out}"))
}

fn drift(history: &Value) -> Vec<Value> {
    history["drift"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rogue_rule_is_healed_within_seconds_of_its_event_and_own_calls_poke_nothing() {
    let m = moto::moto();
    let sdk = moto::sdk_config(on_moto(&m.endpoint)).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let url = queue(&sqs, "canon-events").await;
    let cloud: Arc<dyn Cloud> = Arc::new(AwsCloud::from_sdk_config(sdk, AwsConfig::default()));
    let dir = tempfile::tempdir().unwrap();
    let events = EventsQueue::from_env(&url, Vec::new()).await.unwrap();
    let cluster = dev_on_aws(dir.path(), TICK, Some(events)).await;
    let config = client_toml(&cluster, dir.path());
    let file = example("VPC-sam.lw");
    let (code, _, err) = canon(
        &config,
        &["run", file.to_str().unwrap(), "-a", "ev-sam", "--wait"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let status = json(&config, &["status", "ev-sam"]).await;
    let sg = status["resources"]["dev-sam-sg"]["cloud_id"]
        .as_str()
        .unwrap()
        .to_string();
    let scope = Scope {
        account: status["account"].as_str().unwrap().to_string(),
        region: Region::new("us-west-2"),
    };
    // Past the run's own passes: the next tick is a minute away.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // A rogue rule, and its event, delivered twice.
    add_all_traffic_rule(cloud.as_ref(), &scope, &sg).await;
    let sent = Instant::now();
    let event = ingress_event(&sg, "arn:aws:iam::123456789012:user/mallory");
    for _ in 0..2 {
        deliver(&sqs, &url, &event).await;
    }
    let healed = loop {
        let history = json(&config, &["history", "ev-sam"]).await;
        let found = drift(&history);
        if found.iter().any(|d| !d["healed"].is_null()) {
            break found;
        }
        assert!(
            sent.elapsed() < EVENT_HEAL_BOUND,
            "not healed {EVENT_HEAL_BOUND:?} after its event (tick {TICK:?}): {history}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let took = sent.elapsed();
    assert!(!admits_all(cloud.as_ref(), &scope, &sg).await);
    assert_eq!(
        healed.len(),
        1,
        "one drift for a duplicated event: {healed:?}"
    );
    assert_eq!(healed[0]["detected_by"], "event", "{healed:?}");
    assert!(healed[0]["event"].as_u64().is_some(), "{healed:?}");
    assert_eq!(
        healed[0]["changed_by"], "arn:aws:iam::123456789012:user/mallory",
        "who changed it: {healed:?}"
    );
    eprintln!("event → healed in {took:?} (tick {TICK:?})");
    // The metrics count that drift's detection and heal, as the event's.
    let page = metrics_page(&cluster);
    for line in [
        "canon_drift_detection_seconds_count{source=\"event\"} 1",
        "canon_drift_heal_seconds_count{source=\"event\"} 1",
        "canon_drift_heal_seconds_count{source=\"tick\"} 0",
    ] {
        assert!(page.lines().any(|l| l == line), "{line} in\n{page}");
    }

    // Canon's own call (its role session) pokes nothing: the rule stays
    // until the tick.
    add_all_traffic_rule(cloud.as_ref(), &scope, &sg).await;
    let own = ingress_event(
        &sg,
        "arn:aws:sts::123456789012:assumed-role/canon-conductor/canon",
    );
    deliver(&sqs, &url, &own).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        admits_all(cloud.as_ref(), &scope, &sg).await,
        "healed after an event of Canon's own call"
    );
    let history = json(&config, &["history", "ev-sam"]).await;
    assert_eq!(drift(&history).len(), 1, "{history}");
    // Every event was taken off the queue.
    assert_eq!(messages_on(&sqs, &url).await, 0);
    cluster.shutdown().await;
}

/// How many messages are on the queue at `url`, visible or in flight.
async fn messages_on(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(
            aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        )
        .send()
        .await
        .unwrap();
    attrs
        .attributes()
        .into_iter()
        .flat_map(|a| a.values())
        .filter_map(|v| v.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accounts_events_queue_is_read_from_when_it_is_added_until_it_is_removed() {
    let m = moto::moto();
    let sdk = moto::sdk_config(on_moto(&m.endpoint)).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let url = queue(&sqs, "team-events").await;
    let cloud: Arc<dyn Cloud> = Arc::new(AwsCloud::from_sdk_config(sdk, AwsConfig::default()));
    let dir = tempfile::tempdir().unwrap();
    // No --events-queue: the queue comes from the account.
    let cluster = dev_on_aws(dir.path(), TICK, None).await;
    let config = client_toml(&cluster, dir.path());
    let account = |queue: Option<&str>| {
        let mut args = vec![
            "account",
            "add",
            "team",
            "--aws-account",
            "123456789012",
            "--region",
            "us-west-2",
        ];
        args.extend(queue.iter().flat_map(|q| ["--events-queue", q]));
        args.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let add = account(Some(&url));
    let add: Vec<&str> = add.iter().map(String::as_str).collect();
    let (code, out, err) = canon(&config, &add).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("events of us-west-2 from {url}")),
        "{out}"
    );
    let listed = json(&config, &["account", "list"]).await;
    assert_eq!(
        listed["accounts"][0]["events_queues"]["us-west-2"],
        url.as_str(),
        "{listed}"
    );

    let file = example("VPC-sam.lw");
    let (code, _, err) = canon(
        &config,
        &[
            "run",
            file.to_str().unwrap(),
            "-a",
            "team-sam",
            "--account",
            "team",
            "--wait",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let status = json(&config, &["status", "team-sam"]).await;
    let sg = status["resources"]["dev-sam-sg"]["cloud_id"]
        .as_str()
        .unwrap()
        .to_string();
    let scope = Scope {
        account: status["account"].as_str().unwrap().to_string(),
        region: Region::new("us-west-2"),
    };
    // Past the run's own passes and the watcher's first look at the
    // policy: the next tick is a minute away.
    tokio::time::sleep(POLICY_LOOK + Duration::from_secs(1)).await;

    let rogue = "arn:aws:iam::123456789012:user/mallory";
    add_all_traffic_rule(cloud.as_ref(), &scope, &sg).await;
    let sent = Instant::now();
    deliver(&sqs, &url, &ingress_event(&sg, rogue)).await;
    loop {
        let history = json(&config, &["history", "team-sam"]).await;
        if drift(&history).iter().any(|d| !d["healed"].is_null()) {
            assert_eq!(drift(&history)[0]["detected_by"], "event", "{history}");
            break;
        }
        assert!(
            sent.elapsed() < EVENT_HEAL_BOUND,
            "not healed {EVENT_HEAL_BOUND:?} after its event on the account's queue (tick {TICK:?}): {history}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!admits_all(cloud.as_ref(), &scope, &sg).await);
    assert_eq!(messages_on(&sqs, &url).await, 0);

    // The account forgets its queue: nothing reads it any more, so the
    // next rogue rule waits for the tick and its event stays queued.
    let update = ["account", "update", "team", "--no-events-queues"];
    let (code, _, err) = canon(&config, &update).await;
    assert_eq!(code, 0, "{err}");
    tokio::time::sleep(POLICY_LOOK + Duration::from_secs(1)).await;
    add_all_traffic_rule(cloud.as_ref(), &scope, &sg).await;
    deliver(&sqs, &url, &ingress_event(&sg, rogue)).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        admits_all(cloud.as_ref(), &scope, &sg).await,
        "healed from a queue no account names"
    );
    assert_eq!(messages_on(&sqs, &url).await, 1);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulated_clouds_feed_heals_a_rogue_call_before_the_tick() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = DevCluster::start(DevOptions {
        nodes: 3,
        shards: 1,
        tls: false,
        tick: TICK,
        cloud: DevCloud::Sim,
        sim_events: true,
        ..DevOptions::new(dir.path().join("dev"))
    })
    .await
    .expect("the dev cluster starts");
    let sim = cluster.sim.clone().expect("a simulated cloud");
    let config = client_toml(&cluster, dir.path());
    let file = example("VPC-sam.lw");
    let (code, _, err) = canon(
        &config,
        &["run", file.to_str().unwrap(), "-a", "feed-sam", "--wait"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let status = json(&config, &["status", "feed-sam"]).await;
    let sg = status["resources"]["dev-sam-sg"]["cloud_id"]
        .as_str()
        .unwrap()
        .to_string();
    let account = status["account"].as_str().unwrap().to_string();
    let scope = Scope {
        account: account.clone(),
        region: Region::new("us-west-2"),
    };
    // Past the run's own passes (whose calls are Canon's: no poke).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(drift(&json(&config, &["history", "feed-sam"]).await).is_empty());

    let rogue = Action::AuthorizeSecurityGroupIngress {
        group: CloudRef::Id(sg.clone()),
        rules: [Rule::new(Protocol::All, -1, -1, Peer::Cidr(Ipv4Cidr::ANY))].into(),
    };
    sim.rogue(&scope, &rogue).expect("the rogue rule");
    let called = Instant::now();
    let healed = loop {
        let history = json(&config, &["history", "feed-sam"]).await;
        let found = drift(&history);
        if found.iter().any(|d| !d["healed"].is_null()) {
            break found;
        }
        assert!(
            called.elapsed() < EVENT_HEAL_BOUND,
            "not healed {EVENT_HEAL_BOUND:?} after the call (tick {TICK:?}): {history}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!("sim feed: call → healed in {:?}", called.elapsed());
    assert!(!admits_all(sim.as_ref(), &scope, &sg).await);
    assert_eq!(healed.len(), 1, "{healed:?}");
    assert_eq!(healed[0]["detected_by"], "event", "{healed:?}");
    assert_eq!(
        healed[0]["changed_by"],
        canon_cloud::sim::rogue_arn(&account).as_str(),
        "{healed:?}"
    );
    // The heal's own calls are in the feed too, under Canon's session:
    // they poke nothing, so no second drift appears.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let history = json(&config, &["history", "feed-sam"]).await;
    assert_eq!(drift(&history).len(), 1, "{history}");
    let counts = sim.event_counts().expect("the feed is open");
    eprintln!("sim feed: {counts:?}");
    cluster.shutdown().await;
}

#[test]
fn the_test_writes_event_times_as_cloudtrail_does() {
    assert_eq!(time_of(0), "1970-01-01T00:00:00Z");
    assert_eq!(time_of(1_796_364_000_000), "2026-12-04T06:00:00Z");
    assert_eq!(time_of(951_868_800_500), "2000-03-01T00:00:00Z");
}
