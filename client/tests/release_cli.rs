//! `canon release` and `canon property` end to end, driven by the `canon`
//! binary against a dev cluster on the simulated cloud and one on moto
//! (the AWS adapter): run then release leaves every resource in the cloud
//! without Canon's ownership tag (and the alias free), while run then kill
//! deletes them; a locked process refuses kill and update (exit 1, saying
//! how to unlock) and changes nothing; with enforcement off a rogue change
//! is recorded as drift but stays, and turning enforcement on heals it.
//! What the cloud holds is read through the cloud adapter itself: a
//! resource still there can be tagged for another owner and observed as
//! theirs (an import would do the same), one deleted cannot. And `canon
//! run --import`: what a released process left is adopted by a new one
//! (the dry run maps each declaration and creates nothing; the run binds
//! the same cloud ids), refused to a third (owned, naming the owner), and
//! deleted by the importer's kill.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use canon_cloud::{AwsCloud, AwsConfig, Cloud, ExecContext, Scope};
use canon_model::{Action, CloudRef, Fid, LogicalId, Region, Request, OWNERSHIP_TAG};
use canon_node::dev::{DevCloud, DevCluster, DevOptions};
use serde_json::Value;

mod support;
use support::dev_cluster::{canon, canon_json, client_toml, wait_until_async};
use support::rogue::{add_all_traffic_rule, admits_all};
use support::story::example;

#[path = "../../cloud/tests/support/moto.rs"]
mod moto;

/// A one-node dev cluster, its admin's client.toml, and the cloud it
/// drives, reached directly.
struct World {
    cluster: Option<DevCluster>,
    config: PathBuf,
    cloud: Arc<dyn Cloud>,
    _dir: tempfile::TempDir,
}

impl World {
    async fn start(cloud: DevCloud, aws: Option<Arc<dyn Cloud>>) -> World {
        let dir = tempfile::tempdir().unwrap();
        let cluster = DevCluster::start(DevOptions {
            nodes: 1,
            shards: 1,
            tls: false,
            tick: Duration::from_secs(1),
            cloud,
            ..DevOptions::new(dir.path().join("dev"))
        })
        .await
        .expect("the dev cluster starts");
        let config = client_toml(&cluster, dir.path());
        let cloud = match (aws, &cluster.sim) {
            (Some(aws), _) => aws,
            (None, Some(sim)) => sim.clone() as Arc<dyn Cloud>,
            (None, None) => panic!("a simulated cloud or moto"),
        };
        World {
            cluster: Some(cluster),
            config,
            cloud,
            _dir: dir,
        }
    }

    async fn sim() -> World {
        World::start(DevCloud::Sim, None).await
    }

    /// On moto: the cluster's AWS adapter reads the standard variables,
    /// set here once (the moto guard keeps one moto world at a time).
    async fn moto(m: &moto::Moto) -> World {
        for (k, v) in [
            ("AWS_ENDPOINT_URL", m.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-west-2"),
        ] {
            std::env::set_var(k, v);
        }
        let sdk = moto::sdk_config(&m.endpoint).await;
        let aws: Arc<dyn Cloud> = Arc::new(AwsCloud::from_sdk_config(sdk, AwsConfig::default()));
        World::start(DevCloud::Aws, Some(aws)).await
    }

    async fn canon(&self, args: &[&str]) -> (i32, String, String) {
        canon(&self.config, args).await
    }

    /// `canon ARGS --json`, which must succeed.
    async fn json(&self, args: &[&str]) -> Value {
        canon_json(&self.config, args).await
    }

    /// `canon run FILE -a ALIAS --wait`; the process's FID, scope and the
    /// cloud id of each resource.
    async fn run(&self, file: &str, alias: &str) -> (Fid, Scope, BTreeSet<String>) {
        let path = example(file);
        let (code, _, err) = self
            .canon(&["run", path.to_str().unwrap(), "-a", alias, "--wait"])
            .await;
        assert_eq!(code, 0, "run {alias}: {err}");
        let status = self.json(&["status", alias]).await;
        let ids = cloud_ids(&status);
        assert!(ids.len() >= 5, "{status}");
        let fid: Fid = status["fid"].as_str().unwrap().parse().unwrap();
        let scope = Scope {
            account: status["account"].as_str().unwrap().to_string(),
            region: Region::new("us-west-2"),
        };
        (fid, scope, ids)
    }

    /// The cloud ids among `ids` that are still there: each is tagged for
    /// a new owner and observed as theirs.
    async fn still_there(&self, scope: &Scope, ids: &BTreeSet<String>) -> BTreeSet<String> {
        let other = Fid::random();
        let ctx = ExecContext::new(scope.account.clone(), "probe", 0, 0);
        for id in ids {
            let owner = LogicalId::new(other, id);
            let request = Request {
                target: owner,
                part: None,
                region: scope.region.clone(),
                action: Action::CreateTags {
                    resource: CloudRef::Id(id.clone()),
                    tags: [(OWNERSHIP_TAG.to_string(), owner.to_string())].into(),
                },
            };
            // A deleted resource refuses the tag (or takes it nowhere).
            let _ = self.cloud.execute(&request, &ctx).await;
        }
        self.owned(scope, other).await
    }

    /// The cloud ids `fid`'s ownership tag is on.
    async fn owned(&self, scope: &Scope, fid: Fid) -> BTreeSet<String> {
        self.cloud
            .observe(scope)
            .await
            .expect("observe")
            .owned_by(fid)
            .map(|r| r.cloud_id.clone())
            .collect()
    }

    async fn stop(mut self) {
        if let Some(c) = self.cluster.take() {
            c.shutdown().await;
        }
    }
}

fn cloud_ids(status: &Value) -> BTreeSet<String> {
    status["resources"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|r| r["cloud_id"].as_str())
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

/// The (alias, state) rows of `canon status [--all] --json`.
async fn states(w: &World, all: bool) -> Vec<(String, String)> {
    let args: &[&str] = if all {
        &["status", "--all"]
    } else {
        &["status"]
    };
    w.json(args)
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["alias"].as_str().unwrap().to_string(),
                p["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Run then release: every resource stays, untagged; the process is
/// Released, its alias free. Run then kill: every resource is gone.
async fn release_keeps_and_kill_deletes(w: &World) {
    let (fid, scope, ids) = w.run("VPC-sam.lw", "rel-sam").await;
    let file = example("VPC-sam.lw");
    let file = file.to_str().unwrap();
    // The alias is taken while the process lives.
    let (code, _, _) = w.canon(&["run", file, "-a", "rel-sam", "--dry-run"]).await;
    assert_eq!(code, 5);

    // The dry run lists what would be released and changes nothing.
    let listed = w.json(&["release", "rel-sam", "--dry-run"]).await;
    let listed_ids: BTreeSet<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert!(!r["kind"].as_str().unwrap().is_empty(), "{r}");
            r["cloud_id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(listed_ids, ids);
    let (code, text, _) = w.canon(&["release", "rel-sam", "--dry-run"]).await;
    assert_eq!(code, 0);
    assert!(text.contains("Kind") && text.contains("vpc-"), "{text}");
    assert_eq!(w.owned(&scope, fid).await, ids, "a dry run changes nothing");

    let (code, _, err) = w.canon(&["release", "rel-sam", "--wait"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(states(w, true)
        .await
        .contains(&("rel-sam".into(), "Released".into())));
    assert!(!states(w, false).await.iter().any(|(a, _)| a == "rel-sam"));
    assert!(w.owned(&scope, fid).await.is_empty(), "still tagged");
    assert_eq!(w.still_there(&scope, &ids).await, ids, "nothing deleted");
    // The alias is free for a new run; nothing of the old one is adopted.
    let dry = w.json(&["run", file, "-a", "rel-sam", "--dry-run"]).await;
    assert!(dry.to_string().contains("create_vpc"), "{dry}");
    // The audit names the release.
    let (code, audit, err) = w.canon(&["audit", "--alias", "rel-sam"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(audit.contains("process.release"), "{audit}");

    let (fid, scope, ids) = w.run("VPC-sam.lw", "kill-sam").await;
    let (code, _, err) = w.canon(&["kill", "kill-sam", "-y", "--wait"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(w.owned(&scope, fid).await.is_empty());
    assert!(w.still_there(&scope, &ids).await.is_empty(), "kill deletes");
}

/// Run then release, then `run --import` of the same composition under a
/// new alias adopts every resource; another import is refused naming the
/// owner; a kill of the importer deletes them.
async fn import_adopts_what_a_release_left(w: &World) {
    let (_, scope, ids) = w.run("VPC-sam.lw", "imp-a").await;
    let (code, _, err) = w.canon(&["release", "imp-a", "--wait"]).await;
    assert_eq!(code, 0, "{err}");
    let file = example("VPC-sam.lw");
    let file = file.to_str().unwrap();

    let dry = w
        .json(&["run", file, "-a", "imp-b", "--import", "--dry-run"])
        .await;
    let adopts: BTreeSet<String> = dry["import"]
        .as_array()
        .unwrap_or_else(|| panic!("{dry}"))
        .iter()
        .filter_map(|r| r["adopts"].as_str().map(str::to_string))
        .collect();
    assert_eq!(adopts, ids, "{dry}");
    let requests = dry["requests"].to_string();
    assert!(!requests.contains("create_vpc"), "{requests}");
    assert!(requests.contains("create_tags"), "{requests}");
    assert!(
        w.still_there(&scope, &BTreeSet::new()).await.is_empty(),
        "a dry run tags nothing"
    );

    let (code, _, err) = w
        .canon(&["run", file, "-a", "imp-b", "--import", "--wait"])
        .await;
    assert_eq!(code, 0, "{err}");
    let status = w.json(&["status", "imp-b"]).await;
    assert_eq!(cloud_ids(&status), ids, "the same resources, adopted");
    let fid: Fid = status["fid"].as_str().unwrap().parse().unwrap();
    assert_eq!(w.owned(&scope, fid).await, ids);

    let (code, _, err) = w
        .canon(&["run", file, "-a", "imp-c", "--import", "--dry-run"])
        .await;
    assert_ne!(code, 0);
    assert!(err.contains("owned by process imp-b"), "{err}");

    let (code, _, err) = w.canon(&["kill", "imp-b", "-y", "--wait"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(w.still_there(&scope, &ids).await.is_empty(), "kill deletes");
}

/// The drift events of `canon history --json` not healed yet.
fn open(history: &Value) -> Vec<Value> {
    history["drift"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["healed"].is_null())
        .cloned()
        .collect()
}

/// A lock refuses kill and update; enforcement off records drift and
/// leaves it; on again heals it.
async fn properties(w: &World) {
    let (_, scope, ids) = w.run("VPC-sam.lw", "prop-sam").await;
    let status = w.json(&["status", "prop-sam"]).await;
    assert_eq!(status["properties"]["lock"], "off");
    assert_eq!(status["properties"]["enforcement"], "on");
    let hash = status["source_hash"].clone();

    let (code, _, err) = w.canon(&["property", "prop-sam", "lock", "on"]).await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = w.canon(&["kill", "prop-sam", "-y"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("locked") && err.contains("canon property prop-sam lock off"),
        "{err}"
    );
    let ssh = example("VPC-sam-ssh.lw");
    let (code, _, err) = w
        .canon(&["update", "prop-sam", ssh.to_str().unwrap()])
        .await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("locked"), "{err}");
    let status = w.json(&["status", "prop-sam"]).await;
    assert_eq!(status["state"], "Running");
    assert_eq!(status["source_hash"], hash, "the update changed nothing");
    assert_eq!(status["properties"]["lock"], "on");
    assert_eq!(cloud_ids(&status), ids, "the kill changed nothing");
    let (_, table, _) = w.canon(&["status"]).await;
    assert!(table.contains("Running (locked)"), "{table}");
    let (code, _, err) = w.canon(&["property", "prop-sam", "lock", "off"]).await;
    assert_eq!(code, 0, "{err}");

    // Enforcement off: a rogue rule is recorded, alerted, and stays.
    let (code, _, err) = w
        .canon(&["property", "prop-sam", "enforcement", "off"])
        .await;
    assert_eq!(code, 0, "{err}");
    let sg = status["resources"]["dev-sam-sg"]["cloud_id"]
        .as_str()
        .unwrap()
        .to_string();
    add_all_traffic_rule(w.cloud.as_ref(), &scope, &sg).await;
    wait_until_async(
        "the drift to be recorded",
        Duration::from_secs(30),
        || async move { !open(&w.json(&["history", "prop-sam"]).await).is_empty() },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let history = w.json(&["history", "prop-sam"]).await;
    assert_eq!(open(&history).len(), 1, "recorded once: {history}");
    assert_eq!(history["process"]["properties"]["enforcement"], "off");
    assert!(
        admits_all(w.cloud.as_ref(), &scope, &sg).await,
        "healed while off"
    );
    let status = w.json(&["status", "prop-sam"]).await;
    assert_eq!(status["properties"]["enforcement"], "off");

    // On again: healed.
    let (code, _, err) = w
        .canon(&["property", "prop-sam", "enforcement", "on"])
        .await;
    assert_eq!(code, 0, "{err}");
    wait_until_async(
        "the drift to be healed",
        Duration::from_secs(30),
        || async move { open(&w.json(&["history", "prop-sam"]).await).is_empty() },
    )
    .await;
    assert!(
        !admits_all(w.cloud.as_ref(), &scope, &sg).await,
        "not healed once on"
    );
    let (_, audit, _) = w.canon(&["audit", "--alias", "prop-sam"]).await;
    assert!(
        audit.contains("lock on") && audit.contains("enforcement off"),
        "{audit}"
    );

    let (code, _, err) = w.canon(&["kill", "prop-sam", "-y", "--wait"]).await;
    assert_eq!(code, 0, "unlocked, kill works: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_and_kill_on_the_simulated_cloud() {
    let w = World::sim().await;
    release_keeps_and_kill_deletes(&w).await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_and_kill_on_moto() {
    let m = moto::moto();
    let w = World::moto(&m).await;
    release_keeps_and_kill_deletes(&w).await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_on_the_simulated_cloud() {
    let w = World::sim().await;
    import_adopts_what_a_release_left(&w).await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_on_moto() {
    let m = moto::moto();
    let w = World::moto(&m).await;
    import_adopts_what_a_release_left(&w).await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn properties_on_the_simulated_cloud() {
    let w = World::sim().await;
    properties(&w).await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn properties_on_moto() {
    let m = moto::moto();
    let w = World::moto(&m).await;
    properties(&w).await;
    w.stop().await;
}
