//! A turmoil simulation: three nodes (memory disks that outlive the hosts,
//! gRPC over turmoil TCP), a client writing through the network, the
//! leader partitioned away and healed. Afterwards every node holds exactly
//! the acknowledged writes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use canon_proto::canon::raft::v1::raft_transport_client::RaftTransportClient;
use canon_proto::canon::raft::v1::RaftMessage;
use canon_raft::grpc::GrpcService;
use canon_raft::network::{RpcKind, Transport, TransportError};
use canon_raft::shard::group_of_shard;
use canon_raft::store::MemDisk;
use canon_raft::{
    propose_via, Consistency, GroupId, NodeConfig, NodeId, RaftNode, RaftSettings, Storage,
};
use common::{aliases_in, create};
use futures::future::BoxFuture;
use futures::FutureExt;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;
use tonic::transport::{Channel, Endpoint, Uri};

const PORT: u16 = 7000;
const HOSTS: [&str; 3] = ["n1", "n2", "n3"];

/// gRPC over turmoil TCP; one lazily connected channel per peer.
#[derive(Default)]
struct SimTransport {
    peers: Mutex<BTreeMap<NodeId, Channel>>,
}

impl SimTransport {
    fn channel(&self, target: NodeId, addr: &str) -> Channel {
        let mut peers = self.peers.lock().unwrap();
        peers
            .entry(target)
            .or_insert_with(|| {
                let addr = addr.to_string();
                Endpoint::from_static("http://sim.invalid").connect_with_connector_lazy(
                    tower::service_fn(move |_: Uri| {
                        let addr = addr.clone();
                        async move {
                            let s = turmoil::net::TcpStream::connect(addr).await?;
                            Ok::<_, std::io::Error>(TokioIo::new(s))
                        }
                    }),
                )
            })
            .clone()
    }
}

impl Transport for SimTransport {
    fn call(
        &self,
        target: NodeId,
        addr: &str,
        kind: RpcKind,
        group: GroupId,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>> {
        let mut client = RaftTransportClient::new(self.channel(target, addr));
        let addr = addr.to_string();
        async move {
            let req = tonic::Request::new(RaftMessage { group, payload });
            let call = async {
                match kind {
                    RpcKind::AppendEntries => client.append_entries(req).await,
                    RpcKind::Vote => client.vote(req).await,
                    RpcKind::InstallSnapshot => client.install_snapshot(req).await,
                    RpcKind::Propose => client.propose(req).await,
                    RpcKind::ReadIndex => client.read_index(req).await,
                    RpcKind::Admin => client.admin(req).await,
                }
            };
            match tokio::time::timeout(timeout, call).await {
                Err(_) => Err(TransportError::Timeout {
                    target,
                    after: timeout,
                }),
                Ok(Ok(r)) => Ok(r.into_inner().payload),
                Ok(Err(s))
                    if s.code() == tonic::Code::Unavailable
                        || s.code() == tonic::Code::NotFound =>
                {
                    Err(TransportError::Unreachable {
                        target,
                        addr,
                        reason: s.message().to_string(),
                    })
                }
                Ok(Err(s)) => Err(TransportError::Failed {
                    target,
                    reason: s.to_string(),
                }),
            }
        }
        .boxed()
    }
}

/// A turmoil TCP stream the tonic server accepts.
struct SimStream(turmoil::net::TcpStream);

impl Connected for SimStream {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for SimStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

async fn serve(service: GrpcService) -> Result<(), Box<dyn std::error::Error>> {
    let listener = turmoil::net::TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, PORT)).await?;
    let incoming = futures::stream::unfold(listener, |l| async move {
        let conn = l.accept().await.map(|(s, _): (_, SocketAddr)| SimStream(s));
        Some((conn, l))
    });
    tonic::transport::Server::builder()
        .add_service(service.into_server())
        .serve_with_incoming(incoming)
        .await?;
    Ok(())
}

fn sim_settings() -> RaftSettings {
    RaftSettings {
        heartbeat: Duration::from_millis(50),
        election_min: Duration::from_millis(300),
        election_max: Duration::from_millis(600),
        forward_timeout: Duration::from_millis(500),
        propose_timeout: Duration::from_secs(2),
        ..RaftSettings::loopback()
    }
}

fn members() -> BTreeMap<NodeId, String> {
    HOSTS
        .iter()
        .enumerate()
        .map(|(i, h)| (i as NodeId + 1, format!("{h}:{PORT}")))
        .collect()
}

/// What a simulated run observed, for invariants and replay.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Trace {
    old_leader: NodeId,
    new_leader: Option<NodeId>,
    /// Per node: term and last applied index of the shard group at the end.
    terms: Vec<(NodeId, u64, Option<u64>)>,
}

#[test]
fn partitioned_leader_loses_nothing_acknowledged() {
    for seed in [1, 2] {
        let t = simulate(seed);
        assert!(t.new_leader.is_some_and(|l| l != t.old_leader), "{t:?}");
    }
}

#[test]
fn same_seed_same_run() {
    let a = simulate(7);
    let b = simulate(7);
    assert_eq!(a, b);
}

/// Runs the scenario and checks that every node ends with exactly the
/// acknowledged writes.
fn simulate(seed: u64) -> Trace {
    common::init_tracing();
    canon_raft::runtime::seed_election_rng(seed);
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(120))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(5))
        .build();

    let handles: Arc<Mutex<BTreeMap<NodeId, RaftNode>>> = Arc::default();
    let disks: Vec<MemDisk> = HOSTS.iter().map(|_| MemDisk::new()).collect();
    let shards = 1;
    let g = group_of_shard(0);

    for (i, host) in HOSTS.iter().enumerate() {
        let id = i as NodeId + 1;
        let disk = disks[i].clone();
        let handles = handles.clone();
        sim.host(*host, move || {
            let disk = disk.clone();
            let handles = handles.clone();
            async move {
                let node = RaftNode::start(
                    NodeConfig {
                        id,
                        addr: format!("{}:{PORT}", HOSTS[i]),
                        storage: Storage::Memory(disk),
                        shard_count: shards,
                        settings: sim_settings(),
                    },
                    Arc::new(SimTransport::default()),
                )
                .await?;
                handles.lock().unwrap().insert(id, node.clone());
                if id == 1 {
                    let n = node.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        n.initialize(&members()).await.expect("initialize");
                    });
                }
                serve(node.grpc_service()).await
            }
        });
    }

    let outcome: Arc<Mutex<(Vec<String>, Vec<String>)>> = Arc::default();
    let leaders: Arc<Mutex<(NodeId, Option<NodeId>)>> = Arc::default();
    {
        let handles = handles.clone();
        let outcome = outcome.clone();
        let leaders = leaders.clone();
        sim.client("client", async move {
            let transport = SimTransport::default();
            let nodes: Vec<(NodeId, String)> = members().into_iter().collect();
            let aliases = aliases_in(g, shards, 200, "sim");
            let mut names = aliases.into_iter();
            let mut acked = Vec::new();
            let mut unacked = Vec::new();
            let call = Duration::from_millis(500);

            // Before the partition: everything is acknowledged.
            tokio::time::sleep(Duration::from_secs(2)).await;
            for _ in 0..20 {
                let a = names.next().unwrap();
                let r = propose_via(
                    &transport,
                    &nodes,
                    g,
                    &create(&a, 1),
                    call,
                    Duration::from_secs(5),
                )
                .await?;
                assert!(r.is_applied());
                acked.push(a);
            }

            // Cut the leader off from the other nodes and from the client.
            let leader = {
                let h = handles.lock().unwrap();
                h.values()
                    .find(|n| n.leadership(g).unwrap().borrow().is_me)
                    .map(|n| n.id())
                    .expect("a leader")
            };
            let lhost = HOSTS[leader as usize - 1];
            for h in HOSTS.iter().chain(["client"].iter()) {
                if *h != lhost {
                    turmoil::partition(lhost, *h);
                }
            }
            // Writes sent to the isolated leader alone cannot commit.
            let isolated = vec![(leader, format!("{lhost}:{PORT}"))];
            for _ in 0..3 {
                let a = names.next().unwrap();
                match propose_via(
                    &transport,
                    &isolated,
                    g,
                    &create(&a, 2),
                    call,
                    Duration::from_secs(1),
                )
                .await
                {
                    Ok(r) => panic!("isolated leader acknowledged {a}: {r:?}"),
                    Err(_) => unacked.push(a),
                }
            }
            // The majority elects a new leader and keeps acknowledging.
            let majority: Vec<_> = nodes
                .iter()
                .filter(|(id, _)| *id != leader)
                .cloned()
                .collect();
            let cut_at = tokio::time::Instant::now();
            for k in 0..20 {
                if k == 1 {
                    eprintln!(
                        "sim: majority acknowledged {:?} after the partition",
                        cut_at.elapsed()
                    );
                }
                let a = names.next().unwrap();
                let r = propose_via(
                    &transport,
                    &majority,
                    g,
                    &create(&a, 3),
                    call,
                    Duration::from_secs(10),
                )
                .await?;
                assert!(r.is_applied());
                acked.push(a);
            }
            let new_leader = {
                let h = handles.lock().unwrap();
                h.values()
                    .filter(|n| n.id() != leader)
                    .find(|n| n.leadership(g).unwrap().borrow().is_me)
                    .map(|n| n.id())
            };
            *leaders.lock().unwrap() = (leader, new_leader);
            // Heal and let the old leader catch up.
            for h in HOSTS.iter().chain(["client"].iter()) {
                if *h != lhost {
                    turmoil::repair(lhost, *h);
                }
            }
            for _ in 0..5 {
                let a = names.next().unwrap();
                let r = propose_via(
                    &transport,
                    &nodes,
                    g,
                    &create(&a, 4),
                    call,
                    Duration::from_secs(10),
                )
                .await?;
                assert!(r.is_applied());
                acked.push(a);
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
            *outcome.lock().unwrap() = (acked, unacked);
            Ok(())
        });
    }

    sim.run().unwrap();

    let (acked, unacked) = outcome.lock().unwrap().clone();
    assert_eq!(acked.len(), 45);
    let acked_set: BTreeSet<String> = acked.into_iter().collect();
    let handles = handles.lock().unwrap();
    assert_eq!(handles.len(), 3);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (id, node) in handles.iter() {
        let present: BTreeSet<String> = rt
            .block_on(node.read(g, Consistency::Stale, |s| {
                s.aliases.keys().cloned().collect()
            }))
            .unwrap();
        assert_eq!(present, acked_set, "seed {seed} node {id}");
        for a in &unacked {
            assert!(
                !present.contains(a),
                "seed {seed}: node {id} has unacknowledged {a}"
            );
        }
    }
    let (old_leader, new_leader) = *leaders.lock().unwrap();
    let terms = handles
        .iter()
        .map(|(id, n)| {
            let m = n.metrics(g).unwrap().borrow().clone();
            (*id, m.current_term, m.last_applied.map(|l| l.index))
        })
        .collect();
    let trace = Trace {
        old_leader,
        new_leader,
        terms,
    };
    eprintln!("seed {seed}: {trace:?}");
    trace
}
