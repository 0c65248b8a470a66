//! `canon dev`: a whole cluster inside one process on 127.0.0.1, sharing one
//! simulated cloud (or the real AWS API). Its state lives in a data
//! directory: one database per node, the admin key, the ports (so a restart
//! finds its peers where it left them), the simulated cloud's resources
//! (saved every few seconds and on shutdown, so a restart keeps their ids)
//! and the `client.toml` the CLI reads.
//!
//! Also the dev-only admin service that plays the rogue operator on the
//! simulated cloud.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use canon_cloud::{Cloud, Scope, SimCloud};
use canon_model::{Ipv4Cidr, Ipv6Cidr, Peer, Protocol, Rule};
use canon_proto::canon::api::v1 as pb;
use canon_raft::{NodeId, RaftSettings};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

use crate::keys;
use crate::server::{wait_ready, Conductor, NodeOptions, StartError};

/// The account a dev cluster's processes live in.
pub const DEV_ACCOUNT: &str = "087820496137";
/// The user whose key a dev cluster creates.
pub const ADMIN_USER: &str = "admin";

/// The file the CLI reads to find a cluster and its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientConfig {
    /// `http://host:port` of each node.
    pub endpoints: Vec<String>,
    pub user: String,
    /// The user's secret key file.
    pub key: PathBuf,
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
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Node(#[from] canon_raft::NodeError),
}

/// What a dev cluster remembers between runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DevLayout {
    /// Port of node index i.
    ports: Vec<u16>,
    shards: u32,
}

/// A running dev cluster.
pub struct DevCluster {
    conductors: Vec<Conductor>,
    pub client: ClientConfig,
    pub client_toml: PathBuf,
    pub sim: Option<Arc<SimCloud>>,
    cloud: Arc<dyn Cloud>,
    /// Node 1's options: the pattern of nodes added later.
    template: NodeOptions,
    /// Saves the simulated cloud now and then (sim cloud only).
    saver: Option<tokio::task::JoinHandle<()>>,
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

impl DevCluster {
    /// Starts (or restarts, with the same data dir) a dev cluster and waits
    /// until every group has a leader.
    pub async fn start(opts: DevOptions) -> Result<DevCluster, DevError> {
        let dir = &opts.data_dir;
        std::fs::create_dir_all(dir).map_err(io("cannot create", dir))?;
        let key_path = dir.join("admin.key");
        let admin = keys::load_or_create(&key_path)?;
        let layout_path = dir.join("cluster.json");
        let old: Option<DevLayout> = match std::fs::read(&layout_path) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| {
                DevError::Data(format!("{} is damaged: {e}", layout_path.display()))
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io("cannot read", &layout_path)(e)),
        };
        let (n, shards, ports) = match &old {
            Some(l) => (l.ports.len(), l.shards, l.ports.clone()),
            None => (
                opts.nodes.max(1),
                opts.shards.max(1),
                vec![0; opts.nodes.max(1)],
            ),
        };
        if old.is_some() && n != opts.nodes {
            tracing::warn!(
                existing = n,
                requested = opts.nodes,
                "the data dir holds a cluster of a different size; keeping it"
            );
        }
        let mut listeners = Vec::new();
        let mut bound = Vec::new();
        for p in &ports {
            let (l, port) = listen(*p, dir).await?;
            bound.push(port);
            listeners.push(l);
        }
        let layout = DevLayout {
            ports: bound.clone(),
            shards,
        };
        let text = serde_json::to_vec_pretty(&layout).map_err(|e| DevError::Data(e.to_string()))?;
        std::fs::write(&layout_path, text).map_err(io("cannot write", &layout_path))?;

        let (cloud, sim): (Arc<dyn Cloud>, Option<Arc<SimCloud>>) = match opts.cloud {
            DevCloud::Sim => {
                let seed = u64::from(bound[0]);
                let sim = Arc::new(SimCloud::with_clock(
                    seed,
                    Arc::new(canon_cloud::sim::TokioClock::new(crate::now_ms())),
                ));
                // The cloud the last run left, if any.
                if sim
                    .load(&dir.join(CLOUD_FILE))
                    .map_err(|e| DevError::Data(e.to_string()))?
                {
                    tracing::info!(file = %dir.join(CLOUD_FILE).display(), "simulated cloud restored");
                }
                (sim.clone(), Some(sim))
            }
            DevCloud::Aws => {
                // Standard AWS_* variables; AWS_ENDPOINT_URL for an emulator.
                let config = canon_cloud::AwsConfig {
                    endpoint_url: std::env::var("AWS_ENDPOINT_URL").ok(),
                    ..canon_cloud::AwsConfig::default()
                };
                (Arc::new(canon_cloud::AwsCloud::new(config).await), None)
            }
        };
        let mut users = BTreeMap::new();
        users.insert(ADMIN_USER.to_string(), admin.verifying_key());
        let template = NodeOptions {
            id: 1,
            advertise: String::new(),
            data_dir: dir.join("node-1"),
            shards,
            raft: RaftSettings::loopback(),
            tick: opts.tick,
            account: DEV_ACCOUNT.to_string(),
            users,
            freshness: Duration::from_secs(300),
            webhook: None,
            metrics_listen: None,
            signed_reads: opts.signed_reads,
        };
        let mut conductors = Vec::new();
        let mut members: BTreeMap<NodeId, String> = BTreeMap::new();
        for (i, l) in listeners.into_iter().enumerate() {
            let id = i as NodeId + 1;
            let options = node_options(&template, dir, id, bound[i]);
            members.insert(id, options.advertise.clone());
            conductors.push(Conductor::start(options, l, cloud.clone(), sim.clone()).await?);
        }
        if let Some(first) = conductors.first() {
            // Creates the cluster the first time; changes nothing after.
            first.node.initialize(&members).await?;
            for c in &conductors {
                wait_ready(&c.node, Duration::from_secs(30)).await?;
            }
            // Records the members and placement (once).
            crate::cluster::create(&first.node, &members)
                .await
                .map_err(|e| {
                    DevError::Data(format!("cannot create the cluster: {}", e.message()))
                })?;
        }
        let key = std::fs::canonicalize(&key_path).unwrap_or(key_path);
        let client = ClientConfig {
            endpoints: bound
                .iter()
                .map(|p| format!("http://127.0.0.1:{p}"))
                .collect(),
            user: ADMIN_USER.to_string(),
            key,
        };
        let client_toml = dir.join("client.toml");
        let text = toml::to_string(&client).map_err(|e| DevError::Data(e.to_string()))?;
        std::fs::write(&client_toml, text).map_err(io("cannot write", &client_toml))?;
        let saver = sim.clone().map(|sim| {
            let path = dir.join(CLOUD_FILE);
            tokio::spawn(async move {
                let mut every = tokio::time::interval(SAVE_EVERY);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    every.tick().await;
                    save_cloud(sim.clone(), path.clone()).await;
                }
            })
        });
        Ok(DevCluster {
            conductors,
            client,
            client_toml,
            sim,
            cloud,
            template,
            saver,
        })
    }

    /// Starts one more node in this process and has it join the cluster
    /// through node 1, as `canond --join` does; returns its endpoint. The
    /// data dir's layout does not remember it: for trying membership
    /// changes, not for keeping.
    pub async fn add_node(&mut self) -> Result<String, DevError> {
        let id = self.conductors.len() as NodeId + 1;
        let dir = self.template.data_dir.parent().unwrap_or(Path::new("."));
        let (l, port) = listen(0, dir).await?;
        let options = node_options(&self.template, dir, id, port);
        let advertise = options.advertise.clone();
        let c = Conductor::start(options, l, self.cloud.clone(), self.sim.clone()).await?;
        let through = self
            .conductors
            .first()
            .map(|c| c.node.addr().to_string())
            .ok_or_else(|| DevError::Data("the cluster has no node to join through".into()))?;
        self.conductors.push(c);
        crate::cluster::ask_to_join(
            &crate::cluster::tcp_dialer(),
            &through,
            id,
            &advertise,
            Duration::from_secs(120),
        )
        .await
        .map_err(DevError::Data)?;
        Ok(format!("http://{advertise}"))
    }

    /// Stops every node, then saves the simulated cloud.
    pub async fn shutdown(self) {
        if let Some(s) = &self.saver {
            s.abort();
        }
        for c in self.conductors {
            c.shutdown().await;
        }
        if let Some(sim) = self.sim {
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

/// Node `id`'s options in a dev cluster in `dir`, listening on `port`.
fn node_options(template: &NodeOptions, dir: &Path, id: NodeId, port: u16) -> NodeOptions {
    NodeOptions {
        id,
        advertise: format!("127.0.0.1:{port}"),
        data_dir: dir.join(format!("node-{id}")),
        ..template.clone()
    }
}

/// `canon.api.v1.DevAdmin` over a simulated cloud.
#[derive(Clone)]
pub struct DevAdminService {
    sim: Arc<SimCloud>,
    account: String,
}

impl DevAdminService {
    pub fn new(sim: Arc<SimCloud>, account: String) -> Self {
        DevAdminService { sim, account }
    }

    pub fn into_server(self) -> pb::dev_admin_server::DevAdminServer<DevAdminService> {
        pb::dev_admin_server::DevAdminServer::new(self)
    }
}

#[tonic::async_trait]
impl pb::dev_admin_server::DevAdmin for DevAdminService {
    async fn rogue(
        &self,
        request: Request<pb::RogueRequest>,
    ) -> Result<Response<pb::RogueReply>, Status> {
        let r = request.into_inner();
        let account = if r.account.is_empty() {
            self.account.clone()
        } else {
            r.account
        };
        let region = if r.region.is_empty() {
            "us-west-2".to_string()
        } else {
            r.region
        };
        let scope = Scope::new(account, region);
        let outcome = match r.action {
            Some(pb::rogue_request::Action::AuthorizeIngress(i)) => {
                let protocol = Protocol::parse(&i.protocol).ok_or_else(|| {
                    Status::invalid_argument(format!("unknown protocol {:?}", i.protocol))
                })?;
                let peer = if let Ok(v4) = i.cidr.parse::<Ipv4Cidr>() {
                    Peer::Cidr(v4)
                } else if let Ok(v6) = i.cidr.parse::<Ipv6Cidr>() {
                    Peer::Ipv6Cidr(v6)
                } else {
                    return Err(Status::invalid_argument(format!(
                        "bad CIDR {:?}: use an IPv4 range such as 0.0.0.0/0 or an IPv6 range such as ::/0",
                        i.cidr
                    )));
                };
                let rule = Rule::new(protocol, i.from_port, i.to_port, peer);
                self.sim.rogue_authorize_ingress(&scope, &i.group, rule)
            }
            Some(pb::rogue_request::Action::DeleteSubnet(subnet)) => {
                self.sim.rogue_delete_subnet(&scope, &subnet)
            }
            None => return Err(Status::invalid_argument("no rogue action")),
        };
        match outcome {
            Ok(o) => Ok(Response::new(pb::RogueReply {
                message: format!("done in {scope}: {}", o.changes.join("; ")),
            })),
            Err(e) => Err(Status::failed_precondition(e.to_string())),
        }
    }
}
