//! The client host's workload, driven through the real SDK
//! (`canon_client::Client` over turmoil TCP, commands signed with the
//! cluster's admin key): runs, updates, kills, suspends, resumes and status
//! reads, rogue changes made straight to the simulated cloud, and the
//! seed's faults in force while commands are in flight. Every SDK call is
//! recorded for the linearizability check. Some processes declare a fleet
//! (`crate::fleet`), whose capacity floor is watched throughout.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use canon_client::{pb, Client, ClientError, Signer};
use canon_cloud::sim::Faults;
use canon_cloud::SimCloud;
use canon_model::{Fid, Ipv4Cidr, Peer, Protocol, ResourceKind, Rule};
use canon_raft::shard::group_of_alias;
use canon_raft::NodeId;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::cluster::{
    host_name, lagging_groups, leading, lock, progress, scope, Control, Handles, MAX_LATENCY,
    SHARD_COUNT,
};
use crate::fault::Fault;
use crate::linear::{Answer, Call, History, Op, State};
use crate::net::sdk_client;

/// The name under which rogue changes are counted with the faults.
const ROGUE_RULE: &str = "rogue-rule";

/// What the client host records for the checks.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    /// (alias, fid) of every acknowledged run.
    pub created: Vec<(String, Fid)>,
    pub faults: BTreeMap<&'static str, u32>,
    pub errors: Vec<String>,
    pub history: History,
    /// Simulated ms from the end of the faults until every node agreed.
    pub settle_ms: u64,
}

/// Convergence after the faults end: two ticks (1 s each) plus an election
/// timeout (600 ms), plus the 500 ms granularity of the poll that sees it.
const CONVERGENCE_BOUND_MS: u64 = 2 * 1000 + 600 + 500;

/// How long after the faults end the cluster may take to settle at all.
const SETTLE_LIMIT_MS: u64 = 35_000;

/// A composition: a VPC and a web security group, with SSH or without;
/// with a fleet (`crate::fleet`) or without.
fn source(ssh: bool, fleet: bool) -> String {
    let extra = if ssh { ", EC2.ssh" } else { "" };
    let (import, body) = if fleet {
        crate::fleet::declarations(ssh)
    } else {
        ("", String::new())
    };
    format!(
        "composition\n\nimport Canon.AWS.EC2 as EC2\nimport Canon.Core.AWS.Common as AWS\n{import}\n\
         vpc: EC2.Vpc.new {{cidrBlock: \"10.0.0.0/16\", region: AWS.Us-west-2}}\n\
         sg: EC2.SecurityGroup.new {{\n  vpc: vpc,\n  description: \"web\",\n  \
         ipPermissions: [EC2.https, EC2.http{extra}],\n}}\n{body}"
    )
}

/// The index in [`compositions`] of the composition with SSH or without,
/// with a fleet or without.
pub fn composition_index(ssh: bool, fleet: bool) -> usize {
    usize::from(ssh) + 2 * usize::from(fleet)
}

/// The four compiled compositions (by [`composition_index`]), compiled
/// once.
pub fn compositions() -> Result<&'static [pb::CompiledComposition; 4], String> {
    static COMPILED: OnceLock<Result<[pb::CompiledComposition; 4], String>> = OnceLock::new();
    COMPILED
        .get_or_init(|| {
            let compile = |ssh: bool, fleet: bool| {
                let out = canon_lang::compile_str(
                    "sim.lw",
                    &source(ssh, fleet),
                    &canon_lang::MapLoader::default(),
                    canon_lang::Options::default(),
                );
                match out.compiled {
                    Some(c) => Ok(pb::CompiledComposition {
                        bytes: c.encode(),
                        source_hash: c.source_hash.clone(),
                    }),
                    None => Err(format!("the simulation's composition: {}", out.render())),
                }
            };
            Ok([
                compile(false, false)?,
                compile(true, false)?,
                compile(false, true)?,
                compile(true, true)?,
            ])
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// A rogue operator's change to process `fid`'s security group, straight
/// to the cloud: all traffic from anywhere let in. The group's cloud id, if
/// the process has one and the change was made.
pub fn open_everything(cloud: &SimCloud, fid: Fid) -> Option<String> {
    let sg = cloud.all_owned(&scope()).into_iter().find(|r| {
        r.owner().is_some_and(|o| o.fid == fid) && r.kind() == ResourceKind::SecurityGroup
    })?;
    let everything = Rule::new(Protocol::All, -1, -1, Peer::Cidr(Ipv4Cidr::ANY));
    cloud
        .rogue_authorize_ingress(&scope(), &sg.cloud_id, everything)
        .ok()?;
    Some(sg.cloud_id)
}

/// A process the workload created and still considers live.
#[derive(Debug, Clone)]
struct Proc {
    alias: String,
    fid: Fid,
    ssh: bool,
    /// It declares a fleet.
    fleet: bool,
}

/// The workload of one run.
pub struct Workload {
    pub rng: ChaCha8Rng,
    pub n: usize,
    pub hosts: Vec<String>,
    pub handles: Handles,
    pub cloud: Arc<SimCloud>,
    pub outcome: Arc<Mutex<Outcome>>,
    pub control: Arc<Mutex<Vec<Control>>>,
    pub signer: Signer,
    live: Vec<Proc>,
    next_alias: usize,
    /// Links cut for the current fault: (from, to, one way).
    cuts: Vec<(String, String, bool)>,
    /// The fleet processes' capacity floor.
    floor: crate::fleet::FloorWatch,
}

fn sim_ms() -> u64 {
    u64::try_from(turmoil::sim_elapsed().unwrap_or_default().as_millis()).unwrap_or(u64::MAX)
}

impl Workload {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        rng: ChaCha8Rng,
        n: usize,
        handles: Handles,
        cloud: Arc<SimCloud>,
        outcome: Arc<Mutex<Outcome>>,
        control: Arc<Mutex<Vec<Control>>>,
        signer: Signer,
    ) -> Self {
        Workload {
            rng,
            n,
            hosts: (0..n).map(host_name).collect(),
            handles,
            cloud,
            outcome,
            control,
            signer,
            live: Vec::new(),
            next_alias: 0,
            cuts: Vec::new(),
            floor: Default::default(),
        }
    }

    fn fault(&self, what: Fault) {
        progress(what.name());
        *lock(&self.outcome).faults.entry(what.name()).or_insert(0) += 1;
    }

    /// A client with fresh channels (a wedged connection from an earlier
    /// fault must not outlive it), starting at a node the seed picks.
    fn client(&mut self) -> Result<Client, ClientError> {
        let first = self.rng.random_range(0..self.n);
        let order: Vec<String> = (0..self.n)
            .map(|i| self.hosts[(first + i) % self.n].clone())
            .collect();
        sdk_client(order, self.signer.clone())
    }

    /// Sends one command or status read and records it for the
    /// linearizability check; returns the answer.
    async fn call(&mut self, alias: &str, op: Op, action: Option<pb::command::Action>) -> Answer {
        let client = match self.client() {
            Ok(c) => c,
            Err(e) => {
                lock(&self.outcome).errors.push(format!("no client: {e}"));
                return Answer::Unknown;
            }
        };
        let invoked = sim_ms();
        let result = match action {
            Some(a) => client.submit(a, false).await.map(|_| None),
            None => client
                .status(alias, false)
                .await
                .map(|r| r.processes.first().and_then(|p| State::parse(&p.state))),
        };
        let returned = sim_ms();
        let answer = match &result {
            Ok(seen) => Answer::Ok(if op == Op::Status { *seen } else { None }),
            Err(ClientError::NotFound(_)) => Answer::NotFound,
            Err(ClientError::AlreadyExists(_)) => Answer::Exists,
            // A set-state is one proposal: its refusal changed nothing.
            Err(ClientError::Rejected(_)) if matches!(op, Op::Suspend | Op::Resume) => {
                Answer::Refused
            }
            Err(ClientError::Unauthenticated(m) | ClientError::Invalid(m)) => {
                lock(&self.outcome)
                    .errors
                    .push(format!("{op:?} {alias} refused at the door: {m}"));
                Answer::Unknown
            }
            Err(_) => Answer::Unknown,
        };
        if op == Op::Status && matches!(answer, Answer::Ok(None)) {
            lock(&self.outcome).errors.push(format!(
                "status of {alias} named no known state: {result:?}"
            ));
        }
        progress(&format!("{op:?} {alias}: {answer:?}"));
        let definite = !matches!(answer, Answer::Unknown);
        lock(&self.outcome).history.record(
            alias,
            Call {
                op,
                invoked,
                returned: definite.then_some(returned),
                answer,
            },
        );
        answer
    }

    // The request structs may have grown fields this code leaves default.
    #[allow(clippy::needless_update)]
    async fn create(&mut self) {
        let alias = format!("proc-{}", self.next_alias);
        self.next_alias += 1;
        let fid = Fid(uuid::Uuid::from_u128(self.rng.random()));
        let fleet = self.rng.random_bool(0.5);
        let Ok(compiled) = compositions() else {
            return;
        };
        let run = pb::command::Action::Run(pb::Run {
            alias: alias.clone(),
            fid: fid.0.to_string(),
            account: String::new(),
            composition: Some(compiled[composition_index(false, fleet)].clone()),
            // Fields the API grows later keep their defaults.
            ..Default::default()
        });
        match self.call(&alias, Op::Run, Some(run)).await {
            Answer::Ok(_) => {
                lock(&self.outcome).created.push((alias.clone(), fid));
                self.live.push(Proc {
                    alias,
                    fid,
                    ssh: false,
                    fleet,
                });
            }
            Answer::Exists => lock(&self.outcome)
                .errors
                .push(format!("run {alias} refused: the alias is taken")),
            _ => {}
        }
    }

    /// Flips one process's SSH rule (an update; a fleet's image too).
    #[allow(clippy::needless_update)]
    async fn update(&mut self, k: usize) {
        let p = self.live[k].clone();
        let Ok(compiled) = compositions() else {
            return;
        };
        let u = pb::command::Action::Update(pb::Update {
            alias: p.alias.clone(),
            composition: Some(compiled[composition_index(!p.ssh, p.fleet)].clone()),
            ..Default::default()
        });
        if let Answer::Ok(_) = self.call(&p.alias, Op::Update, Some(u)).await {
            self.live[k].ssh = !p.ssh;
        }
    }

    async fn kill(&mut self, k: usize) {
        let alias = self.live[k].alias.clone();
        self.floor.going(self.live[k].fid);
        let kill = pb::command::Action::Kill(pb::Kill {
            alias: alias.clone(),
        });
        if let Answer::Ok(_) = self.call(&alias, Op::Kill, Some(kill)).await {
            self.live.remove(k);
        }
    }

    async fn set_state(&mut self, k: usize, suspend: bool) {
        let alias = self.live[k].alias.clone();
        let (op, action) = if suspend {
            (
                Op::Suspend,
                pb::command::Action::Suspend(pb::Suspend {
                    alias: alias.clone(),
                }),
            )
        } else {
            (
                Op::Resume,
                pb::command::Action::Resume(pb::Resume {
                    alias: alias.clone(),
                }),
            )
        };
        self.call(&alias, op, Some(action)).await;
    }

    async fn status(&mut self, alias: &str) {
        self.call(alias, Op::Status, None).await;
    }

    /// A rogue operator opens everything on one live process's group.
    fn rogue(&mut self, k: usize) {
        if let Some(sg) = open_everything(&self.cloud, self.live[k].fid) {
            progress(&format!("rogue rule on {} ({sg})", self.live[k].alias));
            *lock(&self.outcome).faults.entry(ROGUE_RULE).or_insert(0) += 1;
        }
    }

    fn cut(&mut self, from: &str, to: &str, one_way: bool) {
        if one_way {
            turmoil::partition_oneway(from, to);
        } else {
            turmoil::partition(from, to);
        }
        self.cuts.push((from.to_string(), to.to_string(), one_way));
    }

    /// Cuts `island` off from every other host (the client included).
    fn isolate(&mut self, island: &[String]) {
        let others: Vec<String> = self
            .hosts
            .iter()
            .chain(["client".to_string()].iter())
            .filter(|h| !island.contains(h))
            .cloned()
            .collect();
        for a in island {
            for b in &others {
                self.cut(a, b, false);
            }
        }
    }

    fn control(&self, c: Control) {
        lock(&self.control).push(c);
    }

    /// The node leading `group` in the highest term, if any.
    fn leader_of(&self, group: u64) -> Option<NodeId> {
        leading(&self.handles, group).and_then(|l| l.leader)
    }

    fn any_host(&mut self) -> String {
        self.hosts[self.rng.random_range(0..self.n)].clone()
    }

    /// Starts a fault of kind `what`; [`Workload::heal`] ends it.
    fn inject(&mut self, what: Fault) {
        let n = self.n;
        match what {
            Fault::Partition => {
                let victim = self.any_host();
                progress(&format!("partition {victim}"));
                self.isolate(&[victim]);
            }
            Fault::LeaderIsolated => {
                // Cut off the leader of the first live process's group; the
                // round then changes that process while the old leader may
                // still believe it leads.
                let alias = self
                    .live
                    .first()
                    .map(|p| p.alias.clone())
                    .unwrap_or_else(|| "proc-0".into());
                let group = group_of_alias(&alias, SHARD_COUNT);
                let victim = match self.leader_of(group) {
                    Some(id) => host_name(id as usize - 1),
                    None => self.any_host(),
                };
                progress(&format!("leader {victim} of group {group} isolated"));
                self.isolate(&[victim]);
            }
            Fault::OneWay => {
                // One node can hear but not speak, or speak but not hear.
                let victim = self.any_host();
                let deaf = self.rng.random_bool(0.5);
                progress(&format!("one-way {victim} deaf={deaf}"));
                for h in self.hosts.clone() {
                    if h != victim {
                        if deaf {
                            self.cut(&h, &victim, true);
                        } else {
                            self.cut(&victim, &h, true);
                        }
                    }
                }
            }
            Fault::MinorityIsland => {
                let size = (n - 1) / 2;
                let mut island: Vec<String> = Vec::new();
                while island.len() < size {
                    let h = self.any_host();
                    if !island.contains(&h) {
                        island.push(h);
                    }
                }
                progress(&format!("island {island:?}"));
                self.isolate(&island);
            }
            Fault::CrashRestart => {
                let victim = self.any_host();
                progress(&format!("bounce {victim}"));
                self.control(Control::Bounce(victim));
            }
            Fault::Hold => {
                let a = self.rng.random_range(0..n);
                let b = (a + self.rng.random_range(1..n)) % n;
                let (a, b) = (self.hosts[a].clone(), self.hosts[b].clone());
                progress(&format!("hold {a} {b}"));
                turmoil::hold(a.as_str(), b.as_str());
                self.cuts.push((a, b, false));
            }
            Fault::LatencySpike => {
                let ms = self.rng.random_range(50..400);
                self.control(Control::MaxLatency(Duration::from_millis(ms)));
            }
            Fault::MessageLoss => {
                let rate = self.rng.random_range(0.01..0.08);
                self.control(Control::FailRate(rate));
            }
            Fault::SlowCloud => {
                let ms = self.rng.random_range(50..400);
                self.cloud.set_faults(Faults {
                    latency: Duration::from_millis(ms),
                    ..self.no_call_faults()
                });
            }
            Fault::ThrottlingCloud => {
                self.cloud.set_faults(Faults {
                    throttle_rate: self.rng.random_range(0.1..0.5),
                    error_rate: self.rng.random_range(0.0..0.1),
                    ..self.no_call_faults()
                });
            }
        }
        self.fault(what);
    }

    /// Ends every fault in force.
    fn heal(&mut self) {
        for (a, b, one_way) in std::mem::take(&mut self.cuts) {
            if one_way {
                turmoil::repair_oneway(a.as_str(), b.as_str());
            } else {
                // Repairs a partition and releases a hold.
                turmoil::repair(a.as_str(), b.as_str());
                turmoil::release(a.as_str(), b.as_str());
            }
        }
        self.control(Control::FailRate(0.0));
        self.control(Control::MaxLatency(MAX_LATENCY));
        self.cloud.set_faults(self.no_call_faults());
        progress("healed");
    }

    /// No faults on the cloud's calls; the event feed's (the run's, for
    /// its whole length) stay.
    fn no_call_faults(&self) -> Faults {
        Faults {
            events: self.cloud.faults().events,
            ..Faults::none()
        }
    }

    async fn sleep_ms(&mut self, range: std::ops::Range<u64>) {
        let ms = self.rng.random_range(range);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    /// One command (or none) on a live process, chosen by the seed; the
    /// isolated leader's process always changes.
    /// Looks at the fleet processes' capacity floor once.
    fn watch_floor(&mut self) {
        let fleets: Vec<(String, Fid)> = self
            .live
            .iter()
            .filter(|p| p.fleet)
            .map(|p| (p.alias.clone(), p.fid))
            .collect();
        let seen = self
            .floor
            .look(&self.cloud, fleets.iter().map(|(a, f)| (a.as_str(), *f)));
        lock(&self.outcome).errors.extend(seen);
    }

    async fn act(&mut self, leader_isolated: bool) {
        self.watch_floor();
        if self.live.is_empty() || self.rng.random_bool(0.1) {
            self.create().await;
            return;
        }
        let k = if leader_isolated {
            0
        } else {
            self.rng.random_range(0..self.live.len())
        };
        if leader_isolated || self.rng.random_bool(0.3) {
            self.rogue(k);
        }
        let alias = self.live[k].alias.clone();
        match self.rng.random_range(0..20) {
            0..=9 => self.update(k).await,
            10..=12 => self.kill(k).await,
            13..=15 => self.set_state(k, true).await,
            16..=17 => self.set_state(k, false).await,
            _ => {}
        }
        self.status(&alias).await;
    }

    /// Creates the processes, runs the fault rounds, then waits for the
    /// cluster to settle.
    pub async fn run(mut self, processes: usize, rounds: usize) {
        tokio::time::sleep(Duration::from_secs(2)).await;
        progress("workload starts");
        for _ in 0..processes {
            self.create().await;
        }
        progress("processes created");
        for _round in 0..rounds {
            self.sleep_ms(500..3000).await;
            let fault = Fault::ALL[self.rng.random_range(0..Fault::ALL.len())];
            self.inject(fault);
            self.sleep_ms(100..1200).await;
            self.act(fault == Fault::LeaderIsolated).await;
            self.watch_floor();
            self.sleep_ms(500..3000).await;
            self.watch_floor();
            self.heal();
        }
        // Faults over: suspended processes resume so every live one must
        // converge; then give the cluster generous time and stop.
        progress("healing");
        for k in 0..self.live.len() {
            self.set_state(k, false).await;
        }
        // Time convergence: every node has applied the same log and every
        // live process matches its declaration.
        let healed = sim_ms();
        loop {
            self.watch_floor();
            let lagging = lagging_groups(&self.handles);
            let unsettled = if lagging.is_empty() {
                let created = lock(&self.outcome).created.clone();
                crate::check::state(&self.cloud, &self.handles, &created).await
            } else {
                vec![format!("nodes have not applied the same log: {lagging:?}")]
            };
            if unsettled.is_empty() {
                let took = sim_ms() - healed;
                let mut outcome = lock(&self.outcome);
                outcome.settle_ms = took;
                if took > CONVERGENCE_BOUND_MS {
                    outcome.errors.push(format!(
                        "converged {took} ms after the faults ended (bound {CONVERGENCE_BOUND_MS} ms)"
                    ));
                }
                break;
            }
            if sim_ms() - healed > SETTLE_LIMIT_MS {
                lock(&self.outcome).errors.push(format!(
                    "not settled {} s after the faults ended: {unsettled:?}",
                    SETTLE_LIMIT_MS / 1000
                ));
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        // A little longer, for late writers to show themselves.
        tokio::time::sleep(Duration::from_secs(3)).await;
        for alias in self
            .live
            .iter()
            .map(|p| p.alias.clone())
            .collect::<Vec<_>>()
        {
            self.status(&alias).await;
        }
        progress("done");
    }
}
