//! One conductor node: the Raft node, the scheduler over it, and one tonic
//! server on one port carrying the peer transport, the client API, gRPC
//! health and (in dev clusters) the rogue-operator admin service.

use std::sync::Arc;
use std::time::Duration;

use canon_cloud::{Cloud, SimCloud};
use canon_raft::{NodeConfig, NodeError, RaftNode, RaftThreads, Storage};
use canon_scheduler::{Alerts, Scheduler, SchedulerConfig, SchedulerParts, SystemClock};
use canon_tls::NodeTls;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::admin_http::AdminState;
use crate::api::Api;
use crate::envelope::EnvelopeVerifier;
use crate::on_runtime::OnRuntime;
use crate::options::{FenceLeaseTooLong, NodeOptions};
use crate::rogue::DevAdminService;

/// The client API's encoded file descriptor set, for gRPC reflection.
const API_DESCRIPTOR: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/canon_api_descriptor.bin"));

/// How often a node hands over leaderships beyond its share.
const BALANCE_EVERY: Duration = Duration::from_secs(3);

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Boxed: a Raft error is large, and this is the rare path.
    #[error(transparent)]
    Node(Box<NodeError>),
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Timing(#[from] FenceLeaseTooLong),
}

impl From<NodeError> for StartError {
    fn from(e: NodeError) -> Self {
        StartError::Node(Box::new(e))
    }
}

/// A running node. Stop it with [`Conductor::shutdown`].
pub struct Conductor {
    pub node: RaftNode,
    /// Reaches other nodes' client API (with this node's TLS, if any).
    peers: crate::cluster::PeerDialer,
    /// Raised once this node finds it was removed from the cluster.
    removed: tokio::sync::watch::Receiver<bool>,
    sweeper: Option<JoinHandle<()>>,
    /// Follows the drills' link fault file (`--drill-faults`).
    link_fault_watch: Option<JoinHandle<()>>,
    /// Trims audit chains to the configured retention.
    retention: Option<JoinHandle<()>>,
    metrics: Option<JoinHandle<()>>,
    /// Where the admin port (metrics, health, the console) listens.
    pub admin_addr: Option<std::net::SocketAddr>,
    /// Polls the SQS intake queue while this node leads the meta group.
    intake: Option<JoinHandle<()>>,
    /// Reads the cloud events queue while this node leads the meta group.
    cloud_events: Option<JoinHandle<()>>,
    /// Watches the policy's accounts for their events queues and reads them.
    account_events: Option<JoinHandle<()>>,
    scheduler: Option<Scheduler>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl Conductor {
    /// What this node's scheduler has done (ticks, actors started, heals).
    pub fn scheduler_stats(&self) -> Option<Arc<canon_scheduler::SchedulerStats>> {
        self.scheduler.as_ref().map(Scheduler::stats)
    }

    /// Starts a node serving on `listener`. `sim` enables the dev admin
    /// service over that simulated cloud. Settings that cannot work
    /// together (see [`NodeOptions::check`]) are refused before anything
    /// starts.
    pub async fn start(
        opts: NodeOptions,
        listener: TcpListener,
        cloud: Arc<dyn Cloud>,
        sim: Option<Arc<SimCloud>>,
    ) -> Result<Conductor, StartError> {
        opts.check()?;
        if opts.intake.as_ref().is_some_and(|q| q.only) && opts.tls.is_none() {
            return Err(StartError::Config(
                "--no-client-port needs mutual TLS: only certificates tell peers from clients"
                    .into(),
            ));
        }
        let tls = load_tls(&opts)?;
        let dial_tls = tls.as_ref().map(|t| t.dial_config());
        let link_faults = opts
            .drill_faults
            .then(canon_raft::link_fault::LinkFaults::default);
        let node = RaftNode::start_grpc_tls(
            NodeConfig {
                id: opts.id,
                addr: opts.advertise.clone(),
                storage: Storage::Sled(opts.data_dir.clone()),
                shard_count: opts.shards,
                settings: opts.raft.clone(),
                link_faults: link_faults.clone(),
                threads: RaftThreads::default(),
            },
            dial_tls.clone(),
        )
        .await?;
        let peers = crate::cluster::dialer(dial_tls);
        // Spreads group leadership over the nodes; ends when the node stops.
        drop(node.spawn_balancer(BALANCE_EVERY));
        let sweeper = crate::removal::spawn_learner_sweeper(node.clone());
        let retention = crate::retention::spawn_retention(node.clone(), opts.retention);
        let removed = crate::removal::spawn_removal_watch(node.clone(), peers.clone());
        let link_fault_watch = crate::drill_link_fault::watch(&opts.data_dir, link_faults);
        let alerts = alerts(opts.webhook.as_deref()).map_err(StartError::Config)?;
        let scheduler = start_scheduler(&opts, node.clone(), cloud.clone(), alerts);
        let api_metrics = Arc::new(crate::metrics::ApiMetrics::default());
        let admin = AdminState {
            node: opts.id,
            metrics: Arc::new(crate::metrics::registry(
                node.clone(),
                scheduler.stats(),
                &api_metrics,
            )),
            removed: removed.clone(),
            stopped: {
                let node = node.clone();
                Arc::new(move || crate::admin_http::stopped_groups(&node))
            },
        };
        let api = Api {
            signed_reads: opts.signed_reads,
            peers: peers.clone(),
            tls_cluster: tls.as_ref().map(|t| t.cluster.clone()),
            open_join: opts.open_join,
            overflow: opts.overflow.clone(),
            ..Api::new(
                node.clone(),
                cloud,
                Arc::new(EnvelopeVerifier::new(
                    opts.users.clone(),
                    &opts.cluster_id,
                    opts.freshness,
                )),
                opts.account.clone(),
                api_metrics,
            )
        };
        // Numbered from the start, so a subscriber that reconnects finds
        // the events it missed.
        api.journal.start(&node);
        let console = opts.console.then(|| crate::console::ConsoleState {
            api: api.clone(),
            sessions: Default::default(),
        });
        let admin_tls = tls.clone().filter(|_| opts.console && opts.console_tls);
        let (metrics, admin_addr) = serve_admin(&opts, admin, console, admin_tls).await?;
        let intake = match &opts.intake {
            Some(q) => {
                let lead = node.leadership(canon_raft::META_GROUP)?;
                let door = Arc::new(api.clone());
                Some(crate::sqs::spawn(door, lead, q))
            }
            None => None,
        };
        let (cloud_events, account_events) =
            start_event_readers(&opts, &node, &api.clock).map_err(|e| *e)?;
        let dev = sim.map(|s| DevAdminService::new(s, opts.account.clone()));
        let (stop, stopped) = oneshot::channel::<()>();
        let mut gates = crate::peer_gate::Gates::new(node.clone(), tls.clone());
        if opts.intake.as_ref().is_some_and(|q| q.only) {
            gates = gates.peers_only();
        }
        let server = serve_grpc(
            &opts,
            &node,
            (listener, tls),
            gates,
            api,
            dev,
            &removed,
            stopped,
        )
        .await?;
        Ok(Conductor {
            peers,
            node,
            removed,
            sweeper: Some(sweeper),
            link_fault_watch,
            retention: Some(retention),
            metrics,
            admin_addr,
            intake,
            cloud_events,
            account_events,
            scheduler: Some(scheduler),
            stop: Some(stop),
            server: Some(server),
        })
    }

    /// Stops actors, hands off the groups this node leads, flushes, stops
    /// the groups and the server.
    pub async fn shutdown(mut self) {
        // Messages under way stay invisible until their visibility ends,
        // then the next leader takes them.
        if let Some(i) = self.intake.take() {
            i.abort();
        }
        if let Some(e) = self.account_events.take() {
            e.abort();
        }
        if let Some(e) = self.cloud_events.take() {
            e.abort();
        }
        if let Some(m) = self.metrics.take() {
            m.abort();
        }
        if let Some(s) = self.sweeper.take() {
            s.abort();
        }
        if let Some(w) = self.link_fault_watch.take() {
            w.abort();
        }
        if let Some(r) = self.retention.take() {
            r.abort();
        }
        if let Some(s) = self.scheduler.take() {
            s.shutdown().await;
        }
        self.hand_off().await;
        if let Err(e) = self.node.sync().await {
            tracing::warn!(error = %e, "flush at shutdown failed");
        }
        // The server runs on the node's Raft runtime, which stopping the
        // node ends: close it gracefully first.
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
        self.node.shutdown().await;
    }
}

impl Conductor {
    /// How this node reaches other nodes' client API (`canond --join`
    /// asks through it).
    pub fn peer_dialer(&self) -> crate::cluster::PeerDialer {
        self.peers.clone()
    }

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

/// Drift alerts go to the log and, if `webhook` is given, to it.
fn alerts(webhook: Option<&str>) -> Result<Alerts, String> {
    let alerts = Alerts::log_only();
    let Some(url) = webhook else {
        return Ok(alerts);
    };
    let sink = canon_scheduler::WebhookSink::new(url, Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    Ok(alerts.with(Arc::new(sink)))
}

/// The node's cloud events reader and its accounts' one, when asked for.
type EventReaders = (Option<JoinHandle<()>>, Option<JoinHandle<()>>);

/// Starts the readers of the node's cloud events queue (`--events-queue`)
/// and of the accounts' queues, as `opts` asks; their pokes are proposed
/// at `clock`'s time (the API's).
fn start_event_readers(
    opts: &NodeOptions,
    node: &RaftNode,
    clock: &canon_scheduler::SharedClock,
) -> Result<EventReaders, Box<NodeError>> {
    let cloud_events = match &opts.events {
        Some(q) => {
            let lead = node.leadership(canon_raft::META_GROUP).map_err(Box::new)?;
            Some(crate::cloud_events::spawn(
                node.clone(),
                lead,
                q,
                clock.clone(),
            ))
        }
        None => None,
    };
    let account_events = match &opts.account_events {
        Some(own) => {
            let lead = node.leadership(canon_raft::META_GROUP).map_err(Box::new)?;
            let skip = match &opts.events {
                Some(crate::cloud_events::EventsFrom::Queue(q)) => Some(q.url.clone()),
                _ => None,
            };
            let (own, clock) = (own.clone(), clock.clone());
            Some(crate::cloud_events::accounts::spawn(
                node.clone(),
                lead,
                skip,
                own,
                clock,
            ))
        }
        None => None,
    };
    Ok((cloud_events, account_events))
}

/// The scheduler over `node`.
fn start_scheduler(
    opts: &NodeOptions,
    node: RaftNode,
    cloud: Arc<dyn Cloud>,
    alerts: Alerts,
) -> Scheduler {
    Scheduler::start(SchedulerParts {
        node,
        cloud,
        config: SchedulerConfig {
            node_id: opts.id,
            tick_interval: opts.tick,
            fence_lease: opts.fence_lease,
            ..SchedulerConfig::default()
        }
        .validated(),
        decoder: crate::composition::decoder(),
        clock: Arc::new(SystemClock),
        alerts,
        labeller: Some(crate::validations::drift_labeller()),
    })
}

/// Serves the admin HTTP port at `--metrics-listen`, if given (with the
/// console on, at [`crate::options::CONSOLE_LISTEN_DEFAULT`] if not): its
/// task and address. With `tls`, the port serves HTTPS (plain HTTP for
/// metrics and health only: [`crate::admin_http::serve_https`]).
async fn serve_admin(
    opts: &NodeOptions,
    state: AdminState,
    console: Option<crate::console::ConsoleState>,
    tls: Option<Arc<NodeTls>>,
) -> Result<(Option<JoinHandle<()>>, Option<std::net::SocketAddr>), StartError> {
    let addr = match (opts.metrics_listen.as_deref(), &console) {
        (Some(addr), _) => addr,
        (None, Some(_)) => crate::options::CONSOLE_LISTEN_DEFAULT,
        (None, None) => return Ok((None, None)),
    };
    let l = TcpListener::bind(addr).await.map_err(|e| {
        StartError::Config(format!("cannot listen for the admin port on {addr}: {e}"))
    })?;
    let bound = l.local_addr().ok();
    let mut router = crate::admin_http::admin_router(state);
    let scheme = if tls.is_some() { "https" } else { "http" };
    if let Some(c) = console {
        router = router.merge(crate::console::console_router(c));
        if let Some(a) = bound {
            tracing::info!(url = %format!("{scheme}://{a}/"), "web console served");
        }
    }
    let task = match tls {
        Some(tls) => crate::admin_http::serve_https(l, router, tls).map_err(|e| {
            StartError::Config(format!("cannot serve the admin port on {addr}: {e}"))
        })?,
        None => crate::admin_http::serve(l, router),
    };
    Ok((Some(task), bound))
}

/// This node's TLS, if it is configured, loaded and checked (its
/// certificate must be the peer CA's and name this node of this cluster).
fn load_tls(opts: &NodeOptions) -> Result<Option<Arc<NodeTls>>, StartError> {
    let Some(files) = &opts.tls else {
        tracing::warn!(
            "serving without TLS: peers and clients are not authenticated by certificate \
             (give --tls-cert, --tls-key, --tls-peer-ca and --tls-client-ca)"
        );
        return Ok(None);
    };
    canon_tls::install_crypto_provider();
    let tls = NodeTls::load(files, &opts.cluster_id, opts.id)
        .map_err(|e| StartError::Config(format!("TLS: {e}")))?;
    Ok(Some(Arc::new(tls)))
}

/// The one gRPC server of the node: the peer transport (members only,
/// under TLS), the client API (refusing clients once the node was removed),
/// health, reflection and, with a simulated cloud, the rogue operator;
/// until `stopped` fires. It runs on the node's Raft runtime; every service
/// but the peer transport runs its calls on the caller's ([`OnRuntime`]).
#[allow(clippy::too_many_arguments)]
async fn serve_grpc(
    opts: &NodeOptions,
    node: &RaftNode,
    (listener, tls): (TcpListener, Option<Arc<NodeTls>>),
    gates: crate::peer_gate::Gates,
    api: Api,
    dev: Option<DevAdminService>,
    removed: &tokio::sync::watch::Receiver<bool>,
    stopped: oneshot::Receiver<()>,
) -> Result<JoinHandle<()>, StartError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<canon_proto::canon::api::v1::canon_server::CanonServer<Api>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(API_DESCRIPTOR)
        .build_v1()
        .map_err(|e| StartError::Config(format!("reflection: {e}")))?;
    let peer_gate = gates.clone();
    let peer_service = node.grpc_service();
    let peer_streams = peer_service.clone();
    let raft = tonic::service::interceptor::InterceptedService::new(
        peer_service.into_server(),
        move |r: tonic::Request<()>| peer_gate.peer(r),
    );
    // Only the peer transport is the Raft runtime's work.
    let app = tokio::runtime::Handle::current();
    let dev = dev.map(|d| OnRuntime::new(d.into_server(), app.clone()));
    let health = OnRuntime::new(health, app.clone());
    let reflection = OnRuntime::new(reflection, app.clone());
    let addr = opts.advertise.clone();
    // A removed node answers no client: its replicas no longer follow
    // the cluster, and a client that asks another member gets the truth.
    let gone = removed.clone();
    let me = opts.id;
    let api = tonic::service::interceptor::InterceptedService::new(
        api.into_server(),
        move |r: tonic::Request<()>| {
            gates.client(&r)?;
            if *gone.borrow() {
                Err(tonic::Status::unavailable(format!(
                    "node {me} was removed from the cluster; ask another member"
                )))
            } else {
                Ok(r)
            }
        },
    );
    let api = OnRuntime::new(api, app);
    let readiness = watch_readiness(reporter, node.clone());
    // The listener moves to the Raft runtime, which accepts and reads every
    // connection: peers' heartbeats are read however busy the application
    // is (the API's calls still run on the application's runtime).
    let listener = listener
        .into_std()
        .map_err(|e| StartError::Config(format!("cannot hand {addr} to the Raft runtime: {e}")))?;
    Ok(node.raft_runtime().spawn(async move {
        let listener = match TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(%addr, error = %e, "server not started");
                return;
            }
        };
        let incoming = canon_tls::server::incoming(listener, tls);
        let serve = tonic::transport::Server::builder()
            .add_service(raft)
            .add_service(api)
            .add_service(health)
            .add_service(reflection)
            .add_optional_service(dev)
            .serve_with_incoming_shutdown(
                incoming,
                // Either a stop signal or the sender dropped: stop. Peers'
                // AppendEntries streams would hold the shutdown open.
                peer_streams.closing_on(async move {
                    let _ = stopped.await;
                }),
            );
        // The readiness watch never ends; it stops with the server.
        let result = tokio::select! {
            r = serve => r,
            () = readiness => Ok(()),
        };
        if let Err(e) = result {
            tracing::error!(%addr, error = %e, "server stopped");
        }
    }))
}

/// How often [`watch_readiness`] looks at the node's groups.
const READINESS_EVERY: Duration = Duration::from_secs(2);

/// Keeps the Canon service's gRPC health, which the readiness probe asks
/// for, NOT_SERVING while one of the node's Raft groups is stopped on a
/// fatal error (its storage failed: a full disk), and SERVING again once
/// none is; logs each change. The liveness probe (the whole server's
/// health) is left alone: restarting does not empty a disk.
async fn watch_readiness(reporter: tonic_health::server::HealthReporter, node: RaftNode) {
    type Canon = canon_proto::canon::api::v1::canon_server::CanonServer<Api>;
    let mut was_stopped = false;
    loop {
        tokio::time::sleep(READINESS_EVERY).await;
        let stopped = crate::admin_http::stopped_groups(&node);
        if stopped.is_empty() != was_stopped {
            continue;
        }
        was_stopped = !stopped.is_empty();
        if was_stopped {
            tracing::error!(groups = %stopped.join("; "), "Raft groups stopped: not ready");
            reporter.set_not_serving::<Canon>().await;
        } else {
            tracing::info!("no Raft group is stopped: ready again");
            reporter.set_serving::<Canon>().await;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A node whose fence lease is not under its election timeout refuses
    /// to start, naming both, before it opens its database or binds
    /// anything.
    #[tokio::test]
    async fn a_fence_lease_as_long_as_the_election_timeout_refuses_to_start() {
        let dir = tempfile::tempdir().unwrap();
        let raft = canon_raft::RaftSettings::loopback();
        let opts = NodeOptions {
            id: 1,
            advertise: "127.0.0.1:1".into(),
            data_dir: dir.path().join("node-1"),
            shards: 1,
            fence_lease: raft.election_min,
            raft,
            tick: Duration::from_secs(1),
            account: crate::defaults::DEFAULT_ACCOUNT.into(),
            users: Default::default(),
            freshness: Duration::from_secs(300),
            cluster_id: crate::defaults::DEFAULT_CLUSTER_ID.into(),
            webhook: None,
            metrics_listen: None,
            console: false,
            console_tls: false,
            signed_reads: false,
            tls: None,
            retention: Default::default(),
            open_join: false,
            intake: None,
            events: None,
            account_events: None,
            overflow: None,
            drill_faults: false,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let cloud = Arc::new(SimCloud::new(1));
        let Err(e) = Conductor::start(opts, listener, cloud, None).await else {
            panic!("a node with a fence lease of 200ms over an election timeout of 200ms started");
        };
        let message = e.to_string();
        assert!(message.contains("fence lease (200ms)"), "{message}");
        assert!(message.contains("election timeout (200ms"), "{message}");
        assert!(
            !dir.path().join("node-1").exists(),
            "it opened its database"
        );
    }
}
