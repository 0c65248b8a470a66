//! Shard placement: which nodes hold each shard's replicas.
//!
//! Every node runs an openraft instance for every group, but only the
//! placed replicas are voters; the rest stay idle and uninitialised. A
//! placement gives each shard `replicas` distinct nodes (3 by default, 5
//! when configured, fewer if the cluster is smaller), spreads the replicas
//! so no node carries more than its share, and keeps existing replicas where
//! it can so that a membership change moves as little data as possible.
//!
//! [`place`] is pure and deterministic; [`crate::RaftNode::apply_placement`]
//! carries a placement out through membership changes.

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::NodeId;

/// Replicas per shard unless configured otherwise.
pub const DEFAULT_REPLICAS: usize = 3;

/// The most replicas any node should carry.
pub fn share(nodes: usize, shards: u32, replicas: usize) -> usize {
    if nodes == 0 {
        return 0;
    }
    let r = replicas.min(nodes);
    (shards as usize * r).div_ceil(nodes)
}

/// Places `shards` shards on `nodes`, keeping as much of `current` (shard →
/// replicas) as balance allows.
pub fn place(
    nodes: &BTreeSet<NodeId>,
    shards: u32,
    replicas: usize,
    current: &BTreeMap<u32, Vec<NodeId>>,
) -> BTreeMap<u32, Vec<NodeId>> {
    let r = replicas.min(nodes.len());
    let cap = share(nodes.len(), shards, replicas);
    let mut load: BTreeMap<NodeId, usize> = nodes.iter().map(|n| (*n, 0)).collect();
    let mut out: BTreeMap<u32, Vec<NodeId>> = BTreeMap::new();

    // Keep current replicas on live nodes.
    for shard in 0..shards {
        let mut kept = Vec::new();
        for n in current.get(&shard).into_iter().flatten() {
            let Some(l) = load.get_mut(n) else { continue };
            if kept.len() < r && !kept.contains(n) {
                *l += 1;
                kept.push(*n);
            }
        }
        out.insert(shard, kept);
    }
    // Shed replicas from nodes over the cap, each time from the fullest
    // shard that has one (so that no shard loses more than it must).
    while let Some((&over, _)) = load
        .iter()
        .filter(|(_, l)| **l > cap)
        .max_by_key(|(n, l)| (**l, **n))
    {
        let victim = out
            .iter()
            .filter(|(_, set)| set.contains(&over))
            .max_by_key(|(shard, set)| (set.len(), **shard))
            .map(|(shard, _)| *shard);
        let Some(shard) = victim else { break };
        if let Some(set) = out.get_mut(&shard) {
            set.retain(|n| *n != over);
        }
        if let Some(l) = load.get_mut(&over) {
            *l -= 1;
        }
    }
    // Fill up from the least loaded nodes; ties rotate with the shard so
    // that a fresh placement spreads evenly.
    let ids: Vec<NodeId> = nodes.iter().copied().collect();
    for shard in 0..shards {
        let set = out.entry(shard).or_default();
        while set.len() < r {
            let pick = (0..ids.len())
                .map(|k| ids[(k + shard as usize) % ids.len()])
                .filter(|n| !set.contains(n))
                .min_by_key(|n| load.get(n).copied().unwrap_or(usize::MAX));
            let Some(n) = pick else { break };
            if let Some(l) = load.get_mut(&n) {
                *l += 1;
            }
            set.push(n);
        }
        set.sort_unstable();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter().copied().collect()
    }

    fn loads(p: &BTreeMap<u32, Vec<NodeId>>) -> BTreeMap<NodeId, usize> {
        let mut l = BTreeMap::new();
        for set in p.values() {
            for n in set {
                *l.entry(*n).or_insert(0) += 1;
            }
        }
        l
    }

    fn moved(a: &BTreeMap<u32, Vec<NodeId>>, b: &BTreeMap<u32, Vec<NodeId>>) -> usize {
        a.iter()
            .map(|(s, set)| set.iter().filter(|n| !b[s].contains(n)).count())
            .sum()
    }

    #[test]
    fn fresh_placement_is_balanced_and_distinct() {
        for n in 3..=7u64 {
            let ns: Vec<NodeId> = (1..=n).collect();
            let p = place(&nodes(&ns), 16, 3, &BTreeMap::new());
            assert_eq!(p.len(), 16);
            for set in p.values() {
                assert_eq!(set.len(), 3);
                assert_eq!(set.iter().collect::<BTreeSet<_>>().len(), 3);
            }
            let cap = share(ns.len(), 16, 3);
            assert!(
                loads(&p).values().all(|l| *l <= cap),
                "n={n} {:?}",
                loads(&p)
            );
            assert_eq!(p, place(&nodes(&ns), 16, 3, &BTreeMap::new()));
        }
    }

    #[test]
    fn small_clusters_get_every_node() {
        let p = place(&nodes(&[1, 2]), 4, 3, &BTreeMap::new());
        assert!(p.values().all(|s| s == &vec![1, 2]));
        let p = place(&nodes(&[1, 2, 3]), 4, 5, &BTreeMap::new());
        assert!(p.values().all(|s| s == &vec![1, 2, 3]));
    }

    #[test]
    fn adding_a_node_moves_only_its_share() {
        let three = place(&nodes(&[1, 2, 3]), 16, 3, &BTreeMap::new());
        let four = place(&nodes(&[1, 2, 3, 4]), 16, 3, &three);
        let l = loads(&four);
        assert!(l.values().all(|x| *x <= share(4, 16, 3)), "{l:?}");
        // The newcomer takes about its share (12 of 48), nothing more moves.
        assert_eq!(moved(&four, &three), l[&4]);
        assert!(l[&4] >= 11, "{l:?}");
    }

    #[test]
    fn removing_a_node_moves_only_its_replicas() {
        let four = place(&nodes(&[1, 2, 3, 4]), 16, 3, &BTreeMap::new());
        let three = place(&nodes(&[1, 2, 4]), 16, 3, &four);
        let had3 = loads(&four)[&3];
        assert_eq!(moved(&three, &four), had3);
        assert!(three.values().all(|s| !s.contains(&3) && s.len() == 3));
    }
}
