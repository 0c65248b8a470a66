//! How snapshot work keeps out of the way of the Raft log's writes.
//!
//! Building a large group's snapshot (encoding it, gigabytes) and
//! installing one (decoding it) take seconds of CPU, and writing it leaves
//! gigabytes of dirty pages. On a small machine both delayed the writes of
//! every group: the runtime's threads waited for a core behind the
//! snapshot thread, and the log's fsync queued behind the snapshot's pages.
//! So:
//!
//! - [`on_low_priority_thread`] runs the work on a thread of its own whose
//!   nice value is raised by [`NICE_RAISE`] (Linux; elsewhere the thread
//!   keeps its priority, as a nice value there is per process).
//! - [`StepSyncWriter`] writes a file flushing it to disk as it goes, every
//!   [`SYNC_STEP`] bytes, so at most two steps are ever dirty and the
//!   final fsync is short; [`FlushAsItGrows`] does the same for a file
//!   written by someone else (a received snapshot, chunk by chunk), and
//!   [`sync_in_steps`] for what is left of it before its fsync.

use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How much a snapshot thread's nice value is raised above its caller's
/// (clamped to 19, the lowest priority).
pub(crate) const NICE_RAISE: i32 = 10;

/// How many bytes are written between two flushes to disk.
pub(crate) const SYNC_STEP: u64 = 8 << 20;

/// Runs `f` on a new thread with a lower CPU priority and waits for it.
///
/// A thread of its own, not a thread of tokio's blocking pool with its
/// priority restored afterwards: an unprivileged thread may raise its
/// nice value but not lower it again (`RLIMIT_NICE` is 0 by default), so a
/// pool thread would stay slow for whatever it runs next. A snapshot job is
/// rare and long; a thread's start costs microseconds. The caller's thread
/// (a blocking-pool thread) waits, so a runtime shutting down still waits
/// for the job as before. Errors if `f` panicked or no thread could start.
pub(crate) fn on_low_priority_thread<T: Send>(
    what: &str,
    f: impl FnOnce() -> T + Send,
) -> Result<T, String> {
    std::thread::scope(|s| {
        let job = std::thread::Builder::new()
            .name("canon-snapshot".into())
            .spawn_scoped(s, || {
                if let Err(e) = lower_this_threads_priority() {
                    tracing::debug!(error = %e, "{what}: its thread keeps its priority");
                }
                f()
            })
            .map_err(|e| format!("{what}: no thread: {e}"))?;
        job.join().map_err(|_| format!("{what} panicked"))
    })
}

/// Raises the calling thread's nice value by [`NICE_RAISE`].
#[cfg(target_os = "linux")]
pub(crate) fn lower_this_threads_priority() -> io::Result<()> {
    // SAFETY: gettid takes no arguments and cannot fail.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as libc::id_t;
    // SAFETY: plain system calls on the calling thread, no memory passed.
    // getpriority's -1 is also a valid nice value; it cannot fail for the
    // calling thread itself, so it is taken as the value.
    let now = unsafe { libc::getpriority(libc::PRIO_PROCESS, tid) };
    let target = now.saturating_add(NICE_RAISE).min(19);
    // SAFETY: as above.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, target) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn lower_this_threads_priority() -> io::Result<()> {
    Ok(())
}

/// The calling thread's nice value (Linux; 0 elsewhere).
#[cfg(all(test, target_os = "linux"))]
fn this_threads_nice() -> i32 {
    // SAFETY: as in `lower_this_threads_priority`.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::getpriority(libc::PRIO_PROCESS, tid)
    }
}

/// A file being written, flushed to disk every [`SYNC_STEP`] bytes: each
/// step's writeback is started when it is complete and waited for one step
/// later, so at most two steps are dirty at a time.
pub(crate) struct StepSyncWriter {
    file: File,
    written: u64,
    /// Bytes before this offset are on disk (as far as data goes; the
    /// caller's final fsync covers the metadata).
    synced: u64,
    /// Writeback has been started up to here.
    started: u64,
}

impl StepSyncWriter {
    pub(crate) fn new(file: File) -> Self {
        StepSyncWriter {
            file,
            written: 0,
            synced: 0,
            started: 0,
        }
    }

    /// Bytes known flushed to disk so far.
    #[cfg(test)]
    fn synced(&self) -> u64 {
        self.synced
    }

    /// The file, for its final fsync.
    pub(crate) fn into_inner(self) -> File {
        self.file
    }

    /// Waits for the step before the one just completed, then starts the
    /// writeback of the one just completed.
    fn step(&mut self) -> io::Result<()> {
        if self.started > self.synced {
            wait_written(&self.file, self.synced, self.started - self.synced)?;
            self.synced = self.started;
        }
        start_writeback(&self.file, self.started, self.written - self.started)?;
        self.started = self.written;
        Ok(())
    }
}

impl Write for StepSyncWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.started >= SYNC_STEP {
            self.step()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Flushes a file that is written elsewhere (a snapshot received chunk by
/// chunk through openraft) to disk as it grows, step by step, on a
/// low-priority thread of its own, until dropped or the file is removed.
#[derive(Debug)]
pub(crate) struct FlushAsItGrows {
    stop: Arc<AtomicBool>,
    /// Bytes flushed so far.
    flushed: Arc<AtomicU64>,
}

/// How often the flusher looks at the file's size.
const FLUSH_POLL: Duration = Duration::from_millis(50);

impl FlushAsItGrows {
    /// Starts flushing `file` (best effort: without a thread, the file is
    /// flushed at its install as before).
    pub(crate) fn start(file: File) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flushed = Arc::new(AtomicU64::new(0));
        let (stop2, flushed2) = (stop.clone(), flushed.clone());
        let started = std::thread::Builder::new()
            .name("canon-snapshot-flush".into())
            .spawn(move || {
                // Best effort, as in `on_low_priority_thread`.
                let _ = lower_this_threads_priority();
                if let Err(e) = flush_while_growing(&file, &stop2, &flushed2) {
                    tracing::debug!(error = %e, "a received snapshot no longer flushed as it grows");
                }
            });
        if let Err(e) = started {
            tracing::debug!(error = %e, "a received snapshot flushed only at its install");
        }
        FlushAsItGrows { stop, flushed }
    }

    /// Bytes flushed so far.
    #[cfg(test)]
    fn flushed(&self) -> u64 {
        self.flushed.load(Ordering::Relaxed)
    }
}

impl Drop for FlushAsItGrows {
    fn drop(&mut self) {
        // Not joined: a step being flushed finishes on its own.
        self.stop.store(true, Ordering::Relaxed);
        let bytes = self.flushed.load(Ordering::Relaxed);
        tracing::debug!(bytes, "a received snapshot flushed as it came");
    }
}

fn flush_while_growing(file: &File, stop: &AtomicBool, flushed: &AtomicU64) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mut synced = 0;
    while !stop.load(Ordering::Relaxed) {
        let m = file.metadata()?;
        if m.nlink() == 0 {
            return Ok(());
        }
        while m.len().saturating_sub(synced) >= SYNC_STEP && !stop.load(Ordering::Relaxed) {
            wait_written(file, synced, SYNC_STEP)?;
            synced += SYNC_STEP;
            flushed.store(synced, Ordering::Relaxed);
        }
        std::thread::sleep(FLUSH_POLL);
    }
    Ok(())
}

/// Flushes the first `len` bytes of `file` to disk step by step, each
/// step's writeback waited for before the next is started, then fsyncs it:
/// the log's fsync waits for one step at most, never for the whole file.
pub(crate) fn sync_in_steps(file: &File, len: u64) -> io::Result<()> {
    let mut at = 0;
    while at < len {
        let n = SYNC_STEP.min(len - at);
        start_writeback(file, at, n)?;
        wait_written(file, at, n)?;
        at += n;
    }
    file.sync_all()
}

/// Starts writing `len` bytes at `offset` back to disk without waiting.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) -> io::Result<()> {
    sync_range(file, offset, len, libc::SYNC_FILE_RANGE_WRITE)
}

/// Waits until `len` bytes at `offset` are written back.
#[cfg(target_os = "linux")]
fn wait_written(file: &File, offset: u64, len: u64) -> io::Result<()> {
    sync_range(
        file,
        offset,
        len,
        libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER,
    )
}

#[cfg(target_os = "linux")]
fn sync_range(file: &File, offset: u64, len: u64, flags: libc::c_uint) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (
        libc::off64_t::try_from(offset),
        libc::off64_t::try_from(len),
    ) else {
        return Err(io::Error::other("file range beyond off64_t"));
    };
    // SAFETY: the descriptor is open for as long as `file` is borrowed; no
    // memory is passed.
    if unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, flags) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Elsewhere: nothing to start; waiting is an fdatasync.
#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) -> io::Result<()> {
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn wait_written(file: &File, _offset: u64, _len: u64) -> io::Result<()> {
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[cfg(target_os = "linux")]
    #[test]
    fn snapshot_work_runs_at_a_lower_priority_and_the_caller_keeps_its_own() {
        // Run under `nice -n 19` there is no lower priority: this test's
        // thread tries to come back up (it may, with CAP_SYS_NICE).
        if this_threads_nice() >= 19 - NICE_RAISE {
            // SAFETY: as in `lower_this_threads_priority`.
            unsafe {
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                libc::setpriority(libc::PRIO_PROCESS, tid, 0);
            }
        }
        let before = this_threads_nice();
        if before >= 19 {
            eprintln!("at nice 19 with no right to raise it: nothing to check");
            return;
        }
        let inside = on_low_priority_thread("test", this_threads_nice).expect("ran");
        assert_eq!(inside, (before + NICE_RAISE).min(19));
        assert!(inside > before, "{before} -> {inside}");
        assert_eq!(
            this_threads_nice(),
            before,
            "the caller's thread is unchanged"
        );
        // A second job starts from the caller's priority again, not lower.
        let again = on_low_priority_thread("test", this_threads_nice).expect("ran");
        assert_eq!(again, inside);
    }

    #[test]
    fn a_panicking_job_is_an_error_not_a_panic() {
        let out = on_low_priority_thread("test", || -> u32 { panic!("bad snapshot job") });
        assert!(out.is_err_and(|e| e.contains("panicked")));
    }

    #[test]
    fn a_step_synced_file_holds_every_byte_and_is_flushed_as_it_goes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("f");
        let mut w = StepSyncWriter::new(File::create(&path).expect("file"));
        // Odd-sized writes straddle the step boundaries.
        let block: Vec<u8> = (0..=250u8).cycle().take(1_000_003).collect();
        let mut expected = Vec::new();
        while (expected.len() as u64) < 4 * SYNC_STEP + 5 {
            w.write_all(&block).expect("write");
            expected.extend_from_slice(&block);
            // At most two steps (and the write that ended the second) are
            // not yet on disk.
            let unflushed = expected.len() as u64 - w.synced();
            assert!(
                unflushed <= 2 * SYNC_STEP + block.len() as u64,
                "{unflushed} of {} bytes not flushed while writing",
                expected.len()
            );
        }
        let file = w.into_inner();
        sync_in_steps(&file, expected.len() as u64).expect("synced");
        drop(file);
        let mut back = Vec::new();
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut back))
            .expect("read back");
        assert!(back == expected, "the file differs from what was written");
    }

    #[test]
    fn a_file_written_elsewhere_is_flushed_as_it_grows() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("f");
        let mut file = File::create(&path).expect("file");
        let flusher = FlushAsItGrows::start(file.try_clone().expect("clone"));
        let block = vec![7u8; 1 << 20];
        for _ in 0..3 * SYNC_STEP / (1 << 20) {
            file.write_all(&block).expect("write");
        }
        let started = std::time::Instant::now();
        while flusher.flushed() < 3 * SYNC_STEP && started.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            flusher.flushed(),
            3 * SYNC_STEP,
            "flushed while being written"
        );
    }
}
