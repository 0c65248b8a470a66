//! `canon run/update/kill --wait` against an in-process dev cluster, as a
//! script sees it (stderr is not a terminal, so plain lines): the wait
//! follows the event stream to the job's end and exits 0; a failed job
//! exits 1 with the cloud's reason; `--timeout` gives up on a job the
//! throttled cloud holds back, says what is still in progress and exits 7
//! while the job goes on; `--json` output is the command's own, unchanged;
//! bad `--timeout` use is a usage error (2).

use std::path::{Path, PathBuf};
use std::time::Duration;

use canon_cloud::sim::Faults;
use canon_node::dev::{DevCluster, DevOptions};

mod support;
use support::dev_cluster::canon;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

async fn dev(dir: &Path) -> (DevCluster, PathBuf) {
    let cluster = DevCluster::start(DevOptions {
        nodes: 1,
        tick: Duration::from_secs(1),
        shards: 1,
        signed_reads: false,
        tls: false,
        ..DevOptions::new(dir)
    })
    .await
    .unwrap();
    let config = support::dev_cluster::client_toml(&cluster, dir);
    (cluster, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_follows_jobs_to_their_end_and_gives_up_at_the_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let (cluster, config) = dev(tmp.path()).await;
    let sim = cluster.sim.clone().expect("a simulated cloud");
    let vpc = example("bench/one-vpc.lw");
    let vpc = vpc.to_str().unwrap();

    // A job that ends: plain lines from its start to its end, then the
    // usual answer.
    let (code, out, err) = canon(&config, &["run", vpc, "-a", "quick", "--wait"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("[ wait ] RUN job"), "{err}");
    assert!(err.contains("of quick in progress"), "{err}");
    assert!(err.contains("of quick SUCCEEDED"), "{err}");
    assert!(out.contains("Process created and running"), "{out}");

    // The same with --json: stdout is the command's JSON, stderr quiet.
    let (code, out, err) = canon(
        &config,
        &[
            "update",
            "quick",
            vpc,
            "--wait",
            "--timeout",
            "2m",
            "--json",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let reply: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert!(reply["job"].as_u64().unwrap() > 0, "{reply}");
    assert_eq!(reply["message"], "process updated", "{reply}");
    assert_eq!(reply["process"]["alias"], "quick", "{reply}");
    assert!(!err.contains("[ wait ]"), "{err}");

    // A job that fails: exit 1 with the cloud's reason.
    sim.fail_next("CreateVpc", "UnauthorizedOperation");
    let (code, out, err) = canon(&config, &["run", vpc, "-a", "refused", "--wait"]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("of refused FAILED"), "{err}");
    assert!(err.contains("RUN job failed"), "{err}");
    assert!(err.contains("UnauthorizedOperation"), "{err}");

    // A job the cloud holds back: --timeout gives up, says what is still
    // in progress, exits 7; the job goes on and ends once the cloud lets it.
    sim.set_faults(Faults {
        throttle_rate: 1.0,
        ..Faults::none()
    });
    let started = std::time::Instant::now();
    let (code, out, err) = canon(
        &config,
        &["run", vpc, "-a", "held", "--wait", "--timeout", "2s"],
    )
    .await;
    assert_eq!(code, 7, "{out}{err}");
    assert!(started.elapsed() < Duration::from_secs(20), "gave up late");
    assert!(err.contains("gave up waiting after 2s"), "{err}");
    assert!(err.contains("RUN job"), "{err}");
    assert!(err.contains("of held is still in progress"), "{err}");
    assert!(err.contains("it goes on"), "{err}");
    sim.set_faults(Faults::none());
    let (code, out, err) = canon(&config, &["history", "held", "--json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let history: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(history["jobs"][0]["kind"], "RUN", "{history}");

    // Kill --wait: the answer comes once the process is gone.
    let (code, out, err) = canon(&config, &["kill", "quick", "-y", "--wait"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("[ wait ] KILL job"), "{err}");
    assert!(out.contains("The conductor killed the process"), "{out}");
    let (code, out, _) = canon(&config, &["status", "--json"]).await;
    assert_eq!(code, 0);
    assert!(!out.contains("\"quick\""), "{out}");

    // --timeout needs --wait and a duration.
    let (code, _, err) = canon(&config, &["run", vpc, "-a", "x", "--timeout", "5s"]).await;
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = canon(
        &config,
        &["run", vpc, "-a", "x", "--wait", "--timeout", "soon"],
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--timeout"), "{err}");
    let (code, out, _) = canon(&config, &["--help"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("7  --wait gave up at --timeout"), "{out}");

    cluster.shutdown().await;
}
