//! Rogue change → healed on AWS's API (moto), with a 30 s tick: the tick
//! alone against the cloud events path (issue #14 §2). moto emits no
//! CloudTrail events, so the bench makes the rogue EC2 call and sends the
//! CloudTrail-shaped record into the events queue itself, as EventBridge
//! would; an event trial is timed from that delivery (the event's
//! arrival) until a describe of the group shows the rule gone. The tick
//! trials add the rule to every process's group at once, with no event,
//! and time each until it is gone. One dev cluster on moto (`canon dev
//! --cloud aws --events-queue`), one run. Prints one JSON object. Not run
//! in CI.
//!
//! `cargo bench -p canon-client --bench event_heal_moto` (set
//! `EVENT_HEAL_MOTO_PROCESSES`, default 20, and
//! `EVENT_HEAL_MOTO_EVENT_TRIALS`, default 60; `BENCH_LOG`, a tracing
//! filter such as `canon_node=info,canon_cloud=debug`, logs the cluster's
//! work to stderr, to see where a slow trial's time went).

use std::sync::Arc;
use std::time::{Duration, Instant};

use canon_cloud::{AwsCloud, AwsConfig, Cloud, Scope};
use canon_model::Region;
use canon_node::cloud_events::EventsQueue;

#[path = "../tests/support/mod.rs"]
mod support;
use support::cloudtrail::{deliver, ingress_event, queue};
use support::dev_cluster::{canon, canon_json, client_toml, dev_on_aws, on_moto};
use support::rogue::add_all_traffic_rule;
use support::story::example;

#[path = "../../cloud/tests/support/moto.rs"]
mod moto;

/// The tick the goal is stated for.
const TICK: Duration = Duration::from_secs(30);

/// How often a trial looks at the group.
const LOOK_EVERY: Duration = Duration::from_millis(20);

/// A caller that is not the conductor.
const ROGUE_ARN: &str = "arn:aws:iam::123456789012:user/mallory";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    if std::env::var("BENCH_LOG").is_ok() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("BENCH_LOG"))
            .with_writer(std::io::stderr)
            .init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(run());
}

async fn run() {
    let processes = env("EVENT_HEAL_MOTO_PROCESSES", 20);
    let event_trials = env("EVENT_HEAL_MOTO_EVENT_TRIALS", 60);
    let m = moto::moto();
    let sdk = moto::sdk_config(on_moto(&m.endpoint)).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let url = queue(&sqs, "canon-events").await;
    let cloud: Arc<dyn Cloud> = Arc::new(AwsCloud::from_sdk_config(sdk, AwsConfig::default()));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let events = EventsQueue::from_env(&url, Vec::new())
        .await
        .expect("the events queue");
    let cluster = dev_on_aws(dir.path(), TICK, Some(events)).await;
    let config = client_toml(&cluster, dir.path());
    let setup = Instant::now();
    let sam = example("VPC-sam.lw");
    let mut groups = Vec::with_capacity(processes);
    let mut account = String::new();
    for i in 0..processes {
        let alias = format!("moto-{i}");
        let (code, _, err) = canon(
            &config,
            &[
                "run",
                sam.to_str().unwrap_or_default(),
                "-a",
                &alias,
                "--wait",
            ],
        )
        .await;
        assert_eq!(code, 0, "{alias}: {err}");
        let status = canon_json(&config, &["status", &alias]).await;
        let sg = status["resources"]["dev-sam-sg"]["cloud_id"]
            .as_str()
            .expect("the group");
        groups.push(sg.to_string());
        account = status["account"].as_str().unwrap_or_default().to_string();
    }
    let scope = Scope {
        account,
        region: Region::new("us-west-2"),
    };
    let setup_s = setup.elapsed().as_secs_f64();
    // Past the runs' own passes.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let mut event_ms = Vec::with_capacity(event_trials);
    for t in 0..event_trials {
        // Turning over the processes keeps each one's pokes a second apart.
        let sg = &groups[t % groups.len()];
        add_all_traffic_rule(cloud.as_ref(), &scope, sg).await;
        let arrived = Instant::now();
        deliver(&sqs, &url, &ingress_event(sg, ROGUE_ARN)).await;
        while admits_all(&ec2, sg).await {
            assert!(arrived.elapsed() < TICK * 2, "trial {t}: {sg} not healed");
            tokio::time::sleep(LOOK_EVERY).await;
        }
        event_ms.push(arrived.elapsed().as_millis());
    }

    // The tick alone: every group at once, no events.
    for sg in &groups {
        add_all_traffic_rule(cloud.as_ref(), &scope, sg).await;
    }
    let changed = Instant::now();
    let mut tick_ms = Vec::with_capacity(groups.len());
    let mut left: Vec<&String> = groups.iter().collect();
    while !left.is_empty() {
        assert!(
            changed.elapsed() < TICK * 3,
            "not healed by the tick: {left:?}"
        );
        let mut still = Vec::with_capacity(left.len());
        for sg in left {
            if admits_all(&ec2, sg).await {
                still.push(sg);
            } else {
                tick_ms.push(changed.elapsed().as_millis());
            }
        }
        left = still;
        tokio::time::sleep(LOOK_EVERY).await;
    }
    event_ms.sort_unstable();
    tick_ms.sort_unstable();
    let stats = |s: &[u128]| {
        serde_json::json!({
            "p50_ms": percentile(s, 50.0), "p99_ms": percentile(s, 99.0),
            "max_ms": s.last().copied().unwrap_or(0), "trials": s.len(),
        })
    };
    println!(
        "{}",
        serde_json::json!({
            "bench": "event_heal_moto",
            "cloud": "moto (EC2, SQS)",
            "processes": processes,
            "tick_ms": TICK.as_millis() as u64,
            "setup_s": (setup_s * 10.0).round() / 10.0,
            "event_path": stats(&event_ms),
            "tick_only": stats(&tick_ms),
        })
    );
    cluster.shutdown().await;
}

/// Whether group `sg` admits all traffic, as a describe of it shows.
async fn admits_all(ec2: &aws_sdk_ec2::Client, sg: &str) -> bool {
    let out = ec2
        .describe_security_groups()
        .group_ids(sg)
        .send()
        .await
        .expect("a describe of the group");
    out.security_groups()
        .iter()
        .flat_map(|g| g.ip_permissions())
        .any(|p| p.ip_protocol() == Some("-1"))
}

/// The `p`th percentile (0–100) of the ascending `sorted`, nearest rank.
fn percentile(sorted: &[u128], p: f64) -> u128 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}
