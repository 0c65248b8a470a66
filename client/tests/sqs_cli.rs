//! The CLI over SQS against a real moto server: with `transport = "sqs"`
//! in client.toml, `canon run`, `suspend` and `kill` go through the
//! cluster's intake queue and the CLI prints the answer it read on its
//! reply queue, signed with the cluster's reply key; reads still go to
//! the endpoints. A cluster that does not answer is a clear timeout
//! (exit 3), and a reply signed by another key is not believed.

use std::path::Path;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName as Attr;
use aws_sdk_sqs::Client as Sqs;
use canon_client::config::ClientConfig;
use canon_node::dev::{DevCloud, DevCluster, DevOptions};
use canon_node::sqs::{IntakeQueue, IntakeSettings};

mod support;
use support::dev_cluster::canon_with;

#[path = "../../cloud/tests/support/moto.rs"]
mod moto;

async fn fifo(sqs: &Sqs, name: &str) -> String {
    let out = sqs
        .create_queue()
        .queue_name(name)
        .attributes(Attr::FifoQueue, "true")
        .send()
        .await
        .unwrap();
    out.queue_url().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sends_commands_over_sqs_and_believes_only_signed_replies() {
    let m = moto::moto();
    let sqs = Sqs::new(&moto::sdk_config(&m.endpoint).await);
    let (intake, replies) = (
        fifo(&sqs, "intake.fifo").await,
        fifo(&sqs, "alice.fifo").await,
    );
    let idle = fifo(&sqs, "nobody-polls.fifo").await;
    let tmp = tempfile::tempdir().unwrap();
    let cluster = DevCluster::start(DevOptions {
        nodes: 3,
        data_dir: tmp.path().to_path_buf(),
        tick: Duration::from_secs(60),
        cloud: DevCloud::Sim,
        shards: 2,
        signed_reads: true,
        tls: false,
        intake: Some(IntakeQueue {
            url: intake.clone(),
            client: sqs.clone(),
            settings: IntakeSettings {
                wait: Duration::from_secs(1),
                ..IntakeSettings::default()
            },
            reply_key: canon_node::dev::reply_key(tmp.path()).unwrap(),
        }),
    })
    .await
    .unwrap();
    let config = ClientConfig {
        endpoints: cluster.endpoints.clone(),
        user: Some(cluster.user.clone()),
        key: Some(cluster.admin_key.clone()),
        cluster_id: Some(cluster.cluster_id.clone()),
        transport: Some("sqs".into()),
        intake_queue: Some(intake.clone()),
        reply_queue: Some(replies.clone()),
        reply_key: cluster.reply_key.clone(),
        reply_timeout: Some("60s".into()),
        ..Default::default()
    };
    let path = tmp.path().join("client.toml");
    config.write(&path).unwrap();
    let aws = [
        ("AWS_ENDPOINT_URL", m.endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-west-2"),
    ];
    let canon = |args: &'static [&'static str], path: &Path| {
        let path = path.to_path_buf();
        async move { canon_with(&path, args, &aws).await }
    };
    let vpc = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/VPC-sam.lw");
    let run = ["run", vpc, "-a", "sqs-1"];
    let (code, out, err) = canon_with(&path, &run, &aws).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = canon(&["status", "sqs-1"], &path).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("sqs-1"), "{out}");
    let (code, out, err) = canon(&["suspend", "sqs-1"], &path).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.to_lowercase().contains("suspended"), "{out}");
    // A refusal travels back as the same exit code as over gRPC.
    let (code, _, err) = canon(&["kill", "no-such-alias", "-y"], &path).await;
    assert_eq!(code, 4, "{err}");
    // The audit names the channel.
    let (code, out, err) = canon(&["audit", "--json", "--alias", "sqs-1"], &path).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"channel\": \"sqs\""), "{out}");

    // Nobody polls this queue: a clear timeout, exit 3.
    let silent = ClientConfig {
        intake_queue: Some(idle),
        reply_timeout: Some("2s".into()),
        ..config.clone()
    };
    let silent_path = tmp.path().join("silent.toml");
    silent.write(&silent_path).unwrap();
    let (code, _, err) = canon(&["kill", "sqs-1", "-y"], &silent_path).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no reply to command"), "{err}");

    // A reply key that is not the cluster's: its real reply is not believed.
    let wrong = ClientConfig {
        reply_key: Some(hex::encode(
            ed25519_dalek::SigningKey::from_bytes(&[7; 32])
                .verifying_key()
                .as_bytes(),
        )),
        reply_timeout: Some("5s".into()),
        ..config.clone()
    };
    let wrong_path = tmp.path().join("wrong.toml");
    wrong.write(&wrong_path).unwrap();
    let (code, _, err) = canon(&["resume", "sqs-1"], &wrong_path).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no reply to command"), "{err}");
    cluster.shutdown().await;
}
