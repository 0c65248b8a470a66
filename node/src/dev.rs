//! `canon dev`: a whole cluster inside one process on 127.0.0.1, sharing one
//! simulated cloud (or the real AWS API). Its state lives in a data
//! directory: one database per node, the admin key, the ports (so a restart
//! finds its peers where it left them) and the simulated cloud's resources
//! (saved every few seconds and on shutdown, so a restart keeps their ids).
//! A started cluster tells its endpoints and the admin key's file; the CLI
//! writes them to the `client.toml` it reads (the client crate owns that
//! file's format).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use canon_cloud::{Cloud, SimCloud};
use canon_raft::{NodeId, RaftSettings};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::accounts::PolicyAccounts;
use crate::defaults::{ADMIN_USER, DEFAULT_ACCOUNT, DEFAULT_CLUSTER_ID};
pub use crate::dev_tls::DevTls;
use crate::keys;
use crate::options::NodeOptions;
use crate::server::{wait_ready, Conductor, StartError};

/// A dev cluster's fence lease: under [`RaftSettings::loopback`]'s minimum
/// election timeout (200 ms), as [`crate::options::check_fence_lease`]
/// insists.
pub const DEV_FENCE_LEASE: Duration = Duration::from_millis(100);

/// The fence lease of a dev cluster with `raft`'s timings: half the
/// minimum election timeout ([`DEV_FENCE_LEASE`] under loopback timings).
pub(crate) fn fence_lease_under(raft: &RaftSettings) -> Duration {
    raft.election_min / 2
}

/// Which cloud a dev cluster drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevCloud {
    Sim,
    Aws,
}

/// How to run a dev cluster.
#[derive(Debug, Clone)]
pub struct DevOptions {
    pub nodes: usize,
    pub data_dir: PathBuf,
    pub tick: Duration,
    pub cloud: DevCloud,
    pub shards: u32,
    /// Refuse unsigned reads.
    pub signed_reads: bool,
    /// Mutual TLS with the cluster's own CAs ([`crate::dev_tls`]); `canon
    /// dev` turns it off only when asked (`--insecure`).
    pub tls: bool,
    /// Serve the console over HTTPS with the cluster's TLS (client
    /// certificates log in); off by default, so `canon dev`'s console is
    /// the plain `http://127.0.0.1` page a browser opens without trusting
    /// the dev CA.
    pub console_tls: bool,
    /// Take commands from this SQS queue too (`canon dev --intake-queue`):
    /// the meta group's leader polls it.
    pub intake: Option<crate::sqs::IntakeQueue>,
    /// Heal drift the cloud's events report (`canon dev --events-queue`).
    pub events: Option<crate::cloud_events::EventsQueue>,
    /// Heal drift the simulated cloud's event feed reports (`canon dev
    /// --sim-events`, with its delivery faults); nothing on AWS.
    pub sim_events: bool,
    /// What is too large for an SQS message goes through this S3 bucket
    /// (`canon dev --overflow-bucket`).
    pub overflow: Option<crate::overflow::OverflowBucket>,
    /// What each group keeps, and how often the nodes look (the node's
    /// defaults unless a test wants them tighter).
    pub retention: crate::retention::Retention,
    /// Save the simulated cloud every 2 s (and at shutdown), so that the
    /// next `canon dev` finds it. A benchmark of a large estate turns it
    /// off: writing a million resources every 2 s would be what it
    /// measures.
    pub save_cloud: bool,
    /// The nodes' Raft timings: [`RaftSettings::loopback`] (quick
    /// failover, for tests and `canon dev`) unless a benchmark wants
    /// canond's defaults. The fence lease is half the minimum election
    /// timeout, under it as [`crate::options::check_fence_lease`] insists.
    pub raft: RaftSettings,
}

impl DevOptions {
    /// `canon dev`'s defaults for a cluster kept in `data_dir`: three
    /// nodes on the simulated cloud, a 2 s tick, four shards, signed reads,
    /// mutual TLS, no intake queue, the node's retention. Tests name only
    /// what they change (`DevOptions { nodes: 1, ..DevOptions::new(dir) }`).
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        DevOptions {
            nodes: 3,
            data_dir: data_dir.into(),
            tick: Duration::from_secs(2),
            cloud: DevCloud::Sim,
            shards: 4,
            signed_reads: true,
            tls: true,
            console_tls: false,
            intake: None,
            events: None,
            sim_events: false,
            overflow: None,
            retention: Default::default(),
            save_cloud: true,
            raft: RaftSettings::loopback(),
        }
    }
}

/// The key a dev cluster in `data_dir` signs its SQS replies with
/// (`reply.key`, made on first use).
pub fn reply_key(data_dir: &Path) -> Result<crate::sqs::ReplyKey, DevError> {
    std::fs::create_dir_all(data_dir).map_err(io("cannot create", data_dir))?;
    let key = keys::load_or_create(&data_dir.join("reply.key"))?;
    Ok(crate::sqs::ReplyKey::new(key))
}

/// Why a dev cluster could not start.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Data(String),
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    #[error("TLS: {0}")]
    Tls(#[from] canon_tls::TlsError),
    #[error(transparent)]
    Start(#[from] StartError),
    /// Boxed: a Raft error is large, and this is the rare path.
    #[error(transparent)]
    Node(Box<canon_raft::NodeError>),
}

impl From<canon_raft::NodeError> for DevError {
    fn from(e: canon_raft::NodeError) -> Self {
        DevError::Node(Box::new(e))
    }
}

/// What a dev cluster remembers between runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DevLayout {
    /// Port of node index i.
    ports: Vec<u16>,
    shards: u32,
    /// The cluster's id, made once. Layouts from before it had none: their
    /// cluster keeps the default id its certificates already name.
    #[serde(default = "old_cluster_id")]
    cluster_id: String,
}

fn old_cluster_id() -> String {
    DEFAULT_CLUSTER_ID.to_string()
}

/// A fresh dev cluster id: `dev-` and 8 random hex digits, so that two dev
/// clusters never accept each other's commands.
fn new_cluster_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("dev-{}", &id[..8])
}

/// How often, and how many times, [`DevCluster::stop_meta_leader`] and
/// [`DevCluster::stop_shard_leader`] look for a node holding the group's
/// lease: 10 s in all.
const LEADER_POLL: Duration = Duration::from_millis(50);
const LEADER_WAIT_POLLS: u32 = 200;

/// A running dev cluster.
pub struct DevCluster {
    conductors: Vec<Conductor>,
    /// `https://127.0.0.1:port` (`http://` without TLS) of each node.
    pub endpoints: Vec<String>,
    /// The cluster's CAs and the dev user's client certificate, with TLS.
    pub tls: Option<DevTls>,
    /// The user whose key [`DevCluster::admin_key`] is.
    pub user: String,
    /// The cluster's id (the audience its clients sign for).
    pub cluster_id: String,
    /// The admin's secret key file (absolute).
    pub admin_key: PathBuf,
    /// The public half of the key SQS replies are signed with (hex), when
    /// the cluster takes commands over SQS.
    pub reply_key: Option<String>,
    /// The SQS intake queue's URL, when it has one.
    pub intake_queue: Option<String>,
    /// Clients reach it only over the intake queue (no client port).
    pub sqs_only: bool,
    /// The web console's address (`http://127.0.0.1:port`, node 1's;
    /// `https://` with [`DevOptions::console_tls`]).
    pub console: Option<String>,
    pub sim: Option<Arc<SimCloud>>,
    cloud: Arc<dyn Cloud>,
    /// Node 1's options: the pattern of nodes added later.
    template: NodeOptions,
    /// Saves the simulated cloud now and then (sim cloud only).
    saver: Option<tokio::task::JoinHandle<()>>,
    /// Nodes stopped ([`DevCluster::stop_meta_leader`]): their ids are
    /// not given again.
    stopped: u64,
}

/// Where a dev cluster keeps its simulated cloud between runs.
pub const CLOUD_FILE: &str = "cloud.json";
/// How often a running dev cluster saves its simulated cloud (and always
/// on shutdown).
const SAVE_EVERY: Duration = Duration::from_secs(2);

/// Saves `sim` to `path` off the async threads; failures are logged.
async fn save_cloud(sim: Arc<SimCloud>, path: PathBuf) {
    let shown = path.display().to_string();
    match tokio::task::spawn_blocking(move || sim.save(&path)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "saving the simulated cloud failed"),
        Err(e) => tracing::error!(error = %e, file = %shown, "saving the simulated cloud failed"),
    }
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DevError {
    let path = path.to_path_buf();
    move |source| DevError::Io { what, path, source }
}

async fn bind(port: u16) -> Result<TcpListener, std::io::Error> {
    // A restart may race the previous owner of the port letting go.
    let mut last = None;
    for _ in 0..50 {
        match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => return Ok(l),
            Err(e) if port != 0 => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("cannot bind")))
}

/// Listens on 127.0.0.1 at `port` (0: any); returns the port it got.
async fn listen(port: u16, dir: &Path) -> Result<(TcpListener, u16), DevError> {
    let l = bind(port)
        .await
        .map_err(io("cannot listen on 127.0.0.1 for", dir))?;
    let port = l
        .local_addr()
        .map_err(io("no local address for", dir))?
        .port();
    Ok((l, port))
}

/// The layout the data dir remembers (none the first time), or a new one.
fn read_layout(path: &Path, opts: &DevOptions) -> Result<DevLayout, DevError> {
    let old: Option<DevLayout> = match std::fs::read(path) {
        Ok(bytes) => Some(
            serde_json::from_slice(&bytes)
                .map_err(|e| DevError::Data(format!("{} is damaged: {e}", path.display())))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io("cannot read", path)(e)),
    };
    match old {
        Some(l) => {
            if l.ports.len() != opts.nodes {
                tracing::warn!(
                    existing = l.ports.len(),
                    requested = opts.nodes,
                    "the data dir holds a cluster of a different size; keeping it"
                );
            }
            Ok(l)
        }
        None => Ok(DevLayout {
            ports: vec![0; opts.nodes.max(1)],
            shards: opts.shards.max(1),
            cluster_id: new_cluster_id(),
        }),
    }
}

/// Listens on each port of `layout` (0: any), and records the ports got.
async fn listen_all(
    layout: &DevLayout,
    layout_path: &Path,
    dir: &Path,
) -> Result<(Vec<TcpListener>, DevLayout), DevError> {
    let mut listeners = Vec::new();
    let mut bound = Vec::new();
    for p in &layout.ports {
        let (l, port) = listen(*p, dir).await?;
        bound.push(port);
        listeners.push(l);
    }
    let layout = DevLayout {
        ports: bound,
        shards: layout.shards,
        cluster_id: layout.cluster_id.clone(),
    };
    let text = serde_json::to_vec_pretty(&layout).map_err(|e| DevError::Data(e.to_string()))?;
    std::fs::write(layout_path, text).map_err(io("cannot write", layout_path))?;
    Ok((listeners, layout))
}

/// The cloud the cluster drives: a simulated one seeded by `seed` and
/// restored from the last run's file, or AWS.
/// Where a dev cluster reads cloud events from: the queue it was given,
/// else the simulated cloud's feed if asked for.
fn dev_events(
    opts: &DevOptions,
    sim: Option<&Arc<SimCloud>>,
) -> Option<crate::cloud_events::EventsFrom> {
    use crate::cloud_events::EventsFrom;
    match (&opts.events, sim) {
        (Some(q), _) => Some(EventsFrom::Queue(q.clone())),
        (None, Some(sim)) if opts.sim_events => Some(EventsFrom::Sim(sim.clone())),
        (None, _) => None,
    }
}

async fn open_cloud(
    kind: DevCloud,
    seed: u64,
    dir: &Path,
    accounts: &PolicyAccounts,
) -> Result<(Arc<dyn Cloud>, Option<Arc<SimCloud>>), DevError> {
    match kind {
        DevCloud::Sim => {
            let sim = Arc::new(SimCloud::with_clock(
                seed,
                Arc::new(canon_cloud::sim::TokioClock::new(crate::now_ms())),
            ));
            // The cloud the last run left, if any.
            let file = dir.join(CLOUD_FILE);
            if sim.load(&file).map_err(|e| DevError::Data(e.to_string()))? {
                tracing::info!(file = %file.display(), "simulated cloud restored");
            }
            Ok((sim.clone(), Some(sim)))
        }
        DevCloud::Aws => {
            // Standard AWS_* variables; AWS_ENDPOINT_URL for an emulator.
            let config = canon_cloud::AwsConfig {
                endpoint_url: std::env::var("AWS_ENDPOINT_URL").ok(),
                roles: Arc::new(accounts.clone()),
                ..canon_cloud::AwsConfig::default()
            };
            Ok((Arc::new(canon_cloud::AwsCloud::new(config).await), None))
        }
    }
}

/// Saves `sim` to `dir`'s cloud file every [`SAVE_EVERY`].
fn spawn_saver(sim: Arc<SimCloud>, dir: &Path) -> tokio::task::JoinHandle<()> {
    let path = dir.join(CLOUD_FILE);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(SAVE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            save_cloud(sim.clone(), path.clone()).await;
        }
    })
}

/// Creates the cluster of `conductors` the first time (changing nothing
/// after), waits until every group has a leader, and records the members
/// and placement (once).
async fn form(
    conductors: &[Conductor],
    members: &BTreeMap<NodeId, String>,
) -> Result<(), DevError> {
    let Some(first) = conductors.first() else {
        return Ok(());
    };
    first.node.initialize(members).await?;
    for c in conductors {
        wait_ready(&c.node, Duration::from_secs(30)).await?;
    }
    crate::cluster::create(&first.node, members)
        .await
        .map_err(|e| DevError::Data(format!("cannot create the cluster: {}", e.message())))
}

impl DevCluster {
    /// Starts (or restarts, with the same data dir) a dev cluster and waits
    /// until every group has a leader.
    pub async fn start(opts: DevOptions) -> Result<DevCluster, DevError> {
        // Before the nodes' threads start (crate::malloc says why).
        crate::malloc::cap_arenas();
        let dir = &opts.data_dir;
        std::fs::create_dir_all(dir).map_err(io("cannot create", dir))?;
        let key_path = dir.join("admin.key");
        let admin = keys::load_or_create(&key_path)?;
        let layout_path = dir.join("cluster.json");
        let layout = read_layout(&layout_path, &opts)?;
        let (listeners, layout) = listen_all(&layout, &layout_path, dir).await?;
        let seed = layout.ports.first().copied().map_or(0, u64::from);
        let accounts = PolicyAccounts::new();
        let (cloud, sim) = open_cloud(opts.cloud, seed, dir, &accounts).await?;
        let mut users = BTreeMap::new();
        users.insert(ADMIN_USER.to_string(), admin.verifying_key());
        let cluster_id = layout.cluster_id.clone();
        let tls = match opts.tls {
            true => Some(DevTls::prepare(dir, &cluster_id, ADMIN_USER)?),
            false => None,
        };
        let template = NodeOptions {
            id: 1,
            advertise: String::new(),
            data_dir: dir.join("node-1"),
            shards: layout.shards,
            raft: opts.raft.clone(),
            fence_lease: fence_lease_under(&opts.raft),
            tick: opts.tick,
            account: DEFAULT_ACCOUNT.to_string(),
            users,
            freshness: Duration::from_secs(300),
            cluster_id,
            webhook: None,
            metrics_listen: None,
            console: false,
            console_tls: opts.console_tls,
            signed_reads: opts.signed_reads,
            tls: None,
            retention: opts.retention,
            // Its nodes join with their certificates, or (--insecure) with
            // a join token the harness makes (see `add_node`).
            open_join: false,
            intake: opts.intake.clone(),
            events: dev_events(&opts, sim.as_ref()),
            // On AWS (or moto), the policy's accounts may name queues too.
            account_events: sim.is_none().then(Vec::new),
            overflow: opts.overflow.clone(),
            drill_faults: false,
        };
        let mut conductors = Vec::new();
        let mut members: BTreeMap<NodeId, String> = BTreeMap::new();
        for (l, (id, port)) in listeners.into_iter().zip((1..).zip(&layout.ports)) {
            let mut options = node_options(&template, tls.as_ref(), id, *port)?;
            if id == 1 && !opts.intake.as_ref().is_some_and(|i| i.only) {
                // The web console, on node 1's admin port (a free one);
                // not on a cluster that serves no client port.
                options.console = true;
                options.metrics_listen = Some("127.0.0.1:0".into());
            }
            members.insert(id, options.advertise.clone());
            conductors.push(Conductor::start(options, l, cloud.clone(), sim.clone()).await?);
        }
        if let Some(first) = conductors.first() {
            accounts.attach(first.node.clone());
        }
        form(&conductors, &members).await?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let console = conductors.first().and_then(|c| c.admin_addr).map(|a| {
            match tls.is_some() && opts.console_tls {
                true => format!("https://{a}"),
                false => format!("http://{a}"),
            }
        });
        Ok(DevCluster {
            console,
            conductors,
            endpoints: members
                .values()
                .map(|a| format!("{scheme}://{a}"))
                .collect(),
            tls,
            user: ADMIN_USER.to_string(),
            cluster_id: layout.cluster_id.clone(),
            admin_key: std::fs::canonicalize(&key_path).unwrap_or(key_path),
            reply_key: opts.intake.as_ref().map(|i| i.reply_key.public_hex()),
            intake_queue: opts.intake.as_ref().map(|i| i.url.clone()),
            sqs_only: opts.intake.as_ref().is_some_and(|i| i.only),
            saver: sim
                .clone()
                .filter(|_| opts.save_cloud)
                .map(|sim| spawn_saver(sim, dir)),
            stopped: 0,
            sim,
            cloud,
            template,
        })
    }

    /// Starts one more node in this process and has it join the cluster
    /// through node 1, as `canond --join` does; returns its endpoint. The
    /// data dir's layout does not remember it: for trying membership
    /// changes, not for keeping.
    pub async fn add_node(&mut self) -> Result<String, DevError> {
        let id = self.conductors.len() as NodeId + self.stopped + 1;
        let dir = self.template.data_dir.parent().unwrap_or(Path::new("."));
        let (l, port) = listen(0, dir).await?;
        let options = node_options(&self.template, self.tls.as_ref(), id, port)?;
        let advertise = options.advertise.clone();
        let c = Conductor::start(options, l, self.cloud.clone(), self.sim.clone()).await?;
        let dial = c.peer_dialer();
        let through = self
            .conductors
            .first()
            .map(|c| c.node.addr().to_string())
            .ok_or_else(|| DevError::Data("the cluster has no node to join through".into()))?;
        let token = match self.tls {
            Some(_) => None,
            None => Some(self.invite(id).await?),
        };
        self.conductors.push(c);
        let within = Duration::from_secs(120);
        crate::cluster::ask_to_join(&dial, &through, id, &advertise, token.as_deref(), within)
            .await
            .map_err(DevError::Data)?;
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        Ok(format!("{scheme}://{advertise}"))
    }

    /// A join token for node `id` of this plaintext cluster, recorded
    /// through node 1 as `canon cluster join-token --node ID` would.
    async fn invite(&self, id: NodeId) -> Result<String, DevError> {
        let first = self
            .conductors
            .first()
            .ok_or_else(|| DevError::Data("the cluster has no node to join through".into()))?;
        let now = crate::now_ms();
        let ttl = Duration::from_secs(600);
        let token = crate::join_tokens::NewJoinToken::generate(now, ttl, Some(id));
        let req = canon_raft::Request::new(now, token.issue);
        match first.node.propose(canon_raft::META_GROUP, req).await {
            Ok(canon_raft::Response::Applied) => Ok(token.secret),
            Ok(canon_raft::Response::Rejected(r)) => Err(DevError::Data(r.to_string())),
            Err(e) => Err(DevError::Data(format!("cannot record a join token: {e}"))),
        }
    }

    /// Stops the node that leads the meta group — the one polling the SQS
    /// intake queue, if the cluster has one — and returns its id (None if
    /// no node held the lead within 10 s). Its
    /// intake ends at once, as in a crash (the messages it holds stay
    /// invisible until their visibility ends; then the next leader takes
    /// them); the rest of it shuts down as usual. For failover tests.
    pub async fn stop_meta_leader(&mut self) -> Option<NodeId> {
        self.stop_group_leader(canon_raft::META_GROUP).await
    }

    /// Stops the node that leads the shard group of process `alias` — the
    /// one whose scheduler runs that process's actor — and returns its id
    /// (None if no node held the lead within 10 s). For failover tests.
    pub async fn stop_shard_leader(&mut self, alias: &str) -> Option<NodeId> {
        let shards = self.template.shards;
        self.stop_group_leader(canon_raft::shard::group_of_alias(alias, shards))
            .await
    }

    /// Stops the node that holds `group`'s lease (waiting up to 10 s for
    /// one to hold it) and returns its id.
    async fn stop_group_leader(&mut self, group: canon_raft::GroupId) -> Option<NodeId> {
        // A leader's lease can lapse for a moment on a loaded machine
        // (and is renewed by the next heartbeat): wait for one to hold it.
        let mut at = None;
        for _ in 0..LEADER_WAIT_POLLS {
            at = self
                .conductors
                .iter()
                .position(|c| c.node.leadership(group).is_ok_and(|l| l.borrow().is_me));
            if at.is_some() {
                break;
            }
            tokio::time::sleep(LEADER_POLL).await;
        }
        let at = at?;
        let c = self.conductors.remove(at);
        let id = c.node.id();
        self.stopped += 1;
        c.shutdown().await;
        Some(id)
    }

    /// The Raft node of member `id`, if it runs.
    pub fn node(&self, id: NodeId) -> Option<&canon_raft::RaftNode> {
        self.conductors
            .iter()
            .map(|c| &c.node)
            .find(|n| n.id() == id)
    }

    /// What member `id`'s scheduler has done, if it runs.
    pub fn scheduler_stats(&self, id: NodeId) -> Option<Arc<canon_scheduler::SchedulerStats>> {
        let c = self.conductors.iter().find(|c| c.node.id() == id)?;
        c.scheduler_stats()
    }

    /// Where member `id` is among the running conductors.
    fn position_of(&self, id: NodeId) -> Result<usize, DevError> {
        self.conductors
            .iter()
            .position(|c| c.node.id() == id)
            .ok_or_else(|| DevError::Data(format!("node {id} does not run here")))
    }

    /// Stops member `id` for good (as `stop_shard_leader` does); Err if it
    /// does not run here. For benches that measure what a node held.
    pub async fn stop_node(&mut self, id: NodeId) -> Result<(), DevError> {
        let c = self.conductors.remove(self.position_of(id)?);
        self.stopped += 1;
        c.shutdown().await;
        Ok(())
    }

    /// Stops member `id` (as `stop_shard_leader` does) and starts it again
    /// on its own data and port, as a restarted `canond` would; returns
    /// once it serves again (its groups may still be catching up). The
    /// restarted node serves no console.
    pub async fn restart_node(&mut self, id: NodeId) -> Result<(), DevError> {
        let at = self.position_of(id)?;
        let c = self.conductors.remove(at);
        let port = c
            .node
            .addr()
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .ok_or_else(|| DevError::Data(format!("node {id} has no port")))?;
        c.shutdown().await;
        let options = node_options(&self.template, self.tls.as_ref(), id, port)?;
        let (listener, _) = listen(port, &options.data_dir).await?;
        let c = Conductor::start(options, listener, self.cloud.clone(), self.sim.clone()).await?;
        self.conductors.insert(at, c);
        Ok(())
    }

    /// Stops every node, then saves the simulated cloud.
    pub async fn shutdown(self) {
        if let Some(s) = &self.saver {
            s.abort();
        }
        for c in self.conductors {
            c.shutdown().await;
        }
        if let Some(sim) = self.sim.filter(|_| self.saver.is_some()) {
            let path = self
                .template
                .data_dir
                .parent()
                .unwrap_or(Path::new("."))
                .join(CLOUD_FILE);
            save_cloud(sim, path).await;
        }
    }
}

/// Node `id`'s options in a dev cluster (the template's data dir's
/// parent), listening on `port`, with a fresh certificate under `tls`.
fn node_options(
    template: &NodeOptions,
    tls: Option<&DevTls>,
    id: NodeId,
    port: u16,
) -> Result<NodeOptions, DevError> {
    let dir = template.data_dir.parent().unwrap_or(Path::new("."));
    Ok(NodeOptions {
        id,
        advertise: format!("127.0.0.1:{port}"),
        data_dir: dir.join(format!("node-{id}")),
        tls: tls.map(|t| t.node(id)).transpose()?,
        ..template.clone()
    })
}
