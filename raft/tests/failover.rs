//! Quick failover (`node::failover`): followers that all see their leader
//! gone elect a new one without waiting out its lease, and a follower that
//! alone lost its leader does not depose it.
//!
//! Both tests switch openraft's own election timers off on every node, so
//! any election they see comes from quick failover alone: they assert the
//! mechanism, not a timing that a loaded machine could upset.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use canon_raft::command::{Command, Request};
use canon_raft::grpc::{self, GrpcTransport};
use canon_raft::network::{BatchItem, RpcKind, Transport, TransportError};
use canon_raft::store::MemDisk;
use canon_raft::{GroupId, NodeConfig, NodeId, RaftNode, RaftSettings, Storage, META_GROUP};
use common::Cluster;
use futures::future::BoxFuture;
use futures::FutureExt;
use openraft::ServerState;
use tokio::time::Instant;

/// Switches openraft's timer-driven elections off for every group of `n`.
fn no_election_timers(n: &RaftNode) {
    for g in n.groups() {
        n.raft(g).unwrap().runtime_config().elect(false);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_replace_a_killed_leader_without_their_election_timers() {
    let settings = RaftSettings::loopback();
    let mut c = Cluster::start(3, 1, settings.clone()).await;
    c.bootstrap().await;
    let old = c.wait_leader(META_GROUP, Duration::from_secs(5)).await;
    let old_term = c.node(old).leadership(META_GROUP).unwrap().borrow().term;
    for i in 0..3 {
        no_election_timers(c.node(i));
    }
    let survivors: Vec<usize> = (0..3).filter(|i| *i != old).collect();
    let led: Vec<GroupId> = c
        .groups()
        .into_iter()
        .filter(|g| c.leader_of(*g) == Some(old))
        .collect();

    c.kill(old).await;
    let killed = Instant::now();

    // Raft leadership first (writes go through from here), then the
    // leadership that starts actors, which waits out the old lease.
    let (new, elected) = loop {
        let raft_leader = survivors.iter().find(|i| {
            let m = c.node(**i).metrics(META_GROUP).unwrap();
            let m = m.borrow();
            m.state == ServerState::Leader
        });
        if let Some(i) = raft_leader {
            break (*i, Instant::now());
        }
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "no survivor was elected in 10 s with election timers off"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let new_term = c
        .node(new)
        .metrics(META_GROUP)
        .unwrap()
        .borrow()
        .current_term;
    assert!(new_term > old_term);
    eprintln!(
        "new raft leader node {} in term {new_term} {:?} after the kill",
        new + 1,
        elected - killed
    );
    let other = survivors.into_iter().find(|i| *i != new).unwrap();
    c.node(other)
        .propose(META_GROUP, Request::new(1, Command::Noop))
        .await
        .expect("a write through the other survivor");

    let acting = c.wait_leader(META_GROUP, Duration::from_secs(10)).await;
    let acts = Instant::now();
    assert_eq!(acting, new);
    // The old leader, had it been alive, counted itself leader for up to
    // `election_max` after its last acknowledgement: the new one must not
    // act before that.
    assert!(
        acts - elected >= settings.election_max,
        "the new leader acted {:?} after its election, within the old lease",
        acts - elected
    );
    for g in led {
        c.wait_leader(g, Duration::from_secs(10)).await;
    }
    c.shutdown().await;
}

/// Links cut by the test: `(from, to, votes_pass)` means every call `from`
/// makes to `to` (but votes, if `votes_pass`) fails at once, as to a port
/// that refuses connections.
type Cuts = Arc<Mutex<BTreeSet<(NodeId, NodeId, bool)>>>;

/// The gRPC transport, with cuttable links.
struct Cuttable {
    me: NodeId,
    inner: GrpcTransport,
    cuts: Cuts,
}

impl Cuttable {
    fn cut(&self, target: NodeId, kind: RpcKind) -> bool {
        let cuts = self.cuts.lock().unwrap();
        cuts.contains(&(self.me, target, false))
            || (kind != RpcKind::Vote && cuts.contains(&(self.me, target, true)))
    }

    fn refused(target: NodeId, addr: &str) -> TransportError {
        TransportError::Unreachable {
            target,
            addr: addr.to_string(),
            reason: "connection refused (cut by the test)".into(),
        }
    }
}

impl Transport for Cuttable {
    fn call(
        &self,
        target: NodeId,
        addr: &str,
        kind: RpcKind,
        group: GroupId,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>> {
        if self.cut(target, kind) {
            let e = Cuttable::refused(target, addr);
            return async move { Err(e) }.boxed();
        }
        self.inner.call(target, addr, kind, group, payload, timeout)
    }

    fn call_batch(
        &self,
        target: NodeId,
        addr: &str,
        items: Vec<BatchItem>,
    ) -> BoxFuture<'static, ()> {
        if self.cut(target, RpcKind::AppendEntries) {
            for i in items {
                let _ = i.reply.send(Err(Cuttable::refused(target, addr)));
            }
            return async {}.boxed();
        }
        self.inner.call_batch(target, addr, items)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_alone_lost_a_live_leader_does_not_depose_it() {
    let settings = RaftSettings::loopback();
    let cuts: Cuts = Arc::default();
    let mut nodes = BTreeMap::new();
    let mut addrs = BTreeMap::new();
    let mut servers = Vec::new();
    for id in 1..=3u64 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let transport = Arc::new(Cuttable {
            me: id,
            inner: GrpcTransport::new(settings.connect_timeout),
            cuts: cuts.clone(),
        });
        let node = RaftNode::start(
            NodeConfig {
                id,
                addr: addr.clone(),
                storage: Storage::Memory(MemDisk::new()),
                shard_count: 1,
                settings: settings.clone(),
                link_faults: None,
            },
            transport,
        )
        .await
        .unwrap();
        let service = node.grpc_service();
        servers.push(tokio::spawn(async move {
            let _ = grpc::serve(service, listener, std::future::pending()).await;
        }));
        nodes.insert(id, node);
        addrs.insert(id, addr);
    }
    nodes[&1].initialize(&addrs).await.unwrap();
    let started = Instant::now();
    let leader = loop {
        let l = nodes
            .values()
            .find(|n| n.leadership(META_GROUP).unwrap().borrow().is_me);
        if let Some(l) = l {
            break l.id();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no leader");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    for n in nodes.values() {
        no_election_timers(n);
    }
    let term = nodes[&leader]
        .metrics(META_GROUP)
        .unwrap()
        .borrow()
        .current_term;
    let lone = (1..=3).find(|id| *id != leader).unwrap();
    let other = (1..=3).find(|id| *id != leader && *id != lone).unwrap();

    // The lone follower hears nothing from the leader, and its probes of
    // the leader are refused: to it, the leader looks dead. Its votes could
    // still reach the leader, whose own lease has lapsed (it dates from its
    // election): one election of its own would depose the leader.
    cuts.lock().unwrap().insert((leader, lone, false));
    cuts.lock().unwrap().insert((lone, leader, true));
    // Several rounds of quick failover's watch (every 25 ms, one attempt
    // per group every `election_min`).
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let lm = nodes[&leader].metrics(META_GROUP).unwrap().borrow().clone();
    assert_eq!(lm.state, ServerState::Leader, "the live leader was deposed");
    assert_eq!(lm.current_term, term, "the live leader's term moved on");
    let lone_m = nodes[&lone].metrics(META_GROUP).unwrap().borrow().clone();
    assert_eq!(
        lone_m.vote.leader_id().get_term(),
        term,
        "the lone follower started an election: {}",
        lone_m.vote
    );
    assert!(
        nodes[&leader]
            .leadership(META_GROUP)
            .unwrap()
            .borrow()
            .is_me
    );
    nodes[&other]
        .propose(META_GROUP, Request::new(1, Command::Noop))
        .await
        .expect("a write through the connected follower");

    for n in nodes.values() {
        n.shutdown().await;
    }
    for s in servers {
        s.abort();
    }
}
