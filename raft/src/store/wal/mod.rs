//! The node's write-ahead log of Raft log entries, for every group of the
//! database at once (decision 0023).
//!
//! Why not sled: each flush of a sled tree cost three device waits (sled
//! seals and writes its buffer, we fdatasync its file, and since that file
//! grows at every flush ext4 writes the inode inside the fdatasync). Here
//! an append is one `pwrite` into a preallocated segment (page cache, no
//! wait) and the flusher's one `fdatasync` per dirty segment makes a whole
//! batch of appends, of every group, durable; a segment never grows, so
//! that fdatasync writes no metadata.
//!
//! Records ([`record`]) sit one after another in segment files
//! `<dir>/<seq:016x>.wal` of [`SEGMENT_BYTES`] ([`segment`]), the next one
//! zero-filled ahead on a thread of its own ([`prealloc`]). Where each
//! group's entries are is kept in memory ([`index`]), rebuilt at open by
//! reading every segment ([`recover`]), each checked against the size it
//! was made with ([`sizes`], so a release may change [`SEGMENT_BYTES`]).
//! Votes, purge points and the rest stay in sled: they are written rarely.
//!
//! An append does not write: its records wait in memory ([`Inner::staged`],
//! read from there meanwhile), and the flusher's [`Wal::sync`] writes
//! every append since the last one with one `pwrite`, on its own thread,
//! right before its fdatasync. Why: the append is made by a group's Raft
//! core, which sends the entries to the followers only after it returns
//! (a `pwrite` there cost 25–35 µs on average under `perf trace` before
//! each AppendEntries), and the appends of many groups between two
//! flushes become one system call.
//! Staged records are also written before a committed id reaches sled
//! ([`Wal::write_staged`]): a process killed with records still staged
//! loses only what was never acknowledged, and never restarts with a
//! committed id beyond its log.
//!
//! Writes are made under one lock, in file order, so the written part of a
//! segment never has a hole: recovery can stop at the first zero or torn
//! record of the newest segment and lose only what was never acknowledged.
//! A segment is fsynced before the next one is written, so only the newest
//! may end torn. Whole segments are deleted, oldest first, once every
//! entry in them is at or below its group's durable purge point: the
//! Truncate records of a segment then never outlive the entries they cut.

mod index;
mod prealloc;
mod record;
mod recover;
mod segment;
mod sizes;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::ids::GroupId;
use crate::types::LogId;
pub(crate) use index::Loc;
use index::{GroupLog, SegmentHighs};
use prealloc::Prealloc;

/// The size of a segment file. Large enough that a new segment (a
/// rename, an fsync of the old one and of the directory) is rare: at
/// 10 MB/s of entries, one every six seconds.
pub(crate) const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// Segments held before the oldest is compacted ([`Wal::compact`]): the
/// slack lets busy groups purge their entries by their own snapshots, so
/// that mostly idle groups' few entries are what is copied.
pub(crate) const COMPACT_AT_SEGMENTS: usize = 4;

/// Staged records are written at once by the append that brings them to
/// this many bytes (a burst of large entries, a compaction's copies), so
/// what waits in memory stays small.
const STAGED_BYTES_MAX: usize = 1024 * 1024;

/// Compaction also waits until the segments held are at least this many
/// times what the live entries of every group fill: many busy groups may
/// together keep more live entries than [`COMPACT_AT_SEGMENTS`] segments
/// hold, and copying them forward at every flush would write the log over
/// and over (and hold the flusher meanwhile). Waiting for half the held
/// bytes to be dead bounds what compaction writes to what appends write.
const COMPACT_HELD_OVER_LIVE: u64 = 2;

/// Whether `held` segments of `segment_bytes` holding `live_bytes` of live
/// entries call for compaction.
fn compaction_due(held: usize, live_bytes: u64, segment_bytes: u64) -> bool {
    let live_segments = live_bytes.div_ceil(segment_bytes.max(1));
    let due_at = COMPACT_HELD_OVER_LIVE
        .saturating_mul(live_segments)
        .saturating_add(1)
        .max(COMPACT_AT_SEGMENTS as u64);
    held as u64 >= due_at
}

/// The WAL's directory inside the database directory.
pub(crate) const WAL_DIR: &str = "wal";

/// One segment in use.
#[derive(Debug)]
struct SegInfo {
    path: PathBuf,
    file: Arc<File>,
    bytes: u64,
    highs: SegmentHighs,
}

/// Everything behind the WAL's lock.
#[derive(Debug, Default)]
struct Inner {
    groups: HashMap<GroupId, GroupLog>,
    segments: BTreeMap<u64, SegInfo>,
    /// The segment appended to, and where its records end (the staged
    /// ones included).
    tail_seq: u64,
    tail_offset: u64,
    /// The records of `[tail_offset - staged.len(), tail_offset)` of the
    /// tail segment, appended but not yet written to its file.
    staged: Vec<u8>,
    /// Segments written since the last sync.
    dirty: BTreeMap<u64, Arc<File>>,
    /// A segment was renamed into place since the last sync.
    dir_dirty: bool,
    spare_asked: bool,
    /// A write or sync failed: what is on disk is unknown, so nothing more
    /// is written (the node stops rather than acknowledge a hole).
    failed: Option<String>,
}

impl Inner {
    /// Where the staged records begin in the tail segment.
    fn staged_from(&self) -> u64 {
        self.tail_offset - self.staged.len() as u64
    }

    /// The record at `loc` if it is still staged.
    fn staged_at(&self, loc: &Loc) -> Option<&[u8]> {
        if loc.seq != self.tail_seq {
            return None;
        }
        let at = usize::try_from(loc.offset.checked_sub(self.staged_from())?).ok()?;
        self.staged.get(at..at.checked_add(record_bytes(loc))?)
    }

    /// Runs `io` unless an earlier write or sync failed; a failure of its
    /// own stops the WAL too (what is on disk is unknown then).
    fn unless_failed<T>(
        &mut self,
        io: impl FnOnce(&mut Inner) -> std::io::Result<T>,
    ) -> std::io::Result<T> {
        if let Some(why) = &self.failed {
            return Err(io_err(format!("the WAL stopped after an error: {why}")));
        }
        let done = io(self);
        if let Err(e) = &done {
            self.failed = Some(e.to_string());
        }
        done
    }
}

/// What one append writes: a record's kind and payload, and the entry's
/// log id for an entry.
struct Rec<'a> {
    kind: u8,
    payload: &'a [u8],
    log_id: Option<LogId>,
}

/// The log of a database. Shared by every group.
pub(crate) struct Wal {
    dir: PathBuf,
    segment_bytes: u64,
    inner: Mutex<Inner>,
    prealloc: Prealloc,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Wal({})", self.dir.display())
    }
}

fn io_err(msg: String) -> std::io::Error {
    std::io::Error::other(msg)
}

impl Wal {
    /// Opens the WAL in `dir` (creating it), recovering what it holds.
    pub(crate) fn open(dir: &Path, segment_bytes: u64) -> Result<Wal, super::StoreError> {
        let inner = recover::recover(dir, segment_bytes)?;
        let prealloc =
            Prealloc::start(dir, segment_bytes).map_err(|source| super::StoreError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            segment_bytes,
            inner: Mutex::new(inner),
            prealloc,
        })
    }

    /// The WAL's directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Poisoned: a panic between two updates; `failed` stops writes
        // then only if it was set, which is the best left to do.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the entries (log id, encoded entry) of `group` to the page
    /// cache; durable after the next [`Wal::sync`].
    pub(crate) fn append(
        &self,
        group: GroupId,
        entries: &[(LogId, Vec<u8>)],
    ) -> std::io::Result<()> {
        let recs: Vec<Rec<'_>> = entries
            .iter()
            .map(|(id, bytes)| Rec {
                kind: record::KIND_ENTRY,
                payload: bytes,
                log_id: Some(*id),
            })
            .collect();
        self.write(group, &recs)
    }

    /// Cuts `group`'s log from `from` on (a record, so that recovery cuts
    /// it too); durable after the next [`Wal::sync`].
    pub(crate) fn truncate(&self, group: GroupId, from: u64) -> std::io::Result<()> {
        let payload = from.to_le_bytes();
        let rec = Rec {
            kind: record::KIND_TRUNCATE,
            payload: &payload,
            log_id: None,
        };
        self.write(group, &[rec])
    }

    fn write(&self, group: GroupId, recs: &[Rec<'_>]) -> std::io::Result<()> {
        self.lock()
            .unless_failed(|inner| self.write_locked(inner, group, recs))
    }

    /// Encodes the records into the staged bytes (a new segment when the
    /// current is full), then notes them in the index.
    fn write_locked(
        &self,
        inner: &mut Inner,
        group: GroupId,
        recs: &[Rec<'_>],
    ) -> std::io::Result<()> {
        let mut locs = Vec::with_capacity(recs.len());
        for rec in recs {
            let need = (record::HEADER_BYTES + rec.payload.len()) as u64;
            if inner.tail_offset + need > self.tail_bytes(inner) {
                self.rotate(inner, need)?;
            }
            let offset = inner.tail_offset;
            let staged_before = inner.staged.len();
            record::encode(group, rec.kind, rec.payload, &mut inner.staged)
                .ok_or_else(|| io_err(format!("a record of {} bytes", rec.payload.len())))?;
            inner.tail_offset += (inner.staged.len() - staged_before) as u64;
            if let Some(log_id) = rec.log_id {
                let payload_bytes = u32::try_from(rec.payload.len()).unwrap_or(u32::MAX);
                locs.push(Loc {
                    seq: inner.tail_seq,
                    offset,
                    payload_bytes,
                    log_id,
                });
            } else if let Some(from) = record::truncate_from(rec.payload) {
                inner.groups.entry(group).or_default().truncate(from);
            }
        }
        if inner.staged.len() >= STAGED_BYTES_MAX {
            self.write_staged_locked(inner)?;
        }
        for loc in locs {
            if let Some(seg) = inner.segments.get_mut(&loc.seq) {
                index::note_high(&mut seg.highs, group, loc.log_id.index);
            }
            inner.groups.entry(group).or_default().put(loc);
        }
        if !inner.spare_asked && inner.tail_offset > self.tail_bytes(inner) / 2 {
            self.prealloc.ask();
            inner.spare_asked = true;
        }
        Ok(())
    }

    fn tail_bytes(&self, inner: &Inner) -> u64 {
        inner.segments.get(&inner.tail_seq).map_or(0, |s| s.bytes)
    }

    /// Writes the staged records to the tail segment's file (the page
    /// cache): what a process may lose if it is killed is then only what
    /// the machine's crash would. Called by [`Wal::sync`], and before a
    /// committed id is written to sled.
    pub(crate) fn write_staged(&self) -> std::io::Result<()> {
        self.lock()
            .unless_failed(|inner| self.write_staged_locked(inner))
    }

    fn write_staged_locked(&self, inner: &mut Inner) -> std::io::Result<()> {
        if inner.staged.is_empty() {
            return Ok(());
        }
        let seq = inner.tail_seq;
        let start = inner.staged_from();
        let seg = inner
            .segments
            .get(&seq)
            .ok_or_else(|| io_err(format!("no segment {seq}")))?;
        segment::write_at(&seg.file, &inner.staged, start)
            .map_err(|e| io_err(format!("write to {}: {e}", seg.path.display())))?;
        inner.dirty.insert(seq, seg.file.clone());
        inner.staged.clear();
        Ok(())
    }

    /// Moves on to a new segment holding at least `need` bytes. The old
    /// one is fsynced first: only the newest segment may end torn.
    fn rotate(&self, inner: &mut Inner, need: u64) -> std::io::Result<()> {
        self.write_staged_locked(inner)?;
        let old = inner.tail_seq;
        if let Some(seg) = inner.segments.get(&old) {
            seg.file
                .sync_data()
                .map_err(|e| io_err(format!("fdatasync {}: {e}", seg.path.display())))?;
        }
        inner.dirty.remove(&old);
        let seq = old + 1;
        let spare = if need <= self.segment_bytes {
            self.prealloc.take()
        } else {
            None
        };
        let (tmp, file, bytes) = match spare {
            Some(s) => (s.path, s.file, self.segment_bytes),
            None => {
                // No spare ready (or a record larger than a segment): made
                // here, the append waiting for it.
                let bytes = need.max(self.segment_bytes);
                let tmp = self.dir.join(segment::spare_name());
                let file = segment::zero_filled(&tmp, bytes, segment::Fill::AtOnce)
                    .map_err(|e| io_err(format!("create {}: {e}", tmp.display())))?;
                (tmp, file, bytes)
            }
        };
        let path = segment::take_spare(&self.dir, &tmp, seq)
            .map_err(|e| io_err(format!("rename {}: {e}", tmp.display())))?;
        let file = Arc::new(file);
        inner.segments.insert(
            seq,
            SegInfo {
                path,
                file,
                bytes,
                highs: SegmentHighs::new(),
            },
        );
        inner.tail_seq = seq;
        inner.tail_offset = 0;
        inner.dir_dirty = true;
        inner.spare_asked = false;
        Ok(())
    }

    /// Makes everything appended so far durable: the staged records
    /// written, then an fdatasync of each segment written since the last
    /// sync (and of the directory if a segment was added).
    pub(crate) fn sync(&self) -> std::io::Result<()> {
        let (files, dir_dirty) = {
            let mut inner = self.lock();
            inner.unless_failed(|inner| self.write_staged_locked(inner))?;
            let files: Vec<Arc<File>> = std::mem::take(&mut inner.dirty).into_values().collect();
            (files, std::mem::take(&mut inner.dir_dirty))
        };
        let synced = (|| {
            if dir_dirty {
                segment::sync_dir(&self.dir)?;
            }
            for f in &files {
                f.sync_data()?;
            }
            Ok(())
        })();
        synced.map_err(|e: std::io::Error| {
            // After a failed fsync Linux may have dropped the dirty pages:
            // what is on disk is unknown, so stop.
            let msg = format!("fdatasync in {}: {e}", self.dir.display());
            self.lock().failed = Some(msg.clone());
            io_err(msg)
        })
    }

    /// The last entry of `group`.
    pub(crate) fn last(&self, group: GroupId) -> Option<LogId> {
        self.lock().groups.get(&group).and_then(GroupLog::last)
    }

    /// The log ids of `group`'s entries, in index order (for the checks
    /// at open).
    pub(crate) fn log_ids(&self, group: GroupId) -> Vec<LogId> {
        let inner = self.lock();
        inner
            .groups
            .get(&group)
            .map(|g| g.entries.values().map(|l| l.log_id).collect())
            .unwrap_or_default()
    }

    /// Where the entries of `range` of `group` are.
    pub(crate) fn locations<RB: RangeBounds<u64>>(
        &self,
        group: GroupId,
        range: RB,
    ) -> Vec<(Loc, Arc<File>)> {
        let inner = self.lock();
        let Some(g) = inner.groups.get(&group) else {
            return Vec::new();
        };
        g.entries
            .range(range)
            .filter_map(|(_, loc)| Some((*loc, inner.segments.get(&loc.seq)?.file.clone())))
            .collect()
    }

    /// The encoded entry at `loc` (checked: an entry record of `group`),
    /// from the staged records while it is one of them.
    pub(crate) fn read(&self, group: GroupId, loc: &Loc, file: &File) -> std::io::Result<Vec<u8>> {
        // Copied out so that the file is read without the lock: a record
        // not staged now is written, and stays so (only the newest
        // records are ever staged).
        let staged = self.lock().staged_at(loc).map(<[u8]>::to_vec);
        entry_from(group, loc, file, staged)
    }

    /// Forgets `group`'s entries up to `through` (its purge point, just
    /// written to sled; durable at the next sled flush).
    pub(crate) fn purge(&self, group: GroupId, through: u64) {
        let mut inner = self.lock();
        let g = inner.groups.entry(group).or_default();
        g.purge(through);
        g.purge_noted = g.purge_noted.max(Some(through));
    }

    /// Forgets `group`'s entries up to its purge point as read from sled
    /// at open (durable).
    pub(crate) fn opened(&self, group: GroupId, purged: Option<u64>) {
        if let Some(p) = purged {
            self.lock().groups.entry(group).or_default().purge(p);
        }
    }

    /// Purge points noted since the last call; call right before a sled
    /// flush, and [`Wal::purges_failed`] if it fails.
    pub(crate) fn take_noted_purges(&self) -> Vec<(GroupId, u64)> {
        let mut inner = self.lock();
        inner
            .groups
            .iter_mut()
            .filter_map(|(id, g)| Some((*id, g.purge_noted.take()?)))
            .collect()
    }

    /// The sled flush after [`Wal::take_noted_purges`] failed: the purge
    /// points are not known durable.
    pub(crate) fn purges_failed(&self, purges: &[(GroupId, u64)]) {
        let mut inner = self.lock();
        for (id, p) in purges {
            let g = inner.groups.entry(*id).or_default();
            g.purge_noted = g.purge_noted.max(Some(*p));
        }
    }

    /// Moves the live entries of the groups that keep the oldest segment
    /// alive to the tail, once [`COMPACT_AT_SEGMENTS`] segments are held:
    /// deletion is oldest first, so a group that purges seldom (an idle
    /// one, whose few entries never reach a snapshot) would otherwise keep
    /// every later segment too. Copies are whole group logs, in index
    /// order, so the group's records still end with its newest state; the
    /// old segment goes at a flush after the copies are durable
    /// ([`Wal::delete_dead`] after [`Wal::sync`]). Returns the entries
    /// copied.
    pub(crate) fn compact(&self) -> std::io::Result<usize> {
        let mut inner = self.lock();
        let live_bytes: u64 = inner.groups.values().map(GroupLog::live_bytes).sum();
        if !compaction_due(inner.segments.len(), live_bytes, self.segment_bytes) {
            return Ok(0);
        }
        let Some(&oldest) = inner.segments.keys().next() else {
            return Ok(0);
        };
        let blockers: Vec<GroupId> = inner
            .groups
            .iter()
            .filter(|(_, g)| g.oldest_seq() == Some(oldest))
            .map(|(id, _)| *id)
            .collect();
        let mut copied = 0;
        for group in blockers {
            copied += self.copy_forward(&mut inner, group)?;
        }
        Ok(copied)
    }

    /// Writes `group`'s live entries again at the tail.
    fn copy_forward(&self, inner: &mut Inner, group: GroupId) -> std::io::Result<usize> {
        let Some(g) = inner.groups.get(&group) else {
            return Ok(0);
        };
        let bytes = g.live_bytes();
        let mut entries = Vec::with_capacity(g.entries.len());
        for loc in g.entries.values() {
            let file = inner
                .segments
                .get(&loc.seq)
                .map(|s| s.file.clone())
                .ok_or_else(|| io_err(format!("no segment {}", loc.seq)))?;
            let staged = inner.staged_at(loc).map(<[u8]>::to_vec);
            entries.push((loc.log_id, entry_from(group, loc, &file, staged)?));
        }
        let recs: Vec<Rec<'_>> = entries
            .iter()
            .map(|(id, payload)| Rec {
                kind: record::KIND_ENTRY,
                payload,
                log_id: Some(*id),
            })
            .collect();
        inner.unless_failed(|inner| self.write_locked(inner, group, &recs))?;
        tracing::debug!(
            group,
            entries = entries.len(),
            bytes,
            "WAL entries moved forward"
        );
        Ok(entries.len())
    }

    /// Deletes the segments that hold nothing live, oldest first, up to
    /// the first one still needed. Call after a [`Wal::sync`] (and a sled
    /// flush if purge points were taken since): what replaced their
    /// entries is durable then.
    pub(crate) fn delete_dead(&self) -> std::io::Result<usize> {
        let mut inner = self.lock();
        let mut deleted = 0;
        while let Some((&seq, seg)) = inner.segments.first_key_value() {
            if seq == inner.tail_seq || !index::is_dead(seq, &seg.highs, &inner.groups) {
                break;
            }
            std::fs::remove_file(&seg.path)
                .map_err(|e| io_err(format!("remove {}: {e}", seg.path.display())))?;
            inner.segments.remove(&seq);
            inner.dirty.remove(&seq);
            deleted += 1;
        }
        Ok(deleted)
    }

    /// The segments' sequence numbers (for tests and the report).
    #[cfg(test)]
    pub(crate) fn segment_seqs(&self) -> Vec<u64> {
        self.lock().segments.keys().copied().collect()
    }
}

impl Drop for Wal {
    /// A WAL closed with records still staged writes them (not durable:
    /// as an append that was never flushed was before staging).
    fn drop(&mut self) {
        let mut inner = self.lock();
        if inner.failed.is_some() {
            return;
        }
        if let Err(error) = inner.unless_failed(|inner| self.write_staged_locked(inner)) {
            tracing::warn!(%error, dir = %self.dir.display(), "staged WAL records not written at close");
        }
    }
}

/// The bytes of the record at `loc`: its header and payload.
fn record_bytes(loc: &Loc) -> usize {
    record::HEADER_BYTES + loc.payload_bytes as usize
}

/// The entry's encoding from the record at `loc`: the `staged` copy of it,
/// or else read from `file` (checked: an entry record of `group`).
fn entry_from(
    group: GroupId,
    loc: &Loc,
    file: &File,
    staged: Option<Vec<u8>>,
) -> std::io::Result<Vec<u8>> {
    let mut buf = match staged {
        Some(b) => b,
        None => segment::read_at(file, loc.offset, record_bytes(loc))?,
    };
    match record::parse(&buf) {
        record::Parsed::Record {
            group: g,
            kind: record::KIND_ENTRY,
            ..
        } if g == group => {
            buf.drain(..record::HEADER_BYTES);
            Ok(buf)
        }
        other => Err(io_err(format!(
            "segment {} offset {}: not the entry record of index {}: {other:?}",
            segment::name(loc.seq),
            loc.offset,
            loc.log_id.index
        ))),
    }
}

#[cfg(test)]
mod tests;
