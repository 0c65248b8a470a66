//! Where each group's entries are in the WAL, in memory: rebuilt by
//! recovery, kept by appends, truncations and purges. Reads and the log
//! state are answered from here, and whether a segment still holds live
//! entries: a group's entries sit in segments in index order (appends go
//! to the tail; an entry that replaces others, or a copy moved forward,
//! comes after all of them), so its first entry's segment is its oldest.

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

/// One group's entries.
#[derive(Debug, Default)]
pub(crate) struct GroupLog {
    pub entries: BTreeMap<u64, Loc>,
    /// A purge point written to sled and not yet known durable: until it
    /// is, no segment holding this group's records may go (recovery would
    /// find the old purge point and a gap after it).
    pub purge_noted: Option<u64>,
    /// Bytes of the live entries' payloads (kept as they change, so that
    /// the compaction policy need not count them at every flush).
    live_bytes: u64,
}

impl GroupLog {
    /// Notes an entry; as in Raft, it replaces the entries from its index on.
    pub fn put(&mut self, loc: Loc) {
        self.truncate(loc.log_id.index);
        self.entries.insert(loc.log_id.index, loc);
        self.live_bytes += u64::from(loc.payload_bytes);
    }

    /// Forgets the entries from `from` on.
    pub fn truncate(&mut self, from: u64) {
        if self.entries.range(from..).next().is_some() {
            let cut = self.entries.split_off(&from);
            self.live_bytes -= bytes_of(&cut);
        }
    }

    /// Forgets the entries up to and including `through`.
    pub fn purge(&mut self, through: u64) {
        let Some(first_kept) = through.checked_add(1) else {
            self.entries.clear();
            self.live_bytes = 0;
            return;
        };
        let kept = self.entries.split_off(&first_kept);
        let purged = std::mem::replace(&mut self.entries, kept);
        self.live_bytes -= bytes_of(&purged);
    }

    pub fn last(&self) -> Option<LogId> {
        self.entries.last_key_value().map(|(_, l)| l.log_id)
    }

    /// The oldest segment holding a live entry of this group.
    pub fn oldest_seq(&self) -> Option<u64> {
        self.entries.first_key_value().map(|(_, l)| l.seq)
    }

    /// Bytes of the live entries' payloads.
    pub fn live_bytes(&self) -> u64 {
        debug_assert_eq!(self.live_bytes, bytes_of(&self.entries));
        self.live_bytes
    }
}

/// Bytes of the payloads of `entries`.
fn bytes_of(entries: &BTreeMap<u64, Loc>) -> u64 {
    entries.values().map(|l| u64::from(l.payload_bytes)).sum()
}

/// Per segment: the highest index of each group with an entry in it.
pub(crate) type SegmentHighs = HashMap<GroupId, u64>;

/// Notes entry `index` of `group` in a segment's highs.
pub(crate) fn note_high(highs: &mut SegmentHighs, group: GroupId, index: u64) {
    let h = highs.entry(group).or_insert(index);
    *h = (*h).max(index);
}

/// Whether segment `seq`, with records of the groups of `highs`, may go:
/// no group's live entries are in it, and no group of it waits for a
/// purge point to become durable.
pub(crate) fn is_dead(seq: u64, highs: &SegmentHighs, groups: &HashMap<GroupId, GroupLog>) -> bool {
    let live = groups.values().any(|g| g.oldest_seq() == Some(seq));
    let purging = highs
        .keys()
        .any(|g| groups.get(g).is_some_and(|l| l.purge_noted.is_some()));
    !live && !purging
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
    fn a_segment_goes_only_when_nothing_live_or_purging_is_in_it() {
        let mut highs = SegmentHighs::new();
        note_high(&mut highs, 1, 10);
        note_high(&mut highs, 2, 4);
        let mut groups: HashMap<GroupId, GroupLog> = HashMap::new();
        groups.entry(1).or_default().put(loc(11));
        groups.entry(2).or_default().put(loc(5));
        assert!(!is_dead(1, &highs, &groups), "group 1's entry 11 is in it");
        groups.entry(1).or_default().purge(11);
        groups.entry(1).or_default().purge_noted = Some(11);
        groups.entry(2).or_default().purge(5);
        assert!(
            !is_dead(1, &highs, &groups),
            "group 1's purge point not durable"
        );
        groups.entry(1).or_default().purge_noted = None;
        assert!(is_dead(1, &highs, &groups));
    }
}
