//! The audit log as an operator reads it with the `canon` binary against
//! an in-process dev cluster: commands run, then `canon audit` shows them
//! (and the conductor's own cloud calls), filters by alias and user,
//! `canon audit verify` passes, `canon audit export` writes JSON lines that
//! `verify --file` accepts, and a record edited in that file makes
//! `verify --file` fail naming the record.

use std::path::Path;
use std::time::Duration;

use canon_node::dev::{DevCluster, DevOptions};

mod support;

use support::dev_cluster::{canon, client_toml};

fn records(out: &str) -> Vec<serde_json::Value> {
    match serde_json::from_str(out) {
        Ok(serde_json::Value::Array(v)) => v,
        other => panic!("not a JSON array: {other:?} in {out}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_lists_verifies_exports_and_catches_an_edited_record() {
    let tmp = tempfile::tempdir().unwrap();
    let cluster = DevCluster::start(DevOptions {
        tick: Duration::from_secs(60),
        shards: 2,
        signed_reads: false,
        tls: false,
        ..DevOptions::new(tmp.path().join("dev"))
    })
    .await
    .unwrap();
    let root = client_toml(&cluster, tmp.path());
    let lw = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/bench/one-vpc.lw");
    let lw = lw.to_str().unwrap();
    let (code, _, err) = canon(&root, &["run", lw, "-a", "web-1"]).await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = canon(&root, &["suspend", "web-1"]).await;
    assert_eq!(code, 0, "{err}");

    // The commands are there, and (once the RUN job has made them) the
    // conductor's cloud calls.
    let mut shown = Vec::new();
    for _ in 0..50 {
        let (code, out, err) = canon(&root, &["audit", "--alias", "web-1", "--json"]).await;
        assert_eq!(code, 0, "{err}");
        shown = records(&out);
        if shown.iter().any(|r| r["action"] == "conductor.cloud-call") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let has = |action: &str, command: &str| {
        shown
            .iter()
            .any(|r| r["action"] == action && r["command"] == command)
    };
    assert!(has("process.run", "ProcessCreated"), "{shown:#?}");
    assert!(has("process.run", "JobStarted"), "{shown:#?}");
    assert!(has("process.suspend", "ProcessStateChanged"), "{shown:#?}");
    assert!(has("conductor.cloud-call", "CloudCalled"), "{shown:#?}");
    // Each cloud call names the request ids the cloud answered with (the
    // simulated cloud makes them up, deterministically).
    assert!(
        shown
            .iter()
            .filter(|r| r["command"] == "CloudCalled")
            .all(|r| r["aws_request_ids"]
                .as_array()
                .is_some_and(|a| !a.is_empty())),
        "{shown:#?}"
    );
    assert!(shown.iter().all(|r| r["target"]["alias"] == "web-1"));
    let run = shown
        .iter()
        .find(|r| r["command"] == "ProcessCreated")
        .unwrap();
    assert_eq!(run["principal"]["root"], true);
    assert_eq!(run["decision"]["effect"], "allow");
    assert_eq!(run["decision"]["rule"], "root key");
    assert_eq!(run["request_hash"].as_str().map(str::len), Some(64));
    // The table, and the filters.
    let (code, out, _) = canon(&root, &["audit"]).await;
    assert_eq!(code, 0);
    for part in ["Principal", "admin (root)", "process.run", "web-1", "allow"] {
        assert!(out.contains(part), "{part} in {out}");
    }
    let (code, out, _) = canon(&root, &["audit", "--user", "nobody", "--json"]).await;
    assert_eq!(code, 0);
    assert!(records(&out).is_empty(), "{out}");
    let (code, out, _) = canon(&root, &["audit", "--since", "-1d", "--json"]).await;
    assert_eq!(code, 0);
    assert!(records(&out).len() >= shown.len(), "{out}");

    // Every chain checks out, in the cluster and exported.
    let (code, out, err) = canon(&root, &["audit", "verify"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("every hash checks out"), "{out}");
    // Every node's own replica checks out, and all three hold the same
    // chains as far as all of them have applied.
    let (code, out, err) = canon(&root, &["audit", "verify", "--replicas", "--json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["agree"], true, "{v}");
    let nodes: std::collections::BTreeSet<u64> = v["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["node"].as_u64().unwrap())
        .collect();
    assert_eq!(nodes.len(), 3, "{v}");
    assert_eq!(v["groups"].as_array().map(Vec::len), Some(3), "{v}");
    assert!(
        v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["seq"].as_u64() > Some(0)),
        "{v}"
    );
    let export = tmp.path().join("audit.jsonl");
    let file = export.to_str().unwrap();
    let (code, _, err) = canon(&root, &["audit", "export", "--out", file]).await;
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&export).unwrap();
    assert!(text.lines().count() >= shown.len(), "{text}");
    let (code, out, err) = canon(&root, &["audit", "verify", "--file", file]).await;
    assert_eq!(code, 0, "{out}{err}");

    // Someone edits the record of the run: verification names it.
    let mut edited_at = None;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
            if v["command"] == "ProcessCreated" && edited_at.is_none() {
                v["principal"]["user"] = "alice".into();
                edited_at = Some((v["group"].as_u64().unwrap(), v["seq"].as_u64().unwrap()));
            }
            v.to_string()
        })
        .collect();
    let (group, seq) = edited_at.expect("the run's record was exported");
    std::fs::write(&export, lines.join("\n") + "\n").unwrap();
    let (code, _, err) = canon(&root, &["audit", "verify", "--file", file]).await;
    assert_eq!(code, 1, "{err}");
    let named = format!("group {group}, record {seq}:");
    assert!(err.contains(&named), "{named} in {err}");
    assert!(err.contains("was changed"), "{err}");
}
