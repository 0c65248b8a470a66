//! Commands over SQS beside the same commands over gRPC (issue #14 §1):
//! send → commit → reply latency, p50 and p99, for signed commands (a
//! process suspended and resumed in turn, each a Raft commit) and signed
//! reads (`status`), through the SDK a user's program would use, on a
//! 3-node dev cluster whose intake queue is a FIFO queue on moto. Both
//! transports are measured in one run, against one cluster, so the ratio
//! is what to read. Prints one JSON object. Not run in CI.
//!
//! `cargo bench -p canon-client --bench sqs_latency` (set
//! `SQS_LATENCY_TRIALS`, default 100 per transport and kind).

use std::time::{Duration, Instant};

use canon_client::config::ClientConfig;
use canon_client::sqs::SqsTransport;
use canon_client::{Client, Signer};
use canon_node::dev::{DevCluster, DevOptions};
use canon_node::sqs::{IntakeQueue, IntakeSettings};

#[path = "../tests/support/mod.rs"]
mod support;
use support::dev_cluster::{fifo_queue, sqs_client_toml};

#[path = "../../cloud/tests/support/moto.rs"]
mod moto;

/// The processes the measured commands act on, in turn. A command's
/// message group is its alias, and moto (unlike SQS) keeps a group held
/// for the whole of a long poll that began while the group's previous
/// message was in flight: successive commands on one alias would each
/// wait out a poll (20 s) there. Turning over several aliases measures
/// the transport, not that quirk.
const ALIASES: [&str; 4] = ["latency-1", "latency-2", "latency-3", "latency-4"];

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(run());
}

async fn run() {
    let trials: usize = std::env::var("SQS_LATENCY_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let m = moto::moto();
    let aws = [
        ("AWS_ENDPOINT_URL", m.endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-west-2"),
    ];
    for (k, v) in aws {
        std::env::set_var(k, v);
    }
    let sqs = aws_sdk_sqs::Client::new(&moto::sdk_config(&m.endpoint).await);
    let intake = fifo_queue(&sqs, "intake.fifo").await;
    let replies = fifo_queue(&sqs, "bench-replies.fifo").await;
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let cluster = DevCluster::start(DevOptions {
        tick: Duration::from_secs(60),
        shards: 2,
        intake: Some(IntakeQueue {
            url: intake.clone(),
            client: sqs.clone(),
            settings: IntakeSettings::default(),
            reply_key: canon_node::dev::reply_key(tmp.path()).expect("the reply key"),
            only: false,
        }),
        ..DevOptions::new(tmp.path())
    })
    .await
    .expect("the dev cluster starts");
    let config = sqs_client_toml(&cluster, (&intake, &replies), tmp.path(), None);

    // The processes the commands act on, made over gRPC by the CLI.
    let vpc = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/VPC-sam.lw");
    for alias in ALIASES {
        let (code, out, err) = support::dev_cluster::canon_with(
            &tmp.path().join("client.toml"),
            &["run", vpc, "-a", alias, "--wait", "--via", "grpc"],
            &aws,
        )
        .await;
        assert_eq!(code, 0, "{out}\n{err}");
    }

    let grpc = client(&config, false).await;
    let over_sqs = client(&config, true).await;
    // One of each first: connections made, the queues' clients loaded.
    for c in [&grpc, &over_sqs] {
        c.status(ALIASES[0], false).await.expect("a warm-up read");
    }
    let commands_grpc = commands(&grpc, trials).await;
    let commands_sqs = commands(&over_sqs, trials).await;
    let reads_grpc = reads(&grpc, trials).await;
    let reads_sqs = reads(&over_sqs, trials).await;
    let p = |s: &[u128], q: f64| percentile(s, q);
    let ratio = |a: &[u128], b: &[u128]| round2(p(a, 50.0) as f64 / p(b, 50.0).max(1) as f64);
    println!(
        "{}",
        serde_json::json!({
            "bench": "sqs_latency",
            "trials": trials,
            "nodes": 3,
            "queue": "moto FIFO, long poll 20 s",
            "commands_ms": {
                "grpc": {"p50": p(&commands_grpc, 50.0), "p99": p(&commands_grpc, 99.0)},
                "sqs": {"p50": p(&commands_sqs, 50.0), "p99": p(&commands_sqs, 99.0)},
                "sqs_over_grpc_p50": ratio(&commands_sqs, &commands_grpc),
            },
            "reads_ms": {
                "grpc": {"p50": p(&reads_grpc, 50.0), "p99": p(&reads_grpc, 99.0)},
                "sqs": {"p50": p(&reads_sqs, 50.0), "p99": p(&reads_sqs, 99.0)},
                "sqs_over_grpc_p50": ratio(&reads_sqs, &reads_grpc),
            },
        })
    );
    cluster.shutdown().await;
}

/// The SDK client of `config`, over SQS or gRPC, signing as the admin.
async fn client(config: &ClientConfig, over_sqs: bool) -> Client {
    let tls = config
        .tls
        .as_ref()
        .map(canon_client::config::TlsPaths::to_client_tls);
    let mut c = Client::connect_with(&config.endpoints, tls.as_ref()).expect("a gRPC client");
    if over_sqs {
        let settings = config.sqs_settings().expect("the SQS settings");
        c = c.with_sqs(SqsTransport::new(settings).expect("an SQS transport"));
    }
    let key = config.key.as_ref().expect("the admin key");
    let user = config.user.clone().unwrap_or_else(|| "admin".into());
    let signer = Signer::from_file(user, key).expect("the admin key reads");
    c.with_audience(config.cluster_id.clone().expect("the cluster id"))
        .with_signer(signer)
}

/// `trials` signed commands through `c` (each process suspended, then
/// resumed, in turn), each answered once committed: their latencies in
/// ms, sorted.
async fn commands(c: &Client, trials: usize) -> Vec<u128> {
    let mut out = Vec::with_capacity(trials);
    for i in 0..trials {
        let alias = ALIASES[i % ALIASES.len()];
        let started = Instant::now();
        let reply = if (i / ALIASES.len()).is_multiple_of(2) {
            c.suspend(alias, false).await
        } else {
            c.resume(alias, false).await
        };
        reply.expect("the command is applied");
        out.push(started.elapsed().as_millis());
    }
    out.sort_unstable();
    out
}

/// `trials` signed reads of the process through `c`: their latencies in
/// ms, sorted.
async fn reads(c: &Client, trials: usize) -> Vec<u128> {
    let mut out = Vec::with_capacity(trials);
    for i in 0..trials {
        let started = Instant::now();
        let alias = ALIASES[i % ALIASES.len()];
        c.status(alias, false).await.expect("a status");
        out.push(started.elapsed().as_millis());
    }
    out.sort_unstable();
    out
}

/// The `p`th percentile (0–100) of the ascending `sorted`, nearest rank.
fn percentile(sorted: &[u128], p: f64) -> u128 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
