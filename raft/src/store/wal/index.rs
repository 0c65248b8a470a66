//! Where each group's entries are in the WAL, in memory: rebuilt by
//! recovery, kept by appends, truncations and purges. Reads and the log
//! state are answered from here; which segments may be deleted too (a
//! segment's highest index per group).

use std::collections::{BTreeMap, HashMap};

use crate::ids::GroupId;
use crate::types::LogId;

/// Where one entry's record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Loc {
    pub seq: u64,
    /// Of the record's header.
    pub offset: u64,
    pub payload_bytes: u32,
    pub log_id: LogId,
}

/// One group's entries and purge points.
#[derive(Debug, Default)]
pub(crate) struct GroupLog {
    pub entries: BTreeMap<u64, Loc>,
    /// The purge point known durable (in sled): segments whose entries of
    /// this group are all at or below it may go. None: not known yet (the
    /// group has not opened), which keeps every segment holding its entries.
    pub purge_durable: Option<u64>,
    /// The purge point written to sled, not yet known durable.
    pub purge_noted: Option<u64>,
}

impl GroupLog {
    /// Notes an entry; as in Raft, it replaces the entries from its index on.
    pub fn put(&mut self, loc: Loc) {
        self.truncate(loc.log_id.index);
        self.entries.insert(loc.log_id.index, loc);
    }

    /// Forgets the entries from `from` on.
    pub fn truncate(&mut self, from: u64) {
        if self.entries.range(from..).next().is_some() {
            drop(self.entries.split_off(&from));
        }
    }

    /// Forgets the entries up to and including `through`.
    pub fn purge(&mut self, through: u64) {
        let Some(first_kept) = through.checked_add(1) else {
            self.entries.clear();
            return;
        };
        self.entries = self.entries.split_off(&first_kept);
    }

    pub fn last(&self) -> Option<LogId> {
        self.entries.last_key_value().map(|(_, l)| l.log_id)
    }
}

/// Per segment: the highest index of each group with an entry in it.
pub(crate) type SegmentHighs = HashMap<GroupId, u64>;

/// Notes entry `index` of `group` in a segment's highs.
pub(crate) fn note_high(highs: &mut SegmentHighs, group: GroupId, index: u64) {
    let h = highs.entry(group).or_insert(index);
    *h = (*h).max(index);
}

/// Whether every entry of a segment with `highs` is purged durably.
pub(crate) fn all_purged(highs: &SegmentHighs, groups: &HashMap<GroupId, GroupLog>) -> bool {
    highs.iter().all(|(g, high)| {
        groups
            .get(g)
            .and_then(|l| l.purge_durable)
            .is_some_and(|p| p >= *high)
    })
}

#[cfg(test)]
mod tests {
    use openraft::testing::log_id;

    use super::*;

    fn loc(index: u64) -> Loc {
        Loc {
            seq: 1,
            offset: index,
            payload_bytes: 1,
            log_id: log_id(1, 1, index),
        }
    }

    #[test]
    fn put_replaces_the_suffix_and_purge_cuts_the_prefix() {
        let mut g = GroupLog::default();
        for i in 1..=5 {
            g.put(loc(i));
        }
        g.put(loc(3));
        assert_eq!(g.entries.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3]);
        g.purge(1);
        assert_eq!(g.entries.keys().copied().collect::<Vec<_>>(), vec![2, 3]);
        g.truncate(3);
        assert_eq!(g.last().map(|l| l.index), Some(2));
        g.purge(u64::MAX);
        assert!(g.entries.is_empty());
    }

    #[test]
    fn a_segment_goes_only_when_every_group_in_it_is_purged() {
        let mut highs = SegmentHighs::new();
        note_high(&mut highs, 1, 10);
        note_high(&mut highs, 2, 4);
        note_high(&mut highs, 1, 7);
        let mut groups: HashMap<GroupId, GroupLog> = HashMap::new();
        groups.entry(1).or_default().purge_durable = Some(10);
        assert!(!all_purged(&highs, &groups), "group 2 unknown");
        groups.entry(2).or_default().purge_durable = Some(3);
        assert!(!all_purged(&highs, &groups));
        groups.entry(2).or_default().purge_durable = Some(4);
        assert!(all_purged(&highs, &groups));
    }
}
