//! The demo story end to end with real processes: `canon dev` runs a
//! three-node cluster over the simulated cloud; the CLI is driven as a user
//! would drive it. Every child process is killed when its guard drops.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

mod support;
use support::story::{self, aliases, cloud_ids, example, sg_ingress};

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
        story::json(&|| self.canon(), args)
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

#[test]
fn the_demo_story_on_a_dev_cluster() {
    let tmp = tempfile::tempdir().unwrap();
    let dev = Dev::start(tmp.path());

    let canon = || dev.canon();
    story::three_processes(&canon);
    // kill without -y asks, and "no" does nothing.
    dev.canon()
        .args(["kill", "dev-lisa"])
        .write_stdin("n\n")
        .assert()
        .code(1);
    story::kill_lisa(&canon);
    let sam = story::run_sam(&canon);
    // The alias cannot be taken twice.
    dev.canon()
        .arg("run")
        .arg(example("VPC-sam.lw"))
        .args(["-a", "dev-sam"])
        .assert()
        .code(5);

    // A rogue all-traffic rule is found, recorded as drift, and removed.
    let sg = sam["resources"]["dev-sam-sg"]["cloud_id"]
        .as_str()
        .expect("the group is bound")
        .to_string();
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
    story::rogue_rule_healed(&canon);
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

    // The same from anywhere on IPv6: RDP open to ::/0 is healed too.
    dev.canon()
        .args(["dev", "rogue", "authorize-ingress", "--group", &sg])
        .args(["--protocol", "tcp", "--from-port", "3389", "--cidr", "::/0"])
        .assert()
        .success();
    story::wait_until(
        "the IPv6 rogue rule to be healed",
        Duration::from_secs(60),
        || {
            let drift = story::json(&canon, &["history", "dev-sam"])["drift"].clone();
            drift.as_array().is_some_and(|d| {
                d.iter()
                    .any(|d| d["observed"].to_string().contains("::/0") && !d["healed"].is_null())
            })
        },
    );
    let sam = story::json(&canon, &["status", "dev-sam"]);
    assert!(
        !story::sg_ingress(&sam, "dev-sam-sg").contains("::/0"),
        "{sam}"
    );
    // A range that is neither IPv4 nor IPv6 is refused.
    dev.canon()
        .args(["dev", "rogue", "authorize-ingress", "--group", &sg])
        .args(["--cidr", "10.0.0.0/33"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("bad CIDR"));

    graph_shows_what_the_cloud_has(&dev, &sg, tmp.path());
    nacl_entry_healed(&dev, tmp.path());
    volume_reattached(&dev);
    routes_egress_and_tags_healed(&dev);
    three_tier_lives_and_goes(&dev);

    story::compile_errors(&canon, tmp.path());
    story::ssh_update(&canon);

    // A process with its own tick interval; out-of-range or malformed
    // intervals are refused before anything changes.
    for bad in ["500ms", "soon", "2d"] {
        dev.canon()
            .arg("run")
            .arg(example("VPC-sam.lw"))
            .args(["-a", "dev-ticker", "--tick", bad])
            .assert()
            .code(2);
    }
    dev.canon()
        .arg("run")
        .arg(example("VPC-sam.lw"))
        .args(["-a", "dev-ticker", "--tick", "2s", "--wait", "--json"])
        .assert()
        .success();
    // A process's own interval is kept by an update that names none.
    dev.canon()
        .arg("update")
        .arg("dev-ticker")
        .arg(example("VPC-sam.lw"))
        .args(["--wait", "--json"])
        .assert()
        .success();
    let tick_of = || dev.json(&["status", "dev-ticker"])["tick_interval_ms"].clone();
    assert_eq!(tick_of(), serde_json::json!(2000));
    dev.canon()
        .arg("update")
        .arg("dev-ticker")
        .arg(example("VPC-sam.lw"))
        .args(["--tick", "3s", "--json"])
        .assert()
        .success();
    assert_eq!(tick_of(), serde_json::json!(3000));

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

/// `canon graph ALIAS`: with enforcement suspended (so nothing heals), a
/// rogue SSH rule open to the world is drawn as a red Internet edge the
/// declaration does not have; resumed, it is healed and the edge is gone.
fn graph_shows_what_the_cloud_has(dev: &Dev, sg: &str, scratch: &Path) {
    let edges = |dev: &Dev| -> Vec<(String, String, String)> {
        let out = dev
            .canon()
            .args(["graph", "dev-sam", "--format", "json"])
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let g: Value = serde_json::from_slice(&out.stdout).expect("graph JSON");
        g["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .filter(|e| e["kind"] == "internet_ingress")
            .map(|e| {
                let field = |k: &str| e[k].as_str().unwrap_or_default().to_string();
                (field("label"), field("status"), field("to"))
            })
            .collect()
    };
    let ssh = |edges: &[(String, String, String)]| {
        edges
            .iter()
            .any(|(label, status, _)| label == "tcp 22" && status == "drifted")
    };
    assert!(!ssh(&edges(dev)), "{:?}", edges(dev));
    dev.canon().args(["suspend", "dev-sam"]).assert().success();
    dev.canon()
        .args(["dev", "rogue", "authorize-ingress", "--group", sg])
        .args([
            "--protocol",
            "tcp",
            "--from-port",
            "22",
            "--cidr",
            "0.0.0.0/0",
        ])
        .assert()
        .success();
    let drawn = edges(dev);
    assert!(ssh(&drawn), "{drawn:?}");
    // The same picture as SVG, to a file named by -o.
    let svg = scratch.join("dev-sam.svg");
    dev.canon()
        .args(["graph", "dev-sam", "-o"])
        .arg(&svg)
        .assert()
        .success();
    let text = std::fs::read_to_string(&svg).expect("the SVG was written");
    assert!(
        text.starts_with("<svg") && text.contains("tcp 22"),
        "{text}"
    );
    dev.canon().args(["resume", "dev-sam"]).assert().success();
    story::wait_until(
        "the rogue SSH rule to be healed",
        Duration::from_secs(60),
        || !ssh(&edges(dev)),
    );
}

/// A network ACL on `canon dev`: a console user's "allow all traffic" at
/// number 1 (`canon dev rogue add-nacl-entry`) is drift, recorded and
/// healed; then the process is killed, the ACL with it.
fn nacl_entry_healed(dev: &Dev, scratch: &Path) {
    let file = scratch.join("VPC-acl.lw");
    std::fs::write(
        &file,
        r#"import Canon.AWS.EC2 as EC2
import Canon.Core.AWS.Common as AWS

vpc: EC2.Vpc.new {cidrBlock: "10.60.0.0/16", region: AWS.Us-west-2}
web: EC2.Subnet.new {vpc: vpc, cidrBlock: "10.60.1.0/24", availabilityZone: AWS.A}
acl: EC2.NetworkAcl.new {
  vpc: vpc,
  ingress: [EC2.NetworkAclEntry.allowTcp(100, 443, 443, "0.0.0.0/0")],
  egress: [EC2.NetworkAclEntry.allowAll(100, "0.0.0.0/0")],
  associations: [web],
}
"#,
    )
    .expect("write the composition");
    dev.canon()
        .arg("run")
        .arg(&file)
        .args(["-a", "dev-acl", "--wait", "--json"])
        .assert()
        .success();
    let status = dev.json(&["status", "dev-acl"]);
    let acl = status["resources"]["acl"]["cloud_id"]
        .as_str()
        .expect("the ACL is bound")
        .to_string();
    assert!(acl.starts_with("acl-"), "{status}");
    dev.canon()
        .args(["dev", "rogue", "add-nacl-entry", "--network-acl", &acl])
        .assert()
        .success()
        .stdout(predicates::str::contains("ingress 1"));
    story::wait_until(
        "the rogue ACL entry to be healed",
        Duration::from_secs(60),
        || {
            let drift = dev.json(&["history", "dev-acl"])["drift"].clone();
            drift.as_array().is_some_and(|d| {
                d.iter()
                    .any(|d| d["property"] == "ingress.1" && !d["healed"].is_null())
            })
        },
    );
    // A number EC2 keeps for itself is refused.
    dev.canon()
        .args(["dev", "rogue", "add-nacl-entry", "--network-acl", &acl])
        .args(["--rule-number", "32767"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("32766"));
    dev.canon()
        .args(["kill", "dev-acl", "-y", "--wait"])
        .assert()
        .success();
}

/// The database example's data volume: detached by hand (`canon dev
/// rogue detach-volume`), which is drift, attached again; kill leaves
/// nothing.
fn volume_reattached(dev: &Dev) {
    dev.canon()
        .arg("run")
        .arg(example("Database.lw"))
        .args(["-a", "dev-data", "--wait", "--json"])
        .assert()
        .success();
    let ids = cloud_ids(&dev.json(&["status", "dev-data"]));
    let (volume, server) = (ids["data"].clone(), ids["server"].clone());
    assert!(volume.starts_with("vol-"), "{ids:?}");
    let detach = ["detach-volume", "--volume", &volume, "--instance", &server];
    rogue_healed_in(dev, "dev-data", &detach, "the volume to be attached again");
    let drift = dev.json(&["history", "dev-data"])["drift"].clone();
    assert!(
        drift.as_array().is_some_and(|d| d
            .iter()
            .any(|d| d["property"] == "attachment" && !d["healed"].is_null())),
        "{drift}"
    );
    dev.canon()
        .args(["kill", "dev-data", "-y", "--wait"])
        .assert()
        .success();
}

/// The healed drift records of `alias`.
fn healed_drift(dev: &Dev, alias: &str) -> usize {
    dev.json(&["history", alias])["drift"]
        .as_array()
        .map_or(0, |d| d.iter().filter(|d| !d["healed"].is_null()).count())
}

/// `canon dev rogue ARGS`, which must succeed, then waits until the
/// conductor has healed one more drift of dev-sam than before it.
fn rogue_healed(dev: &Dev, args: &[&str], what: &str) {
    rogue_healed_in(dev, "dev-sam", args, what);
}

/// [`rogue_healed`] for process `alias`.
fn rogue_healed_in(dev: &Dev, alias: &str, args: &[&str], what: &str) {
    let before = healed_drift(dev, alias);
    dev.canon()
        .args(["dev", "rogue"])
        .args(args)
        .assert()
        .success()
        .stdout(predicates::str::contains("done in"));
    story::wait_until(what, Duration::from_secs(60), || {
        healed_drift(dev, alias) > before
    });
}

/// A console user's other changes to dev-sam: a route deleted and
/// re-pointed, a subnet taken out of its route table, an egress rule
/// added, a tag deleted with the generic `rogue ec2`. Each is drift,
/// recorded and healed; doing it again succeeds only because the heal
/// put back what the first one took away.
fn routes_egress_and_tags_healed(dev: &Dev) {
    let ids = cloud_ids(&dev.json(&["status", "dev-sam"]));
    let first = |prefix: &str| {
        ids.values()
            .find(|id| id.starts_with(prefix))
            .cloned()
            .unwrap_or_else(|| panic!("no {prefix}… in dev-sam: {ids:?}"))
    };
    let (rtb, subnet, sg) = (first("rtb-"), first("subnet-"), first("sg-"));
    let delete_route = ["delete-route", "--route-table", rtb.as_str()];
    for _ in 0..2 {
        rogue_healed(dev, &delete_route, "the deleted route to be put back");
    }
    let disassociate = ["disassociate-route-table", "--subnet", subnet.as_str()];
    for _ in 0..2 {
        rogue_healed(
            dev,
            &disassociate,
            "the subnet to be back in its route table",
        );
    }
    let egress = ["authorize-egress", "--group", sg.as_str()];
    let smtp = ["--protocol", "tcp", "--from-port", "25"];
    for _ in 0..2 {
        rogue_healed(
            dev,
            &[&egress[..], &smtp[..]].concat(),
            "the rogue egress rule to go",
        );
    }
    let untag = format!("resource={sg}");
    let untag = [
        "ec2",
        "DeleteTags",
        "--param",
        &untag,
        "--param",
        r#"keys=["Environment"]"#,
    ];
    for _ in 0..2 {
        rogue_healed(dev, &untag, "the deleted tag to be put back");
    }
    // What EC2 would refuse is refused, with its reason.
    dev.canon()
        .args(["dev", "rogue", "replace-route", "--route-table", &rtb])
        .args(["--target", "nat-0000000000000000f"])
        .assert()
        .failure();
    dev.canon()
        .args(["dev", "rogue", "ec2", "launch-missiles", "--param", "n=1"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("unknown variant"));
    dev.canon()
        .args([
            "dev",
            "rogue",
            "ec2",
            "delete-route",
            "--param",
            "route_table",
        ])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("KEY=VALUE"));
}

/// The three-tier example on `canon dev`: built (NAT gateways, their
/// addresses, a route table per zone), its app tier's way out deleted by
/// hand and put back, then killed with nothing left behind.
fn three_tier_lives_and_goes(dev: &Dev) {
    dev.canon()
        .arg("run")
        .arg(example("ThreeTier.lw"))
        .args(["-a", "dev-shop", "--wait", "--json"])
        .assert()
        .success();
    let ids = cloud_ids(&dev.json(&["status", "dev-shop"]));
    assert_eq!(ids.len(), 19, "{ids:?}");
    assert!(ids.values().all(|id| !id.is_empty()), "{ids:?}");
    for (name, prefix) in [
        ("shop.network.natGateways[0]", "nat-"),
        ("shop.network.natGateways[1]", "nat-"),
        ("shop.network.natGateways[0].elasticIp", "eipalloc-"),
        ("shop.dataRoutes", "rtb-"),
    ] {
        assert!(ids[name].starts_with(prefix), "{name}: {ids:?}");
    }
    let app_routes = ids["shop.network.privateRoutes[1]"].clone();
    let out = ["delete-route", "--route-table", app_routes.as_str()];
    rogue_healed_in(
        dev,
        "dev-shop",
        &out,
        "the app tier's way out to be put back",
    );
    let plan = dev.json(&["kill", "dev-shop", "--dry-run"]);
    let types = story::request_types(&plan);
    for t in [
        "aws.ec2.delete_nat_gateway",
        "aws.ec2.release_address",
        "aws.ec2.delete_vpc",
    ] {
        assert!(types.contains(&t.to_string()), "{types:?}");
    }
    assert!(types.iter().all(|t| !t.contains("create")), "{types:?}");
    dev.canon()
        .args(["kill", "dev-shop", "-y", "--wait"])
        .assert()
        .success();
    story::wait_until("dev-shop to be gone", Duration::from_secs(60), || {
        !aliases(&dev.json(&["status"]))
            .iter()
            .any(|(a, _)| a == "dev-shop")
    });
}
