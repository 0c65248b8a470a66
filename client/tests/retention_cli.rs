//! Retention as a user sees it: past canond's limits a process's old
//! finished jobs and healed drift events leave `canon history` as rows and
//! show up as totals instead (text and `--json`); the job in progress and
//! the newest jobs stay; a killed process stays listed by `canon status
//! --all` until its keep runs out, and is then gone. An in-process dev
//! cluster with tight limits and a fast sweep; the `canon` binary.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use canon_cloud::Scope;
use canon_node::dev::{DevCluster, DevOptions};
use canon_node::retention::{HistoryRetention, Retention};
use serde_json::Value;

mod support;
use support::dev_cluster::canon;

const KEEP_JOBS: u64 = 2;
const KEEP_KILLED: Duration = Duration::from_secs(3);

/// The history limits of the history test, swept every 300 ms.
fn history_limits() -> Retention {
    Retention {
        history: HistoryRetention {
            keep_jobs: Some(KEEP_JOBS),
            // Healed drift folds at the next sweep.
            keep_drift_for: Some(Duration::ZERO),
            keep_killed_for: Some(KEEP_KILLED),
        },
        sweep_every: Duration::from_millis(300),
        ..Default::default()
    }
}

/// A one-node dev cluster in `dir` keeping what `retention` says, and
/// the admin's client.toml.
async fn dev(dir: &Path, retention: Retention) -> (DevCluster, PathBuf) {
    let cluster = DevCluster::start(DevOptions {
        nodes: 1,
        tick: Duration::from_secs(1),
        shards: 1,
        signed_reads: false,
        tls: false,
        retention,
        ..DevOptions::new(dir)
    })
    .await
    .unwrap();
    let config = support::dev_cluster::client_toml(&cluster, dir);
    (cluster, config)
}

async fn json(config: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, out, err) = canon(config, &all).await;
    assert_eq!(code, 0, "canon {args:?}: {out}{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// `canon ARGS --json` every 200 ms until `holds` says yes of its answer
/// (at most a minute); that answer.
async fn json_once(
    config: &Path,
    args: &[&str],
    what: &str,
    holds: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let v = json(config, args).await;
        if holds(&v) {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "waited for {what}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_history_folds_into_totals_and_killed_processes_leave() {
    let tmp = tempfile::tempdir().unwrap();
    let (cluster, config) = dev(tmp.path(), history_limits()).await;
    let vpc = support::story::example("bench/one-vpc.lw");
    let vpc = vpc.to_str().unwrap();

    // Four jobs: a RUN and three UPDATEs.
    let (code, out, err) = canon(&config, &["run", vpc, "-a", "kept", "--wait"]).await;
    assert_eq!(code, 0, "{out}{err}");
    for _ in 0..3 {
        let (code, out, err) = canon(&config, &["update", "kept", vpc, "--wait"]).await;
        assert_eq!(code, 0, "{out}{err}");
    }
    // Drift: a tag changed out of band, then healed.
    let status = json(&config, &["status", "kept"]).await;
    let vpc_id = status["resources"]["bench-vpc"]["cloud_id"]
        .as_str()
        .unwrap_or_else(|| panic!("the VPC is bound: {status}"))
        .to_string();
    let sim = cluster.sim.clone().expect("a simulated cloud");
    let scope = Scope::new(canon_node::defaults::DEFAULT_ACCOUNT, "us-west-2");
    sim.rogue_set_tag(&scope, &vpc_id, "Name", "rogue").unwrap();

    // Every finished job past the newest two, and the healed drift, fold.
    let history = json_once(&config, &["history", "kept"], "history folded", |h| {
        h["folded"]["drift"].as_u64() >= Some(1) && h["folded"]["jobs"].as_u64() >= Some(2)
    })
    .await;
    let finished = history["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["status"] != "IN PROGRESS")
        .count() as u64;
    assert!(finished <= KEEP_JOBS + 1, "{history}");
    assert_eq!(history["folded"]["jobs_failed"], 0, "{history}");
    assert!(
        history["drift"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["healed"].is_null()),
        "no healed drift row stays: {history}"
    );
    let (code, out, err) = canon(&config, &["history", "kept"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Older history folded by retention"), "{out}");
    assert!(out.contains("healed drift events"), "{out}");

    // Killed: listed by `status --all` for its keep, then gone.
    let (code, out, err) = canon(&config, &["kill", "kept", "-y", "--wait"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let killed_at = Instant::now();
    let listed = |s: &Value| {
        s.as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["alias"] == "kept"))
    };
    let all = json(&config, &["status", "--all"]).await;
    assert!(listed(&all) || killed_at.elapsed() >= KEEP_KILLED, "{all}");
    json_once(
        &config,
        &["status", "--all"],
        "the killed process removed",
        |s| !listed(s),
    )
    .await;
    assert!(killed_at.elapsed() >= KEEP_KILLED - Duration::from_millis(500));
    drop(cluster);
}

/// Records each group's audit chain keeps in the audit retention test.
const KEEP_AUDIT: u64 = 6;

/// The audit records `canon audit ARGS --json` shows.
async fn audit_records(config: &Path, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["audit"];
    all.extend_from_slice(args);
    match json(config, &all).await {
        Value::Array(v) => v,
        other => panic!("not a JSON array: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_chain_is_trimmed_to_its_keep_and_what_remains_still_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let retention = Retention {
        audit: canon_node::retention::AuditRetention {
            keep_records: Some(KEEP_AUDIT),
            keep_for: None,
        },
        sweep_every: Duration::from_millis(300),
        ..Default::default()
    };
    let (cluster, config) = dev(tmp.path(), retention).await;
    let vpc = support::story::example("bench/one-vpc.lw");
    let (code, out, err) = canon(
        &config,
        &["run", vpc.to_str().unwrap(), "-a", "audited", "--wait"],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let first = audit_records(&config, &["--alias", "audited"]).await;
    assert!(
        first.iter().any(|r| r["command"] == "ProcessCreated"),
        "{first:#?}"
    );
    // Far more records than the keep: each suspend and resume is one.
    for verb in ["suspend", "resume"]
        .iter()
        .cycle()
        .take(2 * KEEP_AUDIT as usize)
    {
        let (code, out, err) = canon(&config, &[verb, "audited"]).await;
        assert_eq!(code, 0, "{out}{err}");
    }
    // The sweep trims the chain: the oldest records (the run's) go, a trim
    // record says so, and once a sweep has run after the last command no
    // chain holds more than its keep, its slack (a tenth, at least one)
    // and the trim record itself. (A sweep that ran while the commands
    // were still coming may already have dropped the run's records.)
    let start = Instant::now();
    loop {
        let all = audit_records(&config, &[]).await;
        let created = all.iter().any(|r| r["command"] == "ProcessCreated");
        let trim = all.iter().any(|r| r["action"] == "audit.trim");
        let mut per_group = std::collections::BTreeMap::<String, u64>::new();
        for r in &all {
            *per_group.entry(r["group"].to_string()).or_default() += 1;
        }
        let within = per_group.values().all(|n| *n <= KEEP_AUDIT + 2 + 1);
        if !created && trim && within {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not trimmed to its keep: {per_group:?} {all:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // What remains verifies from the trimmed record's anchor.
    let (code, out, err) = canon(&config, &["audit", "verify"]).await;
    assert_eq!(code, 0, "{out}{err}");
    cluster.shutdown().await;
}
