//! Retiring a replaced snapshot file without stalling the disk (used by
//! `store::snap_files`; a module of its own so that `snapshot_data` can hold
//! a reader's mark without depending on the store).
//!
//! A large group's snapshot file holds gigabytes. Renaming a new one over
//! it frees the old one's blocks at once, inside the rename (or inside the
//! `close` of the last reader still sending it, on a Raft thread). Measured
//! on this project's machines (ext4): renaming a new 1.5 GB file over an
//! old one took 316–406 ms, and a small file's `fdatasync` meanwhile (what
//! the log does for every write) took up to 41–59 ms, six or seven times
//! over 20 ms within a second. So the old file is given a second name
//! (a temporary one, which opening the group removes should the process
//! die first) before the rename, and once nobody reads it any more a
//! low-priority thread shortens it [`RELEASE_STEP`] at a time, pausing
//! between steps, and then removes it: the same 1.5 GB released so kept
//! every `fdatasync` under 18 ms.
//!
//! Who reads a snapshot file holds a [`ReaderMark`] of its generation
//! ([`Readers`]): a file is shortened only when no mark of it is left, so
//! a snapshot being sent to a follower is never cut under the sender. A
//! reader that holds on past [`READERS_WAIT_MAX`] keeps the file whole:
//! its name is removed and the blocks are freed when that reader closes
//! it, as without this module.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How much a retired snapshot is shortened at a time.
const RELEASE_STEP: u64 = 64 << 20;

/// The pause between two steps, in which the log's fsyncs go first.
const RELEASE_PAUSE: Duration = Duration::from_millis(10);

/// How often a retiring file's readers are looked at.
const READERS_POLL: Duration = Duration::from_millis(100);

/// How long a retiring file waits for its readers (a snapshot sent to a
/// slow follower) before it is only unnamed.
const READERS_WAIT_MAX: Duration = Duration::from_secs(600);

const _: () = assert!(READERS_POLL.as_millis() < READERS_WAIT_MAX.as_millis());

/// The readers of one snapshot file: each holds a [`ReaderMark`].
#[derive(Debug, Default)]
pub(crate) struct Readers(Arc<()>);

impl Readers {
    /// A mark for a new reader of this file.
    pub(crate) fn mark(&self) -> ReaderMark {
        ReaderMark {
            _held: self.0.clone(),
        }
    }

    /// Whether any reader still holds its mark.
    fn any(&self) -> bool {
        Arc::strong_count(&self.0) > 1
    }
}

/// Held by whoever reads a snapshot file, until they close it.
#[derive(Debug, Clone)]
pub struct ReaderMark {
    _held: Arc<()>,
}

/// A replaced snapshot file under its second name, to be released.
#[derive(Debug)]
pub(crate) struct Retiring {
    path: PathBuf,
    readers: Readers,
}

/// Gives `current` (read by `readers`) the second name `retired`, so that
/// replacing it frees nothing yet. None if there is no current file, or if
/// the link cannot be made (the rename then frees it as before).
pub(crate) fn set_aside(current: &Path, retired: PathBuf, readers: Readers) -> Option<Retiring> {
    match std::fs::hard_link(current, &retired) {
        Ok(()) => Some(Retiring {
            path: retired,
            readers,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            tracing::debug!(error = %e, file = %current.display(),
                "the replaced snapshot is freed at once");
            None
        }
    }
}

/// Releases `path`, a snapshot file that never became (or is no longer)
/// anyone's current one — a built snapshot a newer one beat, a received
/// one never installed — like a replaced one: once no mark of `readers` is
/// held, step by step on a low-priority thread, then removed. Removing it
/// at once would free its blocks inside the `unlink` (or the last reader's
/// `close`), on whichever thread that is.
pub(crate) fn retire(path: PathBuf, readers: Readers) {
    Retiring { path, readers }.release_in_background();
}

impl Retiring {
    /// Releases the file on a low-priority thread of its own (in place if
    /// no thread can start).
    pub(crate) fn release_in_background(self) {
        let spawned = std::thread::Builder::new()
            .name("canon-snap-retire".into())
            .spawn(move || {
                if let Err(e) = crate::snap_io::lower_this_threads_priority() {
                    tracing::debug!(error = %e, "retiring a snapshot at normal priority");
                }
                self.release();
            });
        if let Err(e) = spawned {
            tracing::debug!(error = %e, "no thread to retire a snapshot");
        }
    }

    /// The replacement did not happen: the file keeps its own name, and
    /// the second one goes.
    pub(crate) fn abandon(self) {
        // Best effort: a leftover is removed at the next open anyway.
        let _ = std::fs::remove_file(&self.path);
    }

    /// Waits for the readers, shortens the file step by step, removes it.
    fn release(self) {
        let since = Instant::now();
        while self.readers.any() && since.elapsed() < READERS_WAIT_MAX {
            std::thread::sleep(READERS_POLL);
        }
        if !self.readers.any() {
            if let Err(e) = shorten_in_steps(&self.path) {
                tracing::debug!(error = %e, file = %self.path.display(),
                    "a retired snapshot removed whole");
            }
        }
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::debug!(error = %e, file = %self.path.display(),
                "a retired snapshot is left for the next open");
        }
    }
}

/// Shortens the file at `path` to nothing, [`RELEASE_STEP`] at a time.
fn shorten_in_steps(path: &Path) -> std::io::Result<()> {
    let file = OpenOptions::new().write(true).open(path)?;
    let mut len = file.metadata()?.len();
    while len > 0 {
        len = len.saturating_sub(RELEASE_STEP);
        file.set_len(len)?;
        std::thread::sleep(RELEASE_PAUSE);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn wait_gone(path: &Path) -> bool {
        let since = Instant::now();
        while path.exists() {
            if since.elapsed() > Duration::from_secs(10) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// The replaced file's blocks stay while a reader reads it: the reader
    /// gets every byte of the old snapshot after the new one took its
    /// place, and the second name goes once the reader is done.
    #[test]
    fn a_reader_of_the_replaced_file_reads_it_whole_then_it_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let current = dir.path().join("g1.snap");
        let old: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
        std::fs::write(&current, &old).unwrap();
        let readers = Readers::default();
        let mark = readers.mark();
        let mut reading = std::fs::File::open(&current).unwrap();

        let retired = dir.path().join("g1.snap.retired.tmp");
        let retiring = set_aside(&current, retired.clone(), readers).expect("set aside");
        let new = dir.path().join("g1.snap.build.tmp");
        std::fs::write(&new, b"new").unwrap();
        std::fs::rename(&new, &current).unwrap();
        retiring.release_in_background();

        std::thread::sleep(READERS_POLL * 3);
        assert!(retired.exists(), "released while read");
        let mut got = Vec::new();
        reading.read_to_end(&mut got).unwrap();
        assert_eq!(got, old, "the reader saw the old snapshot whole");
        drop((reading, mark));
        assert!(wait_gone(&retired), "released once nobody reads it");
        assert_eq!(std::fs::read(&current).unwrap(), b"new");
    }

    /// A file that never became current is kept while its reader reads
    /// it and released after.
    #[test]
    fn a_file_retired_while_read_goes_once_its_reader_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let built = dir.path().join("g1.snap.build.tmp");
        std::fs::write(&built, vec![7u8; 100_000]).unwrap();
        let readers = Readers::default();
        let mark = readers.mark();
        retire(built.clone(), readers);
        std::thread::sleep(READERS_POLL * 3);
        assert_eq!(
            std::fs::read(&built).unwrap().len(),
            100_000,
            "cut while read"
        );
        drop(mark);
        assert!(wait_gone(&built), "released once nobody reads it");
    }

    /// No current file: nothing to set aside.
    #[test]
    fn nothing_is_set_aside_without_a_current_file() {
        let dir = tempfile::tempdir().unwrap();
        let current = dir.path().join("g1.snap");
        let retired = dir.path().join("g1.snap.retired.tmp");
        assert!(set_aside(&current, retired.clone(), Readers::default()).is_none());
        assert!(!retired.exists());
    }

    /// A file of several steps is shortened to nothing and removed.
    #[test]
    fn a_large_file_is_shortened_in_steps_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(RELEASE_STEP * 2 + 5).unwrap();
        drop(file);
        shorten_in_steps(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        let retiring = Retiring {
            path: path.clone(),
            readers: Readers::default(),
        };
        retiring.release();
        assert!(!path.exists());
    }
}
