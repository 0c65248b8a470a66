//! Watermarks kept beside the sled database, to catch silent rollback.
//!
//! sled recovers from a damaged file by dropping everything after the first
//! bad record, which would start a node with lost state and no error. So the
//! node also records, in `canon-raft.marks` next to the database, facts that
//! were already durable in sled: its identity and, per group, the highest
//! committed index and vote term. Opening checks the database against them;
//! a database that knows less than its marks is reported as corrupt.
//!
//! Only values written to sled before a completed flush are recorded, so a
//! crash can never leave marks ahead of the database. The file is rewritten
//! atomically, at most once per [`WRITE_INTERVAL`] while writes go on, and
//! once more when they pause for that long or the database closes, so the
//! marks trail the database by at most that interval of continuous writing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::ids::{GroupId, NodeId};

/// The file name of the marks.
pub(crate) const MARKS_FILE: &str = "canon-raft.marks";
/// How often at most the marks file is rewritten.
pub(crate) const WRITE_INTERVAL: Duration = Duration::from_secs(1);

/// What a group had durably at some point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GroupMark {
    pub committed: u64,
    pub vote_term: u64,
}

impl GroupMark {
    fn merge(&mut self, other: GroupMark) {
        self.committed = self.committed.max(other.committed);
        self.vote_term = self.vote_term.max(other.vote_term);
    }
}

/// The marks file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Marks {
    pub node_id: NodeId,
    pub shard_count: u32,
    pub groups: BTreeMap<GroupId, GroupMark>,
}

/// Reads the marks file of `dir`, if there is one.
pub(crate) fn read(dir: &Path) -> Result<Option<Marks>, String> {
    match super::whole_file::read(dir, MARKS_FILE).map_err(|e| e.to_string())? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| e.to_string()),
        None => Ok(None),
    }
}

/// Writes `marks` atomically (see [`super::whole_file::replace`]).
pub(crate) fn write(dir: &Path, marks: &Marks) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(marks).map_err(std::io::Error::other)?;
    super::whole_file::replace(dir, MARKS_FILE, &bytes)
}

/// The running node's book of marks.
#[derive(Debug)]
pub(crate) struct MarkBook {
    dir: PathBuf,
    /// Written to sled, not yet known durable.
    pending: Mutex<BTreeMap<GroupId, GroupMark>>,
    /// Durable in sled; `dirty` when not yet in the file.
    durable: Mutex<(Marks, bool, Instant)>,
}

impl MarkBook {
    pub(crate) fn new(dir: PathBuf, marks: Marks) -> Self {
        MarkBook {
            dir,
            pending: Mutex::new(BTreeMap::new()),
            durable: Mutex::new((marks, false, Instant::now())),
        }
    }

    /// What the file said (or later flushes proved) about `group`.
    pub(crate) fn durable_mark(&self, group: GroupId) -> Option<GroupMark> {
        let d = self.durable.lock().unwrap_or_else(|e| e.into_inner());
        d.0.groups.get(&group).copied()
    }

    /// Records that `mark` was just written to sled for `group`.
    pub(crate) fn note(&self, group: GroupId, mark: GroupMark) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.entry(group).or_default().merge(mark);
    }

    /// Takes what was written so far; call right before a flush starts.
    pub(crate) fn take_pending(&self) -> BTreeMap<GroupId, GroupMark> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// `flushed` is now durable; rewrites the file when due. A failed write
    /// only delays the marks (they are a check, not the data).
    pub(crate) fn flushed(&self, flushed: BTreeMap<GroupId, GroupMark>) {
        let mut d = self.durable.lock().unwrap_or_else(|e| e.into_inner());
        Self::merge_durable(&mut d, flushed);
        if d.2.elapsed() >= WRITE_INTERVAL {
            self.write_dirty(&mut d);
        }
    }

    /// `flushed` is now durable; the file is left for the flusher thread to
    /// write (a flush on a Raft worker must not wait on it).
    pub(crate) fn note_flushed(&self, flushed: BTreeMap<GroupId, GroupMark>) {
        let mut d = self.durable.lock().unwrap_or_else(|e| e.into_inner());
        Self::merge_durable(&mut d, flushed);
    }

    fn merge_durable(d: &mut (Marks, bool, Instant), flushed: BTreeMap<GroupId, GroupMark>) {
        for (g, m) in flushed {
            let cur = d.0.groups.entry(g).or_default();
            let before = *cur;
            cur.merge(m);
            if *cur != before {
                d.1 = true;
            }
        }
    }

    /// Writes what flushes proved since the last write, if anything, now:
    /// when writes have paused (the last burst's marks would otherwise
    /// wait for the next flush) and when the database closes.
    pub(crate) fn write_pending(&self) {
        let mut d = self.durable.lock().unwrap_or_else(|e| e.into_inner());
        self.write_dirty(&mut d);
    }

    fn write_dirty(&self, d: &mut (Marks, bool, Instant)) {
        if !d.1 {
            return;
        }
        match write(&self.dir, &d.0) {
            Ok(()) => {
                d.1 = false;
                d.2 = Instant::now();
            }
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot write marks")
            }
        }
    }
}
