//! Leader balancing: each node should lead about `groups / nodes` groups, so
//! that reconcile work (which follows shard leadership) spreads out, and a
//! node that comes back gets its share again within seconds.
//!
//! openraft 0.9 has no transfer-leader call. A transfer here asks the chosen
//! node, once the leader's replication shows it fully up to date, to start an
//! election: the other followers still honour the leader's lease and refuse,
//! but the old leader grants the vote (its own lease dates from its election)
//! and steps down, which with three replicas is a majority. Under heavy
//! writes the target may be a few entries behind and the attempt fails; the
//! next round tries again.
//!
//! With more than three voters the target and the old leader are no
//! majority, so the leader first goes quiet for a lease (new batches held,
//! heartbeats off) until the other voters' leases lapse, then asks the
//! target to run; writes to that group wait about `election_max`
//! ([`crate::RaftNode::balance_leaders_once`]).
//!
//! A leader's own vote refuses rivals for a lease (`election_max`) after it
//! was elected, so only leaderships older than that are handed over;
//! earlier attempts would just start a leaderless election.
//!
//! Every node runs the same rule on its own view ([`plan_transfer`]): if it
//! leads more than its share and some up-to-date voter of a group it leads
//! leads at least two fewer groups, it hands that group over — one group per
//! round, so the cluster converges without oscillating.

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::{GroupId, NodeId};

/// One group as a node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView {
    pub group: GroupId,
    /// The leader this node knows of.
    pub leader: Option<NodeId>,
    pub voters: BTreeSet<NodeId>,
    /// For groups this node leads: voters whose log matches the leader's.
    pub up_to_date: BTreeSet<NodeId>,
    /// For groups this node leads: it has led for longer than the lease
    /// (`election_max`). Before that its own vote still refuses a rival, so
    /// a hand-over would only disrupt the group.
    pub settled: bool,
}

/// The group `me` should hand over now, and to whom; `None` if balanced
/// (as far as `me` can tell).
pub fn plan_transfer(me: NodeId, views: &[GroupView]) -> Option<(GroupId, NodeId)> {
    let mut counts: BTreeMap<NodeId, usize> = BTreeMap::new();
    let mut nodes: BTreeSet<NodeId> = BTreeSet::new();
    for v in views {
        nodes.extend(v.voters.iter().copied());
        if let Some(l) = v.leader {
            *counts.entry(l).or_default() += 1;
        }
    }
    let led = views.iter().filter(|v| v.leader.is_some()).count();
    if nodes.is_empty() {
        return None;
    }
    let share = led.div_ceil(nodes.len());
    let mine = counts.get(&me).copied().unwrap_or(0);
    if mine <= share {
        return None;
    }
    let count_of = |n: &NodeId| counts.get(n).copied().unwrap_or(0);
    views
        .iter()
        .filter(|v| v.leader == Some(me) && v.settled)
        .filter_map(|v| {
            v.up_to_date
                .iter()
                .filter(|n| **n != me && v.voters.contains(n))
                .filter(|n| count_of(n) + 1 < mine)
                .min_by_key(|n| (count_of(n), **n))
                .map(|n| (v.group, *n, count_of(n)))
        })
        .min_by_key(|(g, n, c)| (*c, *n, *g))
        .map(|(g, n, _)| (g, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(group: GroupId, leader: NodeId, voters: &[NodeId]) -> GroupView {
        GroupView {
            group,
            leader: Some(leader),
            voters: voters.iter().copied().collect(),
            up_to_date: voters.iter().copied().collect(),
            settled: true,
        }
    }

    /// Repeatedly applies every node's plan until nobody moves anything.
    fn converge(mut views: Vec<GroupView>, nodes: &[NodeId]) -> BTreeMap<NodeId, usize> {
        for _ in 0..100 {
            let mut moved = false;
            for me in nodes {
                if let Some((g, to)) = plan_transfer(*me, &views) {
                    let v = views.iter_mut().find(|v| v.group == g).unwrap();
                    assert_eq!(v.leader, Some(*me));
                    v.leader = Some(to);
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
        let mut counts = BTreeMap::new();
        for v in &views {
            *counts.entry(v.leader.unwrap()).or_insert(0) += 1;
        }
        counts
    }

    #[test]
    fn one_node_leading_everything_spreads_out() {
        let views: Vec<_> = (0..17).map(|g| view(g, 1, &[1, 2, 3])).collect();
        let counts = converge(views, &[1, 2, 3]);
        let (min, max) = (
            counts.values().min().unwrap(),
            counts.values().max().unwrap(),
        );
        assert!(max - min <= 1, "{counts:?}");
        assert_eq!(counts.values().sum::<usize>(), 17);
    }

    #[test]
    fn balanced_clusters_stay_put() {
        let views = vec![
            view(0, 1, &[1, 2, 3]),
            view(1, 2, &[1, 2, 3]),
            view(2, 3, &[1, 2, 3]),
        ];
        for me in 1..=3 {
            assert_eq!(plan_transfer(me, &views), None);
        }
        // A difference of one is balanced too.
        let views = vec![
            view(0, 1, &[1, 2]),
            view(1, 1, &[1, 2]),
            view(2, 2, &[1, 2]),
        ];
        assert_eq!(plan_transfer(1, &views), None);
    }

    #[test]
    fn only_up_to_date_voters_receive_leadership() {
        let mut views: Vec<_> = (0..4).map(|g| view(g, 1, &[1, 2, 3])).collect();
        for v in &mut views {
            v.up_to_date = [1, 3].into();
        }
        assert!(matches!(plan_transfer(1, &views), Some((_, 3))));
        for v in &mut views {
            v.up_to_date = [1].into();
        }
        assert_eq!(plan_transfer(1, &views), None);
    }

    #[test]
    fn fresh_leaderships_are_not_handed_over() {
        let mut views: Vec<_> = (0..4).map(|g| view(g, 1, &[1, 2, 3])).collect();
        for v in &mut views {
            v.settled = false;
        }
        assert_eq!(plan_transfer(1, &views), None);
        views[2].settled = true;
        assert!(matches!(plan_transfer(1, &views), Some((2, _))));
    }

    #[test]
    fn groups_without_leader_do_not_count() {
        let mut views: Vec<_> = (0..6).map(|g| view(g, 1, &[1, 2, 3])).collect();
        for v in views.iter_mut().skip(2) {
            v.leader = None;
        }
        // 2 led groups over 3 nodes: share is 1, node 1 leads 2 → hand one over.
        assert!(plan_transfer(1, &views).is_some());
        // Others never hand over what they do not lead.
        assert_eq!(plan_transfer(2, &views), None);
    }
}
