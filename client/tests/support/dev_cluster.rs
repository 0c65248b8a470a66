//! A dev cluster started inside the test's process, reached by the `canon`
//! binary as a user would: the `client.toml` that `canon dev` writes for
//! it, and one `canon` run against a `client.toml`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use canon_client::{pb, Client, Signer};

use canon_node::cloud_events::EventsQueue;
use canon_node::dev::{DevCloud, DevCluster, DevOptions};

/// The `[tls]` table of `cluster`'s dev user (its client certificate),
/// if the cluster runs mutual TLS.
pub fn tls_paths(cluster: &DevCluster) -> Option<canon_client::config::TlsPaths> {
    cluster
        .tls
        .as_ref()
        .map(|t| canon_client::config::TlsPaths {
            ca: Some(t.peer_ca.clone()),
            cert: Some(t.client_cert.clone()),
            key: Some(t.client_key.clone()),
            client_ca: None,
        })
}

/// Writes the `client.toml` for `cluster`'s admin into `dir`, as `canon
/// dev` does; returns its path.
pub fn client_toml(cluster: &DevCluster, dir: &Path) -> PathBuf {
    let path = dir.join("client.toml");
    canon_client::config::ClientConfig {
        endpoints: cluster.endpoints.clone(),
        user: Some(cluster.user.clone()),
        key: Some(cluster.admin_key.clone()),
        tls: tls_paths(cluster),
        cluster_id: Some(cluster.cluster_id.clone()),
        ..Default::default()
    }
    .write(&path)
    .expect("client.toml written");
    path
}

/// `canon ARGS` with the cluster and key of `config` (no endpoints from
/// the environment): its exit code, stdout and stderr.
pub async fn canon(config: &Path, args: &[&str]) -> (i32, String, String) {
    canon_with(config, args, &[]).await
}

/// [`canon`] with these environment variables set too.
pub async fn canon_with(
    config: &Path,
    args: &[&str],
    vars: &[(&str, &str)],
) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_canon"))
        .args(args)
        .env("CANON_CONFIG", config)
        .env_remove("CANON_ENDPOINTS")
        .envs(vars.iter().copied())
        .output()
        .await
        .expect("canon runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `canon ARGS --json` with the cluster and key of `config`, which must
/// succeed: its output as JSON.
pub async fn canon_json(config: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, out, err) = canon(config, &all).await;
    assert_eq!(code, 0, "canon {args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("canon {args:?}: {e}: {out}"))
}

/// Polls the async `check` every 300 ms until it holds; fails the test
/// after `within`.
pub async fn wait_until_async<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while !check().await {
        assert!(started.elapsed() < within, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A one-node dev cluster in `dir/dev` over the simulated cloud, with a
/// 1 s tick and signed reads (its web console on), and the admin's
/// `client.toml` in `dir`; the console's address.
pub async fn signed_console_cluster(dir: &Path) -> (DevCluster, PathBuf, String) {
    let cluster = DevCluster::start(DevOptions {
        nodes: 1,
        tick: Duration::from_secs(1),
        shards: 1,
        tls: false,
        ..DevOptions::new(dir.join("dev"))
    })
    .await
    .expect("the dev cluster starts");
    let config = client_toml(&cluster, dir);
    let console = cluster
        .console
        .clone()
        .expect("canon dev serves the console");
    (cluster, config, console)
}

/// The `/metrics` page of `cluster`'s node 1 (its console's admin port).
pub fn metrics_page(cluster: &DevCluster) -> String {
    use std::io::{Read, Write};
    let console = cluster.console.as_deref().expect("node 1 serves a console");
    let authority = console.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(authority).expect("the admin port answers");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {authority}\r\n\r\n").unwrap();
    let mut page = String::new();
    s.read_to_string(&mut page).unwrap();
    page
}

/// Points this process's AWS SDK (and the `canon` it runs) at moto's
/// `endpoint`, with moto's test credentials; returns the endpoint.
pub fn on_moto(endpoint: &str) -> &str {
    for (k, v) in [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-west-2"),
    ] {
        std::env::set_var(k, v);
    }
    endpoint
}

/// A one-node dev cluster on the AWS API the environment names (`canon
/// dev --cloud aws`; moto after [`on_moto`]) ticking every `tick`,
/// reading `events` if given.
pub async fn dev_on_aws(dir: &Path, tick: Duration, events: Option<EventsQueue>) -> DevCluster {
    DevCluster::start(DevOptions {
        nodes: 1,
        shards: 1,
        tls: false,
        tick,
        cloud: DevCloud::Aws,
        events,
        ..DevOptions::new(dir.join("dev"))
    })
    .await
    .expect("the dev cluster starts")
}

/// The admin's client.toml for `cluster` with its SQS queues (`intake`,
/// `replies`) besides its gRPC endpoints, written into `dir`; commands
/// travel over `transport` (`None`: gRPC unless `--via sqs`).
pub fn sqs_client_toml(
    cluster: &DevCluster,
    (intake, replies): (&str, &str),
    dir: &Path,
    transport: Option<&str>,
) -> canon_client::config::ClientConfig {
    let config = canon_client::config::ClientConfig {
        endpoints: cluster.endpoints.clone(),
        tls: tls_paths(cluster),
        user: Some(cluster.user.clone()),
        key: Some(cluster.admin_key.clone()),
        cluster_id: Some(cluster.cluster_id.clone()),
        transport: transport.map(String::from),
        intake_queue: Some(intake.to_string()),
        reply_queue: Some(replies.to_string()),
        reply_key: cluster.reply_key.clone(),
        reply_timeout: Some("60s".into()),
        overflow_bucket: None,
        console: None,
    };
    config
        .write(&dir.join("client.toml"))
        .expect("client.toml written");
    config
}

/// A new FIFO queue named `name`: its URL.
pub async fn fifo_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> String {
    let out = sqs
        .create_queue()
        .queue_name(name)
        .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .expect("a queue");
    out.queue_url().expect("its URL").to_string()
}

/// The composition at `path`, compiled as `canon run` sends it.
pub fn compiled(path: &Path) -> pb::CompiledComposition {
    let out = canon_lang::compile_file(path, canon_lang::Options::default()).unwrap();
    let compiled = out.compiled.unwrap();
    pb::CompiledComposition {
        bytes: compiled.encode(),
        source_hash: compiled.source_hash.clone(),
    }
}

/// An SDK client of `cluster` signing as its admin.
pub fn admin_client(cluster: &DevCluster) -> Arc<Client> {
    let signer = Signer::from_file("admin", &cluster.admin_key).unwrap();
    Arc::new(
        Client::connect(&cluster.endpoints)
            .unwrap()
            .with_signer(signer),
    )
}
