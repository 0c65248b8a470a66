//! The newest entries of a group's log, kept decoded beside sled.
//!
//! openraft reads back every entry it appended: the leader once per
//! follower to replicate it and once more to apply it, each follower once
//! to apply it. Decoding is the costliest part of that (CBOR, every string
//! of every request allocated again), and it grows with what a request
//! carries (a user's command carries its principal and the door's context
//! for the audit). An entry's batch is shared (`Batch` holds an `Arc`), so
//! keeping the newest entries here makes those reads a copy of a pointer.
//! The cache holds exactly what the log tree holds for its range: filled
//! by `append` after each insert, cut by `truncate` and `purge`, and only
//! a contiguous run ending at the newest entry; a read outside it goes to
//! sled.

use std::collections::VecDeque;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex};

use crate::types::Entry;

/// Entries kept at most.
const MAX_ENTRIES: usize = 1024;
/// Approximate bytes of requests kept at most.
const MAX_BYTES: usize = 16 * 1024 * 1024;

/// Shared by a log store and its readers (clones).
#[derive(Debug, Clone, Default)]
pub(crate) struct RecentEntries(Arc<Mutex<Recent>>);

#[derive(Debug, Default)]
struct Recent {
    /// Consecutive indexes, oldest first.
    entries: VecDeque<Entry>,
    bytes: usize,
}

use super::append_budget::entry_bytes as size;

impl Recent {
    fn first_index(&self) -> Option<u64> {
        self.entries.front().map(|e| e.log_id.index)
    }

    fn pop_front(&mut self) {
        if let Some(e) = self.entries.pop_front() {
            self.bytes = self.bytes.saturating_sub(size(&e));
        }
    }

    fn pop_back(&mut self) {
        if let Some(e) = self.entries.pop_back() {
            self.bytes = self.bytes.saturating_sub(size(&e));
        }
    }
}

impl RecentEntries {
    fn lock(&self) -> std::sync::MutexGuard<'_, Recent> {
        // A poisoned lock: a panic mid-update of a queue of clones; empty
        // it, and sled answers.
        self.0.lock().unwrap_or_else(|p| {
            let mut r = p.into_inner();
            r.entries.clear();
            r.bytes = 0;
            r
        })
    }

    /// Notes `entry`, just written to the log. One that does not follow
    /// the newest kept starts the run again.
    pub(crate) fn appended(&self, entry: &Entry) {
        let mut r = self.lock();
        let follows = r
            .entries
            .back()
            .is_none_or(|last| last.log_id.index + 1 == entry.log_id.index);
        if !follows {
            r.entries.clear();
            r.bytes = 0;
        }
        r.bytes += size(entry);
        r.entries.push_back(entry.clone());
        while r.entries.len() > MAX_ENTRIES || (r.bytes > MAX_BYTES && r.entries.len() > 1) {
            r.pop_front();
        }
    }

    /// Forgets the entries from `index` on (the log was truncated there).
    pub(crate) fn truncated(&self, index: u64) {
        let mut r = self.lock();
        while r.entries.back().is_some_and(|e| e.log_id.index >= index) {
            r.pop_back();
        }
    }

    /// Forgets the entries up to and including `index` (purged).
    pub(crate) fn purged(&self, index: u64) {
        let mut r = self.lock();
        while r.entries.front().is_some_and(|e| e.log_id.index <= index) {
            r.pop_front();
        }
    }

    /// The entries of `range` if every one of them is kept (and the range
    /// ends at or before the newest); none means: read the log.
    pub(crate) fn get<RB: RangeBounds<u64>>(&self, range: &RB) -> Option<Vec<Entry>> {
        let r = self.lock();
        let first = r.first_index()?;
        let last = r.entries.back()?.log_id.index;
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i.checked_add(1)?,
            Bound::Unbounded => return None,
        };
        let end = match range.end_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i.checked_sub(1)?,
            Bound::Unbounded => return None,
        };
        if start < first || end > last {
            return None;
        }
        if end < start {
            return Some(Vec::new());
        }
        let from = usize::try_from(start - first).ok()?;
        let to = usize::try_from(end - first).ok()?;
        Some(r.entries.range(from..=to).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_entries::noop_entry as entry;

    fn indexes(v: Option<Vec<Entry>>) -> Option<Vec<u64>> {
        v.map(|v| v.iter().map(|e| e.log_id.index).collect())
    }

    #[test]
    fn answers_only_ranges_it_holds_whole() {
        let c = RecentEntries::default();
        for i in 5..=9 {
            c.appended(&entry(i));
        }
        assert_eq!(indexes(c.get(&(6..9))), Some(vec![6, 7, 8]));
        assert_eq!(indexes(c.get(&(5..=9))), Some(vec![5, 6, 7, 8, 9]));
        assert_eq!(indexes(c.get(&(7..7))), Some(vec![]));
        assert_eq!(indexes(c.get(&(4..7))), None);
        assert_eq!(indexes(c.get(&(8..11))), None);
        assert_eq!(indexes(c.get(&(8..))), None);
        // Truncated at 8, then a new 8 appended: the new one answers.
        c.truncated(8);
        assert_eq!(indexes(c.get(&(7..=8))), None);
        c.appended(&entry(8));
        assert_eq!(indexes(c.get(&(7..=8))), Some(vec![7, 8]));
        c.purged(6);
        assert_eq!(indexes(c.get(&(6..=7))), None);
        assert_eq!(indexes(c.get(&(7..=8))), Some(vec![7, 8]));
        // A gap starts the run again.
        c.appended(&entry(20));
        assert_eq!(indexes(c.get(&(7..=8))), None);
        assert_eq!(indexes(c.get(&(20..=20))), Some(vec![20]));
    }

    #[test]
    fn keeps_at_most_its_bound() {
        let c = RecentEntries::default();
        for i in 1..=(MAX_ENTRIES as u64 + 10) {
            c.appended(&entry(i));
        }
        assert_eq!(indexes(c.get(&(1..=1))), None);
        let last = MAX_ENTRIES as u64 + 10;
        let kept = c.get(&(11..=last)).map(|v| v.len());
        assert_eq!(kept, Some(MAX_ENTRIES));
    }
}
