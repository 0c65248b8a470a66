//! Segment files: naming, creation (zero-filled, so that appends never
//! extend a file and an fdatasync never writes the inode) and positioned
//! I/O.
//!
//! A segment is made under a temporary name and renamed into place only
//! once whole and fsynced, so a `<seq>.wal` file is never cut short by a
//! crash during its zero fill. Zeros are written, not `fallocate`d: an
//! unwritten extent would need its metadata changed at its first write,
//! which is the inode write this log exists to avoid.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Suffix of a segment in use.
const SUFFIX: &str = ".wal";
/// Suffix of a zero-filled segment not yet in use.
pub(crate) const SPARE_SUFFIX: &str = ".spare";
/// Zeros written at a time.
const ZERO_CHUNK_BYTES: usize = 1024 * 1024;

/// A spare's file name, unique in this process: the spare-making thread
/// of a log just closed may still be writing its own spare when the log is
/// opened again (a node restarted in the same process), and the same name
/// would have two threads write, and one remove, the same file.
pub(crate) fn spare_name() -> String {
    static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}{SPARE_SUFFIX}", std::process::id())
}

/// The file name of segment `seq`.
pub(crate) fn name(seq: u64) -> String {
    format!("{seq:016x}{SUFFIX}")
}

/// The sequence number of a segment's file name.
fn seq_of(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(SUFFIX)?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// The segments of `dir`, oldest first; leftover spares are removed.
pub(crate) fn list(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for item in std::fs::read_dir(dir)? {
        let item = item?;
        let name = item.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(SPARE_SUFFIX) {
            // A spare-making thread of a log closed just before may remove
            // its own spare meanwhile: already gone is fine.
            match std::fs::remove_file(item.path()) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        } else if let Some(seq) = seq_of(&name) {
            out.push((seq, item.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// How a zero fill uses the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fill {
    /// As fast as it can: someone waits for it.
    AtOnce,
    /// Ahead of need: written back [`PACED_SYNC_BYTES`] at a time with a
    /// pause between, so that 64 MiB of dirty pages never queue at once in
    /// front of the log's own `fdatasync`s.
    Paced,
}

/// Bytes a paced fill writes between its syncs.
const PACED_SYNC_BYTES: u64 = 4 * 1024 * 1024;
/// The pause after each of a paced fill's syncs.
const PACED_PAUSE: std::time::Duration = std::time::Duration::from_millis(5);

const _: () = assert!(PACED_SYNC_BYTES.is_multiple_of(ZERO_CHUNK_BYTES as u64));

/// Creates a zero-filled, fsynced file of `bytes` at `path`.
pub(crate) fn zero_filled(path: &Path, bytes: u64, fill: Fill) -> std::io::Result<File> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    let zeros = vec![0u8; ZERO_CHUNK_BYTES];
    let mut left = bytes;
    while left > 0 {
        let n = usize::try_from(left).map_or(ZERO_CHUNK_BYTES, |l| l.min(ZERO_CHUNK_BYTES));
        f.write_all(&zeros[..n])?;
        left -= n as u64;
        let written = bytes - left;
        if fill == Fill::Paced && written.is_multiple_of(PACED_SYNC_BYTES) && left > 0 {
            f.sync_data()?;
            std::thread::sleep(PACED_PAUSE);
        }
    }
    f.sync_all()?;
    Ok(f)
}

/// Makes the spare at `spare` segment `seq` of `dir` (the rename is made
/// durable by the next directory sync).
pub(crate) fn take_spare(dir: &Path, spare: &Path, seq: u64) -> std::io::Result<PathBuf> {
    let path = dir.join(name(seq));
    std::fs::rename(spare, &path)?;
    Ok(path)
}

/// Makes the directory's entries (new and renamed segments) durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` at `offset` of `file`.
pub(crate) fn write_at(file: &File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    file.write_all_at(bytes, offset)
}

/// Reads `len` bytes at `offset` of `file`.
pub(crate) fn read_at(file: &File, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_as_sequence_numbers() {
        assert_eq!(seq_of(&name(0x1f)), Some(0x1f));
        assert_eq!(seq_of("1f.wal"), None);
        assert_eq!(seq_of(&format!("{}x", name(3))), None);
    }
}
