//! The bytes of a snapshot as openraft moves them ([`SnapshotData`]): an
//! open file in the node's data directory (a built snapshot being sent, or
//! a received one being written chunk by chunk), or a buffer in memory for
//! the simulations' in-memory disk. openraft's chunked sender and receiver
//! only read, write and seek through it, so a file-backed snapshot is never
//! loaded whole.

use std::io::{Cursor, SeekFrom};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};

use crate::snap_io::FlushAsItGrows;
use crate::snap_retire::ReaderMark;

/// A snapshot's bytes: a file or a buffer.
#[derive(Debug)]
pub enum SnapshotData {
    /// A file of the node's data directory (`path` names it in errors and
    /// is where a received snapshot is installed from).
    File {
        file: tokio::fs::File,
        path: PathBuf,
        /// Set for a file being received: removed if openraft drops it
        /// without installing it (it does when the node already has what
        /// it holds).
        unclaimed: Unclaimed,
        /// Set for a kept snapshot being read (to be sent): it is not
        /// released while this is held.
        reading: Option<ReaderMark>,
    },
    /// Bytes in memory (simulations).
    Memory(Cursor<Vec<u8>>),
}

/// A received snapshot file nobody has claimed yet: removed when dropped,
/// unless [`Unclaimed::claim`] took it. While it is being received it may
/// be flushed to disk as it grows ([`Unclaimed::flushed_as_it_grows`]).
#[derive(Debug, Default)]
pub struct Unclaimed {
    path: Option<PathBuf>,
    flusher: Option<FlushAsItGrows>,
}

impl Unclaimed {
    /// `path` is to be removed unless claimed.
    pub fn new(path: PathBuf) -> Self {
        Unclaimed {
            path: Some(path),
            flusher: None,
        }
    }

    /// Nothing to remove.
    pub fn none() -> Self {
        Unclaimed::default()
    }

    /// Flushes `file` (this one, opened again) to disk as it grows, until
    /// claimed or dropped.
    pub(crate) fn flushed_as_it_grows(mut self, file: std::fs::File) -> Self {
        self.flusher = Some(FlushAsItGrows::start(file));
        self
    }

    /// The caller takes charge of the file (and the flushing stops).
    pub fn claim(&mut self) {
        self.path = None;
        self.flusher = None;
    }
}

impl Drop for Unclaimed {
    fn drop(&mut self) {
        self.flusher = None;
        if let Some(path) = self.path.take() {
            // Not removed here: a large file's blocks would be freed on
            // this thread, maybe a Raft core's (leftovers are removed when
            // the group next opens, should the process end first).
            crate::snap_retire::retire(path, crate::snap_retire::Readers::default());
        }
    }
}

impl SnapshotData {
    /// The file behind it, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            SnapshotData::File { path, .. } => Some(path),
            SnapshotData::Memory(_) => None,
        }
    }
}

impl AsyncRead for SnapshotData {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            SnapshotData::File { file, .. } => Pin::new(file).poll_read(cx, buf),
            SnapshotData::Memory(c) => Pin::new(c).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for SnapshotData {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            SnapshotData::File { file, .. } => Pin::new(file).poll_write(cx, buf),
            SnapshotData::Memory(c) => Pin::new(c).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            SnapshotData::File { file, .. } => Pin::new(file).poll_flush(cx),
            SnapshotData::Memory(c) => Pin::new(c).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            SnapshotData::File { file, .. } => Pin::new(file).poll_shutdown(cx),
            SnapshotData::Memory(c) => Pin::new(c).poll_shutdown(cx),
        }
    }
}

impl AsyncSeek for SnapshotData {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> std::io::Result<()> {
        match self.get_mut() {
            SnapshotData::File { file, .. } => Pin::new(file).start_seek(position),
            SnapshotData::Memory(c) => Pin::new(c).start_seek(position),
        }
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<u64>> {
        match self.get_mut() {
            SnapshotData::File { file, .. } => Pin::new(file).poll_complete(cx),
            SnapshotData::Memory(c) => Pin::new(c).poll_complete(cx),
        }
    }
}
