//! A group's state machine (openraft `RaftStateMachine`): the [`CanonState`]
//! in memory, its snapshots streamed to and from files ([`super::snapshot`]).
//!
//! The newest snapshot is kept so that a restarted node starts from it and
//! the log behind it can be purged. Releases before streamed snapshots kept
//! it in the group's sled `snap` tree; [`read_snapshot`] still reads that
//! once, when the group opens, to move it into a file.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use canon_model::Fid;
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use tokio::sync::broadcast;

use super::snap_format::SnapshotImage;
use super::snapshot::{BuildStats, SnapBackend};
use super::{KEY_SNAP_DATA, KEY_SNAP_META};
use crate::codec;
use crate::command::{Committed, EntryAt};
use crate::ids::GroupId;
use crate::snapshot_data::SnapshotData;
use crate::state::CanonState;
use crate::types::{
    Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};

/// The applied state of a group, shared between the state machine and
/// readers.
#[derive(Debug, Clone)]
pub struct SmData {
    pub last_applied: Option<LogId>,
    pub last_membership: StoredMembership,
    pub state: CanonState,
}

/// Shared, lock-protected [`SmData`]. A poisoned lock is recovered: the data
/// is only ever replaced whole or changed by `CanonState::apply`, which does
/// not panic.
#[derive(Debug, Clone)]
pub struct SharedState(Arc<RwLock<SmData>>);

impl SharedState {
    /// Reads the state.
    pub fn read(&self) -> RwLockReadGuard<'_, SmData> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, SmData> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// A snapshot kept as bytes (in memory, or in an old release's sled
/// tree): its meta and its encoded state.
pub(crate) type StoredSnapshot = (SnapshotMeta, Vec<u8>);
/// A bad key of a tree and what is wrong with it.
pub(crate) type BadKey = (&'static str, String);

/// Reads the snapshot an older release stored in a `snap` tree. Errors
/// name the bad key.
pub(crate) fn read_snapshot(tree: &sled::Tree) -> Result<Option<StoredSnapshot>, BadKey> {
    let meta = tree
        .get(KEY_SNAP_META)
        .map_err(|e| ("meta", e.to_string()))?;
    let data = tree
        .get(KEY_SNAP_DATA)
        .map_err(|e| ("data", e.to_string()))?;
    match (meta, data) {
        (None, None) => Ok(None),
        (Some(m), Some(d)) => {
            let meta: SnapshotMeta = codec::decode(&m).map_err(|e| ("meta", e.to_string()))?;
            Ok(Some((meta, d.to_vec())))
        }
        (Some(_), None) => Err(("data", "snapshot meta without data".to_string())),
        (None, Some(_)) => Err(("meta", "snapshot data without meta".to_string())),
    }
}

/// What applying the log changed, for watchers (the scheduler wakes the
/// actors of the processes that changed). A receiver that lags behind the
/// channel must treat that as [`Applied::Reset`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// These processes changed (created, updated, deleted, jobs, bindings,
    /// drift) by the entry at `index`.
    Processes { index: u64, fids: BTreeSet<Fid> },
    /// The meta group's cluster data changed at `index`.
    Cluster { index: u64 },
    /// The whole state was replaced by a snapshot: re-read everything.
    Reset { index: Option<u64> },
}

/// How many change notices a slow watcher may fall behind.
const APPLIED_CHANNEL: usize = 4096;

/// A group's state machine.
#[derive(Debug, Clone)]
pub struct StateMachineStore {
    group: GroupId,
    backend: SnapBackend,
    shared: SharedState,
    applied_tx: broadcast::Sender<Applied>,
    /// Makes snapshot ids unique within this process.
    counter: Arc<std::sync::atomic::AtomicU64>,
    /// What building the last snapshot cost.
    last_build: Arc<std::sync::Mutex<Option<BuildStats>>>,
}

impl StateMachineStore {
    pub(crate) fn new(
        backend: SnapBackend,
        group: GroupId,
        shard_count: u32,
        snapshot: Option<SnapshotImage>,
    ) -> Result<Self, BadKey> {
        let data = match snapshot {
            None => SmData {
                last_applied: None,
                last_membership: StoredMembership::default(),
                state: CanonState::new(group, shard_count),
            },
            Some(SnapshotImage { meta, state }) => {
                if state.group != group {
                    return Err(("data", format!("snapshot of group {}", state.group)));
                }
                SmData {
                    last_applied: meta.last_log_id,
                    last_membership: meta.last_membership,
                    state,
                }
            }
        };
        Ok(StateMachineStore {
            group,
            backend,
            shared: SharedState(Arc::new(RwLock::new(data))),
            applied_tx: broadcast::channel(APPLIED_CHANNEL).0,
            counter: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            last_build: Arc::default(),
        })
    }

    /// The state, for readers.
    pub fn shared(&self) -> SharedState {
        self.shared.clone()
    }

    /// Notices of what applying the log changes from now on.
    pub fn applied_sender(&self) -> broadcast::Sender<Applied> {
        self.applied_tx.clone()
    }

    /// What building the last snapshot cost (none built yet: `None`).
    pub fn last_build_stats(&self) -> Option<BuildStats> {
        *self.last_build.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (meta, data, stats) = self
            .backend
            .build(self.shared.clone(), self.group, n)
            .await?;
        tracing::info!(
            group = self.group,
            index = ?meta.last_log_id.map(|l| l.index),
            processes = stats.processes,
            bytes = stats.bytes,
            freeze_ms = stats.freeze.as_secs_f64() * 1e3,
            write_ms = stats.write.as_secs_f64() * 1e3,
            "snapshot built"
        );
        *self.last_build.lock().unwrap_or_else(|e| e.into_inner()) = Some(stats);
        Ok(Snapshot {
            meta,
            snapshot: Box::new(data),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = StateMachineStore;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let d = self.shared.read();
        Ok((d.last_applied, d.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<Committed>>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut notices = Vec::new();
        let mut d = self.shared.write();
        let mut out = Vec::new();
        for entry in entries {
            let at = EntryAt {
                term: entry.log_id.leader_id.term,
                index: entry.log_id.index,
            };
            let index = at.index;
            let response = match &entry.payload {
                EntryPayload::Blank => Vec::new(),
                EntryPayload::Normal(batch) => {
                    let answers: Vec<Committed> = batch
                        .requests()
                        .iter()
                        .map(|req| d.state.apply_at(req, Some(at)))
                        .collect();
                    let mut fids = BTreeSet::new();
                    let mut cluster = false;
                    for (req, answer) in batch.requests().iter().zip(&answers) {
                        if !answer.response.is_applied() {
                            continue;
                        }
                        match req.command.fid() {
                            Some(f) => {
                                fids.insert(f);
                            }
                            None => {
                                cluster |= req.command.is_meta() && !req.command.is_audit_only()
                            }
                        }
                    }
                    if !fids.is_empty() {
                        notices.push(Applied::Processes { index, fids });
                    }
                    if cluster {
                        notices.push(Applied::Cluster { index });
                    }
                    answers
                }
                EntryPayload::Membership(m) => {
                    d.last_membership = StoredMembership::new(Some(entry.log_id), m.clone());
                    Vec::new()
                }
            };
            d.last_applied = Some(entry.log_id);
            out.push(response);
        }
        drop(d);
        for n in notices {
            // Nobody listening is fine.
            let _ = self.applied_tx.send(n);
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotData>, StorageError> {
        Ok(Box::new(self.backend.begin_receiving().await?))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<SnapshotData>,
    ) -> Result<(), StorageError> {
        let state = self.backend.install(meta, *snapshot).await?;
        let old = {
            let mut d = self.shared.write();
            d.last_applied = meta.last_log_id;
            d.last_membership = meta.last_membership.clone();
            std::mem::replace(&mut d.state, state)
        };
        self.backend.discard(old);
        // Nobody listening is fine.
        let _ = self.applied_tx.send(Applied::Reset {
            index: meta.last_log_id.map(|l| l.index),
        });
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        Ok(self.backend.current().await?.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(data),
        }))
    }
}
