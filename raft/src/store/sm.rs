//! A group's state machine (openraft `RaftStateMachine`): the [`CanonState`]
//! in memory, its snapshots in sled.
//!
//! Snapshots are whole-state images: the state is cloned under a short read
//! lock, then encoded and written off the apply path. The newest snapshot is
//! kept in the group's `snap` tree (meta and data written in one batch and
//! fsynced) so that a restarted node starts from it and the log behind it can
//! be purged.

use std::collections::BTreeSet;
use std::io::Cursor;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use canon_model::Fid;
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder};
use tokio::sync::{broadcast, Mutex};

use super::{DbHandle, KEY_SNAP_DATA, KEY_SNAP_META};
use crate::codec;
use crate::command::{Committed, EntryAt};
use crate::ids::GroupId;
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

/// A stored snapshot: its meta and its encoded state.
pub(crate) type StoredSnapshot = (SnapshotMeta, Vec<u8>);
/// A bad key of a tree and what is wrong with it.
pub(crate) type BadKey = (&'static str, String);

/// Reads the stored snapshot of a `snap` tree. Errors name the bad key.
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
    /// Serialises snapshot writes so an older one never replaces a newer.
    snap_lock: Arc<Mutex<()>>,
    /// Makes snapshot ids unique within this process.
    counter: Arc<std::sync::atomic::AtomicU64>,
}

impl StateMachineStore {
    pub(crate) fn new(
        backend: SnapBackend,
        group: GroupId,
        shard_count: u32,
        snapshot: Option<StoredSnapshot>,
    ) -> Result<Self, BadKey> {
        let data = match snapshot {
            None => SmData {
                last_applied: None,
                last_membership: StoredMembership::default(),
                state: CanonState::new(group, shard_count),
            },
            Some((meta, bytes)) => {
                let state = CanonState::decode(&bytes).map_err(|e| ("data", e.to_string()))?;
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
            snap_lock: Arc::new(Mutex::new(())),
            counter: Arc::new(std::sync::atomic::AtomicU64::new(0)),
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

    fn snap_err(
        &self,
        meta: Option<&SnapshotMeta>,
        verb: ErrorVerb,
        e: impl std::fmt::Display,
    ) -> StorageError {
        self.backend
            .err(ErrorSubject::Snapshot(meta.map(|m| m.signature())), verb, e)
    }

    /// Stores `meta` + `data` as the current snapshot unless a newer one is
    /// already stored, and waits until it is durable.
    async fn persist_snapshot(&self, meta: &SnapshotMeta, data: &[u8]) -> Result<(), StorageError> {
        let _guard = self.snap_lock.lock().await;
        if let Some((cur, _)) = self.backend.load()? {
            if cur.last_log_id > meta.last_log_id {
                return Ok(());
            }
        }
        self.backend.save(meta, data).await
    }
}

/// Where a group's snapshot is kept.
#[derive(Debug, Clone)]
pub(crate) enum SnapBackend {
    /// The group's `snap` tree.
    Sled {
        db: Arc<DbHandle>,
        tree: sled::Tree,
        name: Arc<str>,
    },
    /// Memory that outlives the node (simulations).
    Memory(Arc<std::sync::Mutex<Option<StoredSnapshot>>>),
}

impl SnapBackend {
    fn err(
        &self,
        subject: ErrorSubject<u64>,
        verb: ErrorVerb,
        e: impl std::fmt::Display,
    ) -> StorageError {
        match self {
            SnapBackend::Sled { db, name, .. } => db.io(subject, verb, name, e),
            SnapBackend::Memory(_) => openraft::StorageIOError::new(
                subject,
                verb,
                openraft::AnyError::error(e.to_string()),
            )
            .into(),
        }
    }

    fn load(&self) -> Result<Option<StoredSnapshot>, StorageError> {
        match self {
            SnapBackend::Sled { db, tree, name } => read_snapshot(tree).map_err(|(key, detail)| {
                db.corrupt(
                    ErrorSubject::Snapshot(None),
                    ErrorVerb::Read,
                    name,
                    key,
                    detail,
                )
            }),
            SnapBackend::Memory(m) => Ok(m.lock().unwrap_or_else(|e| e.into_inner()).clone()),
        }
    }

    async fn save(&self, meta: &SnapshotMeta, data: &[u8]) -> Result<(), StorageError> {
        let subject = || ErrorSubject::Snapshot(Some(meta.signature()));
        match self {
            SnapBackend::Sled { db, tree, name } => {
                let meta_bytes =
                    codec::encode(meta).map_err(|e| db.io(subject(), ErrorVerb::Write, name, e))?;
                let mut batch = sled::Batch::default();
                batch.insert(KEY_SNAP_META, meta_bytes);
                batch.insert(KEY_SNAP_DATA, data);
                tree.apply_batch(batch)
                    .map_err(|e| db.io(subject(), ErrorVerb::Write, name, e))?;
                db.sync()
                    .await
                    .map_err(|e| db.io(subject(), ErrorVerb::Write, name, e))
            }
            SnapBackend::Memory(m) => {
                *m.lock().unwrap_or_else(|e| e.into_inner()) = Some((meta.clone(), data.to_vec()));
                Ok(())
            }
        }
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let image = self.shared.read().clone();
        let data =
            codec::encode(&image.state).map_err(|e| self.snap_err(None, ErrorVerb::Write, e))?;
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let snapshot_id = match &image.last_applied {
            Some(l) => format!("g{}-{}-{}-{}", self.group, l.leader_id.term, l.index, n),
            None => format!("g{}-none-{}", self.group, n),
        };
        let meta = SnapshotMeta {
            last_log_id: image.last_applied,
            last_membership: image.last_membership,
            snapshot_id,
        };
        self.persist_snapshot(&meta, &data).await?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
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
                        .0
                        .iter()
                        .map(|req| d.state.apply_at(req, Some(at)))
                        .collect();
                    let mut fids = BTreeSet::new();
                    let mut cluster = false;
                    for (req, answer) in batch.0.iter().zip(&answers) {
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

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let bytes = snapshot.into_inner();
        let state = CanonState::decode(&bytes).map_err(|e| {
            self.snap_err(
                Some(meta),
                ErrorVerb::Read,
                format!("received snapshot does not decode: {e}"),
            )
        })?;
        if state.group != self.group {
            return Err(self.snap_err(
                Some(meta),
                ErrorVerb::Read,
                format!("received a snapshot of group {}", state.group),
            ));
        }
        self.persist_snapshot(meta, &bytes).await?;
        {
            let mut d = self.shared.write();
            d.last_applied = meta.last_log_id;
            d.last_membership = meta.last_membership.clone();
            d.state = state;
        }
        // Nobody listening is fine.
        let _ = self.applied_tx.send(Applied::Reset {
            index: meta.last_log_id.map(|l| l.index),
        });
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let stored = self.backend.load()?;
        Ok(stored.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}
