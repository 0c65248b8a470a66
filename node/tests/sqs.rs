//! Command intake over SQS against a real moto server: a dev cluster polls
//! a FIFO intake queue (with a dead-letter queue) and answers on the
//! sender's reply queue, signed with the cluster's reply key. A command is
//! applied, replied to and deleted;
//! the same body delivered twice is applied once; the same command in a
//! fresh envelope (a client's retry) is answered with the first outcome;
//! forged, expired, wrong-audience, replayed and malformed messages are
//! refused with no state change, deleted, and each leaves an audit record
//! on the `sqs` channel. A message that keeps failing transiently ends in
//! the dead-letter queue, with the alert counted once. A read over the
//! queue is answered the same way, and one nobody vouches for is refused
//! and recorded. The polling leader stopped while it holds messages in
//! flight: the next leader carries them, and each command is applied once
//! and answered with one outcome.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName as Attr;
use aws_sdk_sqs::Client as Sqs;
use canon_node::api::intake::{Answer, Arrival, Shut};
use canon_node::dev::{DevCluster, DevOptions};
use canon_node::metrics::ApiMetrics;
use canon_node::sqs::door::{Door, DoorFuture};
use canon_node::sqs::{IntakeQueue, IntakeSettings, ReplyKey};
use canon_proto::canon::api::v1 as pb;
use canon_proto::canon::api::v1::canon_client::CanonClient;
use canon_proto::canon::sqs::v1 as sqs;
use canon_proto::signing::reply_payload;
use canon_proto::sqs::{decode_body, encode_body};
use canon_trust::audit::Channel;
use ed25519_dalek::{SigningKey, Verifier as _};
use prost::Message;
use tonic::Code;

use pb::command::Action;

mod support;
use support::who::Who;

#[path = "../../cloud/tests/support/moto.rs"]
mod moto;

/// The intake queue, its dead-letter queue and a user's reply queue.
struct Queues {
    intake: String,
    dlq: String,
    replies: String,
}

async fn create(sqs: &Sqs, name: &str, attrs: &[(Attr, String)]) -> String {
    let mut call = sqs
        .create_queue()
        .queue_name(name)
        .attributes(Attr::FifoQueue, "true");
    for (k, v) in attrs {
        call = call.attributes(k.clone(), v);
    }
    call.send().await.unwrap().queue_url().unwrap().to_string()
}

/// FIFO queues: the intake (its messages go to the dead-letter queue
/// after `max_receives` deliveries) and the replies.
async fn queues(sqs: &Sqs, max_receives: u32) -> Queues {
    let dlq = create(sqs, "intake-dlq.fifo", &[]).await;
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(Attr::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| a.get(&Attr::QueueArn).cloned())
        .unwrap();
    let redrive = format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":{max_receives}}}"#);
    let intake = create(sqs, "intake.fifo", &[(Attr::RedrivePolicy, redrive)]).await;
    let replies = create(sqs, "replies.fifo", &[]).await;
    Queues {
        intake,
        dlq,
        replies,
    }
}

/// Messages in `url`: (visible, in flight).
async fn counts(sqs: &Sqs, url: &str) -> (u64, u64) {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(Attr::ApproximateNumberOfMessages)
        .attribute_names(Attr::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let a = out.attributes().unwrap();
    let n = |k: &Attr| a.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (
        n(&Attr::ApproximateNumberOfMessages),
        n(&Attr::ApproximateNumberOfMessagesNotVisible),
    )
}

/// Messages in `url`, visible or in flight.
async fn depth(sqs: &Sqs, url: &str) -> u64 {
    let (visible, in_flight) = counts(sqs, url).await;
    visible + in_flight
}

/// Waits until `url` holds no message.
async fn drained(sqs: &Sqs, url: &str) {
    for _ in 0..300 {
        if depth(sqs, url).await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} still holds messages after 30s");
}

/// Sends `body` to the intake queue as a client does.
async fn send(sqs: &Sqs, url: &str, body: String, group: &str, dedup: &str) {
    sqs.send_message()
        .queue_url(url)
        .message_body(body)
        .message_group_id(group)
        .message_deduplication_id(dedup)
        .send()
        .await
        .unwrap();
}

fn body(env: &pb::SignedEnvelope) -> String {
    encode_body(&sqs::SqsRequest {
        request: Some(sqs::sqs_request::Request::Command(env.clone())),
    })
}

/// A read of `request` answered on `reply_queue` as reply `id`: the bytes
/// its token signs.
fn read_body<T: Message>(request: &T, reply_queue: &str, id: &str) -> Vec<u8> {
    sqs::SqsReadBody {
        request: request.encode_to_vec(),
        reply_queue: reply_queue.into(),
        request_id: id.into(),
    }
    .encode_to_vec()
}

fn read_message(read: sqs::SignedRead) -> String {
    encode_body(&sqs::SqsRequest {
        request: Some(sqs::sqs_request::Request::Read(read)),
    })
}

/// The cluster's reply key.
fn reply_key() -> SigningKey {
    SigningKey::from_bytes(&[9; 32])
}

/// The intake of a cluster: `url`, polled quickly (so that the tests take
/// seconds), replies signed with [`reply_key`].
fn intake(sqs: &Sqs, url: &str) -> IntakeQueue {
    IntakeQueue {
        url: url.to_string(),
        client: sqs.clone(),
        settings: IntakeSettings {
            wait: Duration::from_secs(1),
            visibility: Duration::from_secs(6),
            max_in_flight: 8,
        },
        reply_key: ReplyKey::new(reply_key()),
        only: false,
    }
}

/// The reply a body holds, checked to be signed by [`reply_key`] for
/// cluster `audience`.
fn open(body: &str, audience: &str) -> sqs::SqsReply {
    let signed: sqs::SignedReply = decode_body(body, "a signed reply").unwrap();
    assert_eq!(signed.audience, audience);
    let payload = reply_payload(&signed.audience, &signed.key_id, &signed.reply);
    let sig = ed25519_dalek::Signature::from_slice(&signed.signature).unwrap();
    reply_key().verifying_key().verify(&payload, &sig).unwrap();
    sqs::SqsReply::decode(signed.reply.as_slice()).unwrap()
}

/// Reads the reply queue, keeping replies by command id.
struct Replies<'a> {
    sqs: &'a Sqs,
    url: String,
    audience: String,
    got: HashMap<String, sqs::SqsReply>,
    /// Every reply read, in order.
    all: Vec<sqs::SqsReply>,
}

impl<'a> Replies<'a> {
    fn new(sqs: &'a Sqs, url: &str, audience: &str) -> Replies<'a> {
        Replies {
            sqs,
            url: url.to_string(),
            audience: audience.to_string(),
            got: HashMap::new(),
            all: Vec::new(),
        }
    }
}

impl Replies<'_> {
    /// Takes every reply waiting now (up to `wait` for the first).
    async fn take(&mut self, wait: i32) {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait)
            .send()
            .await
            .unwrap();
        for m in out.messages() {
            let r = open(m.body().unwrap(), &self.audience);
            self.all.push(r.clone());
            self.got.insert(r.request_id.clone(), r);
            let receipt = m.receipt_handle().unwrap();
            let del = self.sqs.delete_message().queue_url(&self.url);
            del.receipt_handle(receipt).send().await.unwrap();
        }
    }

    /// The reply to command `id`, waiting up to 30 s.
    async fn to(&mut self, id: &str) -> sqs::SqsReply {
        for _ in 0..30 {
            if let Some(r) = self.got.remove(id) {
                return r;
            }
            self.take(1).await;
        }
        panic!("no reply to {id} within 30s");
    }
}

fn compiled() -> pb::CompiledComposition {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/bench/one-vpc.lw");
    let out = canon_lang::compile_file(&path, canon_lang::Options::default()).unwrap();
    let c = out.compiled.unwrap();
    pb::CompiledComposition {
        bytes: c.encode(),
        source_hash: c.source_hash,
    }
}

fn run(alias: &str) -> Action {
    Action::Run(pb::Run {
        alias: alias.into(),
        fid: uuid::Uuid::new_v4().to_string(),
        account: String::new(),
        composition: Some(compiled()),
        tick_interval_ms: 0,
        import: false,
        composition_ref: None,
    })
}

/// Every process (alias, state) and the jobs commands started on `web-1`
/// (not the SYSTEM jobs the conductor starts on its own once a run is
/// done, whenever its tick comes).
async fn state(api: &mut CanonClient<tonic::transport::Channel>, root: &Who) -> Vec<String> {
    let req = pb::StatusRequest {
        alias: String::new(),
        all: true,
        ..Default::default()
    };
    let status = api.status(root.read("Status", req)).await.unwrap();
    let mut out: Vec<String> = status
        .into_inner()
        .processes
        .iter()
        .map(|p| format!("{} {}", p.alias, p.state))
        .collect();
    for alias in ["web-1"] {
        let req = pb::HistoryRequest {
            alias: alias.into(),
            ..Default::default()
        };
        if let Ok(h) = api.history(root.read("History", req)).await {
            let jobs = h.into_inner().jobs;
            out.extend(
                jobs.iter()
                    .filter(|j| j.kind != "SYSTEM")
                    .map(|j| format!("{alias} job {} {}", j.id, j.kind)),
            );
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_over_sqs_are_applied_once_replied_and_refusals_audited() {
    let m = moto::moto();
    let sqs = Sqs::new(&moto::sdk_config(&m.endpoint).await);
    let q = queues(&sqs, 5).await;
    let tmp = tempfile::tempdir().unwrap();
    let cluster = DevCluster::start(DevOptions {
        tick: Duration::from_secs(5),
        shards: 2,
        tls: false,
        intake: Some(intake(&sqs, &q.intake)),
        ..DevOptions::new(tmp.path())
    })
    .await
    .unwrap();
    let mut api = CanonClient::connect(cluster.endpoints[0].clone())
        .await
        .unwrap();
    let root = Who {
        name: "admin",
        key: canon_node::keys::read_signing_key(&cluster.admin_key).unwrap(),
        audience: cluster.cluster_id.clone(),
    };
    let mut replies = Replies::new(&sqs, &q.replies, &cluster.cluster_id);

    // A command over SQS: applied, replied to, deleted.
    let mut cmd = Who::command(run("web-1"), false);
    cmd.reply_queue = q.replies.clone();
    let env = root.sign(&cmd, canon_node::now_ms(), 60_000);
    send(&sqs, &q.intake, body(&env), "web-1", &cmd.command_id).await;
    let first = replies.to(&cmd.command_id).await;
    assert_eq!(first.code, 0, "{}", first.error);
    let Some(sqs::sqs_reply::Reply::Command(ran)) = &first.reply else {
        panic!("the reply carries no command reply: {first:?}");
    };
    assert!(ran.job > 0);
    assert!(ran.log_index > 0, "the reply names no log index: {ran:?}");
    assert_eq!(
        ran.process.as_ref().map(|p| p.alias.as_str()),
        Some("web-1")
    );
    drained(&sqs, &q.intake).await;
    let after_run = state(&mut api, &root).await;
    assert!(
        after_run.contains(&"web-1 Running".to_string()),
        "{after_run:?}"
    );

    // The same body again, as another message (moto has forgotten the
    // deduplication id once the first was deleted): a replay, refused on
    // the signer's reply queue, applied once.
    send(&sqs, &q.intake, body(&env), "web-1", "again").await;
    let replayed = replies.to(&cmd.command_id).await;
    assert_eq!(
        replayed.code,
        Code::FailedPrecondition as i32,
        "{replayed:?}"
    );
    assert!(replayed.error.contains("replayed"), "{}", replayed.error);
    // The same command in a fresh envelope (a client's retry): the first
    // outcome, nothing applied again.
    let retry = root.sign(&cmd, canon_node::now_ms(), 60_000);
    send(&sqs, &q.intake, body(&retry), "web-1", "retry").await;
    let again = replies.to(&cmd.command_id).await;
    assert_eq!(again.code, 0, "{}", again.error);
    let Some(sqs::sqs_reply::Reply::Command(same)) = &again.reply else {
        panic!("the retry's reply carries no command reply: {again:?}");
    };
    assert_eq!(same.job, ran.job, "the retry started another job");
    assert_eq!(
        same.log_index, ran.log_index,
        "the retry names another index"
    );
    drained(&sqs, &q.intake).await;
    assert_eq!(state(&mut api, &root).await, after_run);

    // A read over the queue: answered on the reader's reply queue with the
    // same reply as over gRPC.
    let history = pb::HistoryRequest {
        alias: "web-1".into(),
        ..Default::default()
    };
    let read_id = uuid::Uuid::new_v4().to_string();
    let read = root.sqs_read("History", read_body(&history, &q.replies, &read_id));
    send(&sqs, &q.intake, read_message(read), &read_id, &read_id).await;
    let answered = replies.to(&read_id).await;
    assert_eq!(answered.code, 0, "{}", answered.error);
    let Some(sqs::sqs_reply::Reply::History(h)) = &answered.reply else {
        panic!("the read's reply carries no history: {answered:?}");
    };
    assert!(h.jobs.iter().any(|j| j.id == ran.job), "{h:?}");
    // A read by nobody the cluster knows: no answer to the queue it names,
    // and a record of the refusal.
    let stranger = Who::new("mallory", 77, &cluster.cluster_id);
    let stranger_id = uuid::Uuid::new_v4().to_string();
    let status = pb::StatusRequest {
        alias: "web-1".into(),
        all: false,
        ..Default::default()
    };
    let read = stranger.sqs_read("Status", read_body(&status, &q.replies, &stranger_id));
    send(
        &sqs,
        &q.intake,
        read_message(read),
        &stranger_id,
        &stranger_id,
    )
    .await;
    drained(&sqs, &q.intake).await;

    // Refused, each: no state change, deleted, on record.
    let an_hour_ago = canon_node::now_ms() - 3_600_000;
    let mut expired_cmd = Who::command(run("web-2"), false);
    expired_cmd.reply_queue = q.replies.clone();
    let expired = root.sign(&expired_cmd, an_hour_ago, 60_000);
    let mut forged = root.sign(
        &Who::command(run("web-3"), false),
        canon_node::now_ms(),
        60_000,
    );
    forged.command = Who::command(run("web-4"), false).encode_to_vec();
    let staging = Who {
        name: "admin",
        key: root.key.clone(),
        audience: "staging".into(),
    };
    let wrong_audience = staging.envelope(run("web-5"), false);
    for (env, group) in [
        (&expired, "web-2"),
        (&forged, "web-4"),
        (&wrong_audience, "web-5"),
    ] {
        let dedup = uuid::Uuid::new_v4().to_string();
        send(&sqs, &q.intake, body(env), group, &dedup).await;
    }
    send(&sqs, &q.intake, "not a command".into(), "junk", "junk").await;
    let late = replies.to(&expired_cmd.command_id).await;
    assert_eq!(late.code, Code::FailedPrecondition as i32, "{late:?}");
    assert!(late.error.contains("expired"), "{}", late.error);
    drained(&sqs, &q.intake).await;
    assert_eq!(state(&mut api, &root).await, after_run);
    // Only signed refusals are answered: the forged and foreign ones name
    // reply queues nobody vouches for.
    replies.take(1).await;
    assert!(replies.got.is_empty(), "{:?}", replies.got);

    let records = support::audit::records(&mut api, &root).await;
    let over_sqs = |r: &&canon_trust::audit::AuditRecord| {
        r.entry.principal.as_ref().map(|p| p.channel) == Some(Channel::Sqs)
    };
    let run_record = records
        .iter()
        .filter(over_sqs)
        .find(|r| r.entry.command == "ProcessCreated")
        .expect("the run's record names the sqs channel");
    assert_eq!(run_record.entry.outcome, "applied");
    let denied: Vec<String> = records
        .iter()
        .filter(over_sqs)
        .filter(|r| r.entry.decision.effect == canon_trust::Effect::Deny)
        .map(|r| r.entry.outcome.to_string())
        .collect();
    let refused_read = records.iter().filter(over_sqs).find(|r| {
        r.entry.decision.effect == canon_trust::Effect::Deny
            && r.entry.principal.as_ref().map(|p| p.user.as_str()) == Some("mallory")
    });
    let refused_read = refused_read.expect("the stranger's read over SQS is on record");
    assert_eq!(refused_read.entry.action, "process.status");
    for why in [
        "replayed",
        "expired",
        "signature does not verify",
        "another cluster",
        "not base64",
    ] {
        assert!(
            denied.iter().any(|o| o.contains(why)),
            "no sqs deny record for {why:?} in {denied:#?}"
        );
    }
    assert_eq!(depth(&sqs, &q.dlq).await, 0);
    cluster.shutdown().await;
}

/// A door that cannot serve: every command fails as if the cluster had
/// no leader.
#[derive(Default)]
struct Unavailable {
    metrics: ApiMetrics,
}

/// What a cluster without a leader answers.
fn no_leader<'a>() -> DoorFuture<'a, Result<Answer, Shut>> {
    Box::pin(async {
        Err(Shut {
            status: tonic::Status::unavailable("no leader"),
            signed: true,
        })
    })
}

impl Door for Unavailable {
    fn take<'a>(
        &'a self,
        _env: &'a pb::SignedEnvelope,
        _arrival: &'a Arrival,
    ) -> DoorFuture<'a, Result<Answer, Shut>> {
        no_leader()
    }

    fn take_read<'a>(
        &'a self,
        _read: &'a sqs::SignedRead,
        _arrival: &'a Arrival,
    ) -> DoorFuture<'a, Result<Answer, Shut>> {
        no_leader()
    }

    fn refuse_unreadable<'a>(&'a self, _reason: String, _body: &'a [u8]) -> DoorFuture<'a, ()> {
        Box::pin(async {})
    }

    fn metrics(&self) -> &ApiMetrics {
        &self.metrics
    }

    fn node_id(&self) -> u64 {
        1
    }

    fn audience(&self) -> &str {
        "dev"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_keeps_failing_ends_in_the_dead_letter_queue_with_an_alert() {
    let m = moto::moto();
    let sqs = Sqs::new(&moto::sdk_config(&m.endpoint).await);
    let q = queues(&sqs, 2).await;
    let door = Arc::new(Unavailable::default());
    let (_lead_tx, lead) = tokio::sync::watch::channel(canon_raft::Leadership {
        leader: Some(1),
        term: 1,
        is_me: true,
        since: None,
    });
    let poller = canon_node::sqs::spawn(door.clone(), lead, &intake(&sqs, &q.intake));
    let who = Who::new("admin", 7, "dev");
    let env = who.envelope(run("poison"), false);
    send(&sqs, &q.intake, body(&env), "poison", "poison").await;
    // Delivered twice (the second a second later), then moved.
    for _ in 0..200 {
        if depth(&sqs, &q.dlq).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        depth(&sqs, &q.dlq).await,
        1,
        "the message is not in the DLQ"
    );
    assert_eq!(depth(&sqs, &q.intake).await, 0);
    let mut registry = prometheus_client::registry::Registry::default();
    door.metrics.register(&mut registry);
    let page = canon_node::metrics::render(&registry).unwrap();
    assert!(page.contains("canon_sqs_dead_letters_total 1"), "{page}");
    assert!(
        page.contains("canon_sqs_messages_total{outcome=\"again\"} 2"),
        "{page}"
    );
    poller.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_a_client_port_needs_mutual_tls() {
    let m = moto::moto();
    let sqs = Sqs::new(&moto::sdk_config(&m.endpoint).await);
    let q = queues(&sqs, 5).await;
    let tmp = tempfile::tempdir().unwrap();
    let started = DevCluster::start(DevOptions {
        nodes: 1,
        tick: Duration::from_secs(5),
        shards: 1,
        tls: false,
        intake: Some(IntakeQueue {
            only: true,
            ..intake(&sqs, &q.intake)
        }),
        ..DevOptions::new(tmp.path())
    })
    .await;
    let e = started.err().expect("a portless node without TLS started");
    assert!(e.to_string().contains("mutual TLS"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_polling_leader_stopped_mid_flight_loses_and_repeats_no_command() {
    let m = moto::moto();
    let sqs = Sqs::new(&moto::sdk_config(&m.endpoint).await);
    let q = queues(&sqs, 10).await;
    let tmp = tempfile::tempdir().unwrap();
    let base = intake(&sqs, &q.intake);
    let mut cluster = DevCluster::start(DevOptions {
        tick: Duration::from_secs(60),
        shards: 2,
        tls: false,
        // Room for every message at once: the leader takes them all.
        intake: Some(IntakeQueue {
            settings: IntakeSettings {
                max_in_flight: 32,
                ..base.settings
            },
            ..base
        }),
        ..DevOptions::new(tmp.path())
    })
    .await
    .unwrap();
    let root = Who {
        name: "admin",
        key: canon_node::keys::read_signing_key(&cluster.admin_key).unwrap(),
        audience: cluster.cluster_id.clone(),
    };
    let mut replies = Replies::new(&sqs, &q.replies, &cluster.cluster_id);

    // Many runs at once; once the polling leader holds every one of them
    // and has finished some but not all (none visible, some in flight), it
    // is stopped.
    let aliases: Vec<String> = (0..24).map(|i| format!("mid-{i}")).collect();
    let mut ids = Vec::new();
    for alias in &aliases {
        let mut cmd = Who::command(run(alias), false);
        cmd.reply_queue = q.replies.clone();
        let env = root.sign(&cmd, canon_node::now_ms(), 120_000);
        send(&sqs, &q.intake, body(&env), alias, &cmd.command_id).await;
        ids.push(cmd.command_id);
    }
    let mut in_flight = 0;
    for _ in 0..3000 {
        let (visible, hidden) = counts(&sqs, &q.intake).await;
        if visible == 0 && hidden > 0 {
            in_flight = hidden;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(in_flight > 0, "the leader never held the messages");
    let stopped = cluster.stop_meta_leader().await.expect("a meta leader");

    // Every command answered, each with one outcome however often it was
    // answered; every process created once, with one RUN job.
    for id in &ids {
        let r = replies.to(id).await;
        assert_eq!(r.code, 0, "{}", r.error);
    }
    drained(&sqs, &q.intake).await;
    replies.take(1).await;
    let mut firsts: HashMap<&str, (u64, u64)> = HashMap::new();
    for r in &replies.all {
        let Some(sqs::sqs_reply::Reply::Command(c)) = &r.reply else {
            panic!("not a command's reply: {r:?}");
        };
        let first = firsts
            .entry(r.request_id.as_str())
            .or_insert((c.job, c.log_index));
        assert_eq!(
            *first,
            (c.job, c.log_index),
            "two outcomes for {}",
            r.request_id
        );
    }
    let by_new_leader = replies.all.iter().filter(|r| r.node != stopped).count();
    eprintln!(
        "{in_flight} messages in flight at the stop; {} replies, {by_new_leader} by the next leader",
        replies.all.len()
    );
    assert!(
        by_new_leader > 0,
        "no message in flight at the stop ({in_flight} were a moment before) was carried by the next leader"
    );
    let live = cluster
        .endpoints
        .iter()
        .enumerate()
        .find(|(i, _)| *i as u64 + 1 != stopped)
        .map(|(_, e)| e.clone())
        .unwrap();
    let mut api = CanonClient::connect(live).await.unwrap();
    let req = pb::StatusRequest {
        alias: String::new(),
        all: true,
        ..Default::default()
    };
    let status = api.status(root.read("Status", req)).await.unwrap();
    let processes = status.into_inner().processes;
    for alias in &aliases {
        let mine: Vec<_> = processes.iter().filter(|p| &p.alias == alias).collect();
        assert_eq!(mine.len(), 1, "{alias}: {mine:?}");
        let req = pb::HistoryRequest {
            alias: alias.clone(),
            ..Default::default()
        };
        let jobs = api.history(root.read("History", req)).await.unwrap();
        let runs = jobs
            .into_inner()
            .jobs
            .iter()
            .filter(|j| j.kind == "RUN")
            .count();
        assert_eq!(runs, 1, "{alias} ran {runs} times");
    }
    assert_eq!(depth(&sqs, &q.dlq).await, 0);
    cluster.shutdown().await;
}
