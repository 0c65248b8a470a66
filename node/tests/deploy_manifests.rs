//! `deploy/` agrees with canond. The deployment files are written by hand,
//! beside the code they configure; these tests catch the drift between
//! them: a setting canond does not have (or no longer has), a value it
//! refuses, a port that differs between two files, a disruption budget
//! that lets a Raft group lose its quorum, a stop timeout shorter than the
//! drain, and an IAM policy that allows other EC2 calls than those the AWS
//! adapter makes. (`scripts/validate-deploy` checks the same files against
//! the tools' own schemas and linters.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use canon_node::config::{Resolved, Settings};
use clap::{CommandFactory, Parser};
use serde::Deserialize;
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml_docs(rel: &str) -> Vec<Yaml> {
    serde_yaml::Deserializer::from_str(&read(rel))
        .map(|d| Yaml::deserialize(d).unwrap_or_else(|e| panic!("{rel}: {e}")))
        .collect()
}

fn yaml_doc(rel: &str) -> Yaml {
    yaml_docs(rel).remove(0)
}

fn json(rel: &str) -> Json {
    serde_json::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every file under deploy/ (text only), relative to the repository.
fn deploy_files() -> Vec<String> {
    files_under("deploy")
}

/// Every file under directory `rel` of the repository, by its path from
/// the repository's root.
fn files_under(rel: &str) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repo().join(rel), &mut files);
    files
        .iter()
        .map(|p| {
            p.strip_prefix(repo())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// What canond accepts: its variables (with the flag each stands for),
/// its flags and its canond.toml keys, read off its argument parser.
struct Canond {
    flag_of_var: BTreeMap<String, String>,
    flags: BTreeSet<String>,
    toml_keys: BTreeSet<String>,
}

fn canond() -> Canond {
    let mut c = Canond {
        flag_of_var: BTreeMap::new(),
        flags: BTreeSet::new(),
        toml_keys: BTreeSet::new(),
    };
    for arg in Settings::command().get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        c.flags.insert(format!("--{long}"));
        if let Some(var) = arg.get_env() {
            c.flag_of_var
                .insert(var.to_string_lossy().into_owned(), format!("--{long}"));
        }
        // `config` names the file itself and is no key in it.
        if arg.get_id() != "config" {
            c.toml_keys.insert(arg.get_id().to_string());
        }
    }
    c
}

/// The variables the `canon` CLI reads: its flags' `env = "..."` and what
/// it reads itself (`var("...")`, `var_os("...")`), anywhere in its sources.
fn cli_vars() -> BTreeSet<String> {
    let mut vars = BTreeSet::new();
    for file in files_under("client/src") {
        let text = read(&file);
        // A flag's variable, and one the CLI reads itself (the drills'
        // CANON_LIBFAKETIME).
        for opening in ["env = \"", "var(\"", "var_os(\""] {
            vars.extend(
                text.split(opening)
                    .skip(1)
                    .filter_map(|rest| rest.split('"').next())
                    .map(str::to_string),
            );
        }
    }
    vars
}

/// Words of `text` that start with `prefix` and go on in `[A-Z0-9_]`.
fn words_with_prefix(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        // A bare prefix is a pattern in prose ("every CANON_* variable").
        if end > prefix.len() {
            found.insert(tail[..end].to_string());
        }
        rest = &tail[end.max(prefix.len())..];
    }
    found
}

/// KEY=VALUE lines of a systemd environment file (comments skipped).
fn env_file(rel: &str) -> Vec<(String, String)> {
    read(rel)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("{rel}: {l:?} is no KEY=VALUE"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// canond's settings from `vars` (as flags, so that the test's own
/// environment stays untouched) plus `extra` arguments.
fn resolve(vars: &[(String, String)], extra: &[&str]) -> Result<Resolved, String> {
    let c = canond();
    let mut args = vec!["canond".to_string()];
    for (k, v) in vars {
        if let Some(flag) = c.flag_of_var.get(k) {
            args.push(flag.clone());
            args.push(v.clone());
        }
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let settings = Settings::try_parse_from(&args).map_err(|e| e.to_string())?;
    settings.resolve().map_err(|e| e.to_string())
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("{addr:?} has no port"))
}

fn get<'a>(v: &'a Yaml, path: &[&str]) -> &'a Yaml {
    path.iter().fold(v, |v, k| &v[*k])
}

/// The kustomize base's configMapGenerator literals of `name`.
fn literals(kustomization: &str, name: &str) -> Vec<(String, String)> {
    let k = yaml_doc(kustomization);
    let Some(generators) = k["configMapGenerator"].as_sequence() else {
        return Vec::new();
    };
    generators
        .iter()
        .filter(|g| g["name"].as_str() == Some(name))
        .flat_map(|g| g["literals"].as_sequence().cloned().unwrap_or_default())
        .map(|l| {
            let l = l.as_str().unwrap_or_default();
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn value_of(pairs: &[(String, String)], key: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no {key}"))
}

const BASE: &str = "deploy/kubernetes/base/kustomization.yaml";
const STATEFULSET: &str = "deploy/kubernetes/base/statefulset.yaml";
const ENV_EXAMPLE: &str = "deploy/systemd/canond.env.example";
const UNIT: &str = "deploy/systemd/canond.service";
const NODE_CONFIG: &str = "deploy/kubernetes/base/node-config.sh";

fn canond_container(statefulset: &Yaml) -> &Yaml {
    get(statefulset, &["spec", "template", "spec", "containers"])
        .as_sequence()
        .and_then(|cs| cs.iter().find(|c| c["name"].as_str() == Some("canond")))
        .expect("a container named canond")
}

#[test]
fn every_canon_variable_in_deploy_is_one_canond_or_the_cli_reads() {
    let c = canond();
    let cli = cli_vars();
    assert!(cli.contains("CANON_CONFIG"), "the CLI's variables: {cli:?}");
    for file in deploy_files() {
        for var in words_with_prefix(&read(&file), "CANON_") {
            assert!(
                c.flag_of_var.contains_key(&var) || cli.contains(&var),
                "{file} names {var}, which neither canond nor canon reads"
            );
        }
    }
}

#[test]
fn the_keys_and_flags_kubernetes_gives_canond_exist() {
    let c = canond();
    let script = read(NODE_CONFIG);
    let keys: Vec<&str> = script
        .split("printf '")
        .skip(1)
        .filter_map(|rest| rest.split(" = ").next())
        .collect();
    assert!(keys.len() >= 5, "node-config.sh writes {keys:?}");
    for key in keys {
        assert!(
            c.toml_keys.contains(key),
            "node-config.sh writes {key}, no key of canond.toml"
        );
    }
    let sts = yaml_doc(STATEFULSET);
    for arg in canond_container(&sts)["args"].as_sequence().unwrap() {
        let arg = arg.as_str().unwrap();
        if arg.starts_with("--") {
            assert!(
                c.flags.contains(arg),
                "the StatefulSet passes {arg}, no flag of canond"
            );
        }
    }
}

#[test]
fn canond_accepts_the_systemd_environment_file() {
    let vars = env_file(ENV_EXAMPLE);
    for (k, v) in &vars {
        assert!(
            !v.is_empty() && !v.contains([' ', '"', '\'']),
            "{k}={v:?}: systemd and up.sh want a bare value (and an empty one counts as set)"
        );
    }
    let r = resolve(&vars, &[]).expect("canond refuses canond.env.example");
    assert!(!r.bootstrap && r.join.is_none());
    assert_eq!(r.peers.len(), 3);
    let unit = read(UNIT);
    assert!(unit.contains("\nStateDirectory=canon\n"));
    assert!(unit.contains("\nEnvironmentFile=/etc/canon/canond.env\n"));
    assert!(
        r.data_dir.starts_with("/var/lib/canon/"),
        "the data dir {} is outside StateDirectory=canon",
        r.data_dir.display()
    );
}

/// Runs node-config.sh as the init container would, for pod `ordinal` of
/// a set of `initial` members, and resolves what canond makes of it with
/// the base's shared settings.
fn kubernetes_node(ordinal: u32, initial: u32, state: &str) -> Resolved {
    let tls_dir = value_of(&literals(BASE, "canon-topology"), "TLS_DIR");
    kubernetes_node_with(ordinal, initial, state, &tls_dir)
}

/// [`kubernetes_node`] with the topology's `TLS_DIR` set to `tls_dir`.
fn kubernetes_node_with(ordinal: u32, initial: u32, state: &str, tls_dir: &str) -> Resolved {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("canond.toml");
    let shared = literals(BASE, "canon-settings");
    let topology = literals(BASE, "canon-topology");
    let out = std::process::Command::new("sh")
        .arg(repo().join(NODE_CONFIG))
        .env("NODE_TOML", &toml)
        .env("POD_NAME", format!("canon-{ordinal}"))
        .env("POD_NAMESPACE", "ops")
        .env("CANON_LISTEN", value_of(&shared, "CANON_LISTEN"))
        .env("PEER_SERVICE", value_of(&topology, "PEER_SERVICE"))
        .env("CLUSTER_DOMAIN", value_of(&topology, "CLUSTER_DOMAIN"))
        .env("INITIAL_MEMBERS", initial.to_string())
        .env("CLUSTER_STATE", state)
        .env("TLS_DIR", tls_dir)
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    resolve(&shared, &["--config", toml.to_str().unwrap()])
        .unwrap_or_else(|e| panic!("canond refuses pod {ordinal}'s settings: {e}"))
}

#[test]
fn each_pod_gets_its_own_id_and_address_and_one_bootstraps() {
    let port = port_of(&value_of(&literals(BASE, "canon-settings"), "CANON_LISTEN"));
    let host = |o: u32| format!("canon-{o}.canon-peer.ops.svc.cluster.local:{port}");
    for initial in [3, 5] {
        for ordinal in 0..initial + 1 {
            let r = kubernetes_node(ordinal, initial, "new");
            assert_eq!(r.id, u64::from(ordinal) + 1);
            assert_eq!(r.advertise, host(ordinal));
            if ordinal < initial {
                assert_eq!(r.bootstrap, ordinal == 0, "pod {ordinal}");
                assert_eq!(r.join, None);
                assert_eq!(r.peers.len(), initial as usize);
                assert_eq!(r.peers.get(&1), Some(&host(0)));
            } else {
                assert!(!r.bootstrap);
                assert_eq!(r.join, Some(host(0)), "a pod beyond the initial set joins");
            }
            let existing = kubernetes_node(ordinal, initial, "existing");
            assert!(
                !existing.bootstrap,
                "CLUSTER_STATE=existing never bootstraps"
            );
            let through = if ordinal == 0 { 1 } else { 0 };
            assert_eq!(existing.join, Some(host(through)));
        }
    }
}

/// The base is plaintext; the overlay three-tls gives each pod mutual TLS
/// with its own certificate, under the names make-tls-secret.sh writes.
#[test]
fn with_the_tls_overlay_each_pod_serves_its_own_certificate() {
    assert!(kubernetes_node(0, 3, "new").tls.is_none());
    let overlay = "deploy/kubernetes/overlays/three-tls/kustomization.yaml";
    let dir = value_of(&literals(overlay, "canon-topology"), "TLS_DIR");
    let script = read("deploy/kubernetes/make-tls-secret.sh");
    for file in ["peer-ca.crt", "client-ca.crt", "node-ID.crt", "node-ID.key"] {
        assert!(script.contains(file), "make-tls-secret.sh names {file}");
    }
    for ordinal in 0..4 {
        let r = kubernetes_node_with(ordinal, 3, "new", &dir);
        let tls = r.tls.expect("mutual TLS");
        let id = ordinal + 1;
        let at = |f: &str| Path::new(&dir).join(f);
        assert_eq!(tls.cert, at(&format!("node-{id}.crt")));
        assert_eq!(tls.key, at(&format!("node-{id}.key")));
        assert_eq!(tls.peer_ca, at("peer-ca.crt"));
        assert_eq!(tls.client_ca, at("client-ca.crt"));
    }
    let patch = yaml_doc("deploy/kubernetes/overlays/three-tls/tls.yaml");
    let container = canond_container(&patch);
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        let p = get(container, &[probe]);
        assert!(
            p["grpc"].is_null(),
            "{probe}: the kubelet's gRPC probe is plaintext"
        );
        assert_eq!(get(p, &["httpGet", "path"]).as_str(), Some("/healthz"));
    }
}

/// Every place that names canond's gRPC port and its metrics port.
#[test]
fn the_ports_agree_everywhere() {
    let default = resolve(&[], &["--id", "1", "--admin-key", "x"]).unwrap();
    let grpc = port_of(&default.listen);
    let env = env_file(ENV_EXAMPLE);
    let metrics = port_of(&value_of(&env, "CANON_METRICS_LISTEN"));
    assert_eq!(port_of(&value_of(&env, "CANON_LISTEN")), grpc);
    let shared = literals(BASE, "canon-settings");
    assert_eq!(port_of(&value_of(&shared, "CANON_LISTEN")), grpc);
    assert_eq!(port_of(&value_of(&shared, "CANON_METRICS_LISTEN")), metrics);
    check_statefulset_ports(grpc, metrics);
    for service in ["service-peer.yaml", "service-client.yaml"] {
        let s = yaml_doc(&format!("deploy/kubernetes/base/{service}"));
        let p = &s["spec"]["ports"][0];
        assert_eq!(p["port"].as_u64(), Some(u64::from(grpc)), "{service}");
        assert_eq!(p["targetPort"].as_str(), Some("grpc"), "{service}");
    }
    check_network_policy_ports(grpc, metrics);
    let docker = read("deploy/container/Dockerfile");
    assert!(docker.contains(&format!("EXPOSE {grpc} {metrics}\n")));
    assert!(docker.contains(&format!("CANON_LISTEN=0.0.0.0:{grpc}")));
    assert!(read("deploy/netns/lib.sh").contains(&format!("\nPORT={grpc}\n")));
}

fn check_statefulset_ports(grpc: u16, metrics: u16) {
    let sts = yaml_doc(STATEFULSET);
    let c = canond_container(&sts);
    let named = |name: &str| {
        c["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .and_then(|p| p["containerPort"].as_u64())
    };
    assert_eq!(named("grpc"), Some(u64::from(grpc)));
    assert_eq!(named("metrics"), Some(u64::from(metrics)));
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        assert_eq!(
            c[probe]["grpc"]["port"].as_u64(),
            Some(u64::from(grpc)),
            "{probe}"
        );
    }
    // Liveness asks for the server as a whole: it answers with or without
    // a quorum.
    assert!(c["livenessProbe"]["grpc"]["service"].is_null());
}

fn check_network_policy_ports(grpc: u16, metrics: u16) {
    let np = yaml_doc("deploy/kubernetes/base/networkpolicy.yaml");
    let ports = |dir: &str| -> BTreeSet<u64> {
        np["spec"][dir]
            .as_sequence()
            .unwrap()
            .iter()
            .flat_map(|rule| rule["ports"].as_sequence().cloned().unwrap_or_default())
            .filter_map(|p| p["port"].as_u64())
            .collect()
    };
    let ingress = ports("ingress");
    assert!(ingress.contains(&u64::from(grpc)) && ingress.contains(&u64::from(metrics)));
    assert!(ports("egress").contains(&u64::from(grpc)));
}

/// An overlay's value of `field` in its `kind` object: the overlay's patch
/// if it sets it, else the base's.
fn overlay_value(overlay: &str, kind: &str, field: &[&str]) -> Option<u64> {
    let from = |docs: Vec<Yaml>| {
        docs.into_iter()
            .find(|d| d["kind"].as_str() == Some(kind))
            .and_then(|d| get(&d, field).as_u64())
    };
    let base = match kind {
        "StatefulSet" => STATEFULSET,
        _ => "deploy/kubernetes/base/poddisruptionbudget.yaml",
    };
    from(yaml_docs(&format!(
        "deploy/kubernetes/overlays/{overlay}/size.yaml"
    )))
    .or_else(|| from(yaml_docs(base)))
}

#[test]
fn each_overlay_lets_at_most_a_minority_of_every_group_go() {
    let shard_voters = canon_raft::placement::DEFAULT_REPLICAS as u64;
    for (overlay, nodes) in [("three", 3), ("five", 5)] {
        let replicas = overlay_value(overlay, "StatefulSet", &["spec", "replicas"]);
        assert_eq!(replicas, Some(nodes), "{overlay}");
        let kustomization = format!("deploy/kubernetes/overlays/{overlay}/kustomization.yaml");
        let initial = value_of(
            &literals(&kustomization, "canon-topology"),
            "INITIAL_MEMBERS",
        );
        assert_eq!(initial, nodes.to_string(), "{overlay}: INITIAL_MEMBERS");
        let max = overlay_value(overlay, "PodDisruptionBudget", &["spec", "maxUnavailable"])
            .expect("maxUnavailable");
        // The meta group has every node as a voter; each shard has three.
        let minority = (nodes - 1) / 2;
        let shard_minority = (nodes.min(shard_voters) - 1) / 2;
        assert!(max >= 1, "{overlay}: a budget of 0 blocks every drain");
        assert!(
            max <= minority && max <= shard_minority,
            "{overlay}: maxUnavailable {max}"
        );
    }
}

/// The longest canond's SIGTERM drain can take, in seconds, for `shards`:
/// a leadership hand-off of at most 0.5 s for each group it leads (shards
/// and the meta group; `HAND_OFF_WAIT`, node/src/server.rs), the server's
/// 2 s to stop, and a removed node's 5 s grace and 0.5 s (canond.rs).
fn drain_s_max(shards: u64) -> f64 {
    0.5 * (shards + 1) as f64 + 2.0 + 5.5
}

#[test]
fn stop_timeouts_outlast_the_drain() {
    let shards: u64 = value_of(&env_file(ENV_EXAMPLE), "CANON_SHARDS")
        .parse()
        .unwrap();
    let unit = read(UNIT);
    let stop_s: f64 = unit
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .and_then(|v| v.strip_suffix('s'))
        .and_then(|v| v.parse().ok())
        .expect("TimeoutStopSec=Ns");
    assert!(
        stop_s > 2.0 * drain_s_max(shards),
        "TimeoutStopSec={stop_s}s"
    );
    let k8s_shards: u64 = value_of(&literals(BASE, "canon-settings"), "CANON_SHARDS")
        .parse()
        .unwrap();
    let sts = yaml_doc(STATEFULSET);
    let grace = get(
        &sts,
        &["spec", "template", "spec", "terminationGracePeriodSeconds"],
    );
    let grace_s = grace.as_u64().expect("terminationGracePeriodSeconds") as f64;
    assert!(grace_s > 2.0 * drain_s_max(k8s_shards), "grace {grace_s}s");
}

/// The EC2 operations the AWS adapter calls, as IAM names: every
/// `.verb_noun()` call (no arguments) of the SDK's operation verbs.
fn ec2_calls() -> BTreeSet<String> {
    const VERBS: [&str; 16] = [
        "accept_",
        "describe_",
        "create_",
        "delete_",
        "modify_",
        "authorize_",
        "revoke_",
        "associate_",
        "disassociate_",
        "attach_",
        "detach_",
        "run_",
        "terminate_",
        "replace_",
        "allocate_",
        "release_",
    ];
    let mut calls = BTreeSet::new();
    // The adapter's files, its per-kind folder (aws/ec2/) included.
    let mut files = Vec::new();
    let mut dirs = vec![repo().join("cloud/src/aws")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    for path in files {
        let text = std::fs::read_to_string(path).unwrap();
        for (at, _) in text.match_indices('.') {
            let rest = &text[at + 1..];
            let end = rest
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                .unwrap_or(rest.len());
            let name = &rest[..end];
            if rest[end..].starts_with("()") && VERBS.iter().any(|v| name.starts_with(v)) {
                calls.insert(camel(name));
            }
        }
        // Calls written once in a macro and named by its arguments
        // (`describe_owned_page!(ec2, describe_instances, …)`), which may
        // span lines: every word up to the invocation's closing bracket.
        for (at, _) in text.match_indices("!(") {
            for word in macro_args(&text[at + 2..])
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            {
                if VERBS.iter().any(|v| word.starts_with(v)) {
                    calls.insert(camel(word));
                }
            }
        }
    }
    calls
}

/// The text of a macro invocation's arguments: `rest` starts just after
/// its `(`, and the arguments end at the bracket that closes it.
fn macro_args(rest: &str) -> &str {
    let mut depth = 1usize;
    for (at, c) in rest.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth == 0 {
                    return &rest[..at];
                }
            }
            _ => {}
        }
    }
    rest
}

fn camel(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn actions(doc: &Json, effect: &str) -> BTreeSet<String> {
    doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Effect"] == effect)
        .flat_map(|s| match &s["Action"] {
            Json::String(a) => vec![a.clone()],
            Json::Array(a) => a
                .iter()
                .filter_map(|a| a.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}

#[test]
fn the_iam_policy_allows_exactly_the_ec2_calls_canond_makes() {
    let calls = ec2_calls();
    assert!(
        calls.contains("RunInstances") && calls.contains("DescribeVpcs"),
        "{calls:?}"
    );
    let allowed = actions(&json("deploy/aws/iam/canond-ec2.json"), "Allow");
    let wanted: BTreeSet<String> = calls.iter().map(|c| format!("ec2:{c}")).collect();
    assert_eq!(
        allowed, wanted,
        "deploy/aws/iam/canond-ec2.json against cloud/src/aws"
    );
    let guarded = actions(
        &json("deploy/aws/iam/canond-ec2-ownership-guard.json"),
        "Deny",
    );
    assert!(
        !guarded.is_empty() && guarded.is_subset(&allowed),
        "{guarded:?}"
    );
    let events = yaml_doc("deploy/aws/events.yaml");
    let pattern = get(
        &events,
        &[
            "Resources",
            "Ec2MutationsRule",
            "Properties",
            "EventPattern",
        ],
    );
    let names: BTreeSet<String> = pattern["detail"]["eventName"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str().map(String::from))
        .collect();
    for call in calls.iter().filter(|c| !c.starts_with("Describe")) {
        assert!(names.contains(call), "the EventBridge rule misses {call}");
    }
    assert_eq!(
        pattern["detail"]["errorCode"][0]["exists"].as_bool(),
        Some(false)
    );
}

#[test]
fn the_templates_carry_the_same_policies_as_the_json_documents() {
    let t = yaml_doc("deploy/aws/managed-account.yaml");
    let role = get(&t, &["Resources", "ConductorRole", "Properties"]);
    let inline = |name: &str| -> Json {
        let p = role["Policies"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|p| p["PolicyName"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no inline policy {name}"));
        serde_json::to_value(&p["PolicyDocument"]).unwrap()
    };
    assert_eq!(inline("canond-ec2"), json("deploy/aws/iam/canond-ec2.json"));
    let sqs = json("deploy/aws/iam/canond-sqs.json");
    assert_eq!(
        actions(&inline("canond-sqs"), "Allow"),
        actions(&sqs, "Allow")
    );
    let guard = get(
        &t,
        &[
            "Resources",
            "OwnershipGuardPolicy",
            "Properties",
            "PolicyDocument",
        ],
    );
    assert_eq!(
        serde_json::to_value(guard).unwrap(),
        json("deploy/aws/iam/canond-ec2-ownership-guard.json")
    );
    let trust = &role["AssumeRolePolicyDocument"]["Statement"][0];
    assert!(!trust["Condition"]["StringEquals"]["sts:ExternalId"].is_null());
    let trust_json = json("deploy/aws/iam/canon-conductor-trust.json");
    assert!(!trust_json["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"].is_null());
}

/// A canond started from the systemd environment file, on its own: two of
/// its three peers never come, so it never has a quorum.
struct Lonely {
    child: std::process::Child,
    addr: String,
    _data: tempfile::TempDir,
}

impl Drop for Lonely {
    fn drop(&mut self) {
        // Best effort: the test may have stopped it already.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn lonely_canond() -> Lonely {
    let data = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    // Ports just released: nothing answers there.
    let absent = || format!("127.0.0.1:{}", free_port());
    let mut vars: BTreeMap<String, String> = env_file(ENV_EXAMPLE).into_iter().collect();
    for (k, v) in [
        ("CANON_LISTEN", addr.clone()),
        ("CANON_ADVERTISE", addr.clone()),
        (
            "CANON_PEERS",
            format!("1={addr},2={},3={}", absent(), absent()),
        ),
        (
            "CANON_DATA_DIR",
            data.path().join("data").display().to_string(),
        ),
        ("CANON_METRICS_LISTEN", format!("127.0.0.1:{}", free_port())),
        ("CANON_CLOUD", "sim".into()),
        ("CANON_ADMIN_KEY", "11".repeat(32)),
    ] {
        vars.insert(k.into(), v);
    }
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_canond"))
        .env_clear()
        .envs(&vars)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("canond starts");
    Lonely {
        child,
        addr,
        _data: data,
    }
}

async fn health(addr: &str, service: &str) -> Result<i32, String> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let request = tonic_health::pb::HealthCheckRequest {
        service: service.into(),
    };
    let reply = client.check(request).await.map_err(|e| e.to_string())?;
    Ok(reply.into_inner().status)
}

/// What the Kubernetes probes ask (liveness: the server, ""; readiness: the
/// client API) is answered SERVING by a canond without a quorum, so losing
/// quorum restarts no pod; and SIGTERM stops it, exit 0, well within the
/// unit's TimeoutStopSec.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probes_answer_without_a_quorum_and_sigterm_stops_canond() {
    let mut node = lonely_canond();
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    let sts = yaml_doc(STATEFULSET);
    let readiness = canond_container(&sts)["readinessProbe"]["grpc"]["service"]
        .as_str()
        .expect("readiness names a service")
        .to_string();
    let started = std::time::Instant::now();
    loop {
        match health(&node.addr, "").await {
            Ok(s) => {
                assert_eq!(s, serving, "liveness");
                break;
            }
            Err(e) if started.elapsed().as_secs() > 30 => panic!("canond never answered: {e}"),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    assert_eq!(
        health(&node.addr, &readiness).await,
        Ok(serving),
        "readiness"
    );
    let term = std::process::Command::new("kill")
        .args(["-TERM", &node.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(term.success());
    let stopping = std::time::Instant::now();
    let status = loop {
        if let Some(status) = node.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopping.elapsed().as_secs() < 20,
            "canond did not stop on SIGTERM"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(status.success(), "canond exited {status}");
}
