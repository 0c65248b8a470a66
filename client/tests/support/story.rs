//! The demo story's steps, shared by the dev-cluster story and the story on
//! three `canond` over moto: each step drives the CLI as a user would and
//! asserts what the demo shows. The caller supplies how to run `canon`
//! against its cluster and does its own extras between steps.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

/// How to run `canon` against the cluster under test.
pub type Canon<'a> = &'a dyn Fn() -> Command;

pub fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

pub fn wait_until(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < within, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// `canon ARGS --json`, which must succeed.
pub fn json(canon: Canon, args: &[&str]) -> Value {
    let out = canon().args(args).arg("--json").output().expect("runs");
    assert!(
        out.status.success(),
        "canon {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json output")
}

pub fn request_types(plan: &Value) -> Vec<String> {
    plan.as_array()
        .expect("a request list")
        .iter()
        .map(|r| r["request_type"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// (alias, state) of every process `canon status --json` lists.
pub fn aliases(status: &Value) -> Vec<(String, String)> {
    status
        .as_array()
        .expect("a process list")
        .iter()
        .map(|p| {
            (
                p["alias"].as_str().unwrap_or_default().to_string(),
                p["state"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

pub fn sg_ingress(status: &Value, name: &str) -> String {
    status["resources"][name]["observed"]["spec"].to_string()
}

/// Before the demo: hector, staging and lisa run; `canon status` lists them.
pub fn three_processes(canon: Canon) {
    for (file, alias) in [
        ("VPC-hector.lw", "dev-hector"),
        ("Staging.lw", "staging"),
        ("VPC-lisa.lw", "dev-lisa"),
    ] {
        canon()
            .arg("run")
            .arg(example(file))
            .args(["-a", alias, "--wait"])
            .assert()
            .success()
            .stdout(predicates::str::contains("Process created and running"));
    }
    let out = canon().arg("status").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Canon Status Report"), "{text}");
    for alias in ["dev-hector", "staging", "dev-lisa"] {
        assert!(text.contains(alias), "{text}");
    }
    // status ALIAS shows every resource with its cloud id.
    let lisa = json(canon, &["status", "dev-lisa"]);
    assert!(lisa.to_string().contains("vpc-"), "{lisa}");
}

/// `kill --dry-run` lists the deletes and changes nothing; kill removes it.
pub fn kill_lisa(canon: Canon) {
    let plan = json(canon, &["kill", "dev-lisa", "--dry-run"]);
    let types = request_types(&plan);
    for t in ["aws.ec2.delete_vpc", "aws.ec2.delete_subnet"] {
        assert!(types.contains(&t.to_string()), "{types:?}");
    }
    assert!(types.iter().all(|t| !t.contains("create")), "{types:?}");
    canon()
        .args(["kill", "dev-lisa", "-y"])
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "The conductor is killing the process",
        ));
    wait_until("dev-lisa to be killed", Duration::from_secs(60), || {
        !aliases(&json(canon, &["status"]))
            .iter()
            .any(|(a, _)| a == "dev-lisa")
    });
}

/// Sam's VPC, the fourth process; history shows its RUN job, then
/// enforcement as SYSTEM jobs. Returns `canon status dev-sam --json`.
pub fn run_sam(canon: Canon) -> Value {
    canon()
        .arg("run")
        .arg(example("VPC-sam.lw"))
        .args(["-a", "dev-sam", "--wait"])
        .assert()
        .success();
    wait_until("a SYSTEM job", Duration::from_secs(30), || {
        let h = json(canon, &["history", "dev-sam"]);
        let kinds: Vec<&str> = h["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|j| j["kind"].as_str())
            .collect();
        kinds.contains(&"RUN") && kinds.contains(&"SYSTEM")
    });
    let text = canon().args(["history", "dev-sam"]).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(
        text.contains("Job Type") && text.contains("RUN") && text.contains("SUCCEEDED"),
        "{text}"
    );
    let sam = json(canon, &["status", "dev-sam"]);
    let sg = sam["resources"]["dev-sam-sg"]["cloud_id"]
        .as_str()
        .unwrap_or_default();
    assert!(sg.starts_with("sg-"), "{sam}");
    sam
}

/// After a rogue all-traffic rule on Sam's group: it is removed, and the
/// history shows it as drift.
pub fn rogue_rule_healed(canon: Canon) {
    wait_until(
        "the rogue rule to be healed",
        Duration::from_secs(60),
        || {
            json(canon, &["history", "dev-sam"])["drift"]
                .as_array()
                .is_some_and(|d| d.iter().any(|d| !d["healed"].is_null()))
        },
    );
    let sam = json(canon, &["status", "dev-sam"]);
    assert!(
        !sg_ingress(&sam, "dev-sam-sg").contains("\"protocol\":\"All\""),
        "{sam}"
    );
    let text = canon().args(["history", "dev-sam"]).output().unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("Drift"));
}

/// The example policy stored as validation module `org`.
pub fn add_policy(canon: Canon) {
    canon()
        .args(["validation", "add", "org"])
        .arg(example("policy.lw"))
        .assert()
        .success()
        .stdout(predicates::str::contains("validation module org stored"));
}

/// The healed drift of Sam's group is labelled with the validation the
/// rogue rule broke (after [`add_policy`] and a rogue rule from anywhere
/// that reaches port 22).
pub fn rogue_rule_labelled(canon: Canon) {
    wait_until(
        "the rogue rule's drift labelled org.no-admin-ports",
        Duration::from_secs(60),
        || {
            json(canon, &["history", "dev-sam"])["drift"]
                .as_array()
                .is_some_and(|d| {
                    d.iter().any(|d| {
                        !d["healed"].is_null()
                            && d["violates"] == serde_json::json!(["org.no-admin-ports"])
                    })
                })
        },
    );
}

/// Drops validation module `org`.
pub fn remove_policy(canon: Canon) {
    canon()
        .args(["validation", "remove", "org"])
        .assert()
        .success();
}

/// Both compile errors (a region that does not exist, a CIDR the cloud
/// would refuse): a diagnostic, exit 1, nothing sent.
pub fn compile_errors(canon: Canon, scratch: &Path) {
    let source = std::fs::read_to_string(example("VPC-sam.lw")).unwrap();
    for (name, from, to, shown) in [
        (
            "VPC-bad-region.lw",
            "AWS.Us-west-2",
            "AWS.Us-west-3",
            "Us-west-3",
        ),
        (
            "VPC-bad-cidr.lw",
            "\"10.0.0.0/16\"",
            "\"10.0.0.0/8\"",
            "/16",
        ),
    ] {
        let bad = scratch.join(name);
        std::fs::write(&bad, source.replace(from, to)).unwrap();
        canon()
            .arg("run")
            .arg(&bad)
            .args(["-a", "typo"])
            .assert()
            .code(1)
            .stderr(predicates::str::contains(shown));
    }
    assert!(!aliases(&json(canon, &["status"]))
        .iter()
        .any(|(a, _)| a == "typo"));
}

/// `update --dry-run` shows exactly one ingress authorisation, for port
/// 22; the update puts the rule there.
pub fn ssh_update(canon: Canon) {
    let ssh = example("VPC-sam-ssh.lw");
    let ssh = ssh.to_str().unwrap();
    let dry = json(canon, &["update", "dev-sam", ssh, "--dry-run"]);
    let types = request_types(&dry["requests"]);
    assert_eq!(
        types,
        vec!["aws.ec2.authorize_security_group_ingress"],
        "{dry}"
    );
    assert!(dry["requests"].to_string().contains("22"), "{dry}");
    canon()
        .args(["update", "dev-sam", ssh, "--wait"])
        .assert()
        .success();
    let sam = json(canon, &["status", "dev-sam"]);
    assert!(
        sg_ingress(&sam, "dev-sam-sg").contains("\"from_port\":22"),
        "{sam}"
    );
    assert!(
        !sg_ingress(&sam, "dev-sam-sg").contains("\"protocol\":\"All\""),
        "{sam}"
    );
}

/// Resource name → cloud id in `canon status ALIAS --json`.
pub fn cloud_ids(status: &Value) -> std::collections::BTreeMap<String, String> {
    status["resources"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(name, r)| {
                    (
                        name.clone(),
                        r["cloud_id"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}
