//! Quick failover (`node::failover`): followers that all see their leader
//! gone elect a new one without waiting out its lease, and a follower that
//! alone lost its leader does not depose it.
//!
//! Both tests switch openraft's own election timers off on every node, so
//! any election they see comes from quick failover alone: they assert the
//! mechanism, not a timing that a loaded machine could upset.

mod common;

use std::time::Duration;

use canon_raft::command::{Command, Request};
use canon_raft::{GroupId, RaftNode, RaftSettings, META_GROUP};
use common::cuttable::{wait_acting_leader, CutCluster};
use common::Cluster;
use openraft::ServerState;
use tokio::time::Instant;

/// Switches openraft's timer-driven elections off for every group of `n`.
fn no_election_timers(n: &RaftNode) {
    n.set_election_timers(false);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_alone_lost_a_live_leader_does_not_depose_it() {
    let settings = RaftSettings::loopback();
    let CutCluster {
        nodes,
        addrs,
        servers,
        cuts,
        ..
    } = CutCluster::start(&settings, 1).await;
    nodes[&1].initialize(&addrs).await.unwrap();
    let leader = wait_acting_leader(&nodes, META_GROUP, Duration::from_secs(10)).await;
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
