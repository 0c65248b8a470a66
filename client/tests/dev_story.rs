//! The demo story end to end with real processes: `canon dev` runs a
//! three-node cluster over the simulated cloud; the CLI is driven as a user
//! would drive it. Every child process is killed when its guard drops.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

/// A running `canon dev`; killed on drop.
struct Dev {
    child: Child,
    dir: PathBuf,
}

impl Dev {
    fn start(dir: &Path) -> Dev {
        let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("canon"))
            .args(["dev", "--tick", "1s", "--data-dir"])
            .arg(dir)
            .env("HOME", dir)
            .env_remove("NO_COLOR")
            .stdout(Stdio::piped())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join("dev.log"))
                    .expect("log file"),
            )
            .spawn()
            .expect("canon dev starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let started = Instant::now();
        let mut dev = Dev {
            child,
            dir: dir.to_path_buf(),
        };
        loop {
            match lines.next() {
                Some(Ok(line)) if line.contains("cluster ready") => break,
                Some(Ok(_)) => {}
                _ => {
                    let _ = dev.child.kill();
                    panic!("canon dev stopped before it was ready");
                }
            }
            assert!(started.elapsed() < Duration::from_secs(60), "dev not ready");
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        dev
    }

    fn canon(&self) -> Command {
        let mut c = Command::cargo_bin("canon").expect("binary");
        c.env("CANON_CONFIG", self.dir.join("client.toml"))
            .env("HOME", &self.dir)
            .env_remove("CANON_ENDPOINTS")
            .timeout(Duration::from_secs(60));
        c
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self
            .canon()
            .args(args)
            .arg("--json")
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "canon {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json output")
    }

    /// `canon events ALIAS --json`, its lines arriving on a channel.
    fn follow_events(&self, alias: &str) -> Events {
        let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("canon"))
            .args(["events", alias, "--json"])
            .env("CANON_CONFIG", self.dir.join("client.toml"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("canon events starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        // Let the subscription take its first look before anything changes.
        std::thread::sleep(Duration::from_millis(800));
        Events { child, lines }
    }

    /// Stops the cluster as Ctrl-C would, and waits for it to exit.
    fn stop(mut self) {
        let _ = StdCommand::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A running `canon events`; killed on drop.
struct Events {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < within, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn request_types(plan: &Value) -> Vec<String> {
    plan.as_array()
        .expect("a request list")
        .iter()
        .map(|r| r["request_type"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn aliases(status: &Value) -> Vec<(String, String)> {
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

fn sg_ingress(status: &Value, name: &str) -> String {
    status["resources"][name]["observed"]["spec"].to_string()
}

#[test]
fn the_demo_story_on_a_dev_cluster() {
    let tmp = tempfile::tempdir().unwrap();
    let dev = Dev::start(tmp.path());

    // Before the demo: three processes.
    for (file, alias) in [
        ("VPC-hector.lw", "dev-hector"),
        ("Staging.lw", "staging"),
        ("VPC-lisa.lw", "dev-lisa"),
    ] {
        dev.canon()
            .args(["run"])
            .arg(example(file))
            .args(["-a", alias, "--wait"])
            .assert()
            .success()
            .stdout(predicates::str::contains("Process created and running"));
    }
    let out = dev.canon().arg("status").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Canon Status Report"), "{text}");
    for alias in ["dev-hector", "staging", "dev-lisa"] {
        assert!(text.contains(alias), "{text}");
    }

    // status ALIAS shows every resource with its cloud id.
    let lisa = dev.json(&["status", "dev-lisa"]);
    assert!(lisa.to_string().contains("vpc-"), "{lisa}");

    // kill --dry-run lists the deletes and changes nothing.
    let plan = dev.json(&["kill", "dev-lisa", "--dry-run"]);
    let types = request_types(&plan);
    assert!(
        types.contains(&"aws.ec2.delete_vpc".to_string()),
        "{types:?}"
    );
    assert!(
        types.contains(&"aws.ec2.delete_subnet".to_string()),
        "{types:?}"
    );
    assert!(types.iter().all(|t| !t.contains("create")), "{types:?}");

    // kill without -y asks, and "no" does nothing.
    dev.canon()
        .args(["kill", "dev-lisa"])
        .write_stdin("n\n")
        .assert()
        .code(1);
    dev.canon()
        .args(["kill", "dev-lisa", "-y"])
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "The conductor is killing the process",
        ));
    wait_until("dev-lisa to be killed", Duration::from_secs(60), || {
        !aliases(&dev.json(&["status"]))
            .iter()
            .any(|(a, _)| a == "dev-lisa")
    });

    // Sam's VPC; the alias cannot be taken twice.
    dev.canon()
        .arg("run")
        .arg(example("VPC-sam.lw"))
        .args(["-a", "dev-sam", "--wait"])
        .assert()
        .success();
    dev.canon()
        .arg("run")
        .arg(example("VPC-sam.lw"))
        .args(["-a", "dev-sam"])
        .assert()
        .code(5);

    // history shows the RUN job, then enforcement as SYSTEM jobs.
    wait_until("a SYSTEM job", Duration::from_secs(30), || {
        let h = dev.json(&["history", "dev-sam"]);
        let kinds: Vec<&str> = h["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|j| j["kind"].as_str())
            .collect();
        kinds.contains(&"RUN") && kinds.contains(&"SYSTEM")
    });
    let text = dev.canon().args(["history", "dev-sam"]).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(
        text.contains("Job Type") && text.contains("RUN") && text.contains("SUCCEEDED"),
        "{text}"
    );

    // A rogue all-traffic rule is found, recorded as drift, and removed.
    let sam = dev.json(&["status", "dev-sam"]);
    let sg = sam["resources"]["dev-sam-sg"]["cloud_id"]
        .as_str()
        .expect("the group is bound")
        .to_string();
    assert!(sg.starts_with("sg-"), "{sam}");
    let events = dev.follow_events("dev-sam");
    dev.canon()
        .args([
            "dev",
            "rogue",
            "authorize-ingress",
            "--group",
            &sg,
            "--protocol",
            "-1",
            "--cidr",
            "0.0.0.0/0",
        ])
        .assert()
        .success();
    wait_until(
        "the rogue rule to be healed",
        Duration::from_secs(30),
        || {
            let h = dev.json(&["history", "dev-sam"]);
            h["drift"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| !d["healed"].is_null())
        },
    );
    let sam = dev.json(&["status", "dev-sam"]);
    assert!(
        !sg_ingress(&sam, "dev-sam-sg").contains("\"protocol\":\"All\""),
        "{sam}"
    );
    let text = dev.canon().args(["history", "dev-sam"]).output().unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("Drift"));
    // The event stream saw the drift found and healed.
    let mut kinds = Vec::new();
    while !kinds.contains(&"drift.healed".to_string()) {
        let line = events
            .lines
            .recv_timeout(Duration::from_secs(20))
            .expect("drift events on the stream");
        let v: Value = serde_json::from_str(&line).expect("a JSON event per line");
        assert_eq!(v["alias"], "dev-sam", "{v}");
        kinds.push(v["event"].as_str().unwrap_or_default().to_string());
    }
    assert!(kinds.contains(&"drift.opened".to_string()), "{kinds:?}");
    drop(events);

    // Both compile errors: a diagnostic, exit 1, nothing sent.
    let source = std::fs::read_to_string(example("VPC-sam.lw")).unwrap();
    let bad_region = tmp.path().join("VPC-bad-region.lw");
    std::fs::write(
        &bad_region,
        source.replace("AWS.Us-west-2", "AWS.Us-west-3"),
    )
    .unwrap();
    dev.canon()
        .arg("run")
        .arg(&bad_region)
        .args(["-a", "typo"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("Us-west-3"));
    let bad_cidr = tmp.path().join("VPC-bad-cidr.lw");
    std::fs::write(
        &bad_cidr,
        source.replace("\"10.0.0.0/16\"", "\"10.0.0.0/8\""),
    )
    .unwrap();
    dev.canon()
        .arg("run")
        .arg(&bad_cidr)
        .args(["-a", "typo"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("/16"));
    assert!(!aliases(&dev.json(&["status"]))
        .iter()
        .any(|(a, _)| a == "typo"));

    // update --dry-run: exactly one ingress authorisation, for port 22.
    let ssh = example("VPC-sam-ssh.lw");
    let ssh = ssh.to_str().unwrap();
    let dry = dev.json(&["update", "dev-sam", ssh, "--dry-run"]);
    let types = request_types(&dry["requests"]);
    assert_eq!(
        types,
        vec!["aws.ec2.authorize_security_group_ingress"],
        "{dry}"
    );
    assert!(dry["requests"].to_string().contains("22"), "{dry}");
    dev.canon()
        .args(["update", "dev-sam", ssh, "--wait"])
        .assert()
        .success();
    let sam = dev.json(&["status", "dev-sam"]);
    assert!(
        sg_ingress(&sam, "dev-sam-sg").contains("\"from_port\":22"),
        "{sam}"
    );

    // Errors a user can act on.
    dev.canon().args(["kill", "nobody", "-y"]).assert().code(4);
    let cluster = dev.json(&["cluster", "status"]);
    assert_eq!(cluster["members"].as_array().unwrap().len(), 3, "{cluster}");

    // A key the cluster does not know is refused.
    let other = tmp.path().join("other.key");
    std::fs::write(&other, "11".repeat(32)).unwrap();
    let cfg = std::fs::read_to_string(tmp.path().join("client.toml")).unwrap();
    let forged = tmp.path().join("forged.toml");
    let key_line = cfg
        .lines()
        .find(|l| l.starts_with("key"))
        .unwrap()
        .to_string();
    std::fs::write(
        &forged,
        cfg.replace(
            &key_line,
            &format!("key = {:?}", other.display().to_string()),
        ),
    )
    .unwrap();
    dev.canon()
        .env("CANON_CONFIG", &forged)
        .args(["kill", "dev-sam", "-y"])
        .assert()
        .code(6);

    // A restart with the same data dir keeps every process, and the
    // simulated cloud keeps every resource with its id.
    let ids_before = cloud_ids(&dev.json(&["status", "dev-sam"]));
    assert!(
        ids_before.values().all(|id| !id.is_empty()),
        "{ids_before:?}"
    );
    dev.stop();
    assert!(tmp.path().join("cloud.json").is_file());
    let dev = Dev::start(tmp.path());
    let after = aliases(&dev.json(&["status"]));
    for alias in ["dev-hector", "staging", "dev-sam"] {
        assert!(after.iter().any(|(a, _)| a == alias), "{after:?}");
    }
    let observed = dev.json(&["status", "dev-sam"]);
    assert_eq!(cloud_ids(&observed), ids_before);
    assert!(
        sg_ingress(&observed, "dev-sam-sg").contains("\"from_port\":22"),
        "observed after the restart: {observed}"
    );
    // Three ticks later the conductor has found nothing to rebuild.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(cloud_ids(&dev.json(&["status", "dev-sam"])), ids_before);

    // The log went to a file, not a terminal: no colour codes in it.
    let log = std::fs::read_to_string(tmp.path().join("dev.log")).unwrap();
    assert!(log.contains("command"), "the dev log: {log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in the dev log: {log}"
    );
}

/// Resource name → cloud id in `canon status ALIAS --json`.
fn cloud_ids(status: &Value) -> std::collections::BTreeMap<String, String> {
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

#[test]
fn no_cluster_is_exit_3_with_a_hint() {
    let tmp = tempfile::tempdir().unwrap();
    Command::cargo_bin("canon")
        .unwrap()
        .env("HOME", tmp.path())
        .env_remove("CANON_CONFIG")
        .env_remove("CANON_ENDPOINTS")
        .env_remove("XDG_DATA_HOME")
        .arg("status")
        .assert()
        .code(3)
        .stderr(predicates::str::contains("canon dev"));
    Command::cargo_bin("canon")
        .unwrap()
        .env("HOME", tmp.path())
        .args(["status", "--endpoints", "http://127.0.0.1:1"])
        .timeout(Duration::from_secs(30))
        .assert()
        .code(3);
}

#[test]
fn help_documents_the_exit_codes() {
    Command::cargo_bin("canon")
        .unwrap()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicates::str::contains("Exit codes"));
}
