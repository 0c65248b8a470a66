//! The WAL against its files: round trips across segments and groups,
//! torn and damaged files, truncation, purging and reopening.

use std::path::Path;

use openraft::testing::log_id;
use openraft::EntryPayload;

use super::*;
use crate::command::{Batch, Command, Request};
use crate::store::StoreError;
use crate::types::Entry;

/// Small segments, so that a few dozen entries span several.
const TEST_SEGMENT_BYTES: u64 = 512;

fn encoded(term: u64, index: u64) -> (LogId, Vec<u8>) {
    let entry = Entry {
        log_id: log_id(term, 1, index),
        payload: EntryPayload::Normal(Batch::from(vec![Request::new(index, Command::Noop)])),
    };
    let bytes = crate::entry_codec::encode_entry(&entry).unwrap();
    (entry.log_id, bytes)
}

fn append(wal: &Wal, group: GroupId, term: u64, indexes: std::ops::RangeInclusive<u64>) {
    let entries: Vec<_> = indexes.map(|i| encoded(term, i)).collect();
    wal.append(group, &entries).unwrap();
}

fn open(dir: &Path) -> Wal {
    Wal::open(dir, TEST_SEGMENT_BYTES).unwrap()
}

/// The log ids of `group` as read back through the records.
fn read_all(wal: &Wal, group: GroupId) -> Vec<LogId> {
    wal.locations(group, ..)
        .iter()
        .map(|(loc, file)| {
            let bytes = wal.read(group, loc, file).unwrap();
            let entry = crate::entry_codec::decode_entry(&bytes).unwrap();
            assert_eq!(entry.log_id, loc.log_id);
            entry.log_id
        })
        .collect()
}

fn ids(term: u64, indexes: impl IntoIterator<Item = u64>) -> Vec<LogId> {
    indexes.into_iter().map(|i| log_id(term, 1, i)).collect()
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(segment::name(seq))
}

/// Where the records of the newest segment end: its last non-zero byte.
fn written_end(path: &Path) -> usize {
    let bytes = std::fs::read(path).unwrap();
    bytes.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1)
}

#[test]
fn round_trip_over_groups_and_segments() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(dir.path());
        for i in 1..=60 {
            append(&wal, 1, 1, i..=i);
            append(&wal, 2, 1, i..=i);
        }
        append(&wal, 3, 1, 1..=20);
        wal.sync().unwrap();
        assert!(wal.segment_seqs().len() > 3, "{:?}", wal.segment_seqs());
        assert_eq!(read_all(&wal, 1), ids(1, 1..=60));
        assert_eq!(wal.last(3), Some(log_id(1, 1, 20)));
    }
    let wal = open(dir.path());
    assert_eq!(read_all(&wal, 1), ids(1, 1..=60));
    assert_eq!(read_all(&wal, 2), ids(1, 1..=60));
    assert_eq!(read_all(&wal, 3), ids(1, 1..=20));
    assert!(read_all(&wal, 4).is_empty());
    let part: Vec<u64> = wal
        .locations(1, 10..13)
        .iter()
        .map(|(l, _)| l.log_id.index)
        .collect();
    assert_eq!(part, vec![10, 11, 12]);
}

/// An append waits in memory, read from there, until a sync (or
/// [`Wal::write_staged`]) writes it; a WAL closed with records staged
/// writes them too.
#[test]
fn appends_are_staged_until_a_sync_and_read_back_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let first = segment_path(dir.path(), 1);
    {
        let wal = open(dir.path());
        append(&wal, 1, 1, 1..=3);
        assert_eq!(written_end(&first), 0, "an append alone writes nothing");
        assert_eq!(read_all(&wal, 1), ids(1, 1..=3), "read from memory");
        wal.sync().unwrap();
        let synced = written_end(&first);
        assert!(synced > 0);
        assert_eq!(read_all(&wal, 1), ids(1, 1..=3), "read from the file");
        // Part in the file, part staged, in one read.
        append(&wal, 1, 1, 4..=5);
        assert_eq!(written_end(&first), synced);
        assert_eq!(read_all(&wal, 1), ids(1, 1..=5));
        wal.write_staged().unwrap();
        assert!(written_end(&first) > synced, "written, without a sync");
        append(&wal, 2, 1, 1..=2);
    }
    let wal = open(dir.path());
    assert_eq!(read_all(&wal, 1), ids(1, 1..=5));
    assert_eq!(read_all(&wal, 2), ids(1, 1..=2), "written at close");
}

/// A burst larger than the staging bound is written by the append itself.
#[test]
fn a_large_burst_is_written_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), 4 * STAGED_BYTES_MAX as u64).unwrap();
    let mut index = 0;
    while wal.lock().tail_offset < STAGED_BYTES_MAX as u64 {
        index += 1;
        append(&wal, 1, 1, index..=index);
    }
    assert!(wal.lock().staged.len() < STAGED_BYTES_MAX);
    assert!(written_end(&segment_path(dir.path(), 1)) > 0);
    assert_eq!(read_all(&wal, 1), ids(1, 1..=index));
}

/// A record cut in the middle (a crash during the write) ends the log;
/// the rest of the segment is zeroed, so what is appended after replays
/// alone, however short.
#[test]
fn a_torn_tail_keeps_the_prefix_and_later_appends_replay_right() {
    let dir = tempfile::tempdir().unwrap();
    let tail = {
        let wal = open(dir.path());
        append(&wal, 1, 1, 1..=5);
        wal.sync().unwrap();
        *wal.segment_seqs().last().unwrap()
    };
    let path = segment_path(dir.path(), tail);
    let end = written_end(&path);
    // Cut the last record: zero its last 10 bytes.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[end - 10..end].fill(0);
    std::fs::write(&path, &bytes).unwrap();
    {
        let wal = open(dir.path());
        assert_eq!(read_all(&wal, 1), ids(1, 1..=4));
        // A new entry 5 of another term, shorter than the rest of the torn one.
        append(&wal, 1, 2, 5..=5);
        wal.sync().unwrap();
    }
    let wal = open(dir.path());
    let mut want = ids(1, 1..=4);
    want.push(log_id(2, 1, 5));
    assert_eq!(read_all(&wal, 1), want);
}

/// Garbage after the last record (a stale or half-written record) is not
/// replayed, and is zeroed at open.
#[test]
fn garbage_after_the_last_record_is_dropped_and_zeroed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(dir.path());
        append(&wal, 1, 1, 1..=3);
        wal.sync().unwrap();
    }
    let path = segment_path(dir.path(), 1);
    let end = written_end(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[end + 100..end + 140].fill(0xa5);
    std::fs::write(&path, &bytes).unwrap();
    {
        let wal = open(dir.path());
        assert_eq!(read_all(&wal, 1), ids(1, 1..=3));
    }
    assert_eq!(written_end(&path), end, "the garbage was zeroed");
    let wal = open(dir.path());
    append(&wal, 1, 1, 4..=4);
    assert_eq!(read_all(&wal, 1), ids(1, 1..=4));
}

/// Damage in a segment that is not the newest was written and fsynced
/// whole: an error naming the file and offset, never a shorter log.
#[test]
fn a_bad_record_in_an_older_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(dir.path());
        append(&wal, 1, 1, 1..=60);
        wal.sync().unwrap();
        assert!(wal.segment_seqs().len() > 2);
    }
    let path = segment_path(dir.path(), 1);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[200] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    refused_as_corrupt(
        dir.path(),
        TEST_SEGMENT_BYTES,
        &[&path.display().to_string(), "offset"],
    );
}

#[test]
fn truncate_then_append_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(dir.path());
        append(&wal, 1, 1, 1..=10);
        append(&wal, 2, 1, 1..=3);
        wal.truncate(1, 6).unwrap();
        assert_eq!(wal.last(1), Some(log_id(1, 1, 5)));
        append(&wal, 1, 2, 6..=7);
        wal.truncate(2, 2).unwrap();
        wal.sync().unwrap();
    }
    let wal = open(dir.path());
    let mut want = ids(1, 1..=5);
    want.extend(ids(2, 6..=7));
    assert_eq!(read_all(&wal, 1), want);
    assert_eq!(read_all(&wal, 2), ids(1, 1..=1));
}

/// A segment goes only once no live entry is in it and its groups' purge
/// points are durable, and only from the oldest: a live one stops the
/// deletion.
#[test]
fn purge_deletes_only_dead_segments_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(dir.path());
        append(&wal, 2, 1, 1..=1);
        append(&wal, 1, 1, 1..=80);
        wal.sync().unwrap();
        let before = wal.segment_seqs();
        assert!(before.len() > 4, "{before:?}");
        wal.purge(1, 70);
        // Group 2's entry is live in the first segment.
        assert_eq!(wal.delete_dead().unwrap(), 0);
        wal.purge(2, 1);
        // Noted only: nothing goes before the purge points are durable.
        assert_eq!(wal.delete_dead().unwrap(), 0);
        assert_eq!(wal.segment_seqs(), before);
        let mut purges = wal.take_noted_purges();
        purges.sort();
        assert_eq!(purges, vec![(1, 70), (2, 1)]);
        let deleted = wal.delete_dead().unwrap();
        assert!(deleted > 0);
        let after = wal.segment_seqs();
        assert_eq!(after.len(), before.len() - deleted);
        for seq in &before[..deleted] {
            assert!(!segment_path(dir.path(), *seq).exists());
        }
        // The segment holding 71 stays.
        assert_eq!(wal.locations(1, 71..=71)[0].0.seq, after[0]);
        assert_eq!(read_all(&wal, 1), ids(1, 71..=80));
    }
    let wal = open(dir.path());
    wal.opened(1, Some(70));
    wal.opened(2, Some(1));
    assert_eq!(read_all(&wal, 1), ids(1, 71..=80));
    assert!(read_all(&wal, 2).is_empty());
    append(&wal, 1, 1, 81..=81);
    assert_eq!(wal.last(1), Some(log_id(1, 1, 81)));
}

/// A group that never purges (idle: its few entries never reach a
/// snapshot) does not keep every segment after its entries: once enough
/// segments are held, its entries move to the tail and the old segments
/// go; they read back the same, before and after reopening.
#[test]
fn an_idle_group_does_not_pin_the_log() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(dir.path());
        append(&wal, 2, 1, 1..=3);
        append(&wal, 1, 1, 1..=80);
        wal.purge(1, 80);
        wal.take_noted_purges();
        wal.sync().unwrap();
        assert_eq!(
            wal.delete_dead().unwrap(),
            0,
            "group 2 pins the first segment"
        );
        let before = wal.segment_seqs().len();
        assert!(before >= COMPACT_AT_SEGMENTS);
        assert_eq!(wal.compact().unwrap(), 3);
        wal.sync().unwrap();
        // Every segment before the copy's goes (it may have begun a new one).
        let deleted = wal.delete_dead().unwrap();
        assert!(deleted + 2 >= before, "{deleted} of {before}");
        assert_eq!(wal.segment_seqs()[0], wal.locations(2, ..)[0].0.seq);
        assert_eq!(read_all(&wal, 2), ids(1, 1..=3));
        append(&wal, 2, 1, 4..=4);
        wal.sync().unwrap();
    }
    let wal = open(dir.path());
    // Group 1's purge point, as the store reads it from sled.
    wal.opened(1, Some(80));
    assert_eq!(read_all(&wal, 2), ids(1, 1..=4));
    assert!(read_all(&wal, 1).is_empty());
}

/// A record larger than a segment gets a segment of its own.
#[test]
fn a_record_larger_than_a_segment_fits() {
    let dir = tempfile::tempdir().unwrap();
    let big = {
        let entry = Entry {
            log_id: log_id(1, 1, 1),
            payload: EntryPayload::Normal(Batch::from(
                (0..2000)
                    .map(|i| Request::new(i, Command::Noop))
                    .collect::<Vec<_>>(),
            )),
        };
        (
            entry.log_id,
            crate::entry_codec::encode_entry(&entry).unwrap(),
        )
    };
    assert!(big.1.len() as u64 > TEST_SEGMENT_BYTES);
    {
        let wal = open(dir.path());
        wal.append(1, &[big]).unwrap();
        append(&wal, 1, 1, 2..=3);
        wal.sync().unwrap();
    }
    let wal = open(dir.path());
    assert_eq!(read_all(&wal, 1), ids(1, 1..=3));
}

/// A segment cut short (a bad copy, a damaged disk) is refused by name:
/// segments are made whole, so a short one lost its end.
#[test]
fn a_segment_cut_short_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(dir.path());
        append(&wal, 1, 1, 1..=5);
        wal.sync().unwrap();
    }
    let path = segment_path(dir.path(), 1);
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(TEST_SEGMENT_BYTES / 3).unwrap();
    drop(f);
    refused_as_corrupt(
        dir.path(),
        TEST_SEGMENT_BYTES,
        &[&path.display().to_string(), "cut short"],
    );
}

/// Groups whose live entries together fill more than the segments held
/// are not copied forward at every flush: compaction waits until at least
/// half of what is held is dead.
#[test]
fn live_logs_larger_than_the_slack_are_not_copied_over_and_over() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path());
    // Four groups, none purging: every byte held is live.
    for round in 0..10u64 {
        for group in 1..=4 {
            append(&wal, group, 1, round * 3 + 1..=round * 3 + 3);
        }
    }
    let held = wal.segment_seqs().len();
    assert!(held >= COMPACT_AT_SEGMENTS, "{held} segments");
    assert_eq!(
        wal.compact().unwrap(),
        0,
        "everything is live: nothing to gain"
    );
    // Once most of it is purged, the one group that pins the oldest
    // segment moves forward.
    for group in 1..=3 {
        wal.purge(group, 27);
    }
    wal.take_noted_purges();
    assert_eq!(wal.compact().unwrap(), 30);
}

#[test]
fn compaction_waits_for_half_the_held_bytes_to_be_dead() {
    let seg = 1000;
    assert!(!compaction_due(3, 0, seg), "fewer than the slack");
    assert!(compaction_due(4, 0, seg));
    assert!(!compaction_due(4, 1500, seg), "2 live segments: due at 5");
    assert!(compaction_due(5, 1500, seg));
    assert!(!compaction_due(6, 3500, seg), "4 live segments: due at 9");
    assert!(compaction_due(9, 3500, seg));
}

/// Cuts segment `seq` of `dir` to `bytes`.
fn cut(dir: &Path, seq: u64, bytes: u64) {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(segment_path(dir, seq))
        .unwrap();
    f.set_len(bytes).unwrap();
}

fn refused_as_cut_short(dir: &Path, segment_bytes: u64, seq: u64, made_with: u64) {
    let path = segment_path(dir, seq).display().to_string();
    let says = format!("cut short (made with {made_with} bytes)");
    refused_as_corrupt(dir, segment_bytes, &[&path, &says]);
}

/// Opening the WAL of `dir` is refused as corruption, with a message that
/// says each of `says`.
fn refused_as_corrupt(dir: &Path, segment_bytes: u64, says: &[&str]) {
    match Wal::open(dir, segment_bytes) {
        Err(e @ StoreError::Corrupt { .. }) => {
            let msg = e.to_string();
            for s in says {
                assert!(msg.contains(s), "{s:?} not in {msg}");
            }
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a damaged log opened"),
    }
}

/// A release that makes bigger segments opens a log of smaller ones, and
/// still finds one of them cut short; one that makes smaller segments
/// opens bigger ones.
#[test]
fn a_new_segment_size_opens_the_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(dir.path());
        append(&wal, 1, 1, 1..=20);
        wal.sync().unwrap();
    }
    let old_segments = segment::list(dir.path()).unwrap().len() as u64;
    assert!(old_segments >= 2, "{old_segments} segments");
    let bigger = TEST_SEGMENT_BYTES * 4;
    {
        let wal = Wal::open(dir.path(), bigger).unwrap();
        assert_eq!(read_all(&wal, 1), ids(1, 1..=20));
        append(&wal, 1, 1, 21..=60);
        wal.sync().unwrap();
    }
    let segments = segment::list(dir.path()).unwrap();
    for (seq, path) in &segments {
        let len = std::fs::metadata(path).unwrap().len();
        let made_with = if *seq <= old_segments {
            TEST_SEGMENT_BYTES
        } else {
            bigger
        };
        assert!(len >= made_with, "segment {seq}: {len} bytes");
    }
    assert!(segments.len() as u64 > old_segments, "no segment was made");
    // Back to small segments: the big ones open too.
    let wal = open(dir.path());
    assert_eq!(read_all(&wal, 1), ids(1, 1..=60));
    drop(wal);
    // An old segment cut short is still found, with the size it was made with.
    cut(dir.path(), 1, TEST_SEGMENT_BYTES / 2);
    refused_as_cut_short(dir.path(), bigger, 1, TEST_SEGMENT_BYTES);
}

/// A log written before the sizes were kept was made with the one size
/// those releases had: it opens with another, and a cut segment of it is
/// still found.
#[test]
fn a_log_from_before_the_sizes_file_has_the_legacy_size() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(dir.path(), sizes::LEGACY_SEGMENT_BYTES).unwrap();
        append(&wal, 1, 1, 1..=5);
        wal.sync().unwrap();
    }
    std::fs::remove_file(dir.path().join(sizes::FILE)).unwrap();
    {
        let wal = open(dir.path());
        assert_eq!(read_all(&wal, 1), ids(1, 1..=5));
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join(sizes::FILE)).unwrap(),
        format!(
            "1 {}\n2 {TEST_SEGMENT_BYTES}\n",
            sizes::LEGACY_SEGMENT_BYTES
        )
    );
    std::fs::remove_file(dir.path().join(sizes::FILE)).unwrap();
    cut(dir.path(), 1, 1024 * 1024);
    refused_as_cut_short(
        dir.path(),
        TEST_SEGMENT_BYTES,
        1,
        sizes::LEGACY_SEGMENT_BYTES,
    );
}

/// A damaged sizes file is named, not guessed around.
#[test]
fn a_damaged_sizes_file_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    std::fs::write(dir.path().join(sizes::FILE), "1 lots\n").unwrap();
    refused_as_corrupt(dir.path(), TEST_SEGMENT_BYTES, &[sizes::FILE, "not a size"]);
}
