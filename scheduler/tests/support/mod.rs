//! Test support: a real Raft cluster on loopback, a simulated cloud, the
//! scheduler on every node, and the commands the API will send.

#![allow(dead_code)]

pub mod bench;
pub mod intercept;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use canon_cloud::sim::TokioClock;
use canon_cloud::{Scope, SimCloud};
use canon_model::*;
use canon_raft::local::LocalCluster;
use canon_raft::state::ProcessRecord;
use canon_raft::{
    group_of_alias, Command, Composition, Consistency, RaftSettings, Rejection, Request, Response,
};
use canon_scheduler::{
    Alert, AlertSink, Alerts, Decoder, Scheduler, SchedulerConfig, SchedulerParts, SystemClock,
};

pub const ACCOUNT: &str = "087820496137";
pub const REGION: &str = "us-west-2";

/// The scheduler settings of a test that wants its ticks and retries
/// quick: a tick of `tick`, 10 % jitter, backoff from 100 ms to 2 s.
pub fn quick_config(tick: Duration) -> canon_scheduler::SchedulerConfig {
    canon_scheduler::SchedulerConfig {
        tick_interval: tick,
        jitter: 0.1,
        backoff_base: Duration::from_millis(100),
        backoff_cap: Duration::from_secs(2),
        ..canon_scheduler::SchedulerConfig::default()
    }
}

pub fn scope() -> Scope {
    Scope::new(ACCOUNT, REGION)
}

/// Compositions in tests are the declaration itself, as JSON.
pub fn encode(d: &DesiredState) -> Composition {
    let bytes = serde_json::to_vec(d).unwrap();
    Composition {
        source_hash: format!("{:x}", bytes.len()),
        bytes,
    }
}

pub fn decoder() -> Decoder {
    Arc::new(|c: &Composition, fid: Fid| {
        let d: DesiredState = serde_json::from_slice(&c.bytes).map_err(|e| e.to_string())?;
        if d.fid != fid {
            return Err(format!("composition is for {} not {fid}", d.fid));
        }
        Ok(d)
    })
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

pub fn web(port: i32) -> Rule<Ref> {
    demo::web_rule(port)
}

/// The demo's network (`canon_model::demo`) without DHCP options — VPC,
/// gateway, two public subnets, public route table — and its web-facing
/// group `web-sg`, with SSH if `ssh`; named after the process.
pub fn network(fid: Fid, name: &str, ssh: bool) -> DesiredState {
    network_in(REGION, fid, name, ssh)
}

/// [`network`] in `region`.
pub fn network_in(region: &str, fid: Fid, name: &str, ssh: bool) -> DesiredState {
    demo::DemoNetwork {
        prefix: "net".into(),
        group_path: "web-sg".into(),
        group_name: format!("{name}-sg"),
        name_tag: name.into(),
        environment: name.into(),
        dhcp_domain: None,
        ssh,
        region: region.into(),
    }
    .build(fid)
    .unwrap()
}

/// Every alert the schedulers sent: (event, alias, drift id).
#[derive(Default)]
pub struct Heard(std::sync::Mutex<Vec<(String, String, u64)>>);

impl AlertSink for Heard {
    fn send(&self, a: &Alert) {
        if let Ok(mut heard) = self.0.lock() {
            heard.push((a.event.to_string(), a.alias.clone(), a.drift));
        }
    }
}

impl Heard {
    /// The alerts `event` about `alias` so far.
    pub fn of(&self, event: &str, alias: &str) -> Vec<u64> {
        let heard = self.0.lock().unwrap();
        heard
            .iter()
            .filter(|(e, a, _)| e == event && a == alias)
            .map(|(_, _, d)| *d)
            .collect()
    }
}

/// A cluster of `n` nodes, each running a scheduler over one shared
/// simulated cloud.
pub struct Harness {
    pub cluster: LocalCluster,
    pub cloud: Arc<SimCloud>,
    pub schedulers: Vec<Option<Scheduler>>,
    /// The cloud the schedulers act through: `cloud` itself, or what a
    /// test wrapped it in ([`Harness::start_through`]).
    pub acting: Arc<dyn canon_cloud::Cloud>,
    pub config: SchedulerConfig,
    /// What the schedulers alerted.
    pub heard: Arc<Heard>,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn start(n: usize, shards: u32, config: SchedulerConfig) -> Harness {
        Self::start_with_cloud_epoch(n, shards, config, 1_763_769_600_000).await
    }

    /// [`Harness::start`] with the simulated cloud's clock starting at
    /// `epoch_ms` (`now_ms()` puts it on the schedulers' clock, which
    /// instances' ages need).
    pub async fn start_with_cloud_epoch(
        n: usize,
        shards: u32,
        config: SchedulerConfig,
        epoch_ms: u64,
    ) -> Harness {
        Self::start_through(n, shards, config, epoch_ms, |c| c).await
    }

    /// [`Harness::start_with_cloud_epoch`] with the schedulers acting
    /// through what `through` makes of the simulated cloud (a test's
    /// wrapper that watches or disturbs their calls).
    pub async fn start_through(
        n: usize,
        shards: u32,
        config: SchedulerConfig,
        epoch_ms: u64,
        through: impl FnOnce(Arc<dyn canon_cloud::Cloud>) -> Arc<dyn canon_cloud::Cloud>,
    ) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let settings = RaftSettings {
            heartbeat: Duration::from_millis(50),
            election_min: Duration::from_millis(300),
            election_max: Duration::from_millis(600),
            ..RaftSettings::default()
        };
        let cluster = LocalCluster::start(dir.path(), n, shards, settings)
            .await
            .unwrap();
        cluster.bootstrap(Duration::from_secs(10)).await.unwrap();
        for g in cluster.groups() {
            cluster
                .wait_leader(g, Duration::from_secs(10))
                .await
                .unwrap();
        }
        let cloud = Arc::new(SimCloud::with_clock(7, Arc::new(TokioClock::new(epoch_ms))));
        let acting = through(cloud.clone());
        let mut h = Harness {
            cluster,
            cloud,
            acting,
            schedulers: Vec::new(),
            config,
            heard: Arc::default(),
            _dir: dir,
        };
        for i in 0..n {
            let s = h.scheduler(i);
            h.schedulers.push(Some(s));
        }
        h
    }

    fn scheduler(&self, i: usize) -> Scheduler {
        let node = self.cluster.node(i).unwrap().clone();
        Scheduler::start(SchedulerParts {
            config: SchedulerConfig {
                node_id: node.id(),
                ..self.config.clone()
            },
            node,
            cloud: self.acting.clone(),
            decoder: decoder(),
            clock: Arc::new(SystemClock),
            alerts: Alerts::log_only().with(self.heard.clone()),
            labeller: None,
        })
    }

    /// Kills node `i` and its scheduler.
    pub async fn kill(&mut self, i: usize) {
        if let Some(s) = self.schedulers[i].take() {
            s.shutdown().await;
        }
        self.cluster.kill(i).await.unwrap();
    }

    /// Crashes node `i`: its Raft node stops at once; its actors find out
    /// only when they next touch the log (as after a real crash, a cloud
    /// call already in flight still lands).
    pub async fn crash(&mut self, i: usize) {
        self.cluster.kill(i).await.unwrap();
        if let Some(s) = self.schedulers[i].take() {
            s.shutdown().await;
        }
    }

    /// The node leading the shard of `alias`.
    pub async fn leader_of(&self, alias: &str) -> usize {
        let group = group_of_alias(alias, self.cluster.shards());
        self.cluster
            .wait_leader(group, Duration::from_secs(10))
            .await
            .unwrap()
    }

    pub async fn restart(&mut self, i: usize) {
        self.cluster.restart(i).await.unwrap();
        self.schedulers[i] = Some(self.scheduler(i));
    }

    fn any_node(&self) -> &canon_raft::RaftNode {
        (0..self.cluster.len())
            .find_map(|i| self.cluster.node(i))
            .expect("a running node")
    }

    pub async fn propose(&self, alias: &str, command: Command) -> Response {
        self.propose_at(alias, now_ms(), command).await
    }

    /// [`Harness::propose`] stamped with the time `at` (the log's time of
    /// what the command records).
    pub async fn propose_at(&self, alias: &str, at: u64, command: Command) -> Response {
        let group = group_of_alias(alias, self.cluster.shards());
        self.any_node()
            .propose(group, Request::new(at, command))
            .await
            .unwrap()
    }

    /// What the API does for `canon run`: create the process and its RUN job.
    pub async fn run(&self, alias: &str, d: &DesiredState) {
        self.run_ticking(alias, d, None).await
    }

    /// `run` with the process's own tick interval.
    pub async fn run_ticking(&self, alias: &str, d: &DesiredState, tick_ms: Option<u64>) {
        self.run_importing(alias, d, tick_ms, Default::default())
            .await
    }

    /// `run --import`, adopting `imports` (declaration → cloud id).
    pub async fn run_importing(
        &self,
        alias: &str,
        d: &DesiredState,
        tick_ms: Option<u64>,
        imports: BTreeMap<LogicalId, String>,
    ) {
        let r = self
            .propose(
                alias,
                Command::ProcessCreated {
                    imports,
                    fid: d.fid,
                    alias: alias.into(),
                    account: ACCOUNT.into(),
                    composition: encode(d),
                    tick_interval_ms: tick_ms,
                },
            )
            .await;
        assert!(r.is_applied(), "{r:?}");
        self.start_job(alias, d.fid, JobKind::Run).await;
    }

    /// Starts a job whose id is the time now, bumped past a job the
    /// scheduler started in the same millisecond (as the API does).
    pub async fn start_job(&self, alias: &str, fid: Fid, kind: JobKind) -> u64 {
        let mut job = now_ms();
        loop {
            let r = self
                .propose(
                    alias,
                    Command::JobStarted {
                        fid,
                        job,
                        kind,
                        message: String::new(),
                    },
                )
                .await;
            match r {
                Response::Rejected(Rejection::JobExists { .. }) => job += 1,
                r => {
                    assert!(r.is_applied(), "{r:?}");
                    return job;
                }
            }
        }
    }

    pub async fn update(&self, alias: &str, d: &DesiredState) -> u64 {
        self.update_ticking(alias, d, None).await
    }

    /// `update` that also sets the process's tick interval.
    pub async fn update_ticking(&self, alias: &str, d: &DesiredState, tick_ms: Option<u64>) -> u64 {
        let r = self
            .propose(
                alias,
                Command::ProcessUpdated {
                    fid: d.fid,
                    composition: encode(d),
                    tick_interval_ms: tick_ms,
                },
            )
            .await;
        assert!(r.is_applied(), "{r:?}");
        self.start_job(alias, d.fid, JobKind::Update).await
    }

    pub async fn kill_process(&self, alias: &str, fid: Fid) -> u64 {
        let r = self
            .propose(
                alias,
                Command::ProcessStateChanged {
                    fid,
                    state: ProcessState::Killing,
                },
            )
            .await;
        assert!(r.is_applied(), "{r:?}");
        self.start_job(alias, fid, JobKind::Kill).await
    }

    pub async fn set_state(&self, alias: &str, fid: Fid, state: ProcessState) {
        let r = self
            .propose(alias, Command::ProcessStateChanged { fid, state })
            .await;
        assert!(r.is_applied(), "{r:?}");
    }

    pub async fn process(&self, alias: &str, fid: Fid) -> ProcessRecord {
        let group = group_of_alias(alias, self.cluster.shards());
        self.any_node()
            .read(group, Consistency::Linearizable, |s| {
                s.process(&fid).cloned()
            })
            .await
            .unwrap()
            .expect("process exists")
    }

    /// Waits until `check` holds for the process, or panics after `within`.
    pub async fn wait_for<F>(
        &self,
        alias: &str,
        fid: Fid,
        within: Duration,
        what: &str,
        check: F,
    ) -> ProcessRecord
    where
        F: Fn(&ProcessRecord) -> bool,
    {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let p = self.process(alias, fid).await;
            if check(&p) {
                return p;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out waiting for {what}: {p:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_job(&self, alias: &str, fid: Fid, job: u64, within: Duration) -> JobRecord {
        let p = self
            .wait_for(alias, fid, within, &format!("job {job} to finish"), |p| {
                p.jobs.get(&job).is_some_and(|j| j.status.is_finished())
            })
            .await;
        p.jobs[&job].clone()
    }

    /// The cloud resources carrying `fid`'s ownership tag.
    pub fn owned(&self, fid: Fid) -> Vec<ObservedResource> {
        self.cloud
            .all_owned(&scope())
            .into_iter()
            .filter(|r| r.owner().is_some_and(|o| o.fid == fid))
            .collect()
    }

    pub fn cloud_id(&self, p: &ProcessRecord, path: &str) -> String {
        p.bindings[&LogicalId::new(p.fid, path)].cloud_id.clone()
    }

    pub async fn shutdown(mut self) {
        for s in self.schedulers.iter_mut() {
            if let Some(s) = s.take() {
                s.shutdown().await;
            }
        }
        self.cluster.shutdown().await;
    }
}

/// The job of `kind` most recently started.
pub fn last_job(p: &ProcessRecord, kind: JobKind) -> Option<&JobRecord> {
    p.jobs
        .values()
        .filter(|j| j.kind == kind)
        .max_by_key(|j| j.id)
}

pub fn ingress_of(r: &ObservedResource) -> BTreeSet<Rule<String>> {
    match &r.spec {
        Spec::SecurityGroup(g) => g.ingress.clone().into(),
        _ => panic!("not a group"),
    }
}

pub fn map_of(rs: Vec<ObservedResource>) -> BTreeMap<String, ObservedResource> {
    rs.into_iter().map(|r| (r.cloud_id.clone(), r)).collect()
}
