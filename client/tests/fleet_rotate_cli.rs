//! `canon fleet rotate` end to end, driven by the `canon` binary against a
//! one-node dev cluster on the simulated cloud (instances boot for 2 s and
//! pass their checks 2 s later): the dry run lists every member and the
//! steps and changes nothing; a rotation naming a fleet the process does
//! not have is refused; the rotation replaces every member exactly once,
//! rolling, with the fleet's capacity held at every look (never fewer
//! than `count` ready, never more than `count + maxSurge` instances), each
//! replacement recorded in history with the reason "requested"; then the
//! request is done and `canon status` no longer shows it.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use canon_cloud::sim::Faults;
use canon_cloud::{Cloud, Scope};
use canon_model::{Fid, Region, Spec};
use canon_node::dev::{DevCloud, DevCluster, DevOptions};
use serde_json::Value;

mod support;
use support::dev_cluster::{canon, canon_json, client_toml, wait_until_async};

const FLEET: &str = r#"import Canon.AWS.EC2 as EC2
import Canon.AWS.Pattern.Fleet as Fleet
import Canon.Core.AWS.Common as AWS

vpc: EC2.Vpc.new {cidrBlock: "10.0.0.0/16", region: AWS.Us-west-2}
a: EC2.Subnet.new {vpc: vpc, cidrBlock: "10.0.1.0/24", availabilityZone: AWS.A}
b: EC2.Subnet.new {vpc: vpc, cidrBlock: "10.0.2.0/24", availabilityZone: AWS.B}
web-sg: EC2.SecurityGroup.new {vpc: vpc, description: "web", ipPermissions: [EC2.http]}
web: Fleet.new {
  name: "web",
  image: "ami-0abcdef1234567890",
  subnets: [a, b],
  securityGroups: [web-sg],
  count: 3,
  maxAge: "6h",
  maxSurge: 1,
  maxUnavailable: 0,
  healthCheck: EC2.Ec2Status,
  healthGrace: "5m",
}
"#;

const COUNT: usize = 3;
const SURGE: usize = 1;

struct World {
    cluster: Option<DevCluster>,
    config: PathBuf,
    sim: std::sync::Arc<canon_cloud::SimCloud>,
    dir: tempfile::TempDir,
}

impl World {
    async fn start() -> World {
        let dir = tempfile::tempdir().unwrap();
        let cluster = DevCluster::start(DevOptions {
            nodes: 1,
            shards: 1,
            tls: false,
            tick: Duration::from_secs(1),
            cloud: DevCloud::Sim,
            ..DevOptions::new(dir.path().join("dev"))
        })
        .await
        .expect("the dev cluster starts");
        let sim = cluster.sim.clone().expect("a simulated cloud");
        sim.set_faults(Faults {
            instance_boot_delay: Duration::from_secs(2),
            status_check_delay: Duration::from_secs(2),
            ..Faults::none()
        });
        let config = client_toml(&cluster, dir.path());
        World {
            cluster: Some(cluster),
            config,
            sim,
            dir,
        }
    }

    async fn canon(&self, args: &[&str]) -> (i32, String, String) {
        canon(&self.config, args).await
    }

    async fn json(&self, args: &[&str]) -> Value {
        canon_json(&self.config, args).await
    }

    /// The instances `fid` owns in `scope`: (id, ready by EC2's checks).
    async fn instances(&self, scope: &Scope, fid: Fid) -> Vec<(String, bool)> {
        self.sim
            .observe(scope)
            .await
            .expect("observe")
            .owned_by(fid)
            .filter(|r| matches!(r.spec, Spec::Instance(_)))
            .map(|r| (r.cloud_id.clone(), r.life.is_some_and(|l| l.ready())))
            .collect()
    }

    async fn stop(mut self) {
        if let Some(c) = self.cluster.take() {
            c.shutdown().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_requested_rotation_replaces_every_member_with_capacity_held() {
    let w = World::start().await;
    let file = w.dir.path().join("fleet.lw");
    std::fs::write(&file, FLEET).unwrap();
    let (code, _, err) = w
        .canon(&["run", file.to_str().unwrap(), "-a", "web", "--wait"])
        .await;
    assert_eq!(code, 0, "run: {err}");
    let status = w.json(&["status", "web"]).await;
    let fid: Fid = status["fid"].as_str().unwrap().parse().unwrap();
    let scope = Scope {
        account: status["account"].as_str().unwrap().to_string(),
        region: Region::new("us-west-2"),
    };
    let all_ready = |v: &[(String, bool)]| v.len() == COUNT && v.iter().all(|(_, r)| *r);
    wait_until_async("the fleet ready", Duration::from_secs(60), || async {
        all_ready(&w.instances(&scope, fid).await)
    })
    .await;
    let old: BTreeSet<String> = w
        .instances(&scope, fid)
        .await
        .into_iter()
        .map(|(i, _)| i)
        .collect();

    // The dry run lists every member, one surge at a time: three steps.
    let planned = w.json(&["fleet", "rotate", "web", "--dry-run"]).await;
    let listed: BTreeSet<String> = planned["replace"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cloud_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, old, "{planned}");
    assert_eq!(planned["steps"], 3, "{planned}");
    let status = w.json(&["status", "web"]).await;
    assert_eq!(status["rotations"], serde_json::json!([]), "{status}");

    // A fleet the process does not have is refused, saying which it has.
    let (code, _, err) = w.canon(&["fleet", "rotate", "web", "--fleet", "db"]).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("no fleet named \"db\"") && err.contains("web"),
        "{err}"
    );

    let (code, out, err) = w.canon(&["fleet", "rotate", "web"]).await;
    assert_eq!(code, 0, "rotate: {err}");
    assert!(out.contains("rotation requested"), "{out}");

    // Every look: at least COUNT ready, at most COUNT + SURGE in all.
    let started = Instant::now();
    let mut launched: BTreeSet<String> = BTreeSet::new();
    loop {
        let now = w.instances(&scope, fid).await;
        let ready = now.iter().filter(|(_, r)| *r).count();
        assert!(ready >= COUNT, "capacity under the floor: {now:?}");
        assert!(now.len() <= COUNT + SURGE, "over the ceiling: {now:?}");
        launched.extend(
            now.iter()
                .map(|(i, _)| i.clone())
                .filter(|i| !old.contains(i)),
        );
        let replaced = now.iter().all(|(i, _)| !old.contains(i));
        if replaced && all_ready(&now) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "not every member was replaced: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(launched.len(), COUNT, "each member once: {launched:?}");

    // The request is done, and each replacement says why in history.
    wait_until_async("the request done", Duration::from_secs(30), || async {
        w.json(&["status", "web"]).await["rotations"] == serde_json::json!([])
    })
    .await;
    let history = w.json(&["history", "web"]).await;
    let requested: BTreeSet<&str> = history["drift"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["property"] == "rotation" && d["declared"] == "requested")
        .filter_map(|d| d["cloud_id"].as_str())
        .collect();
    let old_ids: BTreeSet<&str> = old.iter().map(String::as_str).collect();
    assert_eq!(requested, old_ids, "{history}");
    // And the replacement history names each, once, with its reason.
    let replaced: Vec<(&str, &str)> = history["replacements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["cloud_id"].as_str().unwrap(),
                r["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(replaced.len(), COUNT, "{history}");
    assert!(replaced
        .iter()
        .all(|(i, why)| old_ids.contains(i) && *why == "requested"));
    w.stop().await;
}

/// [`FLEET`] of two without surge (one member at a time), checked by a
/// TCP connect to 8080, of `image`.
fn tcp_fleet(image: &str) -> String {
    FLEET
        .replace("count: 3", "count: 2")
        .replace("maxSurge: 1", "maxSurge: 0")
        .replace("maxUnavailable: 0", "maxUnavailable: 1")
        .replace("EC2.Ec2Status", "EC2.Tcp(8080)")
        .replace("ami-0abcdef1234567890", image)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dry_runs_plan_with_the_tcp_probes_the_actor_makes() {
    let w = World::start().await;
    let file = w.dir.path().join("tcp.lw");
    std::fs::write(&file, tcp_fleet("ami-0abcdef1234567890")).unwrap();
    let (code, _, err) = w
        .canon(&["run", file.to_str().unwrap(), "-a", "web", "--wait"])
        .await;
    assert_eq!(code, 0, "run: {err}");
    let status = w.json(&["status", "web"]).await;
    let fid: Fid = status["fid"].as_str().unwrap().parse().unwrap();
    let scope = Scope {
        account: status["account"].as_str().unwrap().to_string(),
        region: Region::new("us-west-2"),
    };
    wait_until_async("the fleet ready", Duration::from_secs(60), || async {
        let v = w.instances(&scope, fid).await;
        v.len() == 2 && v.iter().all(|(_, r)| *r)
    })
    .await;

    // An image change: the dry run reaches both members on 8080 as the
    // actor would, so one member may go at a time: one launch, one
    // terminate (planned without the probe, no member would be ready and
    // nothing would go).
    let changed = w.dir.path().join("tcp2.lw");
    std::fs::write(&changed, tcp_fleet("ami-0fedcba9876543210")).unwrap();
    let changed = changed.to_str().unwrap();
    let count = |dry: &Value, kind: &str| {
        support::story::request_types(&dry["requests"])
            .iter()
            .filter(|t| t.as_str() == kind)
            .count()
    };
    let dry = w.json(&["update", "web", changed, "--dry-run"]).await;
    assert_eq!(count(&dry, "aws.ec2.run_instances"), 1, "{dry}");
    assert_eq!(count(&dry, "aws.ec2.terminate_instances"), 1, "{dry}");

    // Nothing answers on 8080 now: no member is ready, so the actor would
    // replace none (the floor is one ready), and the dry run says so.
    w.sim.set_faults(Faults {
        tcp_unreachable: true,
        ..w.sim.faults()
    });
    let dry = w.json(&["update", "web", changed, "--dry-run"]).await;
    assert_eq!(count(&dry, "aws.ec2.run_instances"), 0, "{dry}");
    w.stop().await;
}
