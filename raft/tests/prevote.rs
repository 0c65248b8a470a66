//! Pre-vote (`node::prevote`): a node cut off from its peers does not
//! raise its terms while it is away, so when it comes back every group
//! keeps its leader; and a group whose leader is gone still elects one.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use canon_raft::command::{Command, Request};
use canon_raft::{GroupId, NodeId, RaftSettings};
use common::cuttable::{wait_acting_leader, CutCluster};
use openraft::ServerState;

/// Each group's leader and term, as its leader sees them.
fn leaders(c: &CutCluster, groups: &[GroupId]) -> BTreeMap<GroupId, (NodeId, u64)> {
    groups
        .iter()
        .map(|g| {
            let (id, node) = c
                .nodes
                .iter()
                .find(|(_, n)| n.metrics(*g).unwrap().borrow().state == ServerState::Leader)
                .expect("every group has a leader");
            (*g, (*id, node.metrics(*g).unwrap().borrow().current_term))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_back_from_a_partition_deposes_no_leader() {
    let settings = RaftSettings::loopback();
    let c = CutCluster::start(&settings, 2).await;
    c.nodes[&1].initialize(&c.addrs).await.unwrap();
    let groups: Vec<GroupId> = c.nodes[&1].groups();
    for g in &groups {
        wait_acting_leader(&c.nodes, *g, Duration::from_secs(10)).await;
    }
    // Cut off a node that leads the fewest groups; the groups led by the
    // others must keep their leaders throughout.
    let before = leaders(&c, &groups);
    let lone = (1..=3u64)
        .min_by_key(|n| before.values().filter(|(l, _)| l == n).count())
        .unwrap();
    let kept: BTreeMap<GroupId, (NodeId, u64)> = before
        .into_iter()
        .filter(|(_, (l, _))| *l != lone)
        .collect();
    assert!(!kept.is_empty());

    c.isolate(lone);
    // Many election timeouts: without pre-vote the lone node campaigns
    // again and again, raising its term each time.
    tokio::time::sleep(settings.election_max * 8).await;
    for (g, (_, term)) in &kept {
        let lone_term = c.nodes[&lone].metrics(*g).unwrap().borrow().current_term;
        assert_eq!(
            lone_term, *term,
            "group {g}: the cut-off node raised its term while away"
        );
    }

    c.heal();
    // Long enough for the lone node to hear the leaders again and for any
    // higher term of its own to depose them.
    tokio::time::sleep(settings.election_max * 4).await;
    let after = leaders(&c, &groups);
    for (g, was) in &kept {
        assert_eq!(
            after.get(g),
            Some(was),
            "group {g}: its leader or term changed when the cut-off node came back"
        );
    }
    for g in &groups {
        c.nodes[&lone]
            .propose(*g, Request::new(1, Command::Noop))
            .await
            .expect("a write through the returned node");
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_others_elect_a_leader_when_theirs_is_cut_off() {
    let settings = RaftSettings::loopback();
    let c = CutCluster::start(&settings, 0).await;
    c.nodes[&1].initialize(&c.addrs).await.unwrap();
    let g = canon_raft::META_GROUP;
    let old = wait_acting_leader(&c.nodes, g, Duration::from_secs(10)).await;
    // Silenced, the leader's port does not refuse (quick failover needs a
    // refusal): only the election watch's pre-vote and election elect.
    c.isolate(old);
    let started = tokio::time::Instant::now();
    let new = loop {
        let l = c.nodes.iter().find(|(id, n)| {
            **id != old && n.metrics(g).unwrap().borrow().state == ServerState::Leader
        });
        if let Some((id, _)) = l {
            break *id;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no new leader within 10 s of cutting the old one off"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    c.nodes[&new]
        .propose(g, Request::new(1, Command::Noop))
        .await
        .expect("a write through the new leader");
    c.heal();
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_handed_over_stays_with_its_new_leader() {
    // The old leader, once it stops leading, has heard no AppendEntries for
    // as long as it led: it must not count that as a silence and take the
    // group back (nor may the new leader, not yet acknowledged, say yes).
    let settings = RaftSettings::loopback();
    let c = CutCluster::start(&settings, 0).await;
    c.nodes[&1].initialize(&c.addrs).await.unwrap();
    let g = canon_raft::META_GROUP;
    let old = wait_acting_leader(&c.nodes, g, Duration::from_secs(10)).await;
    // Let the old leader lead for a while first: its "silence" grows.
    tokio::time::sleep(settings.election_max * 3).await;
    let target = (1..=3u64).find(|n| *n != old).unwrap();
    c.nodes[&old]
        .ask_to_elect(target, &c.addrs[&target], g)
        .await
        .expect("the target starts an election");
    let started = tokio::time::Instant::now();
    let m = loop {
        let m = c.nodes[&target].metrics(g).unwrap().borrow().clone();
        if m.state == ServerState::Leader {
            break m;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the target did not take the group within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    tokio::time::sleep(settings.election_max * 4).await;
    let now = c.nodes[&target].metrics(g).unwrap().borrow().clone();
    assert_eq!(
        now.state,
        ServerState::Leader,
        "the new leader lost the group"
    );
    assert_eq!(
        now.current_term, m.current_term,
        "another election followed the handover"
    );
    c.shutdown().await;
}
