//! One simulated world: conductor nodes as turmoil hosts (the real Raft
//! node over turmoil TCP, the real scheduler, a memory disk that outlives
//! the host so a crash keeps its "disk"), one simulated cloud shared by all,
//! and a client host running a workload while the seed picks faults.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use canon_cloud::{Scope, SimCloud};
use canon_model::*;
use canon_raft::shard::group_of_alias;
use canon_raft::store::MemDisk;
use canon_raft::{
    propose_via, Command, CommandId, Composition, NodeConfig, NodeId, RaftNode, RaftSettings,
    Request, Storage,
};
use canon_scheduler::{Alerts, Decoder, Scheduler, SchedulerConfig, SchedulerParts};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::clock::SimClock;
use canon_raft::turmoil_net::{serve, TurmoilTransport, PORT};

pub const ACCOUNT: &str = "111122223333";
pub const REGION: &str = "us-west-2";
pub const SHARD_COUNT: u32 = 4;
const SHARDS: u32 = SHARD_COUNT;

/// What a run is asked to do.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    pub nodes: usize,
    pub processes: usize,
}

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

pub fn scope() -> Scope {
    Scope::new(ACCOUNT, REGION)
}

fn host_name(i: usize) -> String {
    format!("n{}", i + 1)
}

fn node_id(i: usize) -> NodeId {
    i as NodeId + 1
}

fn members(n: usize) -> BTreeMap<NodeId, String> {
    (0..n)
        .map(|i| (node_id(i), format!("{}:{PORT}", host_name(i))))
        .collect()
}

fn settings() -> RaftSettings {
    RaftSettings {
        heartbeat: Duration::from_millis(50),
        election_min: Duration::from_millis(300),
        election_max: Duration::from_millis(600),
        forward_timeout: Duration::from_millis(500),
        propose_timeout: Duration::from_secs(3),
        ..RaftSettings::loopback()
    }
}

/// Compositions are the declaration as JSON in simulations.
fn encode(d: &DesiredState) -> Composition {
    let bytes = serde_json::to_vec(d).unwrap_or_default();
    Composition {
        source_hash: format!("{}", bytes.len()),
        bytes,
    }
}

fn decoder() -> Decoder {
    Arc::new(|c: &Composition, fid: Fid| {
        let d: DesiredState = serde_json::from_slice(&c.bytes).map_err(|e| e.to_string())?;
        if d.fid == fid {
            Ok(d)
        } else {
            Err(format!("composition of {} given to {fid}", d.fid))
        }
    })
}

/// A network with a web security group, as in the demo.
pub fn network(fid: Fid, name: &str, ssh: bool) -> DesiredState {
    let cidr = |s: &str| -> Ipv4Cidr { s.parse().unwrap_or(Ipv4Cidr::ANY) };
    let web = |p: i32| Rule::new(Protocol::Tcp, p, p, Peer::Cidr(Ipv4Cidr::ANY));
    let mut d = DesiredState::empty(fid);
    let mut add = |path: &str, spec: DesiredSpec| {
        let id = LogicalId::new(fid, path);
        let _ = d.insert(Resource {
            id,
            name: path.into(),
            region: Region::new(REGION),
            spec,
        });
        id
    };
    let tags: Tags = [("Name".to_string(), name.to_string())].into();
    let vpc = add(
        "vpc",
        Spec::Vpc(VpcSpec {
            cidr_block: cidr("10.0.0.0/16"),
            instance_tenancy: Tenancy::Default,
            enable_dns_support: true,
            enable_dns_hostnames: true,
            dhcp_options: None,
            tags: tags.clone(),
        }),
    );
    let subnet = add(
        "subnet",
        Spec::Subnet(SubnetSpec {
            vpc: Ref::Managed(vpc),
            cidr_block: cidr("10.0.1.0/24"),
            availability_zone: "us-west-2a".into(),
            map_public_ip_on_launch: true,
            tags: tags.clone(),
        }),
    );
    let _ = subnet;
    let mut ingress: BTreeSet<Rule<Ref>> = [web(80), web(443)].into_iter().collect();
    if ssh {
        ingress.insert(web(22));
    }
    add(
        "sg",
        Spec::SecurityGroup(SecurityGroupSpec {
            vpc: Ref::Managed(vpc),
            group_name: format!("{name}-web"),
            description: "web".into(),
            ingress,
            egress: [Rule::allow_all_egress()].into_iter().collect(),
            tags,
        }),
    );
    d
}

type Handles = Arc<Mutex<BTreeMap<NodeId, RaftNode>>>;

/// What the client host records for the checks.
#[derive(Debug, Default, Clone)]
struct Outcome {
    /// (alias, fid) of every acknowledged ProcessCreated.
    created: Vec<(String, Fid)>,
    faults: BTreeMap<&'static str, u32>,
    errors: Vec<String>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs one seed and checks every invariant.
pub fn run(config: SimConfig) -> Report {
    let seed = config.seed;
    let n = config.nodes;
    canon_raft::runtime::seed_election_rng(seed);
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(600))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(5))
        .build();

    let cloud = Arc::new(SimCloud::with_clock(seed, Arc::new(SimClock)));
    let handles: Handles = Arc::default();
    let disks: Vec<MemDisk> = (0..n).map(|_| MemDisk::new()).collect();
    for (i, disk) in disks.iter().enumerate() {
        let disk = disk.clone();
        let handles = handles.clone();
        let cloud = cloud.clone();
        sim.host(host_name(i), move || {
            let disk = disk.clone();
            let handles = handles.clone();
            let cloud = cloud.clone();
            async move {
                let node = RaftNode::start(
                    NodeConfig {
                        id: node_id(i),
                        addr: format!("{}:{PORT}", host_name(i)),
                        storage: Storage::Memory(disk),
                        shard_count: SHARDS,
                        settings: settings(),
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
                let _scheduler = Scheduler::start(SchedulerParts {
                    node: node.clone(),
                    cloud: cloud.clone(),
                    config: SchedulerConfig {
                        node_id: node_id(i),
                        tick_interval: Duration::from_secs(1),
                        fence_lease: Duration::from_millis(150),
                        backoff_base: Duration::from_millis(100),
                        backoff_cap: Duration::from_secs(2),
                        seed: seed ^ node_id(i),
                        ..SchedulerConfig::default()
                    },
                    decoder: decoder(),
                    clock: Arc::new(SimClock),
                    alerts: Alerts::default(),
                });
                serve(node.grpc_service()).await
            }
        });
    }

    let outcome: Arc<Mutex<Outcome>> = Arc::default();
    let bounces: Arc<Mutex<Vec<String>>> = Arc::default();
    {
        let outcome = outcome.clone();
        let bounces = bounces.clone();
        let handles = handles.clone();
        let cloud = cloud.clone();
        let processes = config.processes;
        sim.client("client", async move {
            workload(seed, n, processes, handles, cloud, outcome, bounces).await;
            Ok(())
        });
    }

    let mut violations = Vec::new();
    loop {
        match sim.step() {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                violations.push(format!("simulation failed: {e}"));
                break;
            }
        }
        let due: Vec<String> = std::mem::take(&mut *lock(&bounces));
        for h in due {
            sim.bounce(h);
        }
    }

    let outcome = lock(&outcome).clone();
    violations.extend(outcome.errors.iter().cloned());
    violations.extend(crate::check::all(&cloud, &handles, &outcome.created));
    Report {
        seed,
        nodes: n,
        violations,
        faults: outcome.faults,
        trace: cloud.mutations().iter().map(|m| format!("{m:?}")).collect(),
        acknowledged: outcome.created.len(),
    }
}

/// A request id from the seeded RNG, so runs replay.
fn request(rng: &mut ChaCha8Rng, at: UnixMillis, command: Command) -> Request {
    Request {
        id: CommandId(uuid::Uuid::from_u128(rng.random())),
        at,
        command,
        fence: None,
    }
}

fn now_ms() -> UnixMillis {
    crate::clock::sim_now_ms()
}

/// The client: runs, drift, updates and kills, with faults chosen by the seed.
#[allow(clippy::too_many_arguments)]
async fn workload(
    seed: u64,
    n: usize,
    processes: usize,
    handles: Handles,
    cloud: Arc<SimCloud>,
    outcome: Arc<Mutex<Outcome>>,
    bounces: Arc<Mutex<Vec<String>>>,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x00C1_1E47);
    let transport = TurmoilTransport::default();
    let nodes: Vec<(NodeId, String)> = members(n).into_iter().collect();
    let call = Duration::from_millis(500);
    let fault = |what: &'static str| {
        progress(what);
        *lock(&outcome).faults.entry(what).or_insert(0) += 1;
    };
    let propose = |group, req: Request| {
        let nodes = nodes.clone();
        let transport = &transport;
        async move {
            propose_via(
                transport,
                &nodes,
                group,
                &req,
                call,
                Duration::from_secs(10),
            )
            .await
        }
    };

    tokio::time::sleep(Duration::from_secs(2)).await;
    progress("workload starts");
    let mut live: Vec<(String, Fid)> = Vec::new();
    for p in 0..processes {
        let alias = format!("proc-{p}");
        let fid = Fid(uuid::Uuid::from_u128(rng.random()));
        let group = group_of_alias(&alias, SHARDS);
        let d = network(fid, &alias, false);
        let create = request(
            &mut rng,
            now_ms(),
            Command::ProcessCreated {
                fid,
                alias: alias.clone(),
                account: ACCOUNT.into(),
                composition: encode(&d),
                tick_interval_ms: None,
            },
        );
        match propose(group, create).await {
            Ok(r) if r.is_applied() => {
                lock(&outcome).created.push((alias.clone(), fid));
                let job = request(
                    &mut rng,
                    now_ms(),
                    Command::JobStarted {
                        fid,
                        job: now_ms(),
                        kind: JobKind::Run,
                        message: String::new(),
                    },
                );
                let _ = propose(group, job).await;
                live.push((alias, fid));
            }
            Ok(r) => lock(&outcome)
                .errors
                .push(format!("create {alias} refused: {r:?}")),
            Err(_) => {}
        }
    }

    // Chaos: a few rounds of one fault each, with drift and commands between.
    let hosts: Vec<String> = (0..n).map(host_name).collect();
    progress("processes created");
    for _round in 0..4 {
        progress("round");
        tokio::time::sleep(Duration::from_millis(rng.random_range(500..3000))).await;
        match rng.random_range(0..4) {
            0 => {
                // Cut one node off from everyone (often a leader).
                let victim = hosts[rng.random_range(0..n)].clone();
                progress(&format!("partition {victim}"));
                for h in hosts.iter().chain(["client".to_string()].iter()) {
                    if *h != victim {
                        turmoil::partition(victim.as_str(), h.as_str());
                    }
                }
                fault("partition");
                tokio::time::sleep(Duration::from_millis(rng.random_range(1000..4000))).await;
                for h in hosts.iter().chain(["client".to_string()].iter()) {
                    if *h != victim {
                        turmoil::repair(victim.as_str(), h.as_str());
                    }
                }
            }
            1 => {
                let victim = hosts[rng.random_range(0..n)].clone();
                progress(&format!("bounce {victim}"));
                lock(&bounces).push(victim);
                fault("crash-restart");
            }
            2 => {
                // Rogue drift on a live process's group.
                if let Some((_, fid)) = live.get(rng.random_range(0..live.len().max(1))) {
                    let sg = cloud.all_owned(&scope()).into_iter().find(|r| {
                        r.owner().is_some_and(|o| o.fid == *fid)
                            && r.kind() == ResourceKind::SecurityGroup
                    });
                    if let Some(sg) = sg {
                        let _ = cloud.rogue_authorize_ingress(
                            &scope(),
                            &sg.cloud_id,
                            Rule::new(Protocol::All, -1, -1, Peer::Cidr(Ipv4Cidr::ANY)),
                        );
                        fault("rogue-rule");
                    }
                }
            }
            _ => {
                // Hold messages between two nodes for a while.
                let a = hosts[rng.random_range(0..n)].clone();
                let b = hosts[rng.random_range(0..n)].clone();
                if a != b {
                    progress(&format!("hold {a} {b}"));
                    turmoil::hold(a.as_str(), b.as_str());
                    fault("hold");
                    tokio::time::sleep(Duration::from_millis(rng.random_range(200..1500))).await;
                    turmoil::release(a.as_str(), b.as_str());
                }
            }
        }
        // A command between faults: update one process, kill another.
        if !live.is_empty() {
            let k = rng.random_range(0..live.len());
            let (alias, fid) = live[k].clone();
            let group = group_of_alias(&alias, SHARDS);
            if rng.random_bool(0.5) {
                let upd = request(
                    &mut rng,
                    now_ms(),
                    Command::ProcessUpdated {
                        fid,
                        composition: encode(&network(fid, &alias, true)),
                        tick_interval_ms: None,
                    },
                );
                if let Ok(r) = propose(group, upd).await {
                    if r.is_applied() {
                        let job = request(
                            &mut rng,
                            now_ms(),
                            Command::JobStarted {
                                fid,
                                job: now_ms(),
                                kind: JobKind::Update,
                                message: String::new(),
                            },
                        );
                        let _ = propose(group, job).await;
                    }
                }
            } else {
                let kill = request(
                    &mut rng,
                    now_ms(),
                    Command::ProcessStateChanged {
                        fid,
                        state: ProcessState::Killing,
                    },
                );
                if let Ok(r) = propose(group, kill).await {
                    if r.is_applied() {
                        let job = request(
                            &mut rng,
                            now_ms(),
                            Command::JobStarted {
                                fid,
                                job: now_ms(),
                                kind: JobKind::Kill,
                                message: String::new(),
                            },
                        );
                        let _ = propose(group, job).await;
                        live.remove(k);
                    }
                }
            }
        }
    }
    // Faults over: everything heals within two ticks plus an election
    // timeout; give it generous time, then stop.
    progress("healing");
    tokio::time::sleep(Duration::from_secs(15)).await;
    // Every node must catch up: wait (boundedly) until all have applied
    // the same index in every group, then the checks compare their states.
    let caught_up = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let lagging = lagging_groups(&handles);
        if lagging.is_empty() {
            break;
        }
        if tokio::time::Instant::now() > caught_up {
            lock(&outcome)
                .errors
                .push(format!("nodes never caught up after healing: {lagging:?}"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    progress("done");
}

/// Progress lines for people watching a slow seed (`SIM_VERBOSE=1`).
fn progress(what: &str) {
    if std::env::var_os("SIM_VERBOSE").is_some() {
        eprintln!(
            "sim {:>8.3}s: {what}",
            turmoil::sim_elapsed().unwrap_or_default().as_secs_f64()
        );
    }
}

/// Each node's last applied index in one group.
type Applied = Vec<(NodeId, Option<u64>)>;

/// Groups whose nodes have not all applied the same log index.
fn lagging_groups(handles: &Handles) -> Vec<(u64, Applied)> {
    let nodes: Vec<RaftNode> = lock(handles).values().cloned().collect();
    let Some(first) = nodes.first() else {
        return vec![];
    };
    let mut out = Vec::new();
    for g in first.groups() {
        let applied: Applied = nodes
            .iter()
            .map(|n| {
                let index = n
                    .metrics(g)
                    .ok()
                    .and_then(|m| m.borrow().last_applied.map(|l| l.index));
                (n.id(), index)
            })
            .collect();
        if applied.windows(2).any(|w| w[0].1 != w[1].1) {
            out.push((g, applied));
        }
    }
    out
}
