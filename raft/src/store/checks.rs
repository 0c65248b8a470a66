//! What opening a group checks of its trees before Raft may use them:
//! vote and commit mark decode, an interrupted purge is finished, every
//! log entry decodes and sits gap-free after the purge point (entries an
//! older release kept in sled are checked so, then moved into the WAL), the snapshot
//! decodes and covers what was purged (a snapshot an older release kept in
//! sled is moved into its file), and nothing the node's durable marks say
//! it once had is missing. Called by [`Store::open_group`] only, one check
//! per step.

use super::snap_files::{SnapFileError, SnapFiles};
use super::snap_format::{self, SnapFormatError, SnapshotImage};
use super::{
    log, sm, Store, StoreError, KEY_COMMITTED, KEY_PURGED, KEY_SNAP_DATA, KEY_SNAP_META, KEY_VOTE,
};
use crate::codec;
use crate::ids::GroupId;
use crate::types::{LogId, SnapshotMeta};

/// Entries moved from a sled tree into the WAL at a time.
const MIGRATE_BATCH: usize = 1024;

/// One group's trees and their names (for errors).
pub(super) struct GroupTrees {
    pub log: sled::Tree,
    pub vote: sled::Tree,
    pub snap: sled::Tree,
    pub log_name: String,
    pub vote_name: String,
    pub snap_name: String,
}

impl Store {
    /// Vote and committed mark must decode. Returns the purge point.
    pub(super) fn check_vote(&self, t: &GroupTrees) -> Result<Option<LogId>, StoreError> {
        for key in [KEY_VOTE, KEY_COMMITTED] {
            if let Some(v) = t
                .vote
                .get(key)
                .map_err(|e| self.sled_err(&t.vote_name, e))?
            {
                let ok = if key == KEY_VOTE {
                    codec::decode::<crate::types::Vote>(&v).map(|_| ())
                } else {
                    codec::decode::<Option<LogId>>(&v).map(|_| ())
                };
                ok.map_err(|e| self.corrupt(&t.vote_name, &String::from_utf8_lossy(key), e))?;
            }
        }
        match t
            .vote
            .get(KEY_PURGED)
            .map_err(|e| self.sled_err(&t.vote_name, e))?
        {
            None => Ok(None),
            Some(v) => codec::decode(&v).map_err(|e| self.corrupt(&t.vote_name, "purged", e)),
        }
    }

    /// Finishes a purge that a crash interrupted: entries at or below the
    /// purge point are garbage.
    pub(super) fn finish_purge(
        &self,
        t: &GroupTrees,
        purged: Option<&LogId>,
    ) -> Result<(), StoreError> {
        let Some(p) = purged else {
            return Ok(());
        };
        let stale: Vec<sled::IVec> = t
            .log
            .range(..=log::index_key(p.index))
            .keys()
            .collect::<Result<_, _>>()
            .map_err(|e| self.sled_err(&t.log_name, e))?;
        for k in stale {
            t.log.remove(k).map_err(|e| self.sled_err(&t.log_name, e))?;
        }
        Ok(())
    }

    /// Every entry decodes, sits under its own index, and the log has no
    /// gaps and starts right after the purge point.
    pub(super) fn check_log(
        &self,
        t: &GroupTrees,
        purged: Option<&LogId>,
    ) -> Result<(), StoreError> {
        let mut expected_next = purged.map(|p| p.index + 1);
        for item in t.log.iter() {
            let (k, v) = item.map_err(|e| self.sled_err(&t.log_name, e))?;
            let key_index = log::index_of_key(&k).ok_or_else(|| {
                self.corrupt(&t.log_name, &format!("{k:?}"), "key is not a log index")
            })?;
            let entry: crate::types::Entry = crate::entry_codec::decode_entry(&v)
                .map_err(|e| self.corrupt(&t.log_name, &key_index.to_string(), e))?;
            if entry.log_id.index != key_index {
                return Err(self.corrupt(
                    &t.log_name,
                    &key_index.to_string(),
                    format!("holds the entry of index {}", entry.log_id.index),
                ));
            }
            if let Some(next) = expected_next {
                if key_index != next {
                    return Err(self.corrupt(
                        &t.log_name,
                        &key_index.to_string(),
                        format!("log has a gap: expected index {next}"),
                    ));
                }
            }
            expected_next = Some(key_index + 1);
        }
        Ok(())
    }

    /// Moves the entries an older release kept in the group's sled tree
    /// (checked by [`Store::check_log`]) into the WAL: copied, fsynced,
    /// then cleared from the tree. A crash part-way copies again only what
    /// the WAL lacks (nothing is appended to the WAL before the copy is
    /// durable and the tree empty).
    pub(super) fn migrate_log(&self, group: GroupId, t: &GroupTrees) -> Result<(), StoreError> {
        if t.log.is_empty() {
            return Ok(());
        }
        let wal = &self.inner.wal;
        let from = wal.last(group).map_or(0, |l| l.index.saturating_add(1));
        let wal_err = |e: std::io::Error| StoreError::Io {
            path: wal.dir().to_path_buf(),
            source: e,
        };
        let mut batch = Vec::new();
        let mut copied = 0usize;
        for item in t.log.range(log::index_key(from)..) {
            let (k, v) = item.map_err(|e| self.sled_err(&t.log_name, e))?;
            let entry = crate::entry_codec::decode_entry(&v)
                .map_err(|e| self.corrupt(&t.log_name, &format!("{k:?}"), e))?;
            batch.push((entry.log_id, v.to_vec()));
            if batch.len() >= MIGRATE_BATCH {
                copied += batch.len();
                wal.append(group, &std::mem::take(&mut batch))
                    .map_err(wal_err)?;
            }
        }
        copied += batch.len();
        wal.append(group, &batch).map_err(wal_err)?;
        wal.sync().map_err(wal_err)?;
        t.log.clear().map_err(|e| self.sled_err(&t.log_name, e))?;
        self.inner
            .db
            .flush()
            .map_err(|e| self.sled_err(&t.log_name, e))?;
        let data = self.data_file();
        std::fs::File::open(&data)
            .and_then(|f| f.sync_data())
            .map_err(|source| StoreError::Io { path: data, source })?;
        tracing::info!(group, copied, "moved the log out of sled into the WAL");
        Ok(())
    }

    /// The group's entries in the WAL sit gap-free after the purge point.
    pub(super) fn check_wal_log(
        &self,
        group: GroupId,
        t: &GroupTrees,
        purged: Option<&LogId>,
    ) -> Result<(), StoreError> {
        let mut expected_next = purged.map(|p| p.index + 1);
        for id in self.inner.wal.log_ids(group) {
            if let Some(next) = expected_next.filter(|n| *n != id.index) {
                return Err(StoreError::Corrupt {
                    path: self.inner.wal.dir().to_path_buf(),
                    tree: t.log_name.clone(),
                    key: id.index.to_string(),
                    detail: format!("log has a gap: expected index {next}"),
                });
            }
            expected_next = Some(id.index + 1);
        }
        Ok(())
    }

    /// The snapshot, if any, must decode and reach the purge point; it is
    /// the state machine's base.
    pub(super) fn check_snapshot(
        &self,
        t: &GroupTrees,
        files: &SnapFiles,
        purged: Option<&LogId>,
    ) -> Result<Option<SnapshotImage>, StoreError> {
        files.prepare().map_err(snap_file_error)?;
        let from_file = files.load().map_err(snap_file_error)?;
        let snapshot = self.migrate_old_snapshot(t, files, from_file)?;
        let lost = |detail: String| StoreError::Corrupt {
            path: files.current(),
            tree: t.snap_name.clone(),
            key: "meta".to_string(),
            detail,
        };
        if let Some(image) = &snapshot {
            if let (Some(p), Some(s)) = (purged, &image.meta.last_log_id) {
                if p.index > s.index {
                    return Err(lost(format!(
                        "snapshot ends at {} but the log was purged up to {}: entries lost",
                        s.index, p.index
                    )));
                }
            }
        } else if purged.is_some() {
            return Err(lost(
                "no snapshot although the log was purged: entries lost".to_string(),
            ));
        }
        Ok(snapshot)
    }

    /// A snapshot an older release kept in the `snap` tree is written to
    /// the group's file (unless the file is newer), then dropped from the
    /// tree. The file is durable before the tree forgets it.
    fn migrate_old_snapshot(
        &self,
        t: &GroupTrees,
        files: &SnapFiles,
        from_file: Option<SnapshotImage>,
    ) -> Result<Option<SnapshotImage>, StoreError> {
        let old = sm::read_snapshot(&t.snap)
            .map_err(|(key, detail)| self.corrupt(&t.snap_name, key, detail))?;
        let Some((meta, bytes)) = old else {
            return Ok(from_file);
        };
        let old_is_newer = from_file
            .as_ref()
            .is_none_or(|f| f.meta.last_log_id < meta.last_log_id);
        let chosen = if old_is_newer {
            let state = snap_format::decode_old_image(&bytes)
                .map_err(|e| self.corrupt(&t.snap_name, "data", e))?;
            drop(bytes);
            // The processes sit behind `Arc`s: this clone is cheap.
            let (temp, _) = files
                .write_temp("migrate", &meta, state.clone())
                .map_err(snap_file_error)?;
            files.publish(&temp).map_err(snap_file_error)?;
            tracing::info!(
                group = files.group(),
                file = %files.current().display(),
                "moved the snapshot out of sled into its file"
            );
            Some(SnapshotImage { meta, state })
        } else {
            from_file
        };
        let mut batch = sled::Batch::default();
        batch.remove(KEY_SNAP_META);
        batch.remove(KEY_SNAP_DATA);
        t.snap
            .apply_batch(batch)
            .map_err(|e| self.sled_err(&t.snap_name, e))?;
        self.inner
            .db
            .flush()
            .map_err(|e| self.sled_err(&t.snap_name, e))?;
        Ok(chosen)
    }

    /// The database must know at least what the node's durable marks say
    /// it once had: the committed index and the term voted in.
    pub(super) fn check_marks(
        &self,
        group: GroupId,
        t: &GroupTrees,
        snapshot: Option<&SnapshotMeta>,
    ) -> Result<(), StoreError> {
        let Some(mark) = self.inner.marks.durable_mark(group) else {
            return Ok(());
        };
        let last_log = self.inner.wal.last(group).map(|l| l.index);
        let snap_last = snapshot.and_then(|m| m.last_log_id.as_ref().map(|l| l.index));
        let known = last_log.max(snap_last).unwrap_or(0);
        if known < mark.committed {
            return Err(self.corrupt(
                &t.log_name,
                "-",
                format!(
                    "the log ends at {known} but index {} was committed here: entries lost \
                     (is {} truncated or damaged?)",
                    mark.committed,
                    self.inner.wal.dir().display()
                ),
            ));
        }
        let vote_term = match t
            .vote
            .get(KEY_VOTE)
            .map_err(|e| self.sled_err(&t.vote_name, e))?
        {
            Some(v) => codec::decode::<crate::types::Vote>(&v)
                .map(|v| v.leader_id.term)
                .map_err(|e| self.corrupt(&t.vote_name, "vote", e))?,
            None => 0,
        };
        if vote_term < mark.vote_term {
            return Err(self.corrupt(
                &t.vote_name,
                "vote",
                format!(
                    "the vote is of term {vote_term} but term {} was voted in: vote lost \
                     (is {} truncated or damaged?)",
                    mark.vote_term,
                    self.data_file().display()
                ),
            ));
        }
        Ok(())
    }
}

/// A snapshot file that cannot be read is corrupt (or unreadable), named
/// by its path.
fn snap_file_error(e: SnapFileError) -> StoreError {
    match e.source {
        SnapFormatError::Io(source) => StoreError::Io {
            path: e.path,
            source,
        },
        other => StoreError::CorruptSnapshot {
            path: e.path,
            detail: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use openraft::storage::RaftLogStorageExt;
    use openraft::RaftLogReader;

    use crate::store::test_entries::noop_entry as entry;
    use crate::store::wal::{Wal, SEGMENT_BYTES, WAL_DIR};
    use crate::store::{log, Store};

    /// Retries `f` while sled (or a store) still holds the lock of a
    /// database just dropped.
    fn retry<T, E: std::fmt::Display>(f: impl Fn() -> Result<T, E>) -> T {
        let started = std::time::Instant::now();
        loop {
            match f() {
                Ok(v) => return v,
                Err(e) if started.elapsed() > std::time::Duration::from_secs(10) => {
                    panic!("{e}")
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
    }

    /// A log an older release kept in sled: entries `indexes` of group 1.
    fn old_release_log(dir: &Path, indexes: std::ops::RangeInclusive<u64>) {
        let db = retry(|| sled::open(dir));
        let tree = db.open_tree("g1.log").unwrap();
        for i in indexes {
            let bytes = crate::entry_codec::encode_entry(&entry(i)).unwrap();
            tree.insert(log::index_key(i), bytes).unwrap();
        }
        db.flush().unwrap();
    }

    fn tree_len(dir: &Path) -> usize {
        let db = retry(|| sled::open(dir));
        db.open_tree("g1.log").unwrap().len()
    }

    async fn indexes_after_open(dir: &Path) -> Vec<u64> {
        let store = retry(|| Store::open(dir, 7, 4));
        let (mut log, _sm) = store.open_group(1, 4).unwrap();
        let read = log.try_get_log_entries(..).await.unwrap();
        read.iter().map(|e| e.log_id.index).collect()
    }

    /// The entries of an older release's sled tree move into the WAL at
    /// open, the tree is emptied, and the log goes on from there.
    #[tokio::test]
    async fn a_sled_log_moves_into_the_wal() {
        let dir = tempfile::tempdir().unwrap();
        old_release_log(dir.path(), 1..=5);
        assert_eq!(indexes_after_open(dir.path()).await, vec![1, 2, 3, 4, 5]);
        assert_eq!(tree_len(dir.path()), 0);
        {
            let store = retry(|| Store::open(dir.path(), 7, 4));
            let (mut log, _sm) = store.open_group(1, 4).unwrap();
            log.blocking_append([entry(6)]).await.unwrap();
        }
        assert_eq!(
            indexes_after_open(dir.path()).await,
            (1..=6).collect::<Vec<_>>()
        );
    }

    /// A move a crash cut short (part copied, tree not cleared) is
    /// finished at the next open, with nothing doubled or lost.
    #[tokio::test]
    async fn an_interrupted_move_is_finished() {
        let dir = tempfile::tempdir().unwrap();
        old_release_log(dir.path(), 1..=5);
        {
            let wal = Wal::open(&dir.path().join(WAL_DIR), SEGMENT_BYTES).unwrap();
            let copied: Vec<_> = (1..=3)
                .map(|i| {
                    let e = entry(i);
                    (e.log_id, crate::entry_codec::encode_entry(&e).unwrap())
                })
                .collect();
            wal.append(1, &copied).unwrap();
            wal.sync().unwrap();
        }
        assert_eq!(indexes_after_open(dir.path()).await, vec![1, 2, 3, 4, 5]);
        assert_eq!(tree_len(dir.path()), 0);
    }

    /// A hole in a group's entries in the WAL is damage, named.
    #[tokio::test]
    async fn a_gap_in_the_wal_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        {
            let wal = Wal::open(&dir.path().join(WAL_DIR), SEGMENT_BYTES).unwrap();
            let entries: Vec<_> = [1, 2, 4]
                .into_iter()
                .map(|i| {
                    let e = entry(i);
                    (e.log_id, crate::entry_codec::encode_entry(&e).unwrap())
                })
                .collect();
            wal.append(1, &entries).unwrap();
            wal.sync().unwrap();
        }
        let store = retry(|| Store::open(dir.path(), 7, 4));
        match store.open_group(1, 4) {
            Err(e @ crate::store::StoreError::Corrupt { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("g1.log") && msg.contains("gap"), "{msg}");
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("a log with a gap opened"),
        }
    }
}
