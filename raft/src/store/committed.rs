//! Each group's committed log id, written to sled at most every
//! [`WRITE_EVERY`] rather than at every commit.
//!
//! openraft hands the committed id to the log store each time it advances:
//! on every replica, once per log entry or so. Inserting it into the
//! group's sled tree cost some 7 µs each (sled's page cache, its log
//! buffer, the epoch machinery) — about 6 % of all CPU with 64 writers over
//! 16 groups. What the value is for: after a restart, the group applies its
//! log up to it before any leader is heard. It was never made durable at
//! the commit (sled writes it out on its own timer, or at a flush that asks
//! for sled), and a stale value only means applying less at start-up, until
//! a leader says more.
//!
//! So the latest value waits in memory ([`CommittedSlot`]) and is written
//! when the last write is [`WRITE_EVERY`] old: by the next commit, or by the
//! flusher thread for a group that went quiet ([`CommittedIds::write_due`]),
//! and whatever is left when the database closes (so a node shut down
//! cleanly restarts as far as it had applied). After a crash, the value on
//! disk trails by at most that interval plus sled's own flush interval.
//!
//! A value is never written ahead of the log: each write first runs the
//! database's [`BeforeWrite`] (the WAL writing its staged records,
//! [`super::wal::Wal::write_staged`]), and a replica commits only entries
//! it has appended, so a process killed at any moment restarts with its
//! committed id within its log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::ids::GroupId;
use crate::types::LogId;

/// Longest a newer committed id waits before it is written to sled.
pub(crate) const WRITE_EVERY: Duration = Duration::from_millis(100);

/// What must be done before any committed id is written to sled (given
/// once, to [`CommittedIds::new`], so no writer can skip it).
pub(crate) type BeforeWrite = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// A group's committed id and how much of it sled has.
pub(crate) struct CommittedSlot {
    group: GroupId,
    tree: sled::Tree,
    key: &'static [u8],
    state: Mutex<SlotState>,
    before_write: BeforeWrite,
}

impl std::fmt::Debug for CommittedSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CommittedSlot(group {})", self.group)
    }
}

#[derive(Debug, Default)]
struct SlotState {
    /// A value newer than sled's, not yet written.
    unwritten: Option<Option<LogId>>,
    /// When sled's value was last written.
    written_at: Option<Instant>,
}

impl CommittedSlot {
    /// Takes `committed`; writes it to sled at once when the last write is
    /// [`WRITE_EVERY`] old.
    pub(crate) fn save(&self, committed: Option<LogId>, now: Instant) -> Result<(), String> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.unwritten = Some(committed);
        if s.written_at
            .is_some_and(|t| now.duration_since(t) < WRITE_EVERY)
        {
            return Ok(());
        }
        self.write(&mut s, now)
    }

    /// The latest value taken (newer than sled's, if not yet written).
    pub(crate) fn unwritten(&self) -> Option<Option<LogId>> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unwritten
    }

    /// Writes a waiting value that is due (or any, with `force`).
    fn write_if_due(&self, now: Instant, force: bool) -> Result<(), String> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.unwritten.is_none() {
            return Ok(());
        }
        if !force
            && s.written_at
                .is_some_and(|t| now.duration_since(t) < WRITE_EVERY)
        {
            return Ok(());
        }
        self.write(&mut s, now)
    }

    fn write(&self, s: &mut SlotState, now: Instant) -> Result<(), String> {
        let Some(value) = s.unwritten else {
            return Ok(());
        };
        (self.before_write)()?;
        let bytes = crate::codec::encode(&value).map_err(|e| e.to_string())?;
        self.tree
            .insert(self.key, bytes)
            .map_err(|e| format!("group {}: {e}", self.group))?;
        s.unwritten = None;
        s.written_at = Some(now);
        Ok(())
    }
}

/// Every group's [`CommittedSlot`] of one database.
pub(crate) struct CommittedIds {
    slots: Mutex<HashMap<GroupId, Arc<CommittedSlot>>>,
    before_write: BeforeWrite,
}

impl std::fmt::Debug for CommittedIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommittedIds")
    }
}

impl CommittedIds {
    /// The slots of a database whose every write first runs `before_write`.
    pub(crate) fn new(before_write: BeforeWrite) -> CommittedIds {
        CommittedIds {
            slots: Mutex::default(),
            before_write,
        }
    }

    /// `group`'s slot, kept under `key` in `tree` (the one slot of the
    /// group, however often its store is opened).
    pub(crate) fn slot(
        &self,
        group: GroupId,
        tree: &sled::Tree,
        key: &'static [u8],
    ) -> Arc<CommittedSlot> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots
            .entry(group)
            .or_insert_with(|| {
                Arc::new(CommittedSlot {
                    group,
                    tree: tree.clone(),
                    key,
                    state: Mutex::default(),
                    before_write: self.before_write.clone(),
                })
            })
            .clone()
    }

    /// Writes the values that waited [`WRITE_EVERY`] (every waiting one
    /// with `force`); the first error, after trying every group.
    pub(crate) fn write_due(&self, now: Instant, force: bool) -> Result<(), String> {
        let slots: Vec<_> = self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        let mut first_error = Ok(());
        for slot in slots {
            if let Err(e) = slot.write_if_due(now, force) {
                if first_error.is_ok() {
                    first_error = Err(e);
                }
            }
        }
        first_error
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::CommittedLeaderId;

    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// Slots with no WAL behind them.
    fn no_wal() -> CommittedIds {
        CommittedIds::new(Arc::new(|| Ok(())))
    }

    fn id(index: u64) -> Option<LogId> {
        Some(LogId::new(CommittedLeaderId::new(1, 1), index))
    }

    fn on_disk(tree: &sled::Tree) -> Option<Option<LogId>> {
        tree.get(b"committed")
            .unwrap()
            .map(|b| crate::codec::decode(&b).unwrap())
    }

    /// A temporary database's tree with group 1's slot in it.
    fn one_slot() -> (sled::Db, sled::Tree, CommittedIds, Arc<CommittedSlot>) {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("v").unwrap();
        let ids = no_wal();
        let slot = ids.slot(1, &tree, b"committed");
        (db, tree, ids, slot)
    }

    #[test]
    fn a_commit_is_written_at_once_then_at_most_every_interval() {
        let (_db, tree, ids, slot) = one_slot();
        let t0 = Instant::now();
        slot.save(id(1), t0).unwrap();
        assert_eq!(on_disk(&tree), Some(id(1)), "the first is written at once");
        slot.save(id(2), t0 + WRITE_EVERY / 2).unwrap();
        slot.save(id(3), t0 + WRITE_EVERY / 2).unwrap();
        assert_eq!(on_disk(&tree), Some(id(1)), "within the interval: waits");
        assert_eq!(slot.unwritten(), Some(id(3)));
        // A quiet group's value is written by the flusher once due.
        ids.write_due(t0 + WRITE_EVERY / 2, false).unwrap();
        assert_eq!(on_disk(&tree), Some(id(1)));
        ids.write_due(t0 + WRITE_EVERY, false).unwrap();
        assert_eq!(on_disk(&tree), Some(id(3)));
        assert_eq!(slot.unwritten(), None);
        // The next commit after the interval goes at once.
        slot.save(id(4), t0 + WRITE_EVERY * 3).unwrap();
        assert_eq!(on_disk(&tree), Some(id(4)));
    }

    #[test]
    fn closing_writes_whatever_waits() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let (a, b) = (db.open_tree("a").unwrap(), db.open_tree("b").unwrap());
        let ids = no_wal();
        let t0 = Instant::now();
        for (group, tree, index) in [(1, &a, 5), (1, &a, 6), (2, &b, 7), (2, &b, 9)] {
            let slot = ids.slot(group, tree, b"committed");
            slot.save(id(index), t0).unwrap();
        }
        ids.write_due(t0, true).unwrap();
        assert_eq!(on_disk(&a), Some(id(6)));
        assert_eq!(on_disk(&b), Some(id(9)));
    }

    /// The WAL's staged records go first: a write that could not put them
    /// in the file leaves sled's value as it was, to be tried again.
    #[test]
    fn a_value_is_written_only_after_the_wals_staged_records() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("v").unwrap();
        let failing = Arc::new(AtomicBool::new(true));
        let failures = Arc::new(AtomicUsize::new(0));
        let (f, n) = (failing.clone(), failures.clone());
        let ids = CommittedIds::new(Arc::new(move || {
            if !f.load(Ordering::SeqCst) {
                return Ok(());
            }
            n.fetch_add(1, Ordering::SeqCst);
            Err("disk full".to_string())
        }));
        let slot = ids.slot(1, &tree, b"committed");
        let t0 = Instant::now();
        let err = slot.save(id(1), t0).unwrap_err();
        assert!(err.contains("disk full"), "{err}");
        assert_eq!(on_disk(&tree), None, "nothing written ahead of the log");
        assert_eq!(slot.unwritten(), Some(id(1)), "still waiting");
        failing.store(false, Ordering::SeqCst);
        ids.write_due(t0, true).unwrap();
        assert_eq!(on_disk(&tree), Some(id(1)));
        // Within the interval nothing is written, so nothing is asked of
        // the WAL either.
        failing.store(true, Ordering::SeqCst);
        slot.save(id(2), t0 + WRITE_EVERY / 2).unwrap();
        assert_eq!(failures.load(Ordering::SeqCst), 1);
    }
}
