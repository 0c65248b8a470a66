//! The size each segment was made with, kept beside the segments in
//! `segment-sizes`, so that a release that changes [`super::SEGMENT_BYTES`]
//! still opens a log written before it, and a segment cut short is still
//! found.
//!
//! Segments are made whole and never shrink, so a sealed segment shorter
//! than it was made is damage: records were lost from its end. Which size
//! that was is not in the segment: it was the size in force when the
//! segment was made. Each line of the file, `FIRST_SEQ BYTES`, says that
//! the segments from `FIRST_SEQ` on were made with at least `BYTES`, until
//! the next line. A log opened with a new size gets a line for the
//! segments it will make, before it makes any. A log from before the file
//! existed had only ever been made with [`LEGACY_SEGMENT_BYTES`].

use std::path::{Path, PathBuf};

use crate::store::whole_file;

/// The file's name in the WAL's directory.
pub(super) const FILE: &str = "segment-sizes";

/// The size of every segment of a log written before `segment-sizes`
/// existed: the only size any such release made.
pub(super) const LEGACY_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// Which size the segments of a log were made with, by sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SegmentSizes {
    /// `(first_seq, bytes)`, `first_seq` ascending, never empty.
    from: Vec<(u64, u64)>,
}

impl SegmentSizes {
    /// Segments from `first_seq` on made with `bytes`.
    pub(super) fn new(first_seq: u64, bytes: u64) -> SegmentSizes {
        SegmentSizes {
            from: vec![(first_seq, bytes)],
        }
    }

    /// The size segment `seq` was made with: the least it may hold.
    pub(super) fn made_with(&self, seq: u64) -> u64 {
        let mut bytes = self.from[0].1;
        for (first, b) in &self.from {
            if *first > seq {
                break;
            }
            bytes = *b;
        }
        bytes
    }

    /// Records that segments from `next_seq` on are made with `bytes`;
    /// whether that changed anything.
    pub(super) fn made_from(&mut self, next_seq: u64, bytes: u64) -> bool {
        if self.made_with(next_seq) == bytes {
            return false;
        }
        // Lines for segments never made (a size changed twice before any
        // was) say nothing.
        self.from.retain(|(first, _)| *first < next_seq);
        self.from.push((next_seq, bytes));
        true
    }

    /// Reads the file of `dir`; `None` when there is none (a log from
    /// before it existed).
    pub(super) fn load(dir: &Path) -> Result<Option<SegmentSizes>, String> {
        let bytes = whole_file::read(dir, FILE)
            .map_err(|e| format!("read {}: {e}", Self::path(dir).display()))?;
        let Some(bytes) = bytes else { return Ok(None) };
        let text = String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
        parse(&text).map(Some)
    }

    /// Writes the file of `dir` whole ([`whole_file::replace`]): a crash
    /// leaves the old one or the new one.
    pub(super) fn save(&self, dir: &Path) -> std::io::Result<()> {
        let text: String = self
            .from
            .iter()
            .map(|(first, bytes)| format!("{first} {bytes}\n"))
            .collect();
        whole_file::replace(dir, FILE, text.as_bytes())
    }

    pub(super) fn path(dir: &Path) -> PathBuf {
        dir.join(FILE)
    }
}

/// The lines of the file: each `FIRST_SEQ BYTES`, `FIRST_SEQ` rising.
fn parse(text: &str) -> Result<SegmentSizes, String> {
    let mut from: Vec<(u64, u64)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let bad = |why: &str| format!("line {}: {why}: {line:?}", i + 1);
        let mut words = line.split_whitespace();
        let (Some(first), Some(bytes), None) = (words.next(), words.next(), words.next()) else {
            return Err(bad("not `FIRST_SEQ BYTES`"));
        };
        let first: u64 = first.parse().map_err(|_| bad("not a sequence number"))?;
        let bytes: u64 = bytes.parse().map_err(|_| bad("not a size"))?;
        if from.last().is_some_and(|(prev, _)| *prev >= first) {
            return Err(bad("sequence numbers must rise"));
        }
        from.push((first, bytes));
    }
    if from.is_empty() {
        return Err("no line".into());
    }
    Ok(SegmentSizes { from })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_segment_has_the_size_of_the_line_before_it() {
        let mut s = SegmentSizes::new(3, 512);
        assert!(s.made_from(7, 1024));
        assert!(!s.made_from(9, 1024), "no news: no line");
        assert_eq!(s.made_with(2), 512, "before the first line: the first");
        assert_eq!(s.made_with(3), 512);
        assert_eq!(s.made_with(6), 512);
        assert_eq!(s.made_with(7), 1024);
        assert_eq!(s.made_with(100), 1024);
        // A size changed again before segment 7 was made replaces it.
        assert!(s.made_from(7, 256));
        assert_eq!(s.from, vec![(3, 512), (7, 256)]);
    }

    #[test]
    fn the_file_round_trips_and_bad_lines_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SegmentSizes::new(1, 512);
        s.made_from(4, 2048);
        s.save(dir.path()).unwrap();
        assert_eq!(SegmentSizes::load(dir.path()).unwrap(), Some(s));
        for (text, says) in [
            ("", "no line"),
            ("1 512\n1 1024\n", "line 2: sequence numbers must rise"),
            ("1\n", "line 1: not `FIRST_SEQ BYTES`"),
            ("1 512 9\n", "line 1: not `FIRST_SEQ BYTES`"),
            ("x 512\n", "line 1: not a sequence number"),
            ("1 -5\n", "line 1: not a size"),
        ] {
            std::fs::write(dir.path().join(FILE), text).unwrap();
            let e = SegmentSizes::load(dir.path()).unwrap_err();
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }
}
