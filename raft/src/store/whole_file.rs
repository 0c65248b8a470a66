//! Small files a store keeps beside its data (the marks, the WAL's segment
//! sizes), each replaced whole so that a crash leaves the old one or the
//! new one, never a mix.

use std::io::Write;
use std::path::Path;

/// Replaces `dir/name` with `bytes`: a temporary file written and fsynced,
/// renamed over it, the directory fsynced.
pub(crate) fn replace(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

/// The bytes of `dir/name`; `None` if there is no such file.
pub(crate) fn read(dir: &Path, name: &str) -> std::io::Result<Option<Vec<u8>>> {
    match std::fs::read(dir.join(name)) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
