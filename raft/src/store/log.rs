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
use std::sync::Arc;

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

fn to_key_range<RB: RangeBounds<u64>>(range: &RB) -> (Bound<[u8; 8]>, Bound<[u8; 8]>) {
    let map = |b: Bound<&u64>| match b {
        Bound::Included(i) => Bound::Included(index_key(*i)),
        Bound::Excluded(i) => Bound::Excluded(index_key(*i)),
        Bound::Unbounded => Bound::Unbounded,
    };
    (map(range.start_bound()), map(range.end_bound()))
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
        for item in self.log.range(to_key_range(&range)) {
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
        for item in self.log.range(to_key_range(&range)) {
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
        Ok(LogState {
            last_log_id: last.or(last_purged_log_id),
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

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // Purge point first: a crash between the two steps leaves entries
        // below it, which opening the store removes.
        self.write_vote_key(KEY_PURGED, &Some(log_id))?;
        self.recent.purged(log_id.index);
        let keys: Vec<sled::IVec> = self
            .log
            .range(..=index_key(log_id.index))
            .keys()
            .collect::<Result<_, _>>()
            .map_err(|e| self.log_err(ErrorVerb::Delete, e))?;
        let mut batch = sled::Batch::default();
        for k in keys {
            batch.remove(k);
        }
        self.log
            .apply_batch(batch)
            .map_err(|e| self.log_err(ErrorVerb::Delete, e))
    }
}
