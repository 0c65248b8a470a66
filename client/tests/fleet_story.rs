//! The fleet's dev story (issue #18 §5), end to end: a fleet of four with
//! `maxAge: "1m"` on a three-node `canon dev`-style cluster (1 s tick,
//! simulated cloud; instances boot for 2 s and pass their checks 2 s
//! later) rotates continuously — its members' staggered rotation times
//! put one replacement every 15 s — with its capacity held at every look
//! at the cloud (never fewer than `count − maxUnavailable` ready, never
//! more than `count + maxSurge` instances). Then the node leading the
//! fleet's shard is stopped in the middle of a replacement; the new leader
//! resumes from the replicated intent: capacity still holds, the rotation
//! goes on, and once it settles every instance carrying the process's
//! ownership tag is bound (nothing orphaned), the fleet is back at its
//! count (nothing doubled), and the history names each replacement's
//! reason, age.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use canon_cloud::sim::Faults;
use canon_cloud::{Cloud, Scope, SimCloud};
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
  count: 4,
  maxAge: "1m",
  maxSurge: 1,
  maxUnavailable: 0,
  healthCheck: EC2.Ec2Status,
  healthGrace: "5m",
}
"#;

const COUNT: usize = 4;
const SURGE: usize = 1;
const UNAVAILABLE: usize = 0;

/// What the sampler saw of the fleet's instances in the cloud.
#[derive(Debug, Default)]
struct Seen {
    /// Looks taken.
    looks: u64,
    /// Every instance id ever seen.
    ids: BTreeSet<String>,
    /// The last look: (id, ready).
    last: Vec<(String, bool)>,
    /// The most instances at one look.
    most: usize,
    /// Looks that broke the floor or the ceiling, as found.
    broken: Vec<String>,
}

/// The fleet's instances in the cloud: (id, ready by EC2's checks).
async fn instances(sim: &SimCloud, scope: &Scope, fid: Fid) -> Vec<(String, bool)> {
    sim.observe(scope)
        .await
        .expect("observe")
        .owned_by(fid)
        .filter(|r| matches!(r.spec, Spec::Instance(_)))
        .map(|r| (r.cloud_id.clone(), r.life.is_some_and(|l| l.ready())))
        .collect()
}

/// Looks at the cloud every 250 ms (four times a tick) until `stop`,
/// recording each look and any break of the capacity rules.
fn sample(
    sim: Arc<SimCloud>,
    scope: Scope,
    fid: Fid,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let now = instances(&sim, &scope, fid).await;
            let ready = now.iter().filter(|(_, r)| *r).count();
            {
                let mut s = seen.lock().unwrap();
                s.looks += 1;
                if ready < COUNT - UNAVAILABLE {
                    s.broken
                        .push(format!("{ready} ready, under the floor: {now:?}"));
                }
                if now.len() > COUNT + SURGE {
                    s.broken.push(format!("over the ceiling: {now:?}"));
                }
                s.most = s.most.max(now.len());
                s.ids.extend(now.iter().map(|(i, _)| i.clone()));
                s.last = now;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
}

/// The cloud ids `canon status` shows bound to the process's instances.
fn bound(status: &Value) -> BTreeSet<String> {
    status["resources"]
        .as_object()
        .expect("resources")
        .values()
        .filter(|r| {
            r["kind"]
                .as_str()
                .is_some_and(|k| k.to_ascii_lowercase().contains("instance"))
        })
        .filter_map(|r| r["cloud_id"].as_str())
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .collect()
}

struct World {
    cluster: DevCluster,
    config: PathBuf,
    sim: Arc<SimCloud>,
    dir: tempfile::TempDir,
}

async fn start() -> World {
    let dir = tempfile::tempdir().unwrap();
    let cluster = DevCluster::start(DevOptions {
        nodes: 3,
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
        cluster,
        config,
        sim,
        dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_one_minute_fleet_rotates_with_capacity_held_through_a_shard_leader_failover() {
    let started = Instant::now();
    let mut w = start().await;
    let file = w.dir.path().join("fleet.lw");
    std::fs::write(&file, FLEET).unwrap();
    let (code, _, err) = canon(
        &w.config,
        &["run", file.to_str().unwrap(), "-a", "web", "--wait"],
    )
    .await;
    assert_eq!(code, 0, "run: {err}");
    let status = canon_json(&w.config, &["status", "web"]).await;
    let fid: Fid = status["fid"].as_str().unwrap().parse().unwrap();
    let scope = Scope {
        account: status["account"].as_str().unwrap().to_string(),
        region: Region::new("us-west-2"),
    };
    let all_ready = |v: &[(String, bool)]| v.len() == COUNT && v.iter().all(|(_, r)| *r);
    wait_until_async("the fleet built", Duration::from_secs(30), || async {
        all_ready(&instances(&w.sim, &scope, fid).await)
    })
    .await;
    let first: BTreeSet<String> = instances(&w.sim, &scope, fid)
        .await
        .into_iter()
        .map(|(i, _)| i)
        .collect();

    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = sample(
        w.sim.clone(),
        scope.clone(),
        fid,
        seen.clone(),
        stop.clone(),
    );
    let check = |when: &str| {
        let s = seen.lock().unwrap();
        assert!(s.broken.is_empty(), "{when}: {:#?}", s.broken);
    };

    // It rotates by age: one member replaced (its old instance gone),
    // then the next replacement under way, its new instance surging.
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let (replaced, surging) = {
            let s = seen.lock().unwrap();
            let gone = first
                .iter()
                .filter(|i| !s.last.iter().any(|(l, _)| l == *i));
            (gone.count(), s.last.len() == COUNT + SURGE)
        };
        check("rotating");
        if replaced >= 1 && surging {
            break;
        }
        assert!(Instant::now() < deadline, "no rotation under way");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Mid-rotation, the node running the fleet's actor goes.
    let before_kill: BTreeSet<String> = seen.lock().unwrap().ids.clone();
    let stopped = w.cluster.stop_shard_leader("web").await;
    assert!(stopped.is_some(), "no node led the fleet's shard");

    // The new leader goes on rotating: an instance launched after the
    // failover serves, and the fleet settles at its count, every instance
    // it owns bound (looked at before and after reading the bindings, so
    // no replacement slipped in between).
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut last_bound = BTreeSet::new();
    loop {
        check("after the failover");
        let newer = {
            let s = seen.lock().unwrap();
            s.last
                .iter()
                .any(|(i, ready)| *ready && !before_kill.contains(i))
        };
        let owned = instances(&w.sim, &scope, fid).await;
        if newer && all_ready(&owned) {
            last_bound = bound(&canon_json(&w.config, &["status", "web"]).await);
            let again = instances(&w.sim, &scope, fid).await;
            let ids: BTreeSet<String> = owned.iter().map(|(i, _)| i.clone()).collect();
            let again: BTreeSet<String> = again.into_iter().map(|(i, _)| i).collect();
            if ids == again && last_bound == ids {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "never settled after the failover: owned {owned:?}, bound {last_bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    sampler.await.unwrap();
    check("throughout");

    {
        let s = seen.lock().unwrap();
        assert!(s.most <= COUNT + SURGE, "doubled: {} at once", s.most);
        assert!(
            s.ids.len() >= COUNT + 2,
            "at least two replacements: {:?}",
            s.ids
        );
        eprintln!(
            "fleet story: {} looks, {} instances seen, at most {} at once, {:?} in all",
            s.looks,
            s.ids.len(),
            s.most,
            started.elapsed()
        );
    }

    // Each replacement is in history, for its age.
    let history = canon_json(&w.config, &["history", "web"]).await;
    let reasons: Vec<&str> = history["replacements"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["reason"].as_str())
        .collect();
    assert!(
        reasons.len() >= 2 && reasons.iter().all(|r| *r == "age"),
        "{history}"
    );
    w.cluster.shutdown().await;
}
