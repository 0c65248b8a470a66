//! The organisation's validations (issue #20 §4) as a user drives them
//! with the `canon` binary: `canon compile --validations` runs a module
//! locally (exit 1 with each failure's validation, message and place); on
//! an in-process dev cluster over the simulated cloud, `canon validation
//! add|list|remove|report`, a run and an update that fail a stored
//! validation refused with the messages (exit 1, nothing changes), a
//! process that was running before reported and left running, and a user
//! without `validation.add` refused (exit 6).

use std::path::PathBuf;
use std::time::Duration;

use canon_node::dev::{DevCluster, DevOptions};

mod support;

use support::dev_cluster::{canon, client_toml};

fn example(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// What the refusals and reports say of VPC-sam-ssh against the example
/// policy.
const SSH_FAILURE: &str =
    "policy.no-admin-ports: security group dev-sam-sg admits port 22 from 0.0.0.0/0 (tcp 22)";
const ORG_SSH_FAILURE: &str =
    "org.no-admin-ports: security group dev-sam-sg admits port 22 from 0.0.0.0/0 (tcp 22) (policy.lw:11:1)";

fn compile(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_canon"))
        .arg("compile")
        .args(args)
        .output()
        .expect("canon runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn compile_with_validations_fails_with_the_message_and_the_line() {
    let policy = example("policy.lw");
    let (code, out, err) = compile(&[&example("VPC-sam-ssh.lw"), "--validations", &policy]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("canon (validation failed):"), "{err}");
    assert!(err.contains(SSH_FAILURE), "{err}");
    assert!(err.contains("policy.lw:11:1)"), "{err}");
    assert!(err.contains("[ ERROR ] 1 validation failure(s):"), "{err}");

    let (code, out, err) = compile(&[&example("VPC-sam.lw"), "--validations", &policy]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("[ OK ] 5 validation(s) of 1 module(s) passed."),
        "{out}"
    );

    let (code, out, _) = compile(&[
        &example("VPC-sam-ssh.lw"),
        "--json",
        "--validations",
        &policy,
    ]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["ok"], false);
    let f = &v["validations"][0]["failures"][0];
    assert_eq!(f["validation"], "policy.no-admin-ports");
    assert_eq!(
        (f["line"].as_u64(), f["column"].as_u64()),
        (Some(11), Some(1))
    );

    // A module that is not one fails the compile too, with its diagnostic.
    let dir = tempfile::tempdir().expect("tmp");
    let bad = dir.path().join("bad.lw");
    std::fs::write(&bad, "import Canon.Validation as V\nzones: 2\n").expect("write");
    let (code, _, err) = compile(&[
        &example("VPC-sam.lw"),
        "--validations",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("this module declares no validation"), "{err}");
}

/// A dev cluster of `nodes` nodes in `dir/dev` over the simulated cloud,
/// ticking every `tick`, and its admin's client.toml.
async fn start(dir: &std::path::Path, nodes: usize, tick: Duration) -> (DevCluster, PathBuf) {
    let cluster = DevCluster::start(DevOptions {
        nodes,
        tick,
        shards: 2,
        tls: false,
        ..DevOptions::new(dir.join("dev"))
    })
    .await
    .unwrap();
    let root = client_toml(&cluster, dir);
    (cluster, root)
}

/// The process's source hash, as `canon status ALIAS --json` shows it.
async fn source_hash(config: &std::path::Path, alias: &str) -> String {
    let (code, out, err) = canon(config, &["status", alias, "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    v["source_hash"].as_str().expect("source_hash").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_validations_refuse_runs_and_updates_and_report_the_running() {
    let tmp = tempfile::tempdir().unwrap();
    let (_cluster, root) = start(tmp.path(), 3, Duration::from_secs(60)).await;
    let (sam, ssh, policy) = (
        example("VPC-sam.lw"),
        example("VPC-sam-ssh.lw"),
        example("policy.lw"),
    );

    // Running before the policy existed: reported later, never stopped.
    let (code, _, err) = canon(&root, &["run", &ssh, "-a", "early"]).await;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = canon(&root, &["run", &sam, "-a", "dev-sam"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("dev-sam"), "{out}");

    let (code, out, err) = canon(&root, &["validation", "add", "org", &policy]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("validation module org stored: 5 validation(s)"),
        "{out}"
    );
    let (code, out, err) = canon(&root, &["validation", "list"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("org") && out.contains("no-admin-ports") && out.contains("policy.lw"),
        "{out}"
    );

    // An update that opens SSH to the Internet is refused with the
    // validation's message and place, exit 1, and the process keeps its
    // composition.
    let before = source_hash(&root, "dev-sam").await;
    let (code, _, err) = canon(&root, &["update", "dev-sam", &ssh]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(ORG_SSH_FAILURE), "{err}");
    assert_eq!(source_hash(&root, "dev-sam").await, before);
    // So is a dry run, and a new run: no process is created.
    let (code, _, err) = canon(&root, &["update", "dev-sam", &ssh, "--dry-run"]).await;
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = canon(&root, &["run", &ssh, "-a", "late"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(ORG_SSH_FAILURE), "{err}");
    let (code, _, _) = canon(&root, &["status", "late"]).await;
    assert_eq!(code, 4, "no process was created");
    // A composition that passes still runs.
    let (code, _, err) = canon(&root, &["run", &sam, "-a", "fine"]).await;
    assert_eq!(code, 0, "{err}");

    // The process that was running before is reported, and still runs.
    let (code, out, err) = canon(&root, &["validation", "report"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 of 3 live process(es) fail"), "{out}");
    assert!(
        out.contains("early:") && out.contains(ORG_SSH_FAILURE),
        "{out}"
    );
    let (code, out, _) = canon(&root, &["status", "early", "--json"]).await;
    assert_eq!(code, 0);
    let early: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(early["state"], "Running", "{out}");

    // A module that is not a validation module is refused before it is sent.
    let bad = tmp.path().join("bad.lw");
    std::fs::write(&bad, "zones: 2\n").unwrap();
    let (code, _, err) = canon(&root, &["validation", "add", "bad", bad.to_str().unwrap()]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("this module declares no validation"), "{err}");

    // Removed, the update goes through.
    let (code, _, err) = canon(&root, &["validation", "remove", "org"]).await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = canon(&root, &["validation", "remove", "org"]).await;
    assert_ne!(code, 0, "removing twice: {err}");
    assert!(err.contains("no validation module named \"org\""), "{err}");
    let (code, _, err) = canon(&root, &["update", "dev-sam", &ssh]).await;
    assert_eq!(code, 0, "{err}");
    assert_ne!(source_hash(&root, "dev-sam").await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storing_a_validation_needs_validation_add() {
    let tmp = tempfile::tempdir().unwrap();
    let (cluster, root) = start(tmp.path(), 1, Duration::from_secs(60)).await;
    // bob may run processes, nothing else.
    let key = canon_node::keys::generate();
    let key_path = tmp.path().join("bob.key");
    canon_node::keys::write_signing_key(&key_path, &key).unwrap();
    let bob = tmp.path().join("bob.toml");
    canon_client::config::ClientConfig {
        endpoints: cluster.endpoints.clone(),
        user: Some("bob".into()),
        key: Some(key_path),
        cluster_id: Some(cluster.cluster_id.clone()),
        ..Default::default()
    }
    .write(&bob)
    .unwrap();
    let policy = tmp.path().join("policy.toml");
    let public = canon_node::keys::public_key_hex(&key.verifying_key());
    std::fs::write(
        &policy,
        format!(
            "[[users]]\nname = \"bob\"\nkeys = [\"{public}\"]\n\n[[roles]]\nname = \"runner\"\n\
             rules = [{{ effect = \"allow\", actions = [\"process.*\"] }}]\n\n\
             [[bindings]]\nrole = \"runner\"\nsubjects = [\"user:bob\"]\n"
        ),
    )
    .unwrap();
    let (code, _, err) = canon(&root, &["policy", "apply", policy.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = canon(&bob, &["validation", "add", "org", &example("policy.lw")]).await;
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("validation.add"), "{err}");
    let (code, _, err) = canon(&bob, &["validation", "list"]).await;
    assert_eq!(code, 6, "{err}");
    // Nothing was stored.
    let (code, out, err) = canon(&root, &["validation", "list", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("\"org\""), "{out}");
}

/// The drift records of `alias` (`canon history ALIAS --json`).
async fn drift_of(config: &std::path::Path, alias: &str) -> Vec<serde_json::Value> {
    let (code, out, err) = canon(config, &["history", alias, "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    v["drift"].as_array().cloned().unwrap_or_default()
}

/// Waits until `alias` has a healed drift record whose observed value is
/// `needle`; returns it.
async fn healed_drift(config: &std::path::Path, alias: &str, needle: &str) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let found = drift_of(config, alias)
            .await
            .into_iter()
            .find(|d| !d["healed"].is_null() && d["observed"] == needle);
        if let Some(d) = found {
            return d;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no healed drift showing {needle}: {:?}",
            drift_of(config, alias).await
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_that_breaks_a_validation_is_labelled_with_its_name() {
    let tmp = tempfile::tempdir().unwrap();
    let (_cluster, root) = start(tmp.path(), 1, Duration::from_secs(1)).await;
    let (code, _, err) = canon(&root, &["validation", "add", "org", &example("policy.lw")]).await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = canon(
        &root,
        &["run", &example("VPC-sam.lw"), "-a", "dev-sam", "--wait"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = canon(&root, &["status", "dev-sam", "--json"]).await;
    let status: serde_json::Value = serde_json::from_str(&out).expect("json");
    let sg = status["resources"]["dev-sam-sg"]["cloud_id"]
        .as_str()
        .expect("the group's cloud id")
        .to_string();
    let rogue = |port: &'static str| {
        let (root, sg) = (root.clone(), sg.clone());
        async move {
            let args = [
                "dev",
                "rogue",
                "authorize-ingress",
                "--group",
                &sg,
                "--protocol",
                "tcp",
                "--from-port",
                port,
                "--to-port",
                port,
                "--cidr",
                "0.0.0.0/0",
            ];
            let (code, _, err) = canon(&root, &args).await;
            assert_eq!(code, 0, "{err}");
        }
    };

    // A rogue rule no validation forbids: drift, healed, unlabelled.
    rogue("8080").await;
    let d = healed_drift(&root, "dev-sam", "tcp 8080 0.0.0.0/0").await;
    assert_eq!(d["violates"], serde_json::json!([]), "{d}");

    // A rogue SSH rule from anywhere: labelled with the validation it breaks.
    rogue("22").await;
    let d = healed_drift(&root, "dev-sam", "tcp 22 0.0.0.0/0").await;
    assert_eq!(
        d["violates"],
        serde_json::json!(["org.no-admin-ports"]),
        "{d}"
    );
    let (code, out, _) = canon(&root, &["history", "dev-sam"]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("Violates") && out.contains("org.no-admin-ports"),
        "{out}"
    );
}
