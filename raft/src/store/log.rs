//! A group's Raft log and vote in sled (openraft `RaftLogStorage`).
//!
//! Keys of the log tree are big-endian indexes, so sled's order is log order;
//! values are entries in [`crate::entry_codec`]'s compact format (older
//! entries in [`crate::codec`]'s first format, which still decode). The vote
//! tree holds the vote, the last known committed id and the purge point. The newest entries are
//! also kept decoded (`super::recent`), so that reading back what was just
//! appended (to replicate and apply it) does not decode it again.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, LogState, OptionalSend, RaftLogReader};

use super::append_budget;
use super::marks::GroupMark;
use super::recent::RecentEntries;
use super::{DbHandle, KEY_COMMITTED, KEY_PURGED, KEY_VOTE};
use crate::codec;
use crate::entry_codec;
use crate::ids::GroupId;
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

/// The sled key of log index `index`.
pub(crate) fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// The log index of a sled key, if it is one.
pub(crate) fn index_of_key(key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// One group's log. Clones share the same trees (the log reader is a clone).
#[derive(Debug, Clone)]
pub struct LogStore {
    db: Arc<DbHandle>,
    group: GroupId,
    log: sled::Tree,
    vote: sled::Tree,
    log_name: Arc<str>,
    vote_name: Arc<str>,
    recent: RecentEntries,
    /// The first index not purged (0: none purged since the store opened,
    /// which removed whatever lay below the purge point). Entries below it
    /// may still sit in the tree while their removal runs
    /// ([`remove_purged`]); reads never return them.
    first_live: Arc<AtomicU64>,
}

impl LogStore {
    pub(crate) fn new(
        db: Arc<DbHandle>,
        group: GroupId,
        log: sled::Tree,
        vote: sled::Tree,
        log_name: String,
        vote_name: String,
    ) -> Self {
        LogStore {
            db,
            group,
            log,
            vote,
            log_name: log_name.into(),
            vote_name: vote_name.into(),
            recent: RecentEntries::default(),
            first_live: Arc::default(),
        }
    }

    /// `range` as sled keys, starting no lower than the first live index.
    fn live_key_range<RB: RangeBounds<u64>>(&self, range: &RB) -> (Bound<[u8; 8]>, Bound<[u8; 8]>) {
        let first_live = self.first_live.load(Ordering::Acquire);
        let start = match range.start_bound() {
            Bound::Included(i) => Some(*i),
            Bound::Excluded(i) => i.checked_add(1),
            Bound::Unbounded => Some(0),
        };
        let start = match start {
            Some(i) => Bound::Included(index_key(i.max(first_live))),
            // Past u64::MAX: nothing, as an empty range.
            None => Bound::Excluded(index_key(u64::MAX)),
        };
        let end = match range.end_bound() {
            Bound::Included(i) => Bound::Included(index_key(*i)),
            Bound::Excluded(i) => Bound::Excluded(index_key(*i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        (start, end)
    }

    /// The group this log belongs to.
    pub fn group(&self) -> GroupId {
        self.group
    }

    fn log_err(&self, verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
        self.db.io(ErrorSubject::Logs, verb, &self.log_name, e)
    }

    fn vote_err(&self, verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
        self.db.io(ErrorSubject::Vote, verb, &self.vote_name, e)
    }

    fn decode_entry(&self, key: &[u8], value: &[u8]) -> Result<Entry, StorageError> {
        entry_codec::decode_entry(value).map_err(|e| {
            let key = index_of_key(key).map_or_else(|| format!("{key:?}"), |i| i.to_string());
            self.db
                .corrupt(ErrorSubject::Logs, ErrorVerb::Read, &self.log_name, &key, e)
        })
    }

    fn read_vote_key<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, StorageError> {
        match self
            .vote
            .get(key)
            .map_err(|e| self.vote_err(ErrorVerb::Read, e))?
        {
            None => Ok(None),
            Some(v) => codec::decode(&v).map(Some).map_err(|e| {
                self.db.corrupt(
                    ErrorSubject::Vote,
                    ErrorVerb::Read,
                    &self.vote_name,
                    &String::from_utf8_lossy(key),
                    e,
                )
            }),
        }
    }

    fn write_vote_key<T: serde::Serialize>(
        &self,
        key: &[u8],
        value: &T,
    ) -> Result<(), StorageError> {
        let bytes = codec::encode(value).map_err(|e| self.vote_err(ErrorVerb::Write, e))?;
        self.vote
            .insert(key, bytes)
            .map_err(|e| self.vote_err(ErrorVerb::Write, e))?;
        Ok(())
    }

    fn last_purged(&self) -> Result<Option<LogId>, StorageError> {
        Ok(self.read_vote_key::<Option<LogId>>(KEY_PURGED)?.flatten())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        if let Some(kept) = self.recent.get(&range) {
            return Ok(kept);
        }
        let mut out = Vec::new();
        for item in self.log.range(self.live_key_range(&range)) {
            let (k, v) = item.map_err(|e| self.log_err(ErrorVerb::Read, e))?;
            out.push(self.decode_entry(&k, &v)?);
        }
        Ok(out)
    }

    /// `[start, end)`, cut to what one AppendEntries carries (see
    /// [`super::append_budget`]).
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry>, StorageError> {
        let range = start..end;
        if let Some(kept) = self.recent.get(&range) {
            return Ok(append_budget::within_budget(kept));
        }
        let mut out = Vec::new();
        let mut total = 0usize;
        for item in self.log.range(self.live_key_range(&range)) {
            let (k, v) = item.map_err(|e| self.log_err(ErrorVerb::Read, e))?;
            if !append_budget::fits(out.len(), total, v.len()) {
                break;
            }
            total += v.len();
            out.push(self.decode_entry(&k, &v)?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id = self.last_purged()?;
        let last = match self
            .log
            .last()
            .map_err(|e| self.log_err(ErrorVerb::Read, e))?
        {
            Some((k, v)) => Some(self.decode_entry(&k, &v)?.log_id),
            None => None,
        };
        // Entries at or below the purge point may wait for their removal:
        // the last log id is then the purge point's.
        let last_log_id = match (last, last_purged_log_id) {
            (Some(l), Some(p)) if l.index <= p.index => Some(p),
            (l, p) => l.or(p),
        };
        Ok(LogState {
            last_log_id,
            last_purged_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.write_vote_key(KEY_VOTE, vote)?;
        self.db.marks.note(
            self.group,
            GroupMark {
                committed: 0,
                vote_term: vote.leader_id.term,
            },
        );
        self.db
            .sync()
            .await
            .map_err(|e| self.vote_err(ErrorVerb::Write, e))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.read_vote_key(KEY_VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Not fsynced on purpose: a stale value only means re-applying a
        // little more of the log after a restart.
        self.write_vote_key(KEY_COMMITTED, &committed)?;
        if let Some(c) = committed {
            self.db.marks.note(
                self.group,
                GroupMark {
                    committed: c.index,
                    vote_term: 0,
                },
            );
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self
            .read_vote_key::<Option<LogId>>(KEY_COMMITTED)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // One insert per entry, not a `sled::Batch`: sled makes a batch
        // atomic by sealing and writing out its I/O buffer before and after
        // it (two extra synchronous writes per append, its largest cost
        // here). Atomicity is not needed: sled recovers a prefix of its log,
        // and inserts made in order are recovered in order, so a crash
        // leaves a gap-free prefix of these entries, none of them yet
        // acknowledged.
        for entry in entries {
            let bytes = entry_codec::encode_entry(&entry).map_err(|e| {
                self.db.io(
                    ErrorSubject::Log(entry.log_id),
                    ErrorVerb::Write,
                    &self.log_name,
                    e,
                )
            })?;
            self.log
                .insert(index_key(entry.log_id.index), bytes)
                .map_err(|e| self.log_err(ErrorVerb::Write, e))?;
            self.recent.appended(&entry);
        }
        // Acknowledged only after the fsync that covers this write.
        self.db.flusher.after_flush(callback);
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.recent.truncated(log_id.index);
        let keys: Vec<sled::IVec> = self
            .log
            .range(index_key(log_id.index)..)
            .keys()
            .collect::<Result<_, _>>()
            .map_err(|e| self.log_err(ErrorVerb::Delete, e))?;
        let mut batch = sled::Batch::default();
        for k in keys {
            batch.remove(k);
        }
        self.log
            .apply_batch(batch)
            .map_err(|e| self.log_err(ErrorVerb::Delete, e))?;
        self.db
            .sync()
            .await
            .map_err(|e| self.log_err(ErrorVerb::Delete, e))
    }

    /// Moves the purge point; the entries below it are removed after, off
    /// the group's core (see [`remove_purged`]). openraft awaits a purge on
    /// the group's core, so every write of the group waited for it: some
    /// 4,000 entries a snapshot (canond's default keeps 1,000 of every
    /// 5,000), removed in one sled batch, which sled makes atomic with two
    /// synchronous writes of its buffer.
    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // Purge point first: from here on nothing reads below it, and a
        // crash before the removal ends leaves entries there, which opening
        // the store removes.
        self.write_vote_key(KEY_PURGED, &Some(log_id))?;
        self.recent.purged(log_id.index);
        let first_live = log_id.index.saturating_add(1);
        self.first_live.fetch_max(first_live, Ordering::AcqRel);
        remove_purged(
            Arc::downgrade(&self.db),
            self.log_name.clone(),
            log_id.index,
        );
        Ok(())
    }
}

/// Entries removed at a time by [`remove_purged`] before it yields.
const PURGE_STEP: usize = 256;

/// Removes the entries of tree `name` up to and including `through`, a
/// step at a time, on a task of its own (in place with no runtime to spawn
/// it on): individual removes, not a sled batch, since a crash part-way is
/// finished when the store opens. The task holds the database only during
/// a step, so a store closed meanwhile closes (and the rest is removed when
/// it opens again). A failure leaves the rest to the next purge (whose
/// range covers them) or the next open.
fn remove_purged(db: Weak<DbHandle>, name: Arc<str>, through: u64) {
    let failed = {
        let name = name.clone();
        move |e: sled::Error| {
            tracing::warn!(tree = %name, through, error = %e,
                "purged log entries not all removed (the next purge or open removes them)");
        }
    };
    let step = move || match db.upgrade() {
        Some(db) => remove_step(&db.db.open_tree(&*name)?, through),
        None => Ok(false),
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        let removed = (|| {
            while step()? {}
            Ok(())
        })();
        return removed.unwrap_or_else(failed);
    };
    runtime.spawn(async move {
        let removed = async {
            while step()? {
                tokio::task::yield_now().await;
            }
            Ok(())
        };
        removed.await.unwrap_or_else(failed);
    });
}

/// Removes up to [`PURGE_STEP`] entries at or below `through`; whether
/// there were any.
fn remove_step(log: &sled::Tree, through: u64) -> sled::Result<bool> {
    let keys: Vec<sled::IVec> = log
        .range(..=index_key(through))
        .keys()
        .take(PURGE_STEP)
        .collect::<Result<_, _>>()?;
    let any = !keys.is_empty();
    for k in keys {
        log.remove(k)?;
    }
    Ok(any)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use openraft::storage::RaftLogStorageExt;
    use openraft::testing::log_id;
    use openraft::EntryPayload;

    use super::*;
    use crate::command::{Batch, Command, Request};
    use crate::store::Store;

    fn entry(index: u64) -> Entry {
        Entry {
            log_id: log_id(1, 1, index),
            payload: EntryPayload::Normal(Batch::from(vec![Request::new(index, Command::Noop)])),
        }
    }

    /// A purge moves the purge point and leaves the removal of the entries
    /// to a task of its own (openraft awaits a purge on the group's core):
    /// readers see none of the purged entries at once, the log state is
    /// right even when everything was purged, and the entries are gone
    /// from the tree soon after.
    #[tokio::test]
    async fn purged_entries_are_unseen_at_once_and_removed_after() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 7, 4).unwrap();
        let (mut log, _sm) = store.open_group(1, 4).unwrap();
        log.blocking_append((1..=2000).map(entry)).await.unwrap();

        log.purge(log_id(1, 1, 1500)).await.unwrap();
        let rest = log.try_get_log_entries(1..=2000).await.unwrap();
        assert_eq!(rest.len(), 500);
        assert_eq!(rest.first().map(|e| e.log_id.index), Some(1501));
        let rest = log.limited_get_log_entries(1, 2001).await.unwrap();
        assert_eq!(rest.first().map(|e| e.log_id.index), Some(1501));
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 1, 1500)));
        assert_eq!(state.last_log_id, Some(log_id(1, 1, 2000)));

        log.purge(log_id(1, 1, 2000)).await.unwrap();
        assert!(log.try_get_log_entries(..).await.unwrap().is_empty());
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id, Some(log_id(1, 1, 2000)));
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 1, 2000)));

        let since = Instant::now();
        while !log.log.is_empty() {
            assert!(
                since.elapsed() < Duration::from_secs(30),
                "purged entries left"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        log.blocking_append([entry(2001)]).await.unwrap();
        let next = log.try_get_log_entries(2001..).await.unwrap();
        assert_eq!(next.len(), 1);
    }
}
