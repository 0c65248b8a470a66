//! An in-memory "disk" for simulations: a node's logs, votes and snapshots
//! kept in a [`MemDisk`] that the test creates outside the simulated host,
//! so it survives the host's crash and restart like a real disk would.
//!
//! Writes are durable the moment they are made (there is no page cache to
//! lose), so `append` completes at once. No I/O threads: a simulation's
//! clock never waits on the real world.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader};

use super::sm::{StateMachineStore, StoredSnapshot};
use super::snap_format;
use super::snapshot::SnapBackend;
use super::StoreError;
use crate::ids::GroupId;
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

#[derive(Debug, Default)]
struct MemLog {
    vote: Option<Vote>,
    committed: Option<LogId>,
    purged: Option<LogId>,
    entries: BTreeMap<u64, Entry>,
}

#[derive(Debug, Default)]
struct MemGroup {
    log: Mutex<MemLog>,
    snapshot: Arc<Mutex<Option<StoredSnapshot>>>,
}

/// One node's durable memory. Cheap to clone; clones share contents.
#[derive(Debug, Clone, Default)]
pub struct MemDisk {
    groups: Arc<Mutex<BTreeMap<GroupId, Arc<MemGroup>>>>,
}

impl MemDisk {
    /// An empty disk.
    pub fn new() -> Self {
        MemDisk::default()
    }

    /// Opens group `group`'s log and state machine.
    pub fn open_group(
        &self,
        group: GroupId,
        shard_count: u32,
    ) -> Result<(MemLogStore, StateMachineStore), StoreError> {
        let g = self
            .groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(group)
            .or_default()
            .clone();
        let stored = g.snapshot.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let snapshot = match stored {
            None => None,
            Some((meta, bytes)) => {
                Some(
                    snap_format::decode_image(&bytes, &meta).map_err(|e| StoreError::Corrupt {
                        path: "memory".into(),
                        tree: format!("g{group}.snap"),
                        key: "data".to_string(),
                        detail: e.to_string(),
                    })?,
                )
            }
        };
        let sm = StateMachineStore::new(
            SnapBackend::Memory(g.snapshot.clone()),
            group,
            shard_count,
            snapshot,
        )
        .map_err(|(key, detail)| StoreError::Corrupt {
            path: "memory".into(),
            tree: format!("g{group}.snap"),
            key: key.to_string(),
            detail,
        })?;
        Ok((MemLogStore { g }, sm))
    }
}

/// One group's log in a [`MemDisk`].
#[derive(Debug, Clone)]
pub struct MemLogStore {
    g: Arc<MemGroup>,
}

impl MemLogStore {
    fn log(&self) -> MutexGuard<'_, MemLog> {
        self.g.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl RaftLogReader<TypeConfig> for MemLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(self
            .log()
            .entries
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }

    /// `[start, end)`, cut as the sled log cuts it.
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry>, StorageError> {
        let all = self.try_get_log_entries(start..end).await?;
        Ok(super::append_budget::within_budget(all))
    }
}

impl RaftLogStorage<TypeConfig> for MemLogStore {
    type LogReader = MemLogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let log = self.log();
        let last = log.entries.values().next_back().map(|e| e.log_id);
        Ok(LogState {
            last_purged_log_id: log.purged,
            last_log_id: last.or(log.purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.log().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.log().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.log().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.log().committed)
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
        {
            let mut log = self.log();
            for e in entries {
                log.entries.insert(e.log_id.index, e);
            }
        }
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut log = self.log();
        let _dropped = log.entries.split_off(&log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut log = self.log();
        log.purged = Some(log_id);
        let kept = log.entries.split_off(&(log_id.index + 1));
        log.entries = kept;
        Ok(())
    }
}
