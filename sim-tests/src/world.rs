//! One simulated world: conductor nodes as turmoil hosts (the real Raft
//! node over turmoil TCP, the real scheduler, a memory disk that outlives
//! the host so a crash keeps its "disk"), one simulated cloud shared by all
//! (on odd seeds with its event feed read by the real cloud events
//! consumer, under event faults), and a client host running a workload
//! while the seed picks faults.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use canon_client::Signer;
use canon_cloud::sim::{EventFaults, Faults};
use canon_cloud::SimCloud;
use canon_node::api::Api;
use canon_node::envelope::EnvelopeVerifier;
use canon_node::metrics::ApiMetrics;
use canon_raft::store::MemDisk;
use canon_raft::{NodeConfig, NodeId, RaftNode, RaftSettings, RaftThreads, Storage};
use canon_scheduler::{Alerts, Scheduler, SchedulerConfig, SchedulerParts};
use ed25519_dalek::SigningKey;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::clock::SimClock;
use crate::cluster::{
    host_name, lock, Control, Handles, SchedulerStatsByNode, ACCOUNT, CLUSTER_ID, MAX_LATENCY,
    SHARD_COUNT,
};
use crate::net::serve_node;
use crate::workload::{Outcome, Workload};
use canon_raft::turmoil_net::{TurmoilTransport, PORT};

/// The user whose key signs the workload's commands.
pub const ADMIN: &str = "admin";

/// What a run is asked to do.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    pub nodes: usize,
    pub processes: usize,
    /// Fault rounds in the workload.
    pub rounds: usize,
    /// Adjusts each node's scheduler configuration (the canary uses it to
    /// break fencing).
    pub scheduler: Option<fn(&mut SchedulerConfig)>,
    /// The nodes also heal from the simulated cloud's event feed (the
    /// meta leader's cloud events consumer), delivered with event faults
    /// drawn from the seed: odd seeds.
    pub events: bool,
}

impl SimConfig {
    /// The default workload for `seed` on `nodes` nodes.
    pub fn new(seed: u64, nodes: usize) -> Self {
        SimConfig {
            seed,
            nodes,
            processes: 4,
            rounds: 4,
            scheduler: None,
            events: seed % 2 == 1,
        }
    }
}

/// One simulation step.
const TICK: Duration = Duration::from_millis(5);

/// What a run saw.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub seed: u64,
    pub nodes: usize,
    pub violations: Vec<String>,
    pub faults: BTreeMap<&'static str, u32>,
    /// Every cloud mutation, in order, as text (for replay comparison).
    pub trace: Vec<String>,
    pub acknowledged: usize,
    /// SDK calls recorded for the linearizability check.
    pub calls: usize,
    /// Simulated ms from the end of the faults until every live process
    /// matched its declaration (and every node had applied the same log).
    pub convergence_ms: u64,
    /// Simulated time the run took, in ms.
    pub sim_ms: u64,
    /// The SDK calls (invocations, answers, times) as one fingerprint.
    pub history: u64,
    /// The cluster's Raft state after each simulation step, as
    /// fingerprints.
    pub steps: Vec<crate::fingerprint::StepPrint>,
}

impl Report {
    /// The command that replays this run.
    pub fn repro(&self) -> String {
        format!(
            "SIM_START={} SIM_SEEDS=1 SIM_NODES={} cargo test -p sim-tests --test seeds -- --nocapture",
            self.seed, self.nodes
        )
    }
}

fn node_id(i: usize) -> NodeId {
    i as NodeId + 1
}

fn members(n: usize) -> BTreeMap<NodeId, String> {
    (0..n)
        .map(|i| (node_id(i), format!("{}:{PORT}", host_name(i))))
        .collect()
}

/// The Raft timeouts of a simulated node: a lease (`election_max`) of
/// 600 ms, heartbeats every 100 ms.
pub fn raft_settings() -> RaftSettings {
    RaftSettings {
        heartbeat: Duration::from_millis(100),
        election_min: Duration::from_millis(300),
        election_max: Duration::from_millis(600),
        forward_timeout: Duration::from_millis(500),
        propose_timeout: Duration::from_secs(3),
        ..RaftSettings::loopback()
    }
}

/// A world whose node hosts are added, before any client host: what a
/// client host needs to drive it, and the driver loop.
pub struct World {
    pub sim: turmoil::Sim<'static>,
    /// The simulated cloud every node shares.
    pub cloud: Arc<SimCloud>,
    /// Every live node's Raft handle.
    pub handles: Handles,
    /// Every live node's scheduler statistics.
    pub schedulers: SchedulerStatsByNode,
    /// Signs as [`ADMIN`], whom every node trusts.
    pub signer: Signer,
    /// Changes the client host asks of the driver loop.
    pub control: Arc<Mutex<Vec<Control>>>,
    /// The cluster's Raft state after each step, as a fingerprint
    /// ([`crate::fingerprint`]): where two runs of a seed first differ.
    pub steps: Vec<crate::fingerprint::StepPrint>,
}

impl World {
    /// The world of `config`: its nodes added as hosts (node 0 initializes
    /// the cluster once it runs), its cloud, the admin's key; all from the
    /// seed.
    pub fn build(config: &SimConfig) -> World {
        let seed = config.seed;
        canon_raft::runtime::seed_election_rng(seed);
        let mut sim = simulation(seed);

        // The cluster's admin key, from the seed.
        let key = SigningKey::from_bytes(&ChaCha8Rng::seed_from_u64(seed ^ 0x5164).random());
        let users: BTreeMap<String, _> = [(ADMIN.to_string(), key.verifying_key())].into();
        let shared = NodeShared {
            cloud: Arc::new(SimCloud::with_clock(seed, Arc::new(SimClock))),
            handles: Arc::default(),
            schedulers: Arc::default(),
            verifier: Arc::new(EnvelopeVerifier::new(
                users,
                CLUSTER_ID,
                Duration::from_secs(300),
            )),
            tweak: config.scheduler,
            events: config.events,
            seed,
            nodes: config.nodes,
        };
        if config.events {
            shared
                .cloud
                .set_faults(event_faults(&mut ChaCha8Rng::seed_from_u64(seed ^ 0xE7E7)));
        }
        for i in 0..config.nodes {
            add_node(&mut sim, i, &shared, MemDisk::new());
        }
        World {
            sim,
            cloud: shared.cloud,
            handles: shared.handles,
            schedulers: shared.schedulers,
            signer: Signer::new(ADMIN, key),
            control: Arc::default(),
            steps: Vec::new(),
        }
    }

    /// Steps the simulation until the client host is done, carrying out
    /// the changes it asks for between steps.
    pub fn drive(&mut self) -> turmoil::Result {
        let (sim, handles, steps) = (&mut self.sim, &self.handles, &mut self.steps);
        drive(sim, &self.control, |sim| {
            steps.push(crate::fingerprint::raft_state(sim.elapsed(), handles))
        })
    }
}

/// Runs one seed and checks every invariant.
pub fn run(config: SimConfig) -> Report {
    let seed = config.seed;
    let mut violations = Vec::new();
    if let Err(e) = crate::workload::compositions() {
        violations.push(e);
    }
    let mut world = World::build(&config);
    let outcome: Arc<Mutex<Outcome>> = Arc::default();
    let workload = Workload::new(
        ChaCha8Rng::seed_from_u64(seed ^ 0x00C1_1E47),
        config.nodes,
        world.handles.clone(),
        world.cloud.clone(),
        outcome.clone(),
        world.control.clone(),
        world.signer.clone(),
    );
    let (processes, rounds) = (config.processes, config.rounds);
    world.sim.client("client", async move {
        workload.run(processes, rounds).await;
        Ok(())
    });

    if let Err(e) = world.drive() {
        violations.push(format!("simulation failed: {e}"));
    }
    let sim_ms = u64::try_from(world.sim.elapsed().as_millis()).unwrap_or(u64::MAX);
    let outcome = lock(&outcome).clone();
    let cloud = &world.cloud;
    violations.extend(outcome.errors.iter().cloned());
    let end_ms = crate::clock::EPOCH_MS.saturating_add(sim_ms);
    violations.extend(crate::check::all(
        cloud,
        &world.handles,
        &outcome.created,
        end_ms,
    ));
    violations.extend(outcome.history.violations());
    Report {
        seed,
        nodes: config.nodes,
        violations,
        faults: outcome.faults,
        trace: cloud.mutations().iter().map(trace_line).collect(),
        acknowledged: outcome.created.len(),
        calls: outcome.history.by_alias.values().map(Vec::len).sum(),
        convergence_ms: outcome.settle_ms,
        sim_ms,
        history: crate::fingerprint::of_debug(&outcome.history.by_alias),
        steps: std::mem::take(&mut world.steps),
    }
}

/// A turmoil simulation seeded with `seed`, with the network's settings.
/// Its hosts' tokio runtimes are seeded from it too (in `tokio_unstable`
/// builds, which `.cargo/config.toml` asks for).
pub fn simulation(seed: u64) -> turmoil::Sim<'static> {
    turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(600))
        // Coarser steps than turmoil's 1 ms: a run is mostly heartbeats and
        // ticks, and a step costs the same however little happens in it.
        .tick_duration(TICK)
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(MAX_LATENCY)
        .repair_rate(0.3)
        // Held or delayed connection attempts arrive together on release.
        .tcp_capacity(4096)
        .build()
}

/// What every node host of one run shares.
struct NodeShared {
    cloud: Arc<SimCloud>,
    handles: Handles,
    schedulers: SchedulerStatsByNode,
    verifier: Arc<EnvelopeVerifier>,
    /// The run's adjustment of each scheduler's configuration.
    tweak: Option<fn(&mut SchedulerConfig)>,
    /// Each node runs the cloud events consumer on the cloud's feed.
    events: bool,
    seed: u64,
    /// Nodes in the cluster.
    nodes: usize,
}

/// Adds node `i` as a host: its Raft node on `disk` (which outlives the
/// host, so a restart finds it), its scheduler and its client API. Node 0
/// initializes the cluster.
fn add_node(sim: &mut turmoil::Sim<'static>, i: usize, shared: &NodeShared, disk: MemDisk) {
    let (cloud, handles, schedulers, verifier) = (
        shared.cloud.clone(),
        shared.handles.clone(),
        shared.schedulers.clone(),
        shared.verifier.clone(),
    );
    let (tweak, seed, n, events) = (shared.tweak, shared.seed, shared.nodes, shared.events);
    sim.host(host_name(i), move || {
        let disk = disk.clone();
        let handles = handles.clone();
        let schedulers = schedulers.clone();
        let cloud = cloud.clone();
        let verifier = verifier.clone();
        async move {
            let node = RaftNode::start(
                NodeConfig {
                    id: node_id(i),
                    addr: format!("{}:{PORT}", host_name(i)),
                    storage: Storage::Memory(disk),
                    shard_count: SHARD_COUNT,
                    settings: raft_settings(),
                    link_faults: None,
                    // One thread, deterministic: everything on the caller's.
                    threads: RaftThreads::Caller,
                },
                Arc::new(TurmoilTransport::default()),
            )
            .await?;
            lock(&handles).insert(node_id(i), node.clone());
            if i == 0 {
                let init = node.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if let Err(e) = init.initialize(&members(n)).await {
                        tracing::warn!(error = %e, "initialize");
                    }
                });
            }
            let mut config = SchedulerConfig {
                node_id: node_id(i),
                tick_interval: Duration::from_secs(1),
                fence_lease: Duration::from_millis(150),
                backoff_base: Duration::from_millis(100),
                backoff_cap: Duration::from_secs(2),
                seed: seed ^ node_id(i),
                ..SchedulerConfig::default()
            };
            if let Some(tweak) = tweak {
                tweak(&mut config);
            }
            let scheduler = Scheduler::start(SchedulerParts {
                node: node.clone(),
                cloud: cloud.clone(),
                config,
                decoder: canon_node::composition::decoder(),
                clock: Arc::new(SimClock),
                alerts: Alerts::default(),
                labeller: None,
            });
            lock(&schedulers).insert(node_id(i), scheduler.stats());
            let _events = match events {
                true => {
                    let lead = node.leadership(canon_raft::META_GROUP)?;
                    let feed = canon_node::cloud_events::EventsFrom::Sim(cloud.clone());
                    let clock = Arc::new(SimClock);
                    Some(canon_node::cloud_events::spawn(
                        node.clone(),
                        lead,
                        &feed,
                        clock,
                    ))
                }
                false => None,
            };
            let api = Api {
                node: node.clone(),
                cloud: cloud.clone(),
                verifier,
                decoder: canon_node::composition::decoder(),
                account: ACCOUNT.into(),
                metrics: Arc::new(ApiMetrics::default()),
                peers: crate::net::peer_dialer(),
                replicas: n,
                tls_cluster: None,
                open_join: false,
                signed_reads: false,
                clock: Arc::new(SimClock),
                refusals: Arc::default(),
                journal: Arc::default(),
                overflow: None,
            };
            serve_node(node.grpc_service(), api).await
        }
    });
}

/// The event feed's delivery faults of a run: up to 2 s late, up to 3 s
/// of reordering, up to a fifth dropped and a fifth duplicated.
fn event_faults(rng: &mut ChaCha8Rng) -> Faults {
    Faults {
        events: EventFaults {
            delay: Duration::from_millis(rng.random_range(0..2_000)),
            reorder: Duration::from_millis(rng.random_range(0..3_000)),
            drop_rate: rng.random_range(0.0..0.2),
            duplicate_rate: rng.random_range(0.0..0.2),
        },
        ..Faults::none()
    }
}

/// Steps the simulation until the client host is done, carrying out the
/// changes the workload asks for between steps, and calls `after_step`
/// after each.
fn drive(
    sim: &mut turmoil::Sim<'static>,
    control: &Mutex<Vec<Control>>,
    mut after_step: impl FnMut(&turmoil::Sim<'static>),
) -> turmoil::Result {
    while !sim.step()? {
        after_step(sim);
        let due: Vec<Control> = std::mem::take(&mut *lock(control));
        for c in due {
            match c {
                Control::Bounce(h) => sim.bounce(h),
                Control::FailRate(r) => sim.set_fail_rate(r),
                Control::MaxLatency(d) => sim.set_max_message_latency(d),
            }
        }
    }
    Ok(())
}

/// One cloud mutation as replay compares it: when, by whom (node, term and
/// job, whose id is a time on the simulated clock), what.
fn trace_line(m: &canon_cloud::sim::Mutation) -> String {
    let (node, term, job) = match &m.caller {
        canon_cloud::sim::Caller::Conductor {
            node_id,
            term,
            job_id,
        } => (*node_id, *term, job_id.as_str()),
        canon_cloud::sim::Caller::Rogue => (0, 0, "rogue"),
    };
    format!(
        "#{} {}ms node {node} term {term} job {job} {} {:?} {:?} {:?}",
        m.seq, m.at_ms, m.action, m.scope, m.target, m.resource
    )
}
