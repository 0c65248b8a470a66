//! Durable storage of a node: the log entries of every Raft group in one
//! write-ahead log ([`wal`], `wal/<seq>.wal` in the database directory),
//! and one sled database holding each group's vote, committed id and purge
//! point (`g<group>.vote`), plus node-wide facts (`node`); each group's
//! snapshot is a file beside it (`snapshots/g<group>.snap`,
//! [`snap_files`]). The `g<group>.log` trees held the entries before the
//! WAL, the `g<group>.snap` trees the snapshots before they were streamed;
//! opening a group moves what it finds there into the WAL or its file.
//!
//! The state machine itself lives in memory ([`sm`]); it is rebuilt at start
//! from the group's last snapshot plus the committed log, so applying a
//! command never waits for the disk. Durability comes from the log: `append`
//! reports an entry flushed only after an fsync (the `flusher` module), and a vote is
//! fsynced before `save_vote` returns.
//!
//! Opening a group checks everything it reads (every log entry decodes, the
//! log is gap-free and starts right after the purge point, vote and snapshot
//! decode); any damage is a [`StoreError::Corrupt`] naming the file and tree,
//! never a silent fresh start.

mod append_budget;
mod checks;
mod committed;
mod flusher;
pub mod log;
mod marks;
pub mod mem;
mod recent;
pub mod sm;
mod snap_audit;
pub mod snap_files;
pub mod snap_format;
mod snapshot;
#[cfg(test)]
mod test_entries;
mod wal;
mod whole_file;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::{AnyError, ErrorSubject, ErrorVerb, StorageIOError};

use crate::ids::{GroupId, NodeId};
use crate::types::StorageError;

pub use crate::snap_retire::ReaderMark;
pub use crate::snapshot_data::SnapshotData;
use checks::GroupTrees;
pub use flusher::Flusher;
pub use log::LogStore;
pub use mem::{MemDisk, MemLogStore};
pub use sm::{SmData, StateMachineStore};
pub use snapshot::BuildStats;

/// Why the store could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open sled database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("cannot open {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt data in {path} (tree {tree:?}, key {key}): {detail}")]
    Corrupt {
        path: PathBuf,
        tree: String,
        key: String,
        detail: String,
    },
    /// A group's snapshot file is cut short or damaged (it is left as
    /// found; the node refuses to start rather than lose what it held).
    #[error("corrupt snapshot file {path}: {detail}")]
    CorruptSnapshot { path: PathBuf, detail: String },
    #[error("sled error in {path} (tree {tree:?}): {source}")]
    Sled {
        path: PathBuf,
        tree: String,
        #[source]
        source: sled::Error,
    },
    /// sled neither opened the database nor failed (it can spin forever
    /// on some damaged files).
    #[error("cannot open sled database {path}: {detail}; its data file may be damaged")]
    Stuck { path: PathBuf, detail: String },
    #[error("{path} belongs to node {found}, not node {expected}")]
    WrongNode {
        path: PathBuf,
        found: NodeId,
        expected: NodeId,
    },
    #[error("{path} was created with {found} shards, configuration says {expected}")]
    WrongShardCount {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
}

/// The file in which sled 0.34 keeps its log and pages.
const SLED_DATA_FILE: &str = "db";

/// sled's page cache: its default is 1 GiB a database, which a node grows
/// towards as its log is written. The log is written far more than it is
/// read back (the state lives in memory, recent entries are re-read only
/// to catch a follower up, and the OS caches the file), so a node keeps
/// 64 MiB. (The 10k-process scale bench's process, three nodes and the
/// simulated cloud, held 4,138 MiB before and 3,860 MiB after: most of a
/// node's memory is elsewhere.)
const SLED_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// Node-wide facts kept in the `node` tree.
const NODE_TREE: &str = "node";
const KEY_NODE_ID: &[u8] = b"node_id";
const KEY_SHARD_COUNT: &[u8] = b"shard_count";

/// Keys of a group's `vote` tree.
pub(crate) const KEY_VOTE: &[u8] = b"vote";
pub(crate) const KEY_COMMITTED: &[u8] = b"committed";
pub(crate) const KEY_PURGED: &[u8] = b"purged";

/// Keys of a group's `snap` tree.
pub(crate) const KEY_SNAP_META: &[u8] = b"meta";
pub(crate) const KEY_SNAP_DATA: &[u8] = b"data";

/// What every group's storage shares: the database, its path (for error
/// messages) and the flusher.
#[derive(Debug)]
pub(crate) struct DbHandle {
    pub(crate) db: sled::Db,
    pub(crate) path: PathBuf,
    pub(crate) flusher: Flusher,
    pub(crate) marks: Arc<marks::MarkBook>,
    pub(crate) wal: Arc<wal::Wal>,
    /// Each group's committed id, on its way to sled.
    pub(crate) committed: committed::CommittedIds,
}

impl Drop for DbHandle {
    fn drop(&mut self) {
        // Closing: the committed ids still waiting go to sled, which writes
        // them out as its trees close.
        if let Err(error) = self.committed.write_due(std::time::Instant::now(), true) {
            tracing::warn!(%error, path = %self.path.display(), "committed ids not saved at close");
        }
    }
}

/// The committed ids' [`committed::BeforeWrite`]: the WAL's staged
/// records go to its file first, so no committed id on disk is ahead of the
/// log a killed process leaves.
fn staged_first(wal: &Arc<wal::Wal>) -> committed::BeforeWrite {
    let wal = wal.clone();
    Arc::new(move || wal.write_staged().map_err(|e| e.to_string()))
}

impl DbHandle {
    /// An openraft storage error for damage found while running.
    pub(crate) fn corrupt(
        &self,
        subject: ErrorSubject<NodeId>,
        verb: ErrorVerb,
        tree: &str,
        key: &str,
        detail: impl std::fmt::Display,
    ) -> StorageError {
        let msg = format!(
            "corrupt data in {} (tree {tree:?}, key {key}): {detail}",
            self.path.display()
        );
        StorageIOError::new(subject, verb, AnyError::error(msg)).into()
    }

    /// An openraft storage error for a failed sled operation.
    pub(crate) fn io(
        &self,
        subject: ErrorSubject<NodeId>,
        verb: ErrorVerb,
        tree: &str,
        err: impl std::fmt::Display,
    ) -> StorageError {
        let msg = format!(
            "sled error in {} (tree {tree:?}): {err}",
            self.path.display()
        );
        StorageIOError::new(subject, verb, AnyError::error(msg)).into()
    }

    /// Waits until everything written so far is on disk.
    pub(crate) async fn sync(&self) -> Result<(), String> {
        self.flusher.sync().await
    }
}

/// One node's database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<DbHandle>,
    /// Closed once the flusher thread has ended: the database is closed
    /// and nothing of this store writes any more.
    flusher_ended: tokio::sync::watch::Receiver<()>,
}

impl Store {
    /// Resolves once every handle on this database is gone and its
    /// flusher thread has written its last marks and ended.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut ended = self.flusher_ended.clone();
        async move {
            // Nothing is ever sent: this ends when the thread drops its end.
            while ended.changed().await.is_ok() {}
        }
    }

    /// Opens (or creates) the database in `dir` for node `node_id` of a
    /// cluster with `shard_count` shards (and starts its flusher thread).
    pub fn open(dir: &Path, node_id: NodeId, shard_count: u32) -> Result<Self, StoreError> {
        let path = dir.to_path_buf();
        let marks_path = path.join(marks::MARKS_FILE);
        let corrupt_marks = |detail: String| StoreError::Corrupt {
            path: marks_path.clone(),
            tree: "-".to_string(),
            key: "-".to_string(),
            detail,
        };
        let prior_marks = marks::read(&path).map_err(corrupt_marks)?;
        let db = sled::Config::new()
            .path(&path)
            .cache_capacity(SLED_CACHE_BYTES)
            .open()
            .map_err(|source| StoreError::Open {
                path: path.clone(),
                source,
            })?;
        // sled keeps everything in one data file; fsynced after each flush.
        let data_path = path.join(SLED_DATA_FILE);
        let data_file = match std::fs::File::open(&data_path) {
            Ok(f) => Some(Arc::new(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(path = %data_path.display(), "no sled data file to fsync");
                None
            }
            Err(source) => {
                return Err(StoreError::Io {
                    path: data_path,
                    source,
                })
            }
        };
        let wal = Arc::new(wal::Wal::open(
            &path.join(wal::WAL_DIR),
            wal::SEGMENT_BYTES,
        )?);
        let (flusher, queue) = Flusher::new();
        let inner = Arc::new(DbHandle {
            db,
            path: path.clone(),
            flusher,
            committed: committed::CommittedIds::new(staged_first(&wal)),
            wal,
            marks: Arc::new(marks::MarkBook::new(
                path.clone(),
                prior_marks.clone().unwrap_or_default(),
            )),
        });
        let flusher_ended = queue
            .start(Arc::downgrade(&inner), inner.marks.clone(), data_file)
            .map_err(|source| StoreError::Io {
                path: path.clone(),
                source,
            })?;
        let store = Store {
            inner,
            flusher_ended,
        };
        let fresh = store.check_identity(node_id, shard_count)?;
        match prior_marks {
            Some(m) if fresh => {
                return Err(StoreError::Corrupt {
                    path,
                    tree: NODE_TREE.to_string(),
                    key: "node_id".to_string(),
                    detail: format!(
                        "the database is empty but {} says it held node {}'s data: contents lost",
                        marks::MARKS_FILE,
                        m.node_id
                    ),
                })
            }
            Some(_) => {}
            None => {
                let m = marks::Marks {
                    node_id,
                    shard_count,
                    groups: Default::default(),
                };
                marks::write(&path, &m).map_err(|e| StoreError::Corrupt {
                    path: marks_path.clone(),
                    tree: "-".to_string(),
                    key: "-".to_string(),
                    detail: format!("cannot write: {e}"),
                })?;
            }
        }
        Ok(store)
    }

    /// The directory of the database.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The file in which sled keeps the data.
    pub fn data_file(&self) -> PathBuf {
        self.inner.path.join(SLED_DATA_FILE)
    }

    fn tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        self.inner
            .db
            .open_tree(name)
            .map_err(|source| self.sled_err(name, source))
    }

    fn sled_err(&self, tree: &str, source: sled::Error) -> StoreError {
        match source {
            sled::Error::Corruption { .. } => StoreError::Corrupt {
                path: self.inner.path.clone(),
                tree: tree.to_string(),
                key: "-".to_string(),
                detail: source.to_string(),
            },
            source => StoreError::Sled {
                path: self.inner.path.clone(),
                tree: tree.to_string(),
                source,
            },
        }
    }

    pub(crate) fn corrupt(
        &self,
        tree: &str,
        key: &str,
        detail: impl std::fmt::Display,
    ) -> StoreError {
        StoreError::Corrupt {
            path: self.inner.path.clone(),
            tree: tree.to_string(),
            key: key.to_string(),
            detail: detail.to_string(),
        }
    }

    /// Checks (or, in a new database, records) node id and shard count.
    /// Returns true if the database was new.
    fn check_identity(&self, node_id: NodeId, shard_count: u32) -> Result<bool, StoreError> {
        let tree = self.tree(NODE_TREE)?;
        let get_u64 = |key: &[u8]| -> Result<Option<u64>, StoreError> {
            match tree.get(key).map_err(|e| self.sled_err(NODE_TREE, e))? {
                None => Ok(None),
                Some(v) => {
                    let bytes: [u8; 8] = v.as_ref().try_into().map_err(|_| {
                        self.corrupt(NODE_TREE, &String::from_utf8_lossy(key), "not 8 bytes")
                    })?;
                    Ok(Some(u64::from_be_bytes(bytes)))
                }
            }
        };
        let stored_id = get_u64(KEY_NODE_ID)?;
        let fresh = stored_id.is_none();
        match stored_id {
            Some(found) if found != node_id => {
                return Err(StoreError::WrongNode {
                    path: self.inner.path.clone(),
                    found,
                    expected: node_id,
                })
            }
            Some(_) => {}
            None => {
                tree.insert(KEY_NODE_ID, &node_id.to_be_bytes())
                    .map_err(|e| self.sled_err(NODE_TREE, e))?;
            }
        }
        match get_u64(KEY_SHARD_COUNT)? {
            Some(found) if found != u64::from(shard_count) => {
                return Err(StoreError::WrongShardCount {
                    path: self.inner.path.clone(),
                    found: u32::try_from(found).unwrap_or(u32::MAX),
                    expected: shard_count,
                })
            }
            Some(_) => {}
            None => {
                tree.insert(KEY_SHARD_COUNT, &u64::from(shard_count).to_be_bytes())
                    .map_err(|e| self.sled_err(NODE_TREE, e))?;
            }
        }
        self.inner
            .db
            .flush()
            .map_err(|e| self.sled_err(NODE_TREE, e))?;
        Ok(fresh)
    }

    /// Opens group `group`'s log and state machine, checking what is on disk
    /// ([`checks`]): a damaged tree is an error, never a fresh start.
    pub fn open_group(
        &self,
        group: GroupId,
        shard_count: u32,
    ) -> Result<(LogStore, StateMachineStore), StoreError> {
        let (log_name, vote_name, snap_name) = (
            format!("g{group}.log"),
            format!("g{group}.vote"),
            format!("g{group}.snap"),
        );
        let trees = GroupTrees {
            log: self.tree(&log_name)?,
            vote: self.tree(&vote_name)?,
            snap: self.tree(&snap_name)?,
            log_name,
            vote_name,
            snap_name,
        };
        let purged = self.check_vote(&trees)?;
        self.finish_purge(&trees, purged.as_ref())?;
        self.check_log(&trees, purged.as_ref())?;
        self.migrate_log(group, &trees)?;
        self.inner.wal.opened(group, purged.map(|p| p.index));
        self.check_wal_log(group, &trees, purged.as_ref())?;
        let files = snap_files::SnapFiles::new(&self.inner.path, group);
        let snapshot = self.check_snapshot(&trees, &files, purged.as_ref())?;
        self.check_marks(group, &trees, snapshot.as_ref().map(|s| &s.meta))?;

        let GroupTrees {
            vote: vote_tree,
            log_name,
            vote_name,
            ..
        } = trees;
        let log = LogStore::new(self.inner.clone(), group, vote_tree, log_name, vote_name);
        let backend = snapshot::SnapBackend::Files(Arc::new(snapshot::FileSnaps::new(
            files,
            snapshot.as_ref().map(|s| s.meta.clone()),
        )));
        let sm = StateMachineStore::new(backend, group, shard_count, snapshot)
            .map_err(|(key, detail)| self.corrupt(&format!("g{group}.snap"), key, detail))?;
        Ok((log, sm))
    }

    /// Waits until everything written so far is durable.
    pub async fn sync(&self) -> Result<(), String> {
        self.inner.sync().await
    }
}
