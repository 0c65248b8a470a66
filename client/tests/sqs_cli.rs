//! The CLI over SQS against a real moto server: with `transport = "sqs"`
//! in client.toml, every verb (`canon run`, `suspend`, `kill`, and the
//! reads `status`, `history`, `audit`) goes through the cluster's intake
//! queue and the CLI prints the answer it read on its reply queue, signed
//! with the cluster's reply key. A cluster that does not answer is a clear
//! timeout (exit 3), and a reply signed by another key is not believed. A
//! cluster whose nodes serve no client port (`--no-client-port`) plays the
//! whole demo story over the queue and refuses a client on its port.

use std::path::Path;
use std::time::Duration;

use aws_sdk_sqs::Client as Sqs;
use canon_client::config::ClientConfig;
use canon_node::dev::{DevCluster, DevOptions};
use canon_node::overflow::OverflowBucket;
use canon_node::sqs::{IntakeQueue, IntakeSettings};

mod support;
use support::dev_cluster::{canon_with, fifo_queue, sqs_client_toml};

#[path = "../../cloud/tests/support/moto.rs"]
mod moto;

/// A 3-node dev cluster in `dir` that polls `intake` (every second, so
/// that the tests take seconds); with `portless`, its nodes serve no
/// client port (and speak mutual TLS, which that needs).
async fn cluster(sqs: &Sqs, intake: &str, dir: &Path, portless: bool) -> DevCluster {
    cluster_reading(sqs, intake, dir, portless, None).await
}

/// [`cluster`], with `overflow` as its overflow bucket (what is too
/// large for a message).
async fn cluster_reading(
    sqs: &Sqs,
    intake: &str,
    dir: &Path,
    portless: bool,
    overflow: Option<OverflowBucket>,
) -> DevCluster {
    DevCluster::start(DevOptions {
        tick: Duration::from_secs(60),
        shards: 2,
        tls: portless,
        intake: Some(IntakeQueue {
            url: intake.to_string(),
            client: sqs.clone(),
            settings: IntakeSettings {
                wait: Duration::from_secs(1),
                ..IntakeSettings::default()
            },
            reply_key: canon_node::dev::reply_key(dir).unwrap(),
            only: portless,
        }),
        overflow,
        ..DevOptions::new(dir)
    })
    .await
    .unwrap()
}

/// A composition of one VPC and `groups` security groups of 20 rules
/// each, every one described at length: far over an SQS message once
/// compiled.
fn large_composition(groups: usize) -> String {
    let mut lw = String::from(
        "composition\n\nimport Fugue.AWS.EC2 as EC2\nimport Fugue.Core.AWS.Common as AWS\n\
         import Fugue.AWS.Pattern.Network as Network\n\n\
         net: Network.new { name: \"estate\", region: AWS.Us-west-2, cidr: \"10.9.0.0/16\", \
         publicSubnets: [(AWS.A, \"10.9.1.0/24\")], privateSubnets: [] }\n\n",
    );
    let rules: Vec<String> = (0..20)
        .map(|i| {
            format!(
                "EC2.IpPermission({{ ipProtocol: \"tcp\", fromPort: {p}, toPort: {p}, \
                 prefixLists: None, target: EC2.IpRanges([EC2.IpRange(cidrIp: \"10.{i}.0.0/16\")]) }})",
                p = 8000 + i
            )
        })
        .collect();
    for g in 0..groups {
        lw.push_str(&format!(
            "group-{g}: EC2.SecurityGroup({{ description: \"Group {g} of a large estate: {pad}\", \
             ipPermissions: [{rules}], ipPermissionsEgress: None, tags: [], vpc: net.vpc }})\n\n",
            pad = "x".repeat(150),
            rules = rules.join(", ")
        ));
    }
    lw
}

/// The AWS environment that points the CLI at moto.
fn aws_env(endpoint: &str) -> [(&'static str, &str); 4] {
    [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-west-2"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sends_commands_over_sqs_and_believes_only_signed_replies() {
    let m = moto::moto();
    let sqs = Sqs::new(&moto::sdk_config(&m.endpoint).await);
    let (intake, replies) = (
        fifo_queue(&sqs, "intake.fifo").await,
        fifo_queue(&sqs, "alice.fifo").await,
    );
    let idle = fifo_queue(&sqs, "nobody-polls.fifo").await;
    let tmp = tempfile::tempdir().unwrap();
    let cluster = cluster(&sqs, &intake, tmp.path(), false).await;
    let config = sqs_client_toml(&cluster, (&intake, &replies), tmp.path(), Some("sqs"));
    let path = tmp.path().join("client.toml");
    let aws = aws_env(&m.endpoint);
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
        console: None,
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
        console: None,
        ..config.clone()
    };
    let wrong_path = tmp.path().join("wrong.toml");
    wrong.write(&wrong_path).unwrap();
    let (code, _, err) = canon(&["resume", "sqs-1"], &wrong_path).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no reply to command"), "{err}");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_without_a_client_port_is_driven_over_sqs() {
    let m = moto::moto();
    let sqs = Sqs::new(&moto::sdk_config(&m.endpoint).await);
    let (intake, replies) = (
        fifo_queue(&sqs, "intake.fifo").await,
        fifo_queue(&sqs, "alice.fifo").await,
    );
    let tmp = tempfile::tempdir().unwrap();
    let cluster = cluster(&sqs, &intake, tmp.path(), true).await;
    // Its endpoints and the dev user's certificate are in client.toml only
    // to show that the nodes refuse clients on their port.
    sqs_client_toml(&cluster, (&intake, &replies), tmp.path(), Some("sqs"));
    let path = tmp.path().join("client.toml");
    let aws = aws_env(&m.endpoint);
    let vpc = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/VPC-sam.lw");
    let (code, out, err) = canon_with(&path, &["run", vpc, "-a", "dark-1"], &aws).await;
    assert_eq!(code, 0, "{out}\n{err}");
    // Reads over the queue too: status, history, the audit.
    let (code, out, err) = canon_with(&path, &["status", "dark-1"], &aws).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("dark-1"), "{out}");
    let (code, out, err) = canon_with(&path, &["history", "dark-1"], &aws).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("RUN"), "{out}");
    let (code, out, err) = canon_with(&path, &["audit", "--json", "--alias", "dark-1"], &aws).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"channel\": \"sqs\""), "{out}");
    // Validations travel too: a module stored, listed and reported over
    // SQS (a command, then two reads).
    let policy = tmp.path().join("org.lw");
    std::fs::write(
        &policy,
        "import Canon.Validation.Network as Network\nno-admin-ports: Network.noOpenAdminPorts\n",
    )
    .unwrap();
    let add = ["validation", "add", "org", policy.to_str().unwrap()];
    let (code, out, err) = canon_with(&path, &add, &aws).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = canon_with(&path, &["validation", "list"], &aws).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("org") && out.contains("no-admin-ports"),
        "{out}"
    );
    let (code, out, err) = canon_with(&path, &["validation", "report"], &aws).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("0 of 1 live process(es) fail"), "{out}");
    let (code, out, err) = canon_with(&path, &["kill", "dark-1", "-y"], &aws).await;
    assert_eq!(code, 0, "{out}\n{err}");
    // The nodes' port takes no client, however well certified.
    let (code, _, err) = canon_with(&path, &["status", "--via", "grpc"], &aws).await;
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("serves no client port"), "{err}");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_composition_too_large_for_a_message_travels_by_s3() {
    let m = moto::moto();
    let config = moto::sdk_config(&m.endpoint).await;
    let sqs = Sqs::new(&config);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket("canon-overflow")
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::UsWest2)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let (intake, replies) = (
        fifo_queue(&sqs, "intake.fifo").await,
        fifo_queue(&sqs, "alice.fifo").await,
    );
    let tmp = tempfile::tempdir().unwrap();
    let bucket = OverflowBucket {
        bucket: "canon-overflow".into(),
        client: s3.clone(),
    };
    let cluster = cluster_reading(&sqs, &intake, tmp.path(), false, Some(bucket)).await;
    let config = sqs_client_toml(&cluster, (&intake, &replies), tmp.path(), Some("sqs"));
    let aws = aws_env(&m.endpoint);
    let large = tmp.path().join("estate.lw");
    std::fs::write(&large, large_composition(260)).unwrap();
    let large = large.to_str().unwrap();

    // Without a bucket, the CLI says what to set rather than sending.
    let path = tmp.path().join("client.toml");
    let (code, out, err) = canon_with(&path, &["run", large, "-a", "estate"], &aws).await;
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("overflow_bucket"), "{err}");

    // With one, the composition goes to S3 and the command names it.
    let with_bucket = ClientConfig {
        overflow_bucket: Some("canon-overflow".into()),
        ..config
    };
    let path = tmp.path().join("bucket.toml");
    with_bucket.write(&path).unwrap();
    let (code, out, err) = canon_with(&path, &["run", large, "-a", "estate"], &aws).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let stored = s3
        .list_objects_v2()
        .bucket("canon-overflow")
        .prefix("canon/compositions/")
        .send()
        .await
        .unwrap();
    let objects = stored.contents();
    assert_eq!(objects.len(), 1, "{objects:?}");
    // Named by the SHA-256 of what it holds.
    let key = objects[0].key().unwrap();
    let object = s3
        .get_object()
        .bucket("canon-overflow")
        .key(key)
        .send()
        .await
        .unwrap();
    let bytes = object.body.collect().await.unwrap().into_bytes();
    use sha2::Digest as _;
    let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
    assert_eq!(key, canon_proto::sqs::composition_key(&sha256));
    // Too large for a message once written as base64.
    let size = objects[0].size().unwrap() as usize;
    assert!(!canon_proto::sqs::fits_in_message(size), "{objects:?}");
    // The process runs what the object holds: all 260 groups, and the VPC.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (code, out, err) = canon_with(&path, &["status", "estate", "--json"], &aws).await;
        assert_eq!(code, 0, "{out}\n{err}");
        let status: serde_json::Value = serde_json::from_str(&out).unwrap();
        if status.to_string().contains("\"Running\"") && out.matches("sg-").count() >= 260 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the estate never ran its 260 groups: {out}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Its replies (the run's plan, the status of 260 groups) are larger
    // than a message: the cluster stored them in the bucket, and the CLI
    // read them there.
    let replies = s3
        .list_objects_v2()
        .bucket("canon-overflow")
        .prefix("canon/replies/")
        .send()
        .await
        .unwrap();
    assert!(!replies.contents().is_empty());
    // A small command still goes inline.
    let (code, out, err) = canon_with(&path, &["suspend", "estate"], &aws).await;
    assert_eq!(code, 0, "{out}\n{err}");
    cluster.shutdown().await;
}
