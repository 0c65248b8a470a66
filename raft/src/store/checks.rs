//! What opening a group checks of its trees before Raft may use them:
//! vote and commit mark decode, an interrupted purge is finished, every
//! log entry decodes and sits gap-free after the purge point, the snapshot
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
        let last_log = t
            .log
            .last()
            .map_err(|e| self.sled_err(&t.log_name, e))?
            .and_then(|(k, _)| log::index_of_key(&k));
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
                    self.data_file().display()
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
