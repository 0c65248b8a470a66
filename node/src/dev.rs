//! `canon dev`: a whole cluster inside one process on 127.0.0.1, sharing one
//! simulated cloud (or the real AWS API). Its state lives in a data
//! directory: one database per node, the admin key, the ports (so a restart
//! finds its peers where it left them) and the `client.toml` the CLI reads.
//!
//! Also the dev-only admin service that plays the rogue operator on the
//! simulated cloud.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use canon_cloud::{Cloud, Scope, SimCloud};
use canon_model::{Ipv4Cidr, Peer, Protocol, Rule};
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
            let l = bind(*p)
                .await
                .map_err(io("cannot listen on 127.0.0.1 for", dir))?;
            let port = l
                .local_addr()
                .map_err(io("no local address for", dir))?
                .port();
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
        let mut conductors = Vec::new();
        let mut members: BTreeMap<NodeId, String> = BTreeMap::new();
        for (i, l) in listeners.into_iter().enumerate() {
            let id = i as NodeId + 1;
            let advertise = format!("127.0.0.1:{}", bound[i]);
            members.insert(id, advertise.clone());
            let c = Conductor::start(
                NodeOptions {
                    id,
                    advertise,
                    data_dir: dir.join(format!("node-{id}")),
                    shards,
                    raft: RaftSettings::loopback(),
                    tick: opts.tick,
                    account: DEV_ACCOUNT.to_string(),
                    users: users.clone(),
                    freshness: Duration::from_secs(300),
                    webhook: None,
                    metrics_listen: None,
                },
                l,
                cloud.clone(),
                sim.clone(),
            )
            .await?;
            conductors.push(c);
        }
        if let Some(first) = conductors.first() {
            // Creates the cluster the first time; changes nothing after.
            first.node.initialize(&members).await?;
            for c in &conductors {
                wait_ready(&c.node, Duration::from_secs(30)).await?;
            }
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
        Ok(DevCluster {
            conductors,
            client,
            client_toml,
            sim,
        })
    }

    /// Stops every node.
    pub async fn shutdown(self) {
        for c in self.conductors {
            c.shutdown().await;
        }
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
                let cidr: Ipv4Cidr = i
                    .cidr
                    .parse()
                    .map_err(|_| Status::invalid_argument(format!("bad CIDR {:?}", i.cidr)))?;
                let rule = Rule::new(protocol, i.from_port, i.to_port, Peer::Cidr(cidr));
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
