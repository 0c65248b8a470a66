//! Where a group's snapshot lives on disk: one file per group,
//! `<data dir>/snapshots/g<group>.snap`, in the streamed format
//! ([`super::snap_format`]).
//!
//! A snapshot (built here or received from the leader) is written under a
//! temporary name beside it (flushed to disk as it is written), fsynced, then renamed over the current one and
//! the directory fsynced, so a crash leaves either the old snapshot or the
//! new one, never a mix. The older snapshot keeps a temporary second name
//! until it is released step by step ([`snap_retire`]). Temporary
//! files a crash left behind are removed when the group opens. Everything
//! here blocks: callers run it on a blocking thread or at open.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::snap_format::{self, SnapFormatError, SnapshotImage};
use crate::ids::GroupId;
use crate::snap_io::StepSyncWriter;
use crate::snap_retire::{self, Readers};
use crate::state::CanonState;
use crate::types::SnapshotMeta;

/// The directory, under a node's data directory, that holds snapshots.
pub const SNAPSHOT_DIR: &str = "snapshots";

/// Makes temporary names unique within this process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A snapshot file that could not be written or read.
#[derive(Debug, thiserror::Error)]
#[error("snapshot file {path}: {source}")]
pub struct SnapFileError {
    pub path: PathBuf,
    #[source]
    pub source: SnapFormatError,
}

impl SnapFileError {
    fn io(path: &Path, e: std::io::Error) -> Self {
        SnapFileError {
            path: path.to_path_buf(),
            source: SnapFormatError::Io(e),
        }
    }
}

/// One group's snapshot files.
#[derive(Debug, Clone)]
pub struct SnapFiles {
    dir: PathBuf,
    group: GroupId,
}

impl SnapFiles {
    /// The snapshot files of `group` in the data directory `data_dir`.
    pub fn new(data_dir: &Path, group: GroupId) -> Self {
        SnapFiles {
            dir: data_dir.join(SNAPSHOT_DIR),
            group,
        }
    }

    /// The group.
    pub fn group(&self) -> GroupId {
        self.group
    }

    /// The current snapshot's file.
    pub fn current(&self) -> PathBuf {
        self.dir.join(format!("g{}.snap", self.group))
    }

    fn temp_prefix(&self) -> String {
        format!("g{}.snap.", self.group)
    }

    /// A fresh temporary name for a snapshot being built or received.
    pub fn temp(&self, purpose: &str) -> PathBuf {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!(
            "{}{purpose}-{}-{n}.tmp",
            self.temp_prefix(),
            std::process::id()
        ))
    }

    /// Creates the directory and removes what an interrupted build or
    /// receive left behind.
    pub fn prepare(&self) -> Result<(), SnapFileError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| SnapFileError::io(&self.dir, e))?;
        let prefix = self.temp_prefix();
        let entries = std::fs::read_dir(&self.dir).map_err(|e| SnapFileError::io(&self.dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| SnapFileError::io(&self.dir, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&prefix) && name.ends_with(".tmp") {
                let path = entry.path();
                std::fs::remove_file(&path).map_err(|e| SnapFileError::io(&path, e))?;
            }
        }
        Ok(())
    }

    /// The current snapshot, decoded whole and checked, if there is one.
    pub fn load(&self) -> Result<Option<SnapshotImage>, SnapFileError> {
        let path = self.current();
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(SnapFileError::io(&path, e)),
        };
        read_file(&path, file).map(Some)
    }

    /// Writes `state` as the snapshot `meta` to a new temporary file,
    /// fsynced. Returns its path and size.
    pub fn write_temp(
        &self,
        purpose: &str,
        meta: &SnapshotMeta,
        state: CanonState,
    ) -> Result<(PathBuf, u64), SnapFileError> {
        let path = self.temp(purpose);
        let written = write_file(&path, meta, state);
        if written.is_err() {
            // Best effort: a leftover is removed at the next open anyway.
            let _ = std::fs::remove_file(&path);
        }
        written.map(|bytes| (path, bytes))
    }

    /// Makes the (fsynced) temporary file `temp` the current snapshot (the
    /// one it replaces is released step by step: [`snap_retire`]).
    pub fn publish(&self, temp: &Path) -> Result<(), SnapFileError> {
        self.publish_replacing(temp, Readers::default())
    }

    /// [`SnapFiles::publish`], the file it replaces released only once
    /// none of its `readers` reads it.
    pub(crate) fn publish_replacing(
        &self,
        temp: &Path,
        readers: Readers,
    ) -> Result<(), SnapFileError> {
        let current = self.current();
        let retiring = snap_retire::set_aside(&current, self.temp("retired"), readers);
        if let Err(e) = std::fs::rename(temp, &current) {
            if let Some(r) = retiring {
                r.abandon();
            }
            return Err(SnapFileError::io(&current, e));
        }
        let synced = File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| SnapFileError::io(&self.dir, e));
        if let Some(r) = retiring {
            r.release_in_background();
        }
        synced
    }
}

fn write_file(path: &Path, meta: &SnapshotMeta, state: CanonState) -> Result<u64, SnapFileError> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| SnapFileError::io(path, e))?;
    // Flushed as it goes: the final fsync below then waits for one step, and
    // the log's fsyncs meanwhile never queue behind the whole file.
    let mut out = BufWriter::with_capacity(1 << 20, StepSyncWriter::new(file));
    let bytes =
        snap_format::write_image(&mut out, meta, state).map_err(|source| SnapFileError {
            path: path.to_path_buf(),
            source,
        })?;
    let file = out
        .into_inner()
        .map_err(|e| SnapFileError::io(path, e.into_error()))?
        .into_inner();
    file.sync_all().map_err(|e| SnapFileError::io(path, e))?;
    Ok(bytes)
}

/// Decodes the snapshot in `file` (named `path` in errors) record by
/// record.
pub fn read_file(path: &Path, file: File) -> Result<SnapshotImage, SnapFileError> {
    snap_format::read_image(BufReader::with_capacity(1 << 20, file)).map_err(|source| {
        SnapFileError {
            path: path.to_path_buf(),
            source,
        }
    })
}
