//! One conductor node: the Raft node, the scheduler over it, and one tonic
//! server on one port carrying the peer transport, the client API, gRPC
//! health and (in dev clusters) the rogue-operator admin service.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use canon_cloud::{Cloud, SimCloud};
use canon_raft::{NodeConfig, NodeError, NodeId, RaftNode, RaftSettings, Storage};
use canon_scheduler::{Alerts, Scheduler, SchedulerConfig, SchedulerParts, SystemClock};
use ed25519_dalek::VerifyingKey;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::StreamExt;

use crate::api::Api;
use crate::dev::DevAdminService;
use crate::envelope::EnvelopeVerifier;

/// The client API's encoded file descriptor set, for gRPC reflection.
const API_DESCRIPTOR: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/canon_api_descriptor.bin"));

/// How often a node hands over leaderships beyond its share.
const BALANCE_EVERY: Duration = Duration::from_secs(3);

/// What one node needs to start.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    pub id: NodeId,
    /// The address peers and clients reach this node at (`host:port`).
    pub advertise: String,
    pub data_dir: PathBuf,
    pub shards: u32,
    pub raft: RaftSettings,
    pub tick: Duration,
    /// The account of processes whose command names none.
    pub account: String,
    /// Users and their public keys.
    pub users: BTreeMap<String, VerifyingKey>,
    /// How far a command's timestamp may be from this node's clock.
    pub freshness: Duration,
    /// Drift alerts are POSTed here as JSON.
    pub webhook: Option<String>,
    /// Where to serve Prometheus `/metrics` (host:port), if anywhere.
    pub metrics_listen: Option<String>,
    /// Refuse unsigned reads (Status, History, Events).
    pub signed_reads: bool,
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("{0}")]
    Config(String),
}

/// A running node. Stop it with [`Conductor::shutdown`].
pub struct Conductor {
    pub node: RaftNode,
    /// Raised once this node finds it was removed from the cluster.
    removed: tokio::sync::watch::Receiver<bool>,
    sweeper: Option<JoinHandle<()>>,
    metrics: Option<JoinHandle<()>>,
    scheduler: Option<Scheduler>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

/// Turns stored compositions into declarations with the language crate.
pub fn decoder() -> canon_scheduler::Decoder {
    Arc::new(|c: &canon_raft::Composition, fid| {
        let compiled = canon_lang::Compiled::decode(&c.bytes).map_err(|e| e.to_string())?;
        compiled.instantiate(fid).map_err(|e| e.to_string())
    })
}

impl Conductor {
    /// Starts a node serving on `listener`. `sim` enables the dev admin
    /// service over that simulated cloud.
    pub async fn start(
        opts: NodeOptions,
        listener: TcpListener,
        cloud: Arc<dyn Cloud>,
        sim: Option<Arc<SimCloud>>,
    ) -> Result<Conductor, StartError> {
        let node = RaftNode::start_grpc(NodeConfig {
            id: opts.id,
            addr: opts.advertise.clone(),
            storage: Storage::Sled(opts.data_dir.clone()),
            shard_count: opts.shards,
            settings: opts.raft.clone(),
        })
        .await?;
        // Spreads group leadership over the nodes; ends when the node stops.
        drop(node.spawn_balancer(BALANCE_EVERY));
        let sweeper = crate::removal::spawn_learner_sweeper(node.clone());
        let removed =
            crate::removal::spawn_removal_watch(node.clone(), crate::cluster::tcp_dialer());
        let mut alerts = Alerts::log_only();
        if let Some(url) = &opts.webhook {
            let sink = canon_scheduler::WebhookSink::new(url, Duration::from_secs(5))
                .map_err(|e| StartError::Config(e.to_string()))?;
            alerts = alerts.with(Arc::new(sink));
        }
        let scheduler = Scheduler::start(SchedulerParts {
            node: node.clone(),
            cloud: cloud.clone(),
            config: SchedulerConfig {
                node_id: opts.id,
                tick_interval: opts.tick,
                ..SchedulerConfig::default()
            }
            .validated(),
            decoder: decoder(),
            clock: Arc::new(SystemClock),
            alerts,
        });
        let api_metrics = Arc::new(crate::metrics::ApiMetrics::default());
        let metrics = match &opts.metrics_listen {
            Some(addr) => {
                let l = TcpListener::bind(addr).await.map_err(|e| {
                    StartError::Config(format!("cannot listen for metrics on {addr}: {e}"))
                })?;
                Some(crate::metrics::serve(
                    l,
                    node.clone(),
                    scheduler.stats(),
                    api_metrics.clone(),
                ))
            }
            None => None,
        };
        let api = Api {
            signed_reads: opts.signed_reads,
            ..Api::new(
                node.clone(),
                cloud,
                Arc::new(EnvelopeVerifier::new(opts.users.clone(), opts.freshness)),
                opts.account.clone(),
                api_metrics,
            )
        };
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_serving::<canon_proto::canon::api::v1::canon_server::CanonServer<Api>>()
            .await;
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(API_DESCRIPTOR)
            .build_v1()
            .map_err(|e| StartError::Config(format!("reflection: {e}")))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let raft = node.grpc_service().into_server();
        let dev = sim.map(|s| DevAdminService::new(s, opts.account.clone()).into_server());
        let incoming = TcpListenerStream::new(listener).map(|conn| {
            if let Ok(stream) = &conn {
                // Best effort: a socket without NODELAY is slower, not wrong.
                let _ = stream.set_nodelay(true);
            }
            conn
        });
        let addr = opts.advertise.clone();
        // A removed node answers no client: its replicas no longer follow
        // the cluster, and a client that asks another member gets the truth.
        let gone = removed.clone();
        let me = opts.id;
        let api = tonic::service::interceptor::InterceptedService::new(
            api.into_server(),
            move |r: tonic::Request<()>| {
                if *gone.borrow() {
                    Err(tonic::Status::unavailable(format!(
                        "node {me} was removed from the cluster; ask another member"
                    )))
                } else {
                    Ok(r)
                }
            },
        );
        let server = tokio::spawn(async move {
            let result = tonic::transport::Server::builder()
                .add_service(raft)
                .add_service(api)
                .add_service(health)
                .add_service(reflection)
                .add_optional_service(dev)
                .serve_with_incoming_shutdown(incoming, async {
                    // Either a stop signal or the sender dropped: stop.
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = result {
                tracing::error!(%addr, error = %e, "server stopped");
            }
        });
        Ok(Conductor {
            node,
            removed,
            sweeper: Some(sweeper),
            metrics,
            scheduler: Some(scheduler),
            stop: Some(stop),
            server: Some(server),
        })
    }

    /// Stops actors, hands off the groups this node leads, flushes, stops
    /// the groups and the server.
    pub async fn shutdown(mut self) {
        if let Some(m) = self.metrics.take() {
            m.abort();
        }
        if let Some(s) = self.sweeper.take() {
            s.abort();
        }
        if let Some(s) = self.scheduler.take() {
            s.shutdown().await;
        }
        self.hand_off().await;
        if let Err(e) = self.node.sync().await {
            tracing::warn!(error = %e, "flush at shutdown failed");
        }
        self.node.shutdown().await;
        if let Some(stop) = self.stop.take() {
            // The server may already be gone; then there is nobody to tell.
            let _ = stop.send(());
        }
        if let Some(mut server) = self.server.take() {
            if tokio::time::timeout(Duration::from_secs(2), &mut server)
                .await
                .is_err()
            {
                server.abort();
            }
        }
    }
}

impl Conductor {
    /// Becomes true once this node finds it was removed from the cluster
    /// (it then refuses client calls; `canond` exits).
    pub fn removed(&self) -> tokio::sync::watch::Receiver<bool> {
        self.removed.clone()
    }

    /// Asks an up-to-date voter of each group this node leads to take it
    /// over, so the group is not leaderless for a whole election timeout
    /// after this node stops. Best effort: a refusal only means the usual
    /// election happens instead.
    async fn hand_off(&self) {
        let me = self.node.id();
        for view in self.node.group_views() {
            let leads = self
                .node
                .leadership(view.group)
                .map(|l| l.borrow().is_me)
                .unwrap_or(false);
            let Some(target) = view
                .up_to_date
                .iter()
                .find(|n| **n != me && view.voters.contains(n))
                .copied()
            else {
                continue;
            };
            if !leads {
                continue;
            }
            let addr = self.node.metrics(view.group).ok().and_then(|m| {
                m.borrow()
                    .membership_config
                    .membership()
                    .get_node(&target)
                    .map(|n| n.addr.clone())
            });
            let Some(addr) = addr else { continue };
            let asked = tokio::time::timeout(
                HAND_OFF_WAIT,
                self.node.ask_to_elect(target, &addr, view.group),
            )
            .await;
            tracing::info!(
                group = view.group,
                to = target,
                ok = matches!(asked, Ok(Ok(()))),
                "handed off leadership"
            );
        }
    }
}

/// Bound on one leadership hand-off at shutdown.
const HAND_OFF_WAIT: Duration = Duration::from_millis(500);

/// Waits until every group has a leader that this node knows of.
pub async fn wait_ready(node: &RaftNode, within: Duration) -> Result<(), NodeError> {
    let started = tokio::time::Instant::now();
    for g in node.groups() {
        loop {
            let known = node.leadership(g)?.borrow().leader.is_some();
            if known {
                break;
            }
            if started.elapsed() > within {
                return Err(NodeError::NoLeader {
                    group: g,
                    after: within,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}
