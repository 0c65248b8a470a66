//! A group's Raft log and vote (openraft `RaftLogStorage`): the entries in
//! the database's WAL ([`super::wal`]), the vote in sled.
//!
//! Entries are in [`crate::entry_codec`]'s compact format (entries an
//! older release wrote in [`crate::codec`]'s first format still decode).
//! The vote tree holds the vote, the last known committed id and the purge
//! point. The newest entries are also kept decoded (`super::recent`), so
//! that reading back what was just appended (to replicate and apply it)
//! does not read and decode it again.

use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, LogState, OptionalSend, RaftLogReader};

use super::append_budget;
use super::committed::CommittedSlot;
use super::marks::GroupMark;
use super::recent::RecentEntries;
use super::wal::Loc;
use super::{DbHandle, KEY_COMMITTED, KEY_PURGED, KEY_VOTE};
use crate::codec;
use crate::entry_codec;
use crate::ids::GroupId;
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

/// The sled key of log index `index` (in the log trees of older releases).
pub(crate) fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// The log index of a sled key, if it is one.
pub(crate) fn index_of_key(key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// One group's log. Clones share the same state (the log reader is a clone).
#[derive(Debug, Clone)]
pub struct LogStore {
    db: Arc<DbHandle>,
    group: GroupId,
    vote: sled::Tree,
    log_name: Arc<str>,
    vote_name: Arc<str>,
    recent: RecentEntries,
    /// The committed id, written to sled at most every interval.
    committed: Arc<CommittedSlot>,
}

impl LogStore {
    pub(crate) fn new(
        db: Arc<DbHandle>,
        group: GroupId,
        vote: sled::Tree,
        log_name: String,
        vote_name: String,
    ) -> Self {
        let committed = db.committed.slot(group, &vote, KEY_COMMITTED);
        LogStore {
            db,
            group,
            committed,
            vote,
            log_name: log_name.into(),
            vote_name: vote_name.into(),
            recent: RecentEntries::default(),
        }
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

    /// Reads and decodes the entry at `loc`.
    fn read_entry(&self, loc: &Loc, file: &std::fs::File) -> Result<Entry, StorageError> {
        let corrupt = |e: &dyn std::fmt::Display| {
            self.db.corrupt(
                ErrorSubject::Logs,
                ErrorVerb::Read,
                &self.log_name,
                &loc.log_id.index.to_string(),
                e,
            )
        };
        let bytes = self
            .db
            .wal
            .read(self.group, loc, file)
            .map_err(|e| corrupt(&e))?;
        entry_codec::decode_entry(&bytes).map_err(|e| corrupt(&e))
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
        let locs = self.db.wal.locations(self.group, range);
        locs.iter()
            .map(|(loc, file)| self.read_entry(loc, file))
            .collect()
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
        for (loc, file) in self.db.wal.locations(self.group, range) {
            let bytes = loc.payload_bytes as usize;
            if !append_budget::fits(out.len(), total, bytes) {
                break;
            }
            total += bytes;
            out.push(self.read_entry(&loc, &file)?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id = self.last_purged()?;
        let last = self.db.wal.last(self.group);
        // Everything at or below the purge point is gone: the last log id
        // is then the purge point's.
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
        // Not made durable here on purpose, nor always written at once
        // (see `store::committed`): a stale value only means applying less
        // of the log after a restart before a leader is heard.
        self.committed
            .save(committed, std::time::Instant::now())
            .map_err(|e| self.vote_err(ErrorVerb::Write, e))?;
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
        if let Some(waiting) = self.committed.unwritten() {
            return Ok(waiting);
        }
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
        let entries: Vec<Entry> = entries.into_iter().collect();
        let mut encoded = Vec::with_capacity(entries.len());
        for entry in &entries {
            let bytes = entry_codec::encode_entry(entry).map_err(|e| {
                self.db.io(
                    ErrorSubject::Log(entry.log_id),
                    ErrorVerb::Write,
                    &self.log_name,
                    e,
                )
            })?;
            encoded.push((entry.log_id, bytes));
        }
        // One write into the page cache; nothing waits for the disk here.
        self.db
            .wal
            .append(self.group, &encoded)
            .map_err(|e| self.log_err(ErrorVerb::Write, e))?;
        for entry in &entries {
            self.recent.appended(entry);
        }
        // Acknowledged only after the fsync that covers this write.
        self.db.flusher.after_flush(self.group, callback);
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.recent.truncated(log_id.index);
        self.db
            .wal
            .truncate(self.group, log_id.index)
            .map_err(|e| self.log_err(ErrorVerb::Delete, e))?;
        self.db
            .sync()
            .await
            .map_err(|e| self.log_err(ErrorVerb::Delete, e))
    }

    /// Moves the purge point (in sled) and forgets the entries up to it;
    /// the WAL deletes a segment once the purge points of every entry in
    /// it are durable (the flusher's next sled flush, which this asks
    /// for without waiting on it).
    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.write_vote_key(KEY_PURGED, &Some(log_id))?;
        self.recent.purged(log_id.index);
        self.db.wal.purge(self.group, log_id.index);
        self.db.flusher.flush_sled_soon();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use openraft::storage::RaftLogStorageExt;
    use openraft::testing::log_id;

    use super::*;
    use crate::store::test_entries::noop_entry as entry;
    use crate::store::Store;

    /// Readers see none of the purged entries at once, the log state is
    /// right even when everything was purged, and appends go on after.
    #[tokio::test]
    async fn purged_entries_are_unseen_at_once() {
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

        log.blocking_append([entry(2001)]).await.unwrap();
        let next = log.try_get_log_entries(2001..).await.unwrap();
        assert_eq!(next.len(), 1);
    }
}
