//! openraft's own storage test suite against the sled store, plus the
//! durability and corruption checks the suite does not cover.

use canon_raft::store::{LogStore, StateMachineStore};
use canon_raft::types::{StorageError, TypeConfig};
use canon_raft::Store;
use openraft::testing::{StoreBuilder, Suite};

struct SledBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for SledBuilder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = tempfile::tempdir().map_err(setup_err)?;
        let store = Store::open(dir.path(), 0, 4).map_err(setup_err)?;
        let (log, sm) = store.open_group(1, 4).map_err(setup_err)?;
        Ok((dir, log, sm))
    }
}

fn setup_err(e: impl std::fmt::Display) -> StorageError {
    openraft::StorageIOError::<u64>::write(openraft::AnyError::error(e.to_string())).into()
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(SledBuilder).unwrap();
}

/// The memory store used by simulations.
struct MemBuilder;

impl StoreBuilder<TypeConfig, canon_raft::store::MemLogStore, StateMachineStore, ()>
    for MemBuilder
{
    async fn build(
        &self,
    ) -> Result<((), canon_raft::store::MemLogStore, StateMachineStore), StorageError> {
        let (log, sm) = canon_raft::store::MemDisk::new()
            .open_group(1, 4)
            .map_err(setup_err)?;
        Ok(((), log, sm))
    }
}

#[test]
fn openraft_storage_suite_memory() {
    Suite::test_all(MemBuilder).unwrap();
}

/// Runs `open` again while the database is still locked by an owner this
/// process just dropped: sled lets go of its file lock only when its
/// background threads finish, a moment after the handle is dropped (the
/// node's own start-up waits the same way, `DB_LOCK_WAIT`).
fn when_unlocked<T, E: std::fmt::Display>(mut open: impl FnMut() -> Result<T, E>) -> Result<T, E> {
    let started = std::time::Instant::now();
    loop {
        match open() {
            Err(e)
                if e.to_string().contains("could not acquire lock")
                    && started.elapsed() < std::time::Duration::from_secs(5) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

mod durability {
    use std::path::Path;

    use canon_raft::command::{Batch, Command, Request};
    use canon_raft::store::{LogStore, StateMachineStore};
    use canon_raft::types::{Entry, Vote};
    use canon_raft::{Store, StoreError};
    use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
    use openraft::testing::log_id;
    use openraft::{EntryPayload, RaftLogReader, RaftSnapshotBuilder};

    fn entry(index: u64) -> Entry {
        Entry {
            log_id: log_id(1, 1, index),
            payload: EntryPayload::Normal(Batch::from(vec![Request::new(index, Command::Noop)])),
        }
    }

    fn open(dir: &Path) -> Result<(Store, LogStore, StateMachineStore), StoreError> {
        let store = super::when_unlocked(|| Store::open(dir, 7, 4))?;
        let (log, sm) = store.open_group(1, 4)?;
        Ok((store, log, sm))
    }

    /// Writes entries 1..=5 and a vote, then closes the store.
    async fn write_some(dir: &Path) {
        let (_store, mut log, _sm) = open(dir).unwrap();
        log.blocking_append((1..=5).map(entry)).await.unwrap();
        log.save_vote(&Vote::new(3, 2)).await.unwrap();
    }

    fn poke(dir: &Path, tree: &str, key: &[u8], value: Option<&[u8]>) {
        let db = super::when_unlocked(|| sled::open(dir)).unwrap();
        let t = db.open_tree(tree).unwrap();
        match value {
            Some(v) => t.insert(key, v).unwrap(),
            None => t.remove(key).unwrap(),
        };
        db.flush().unwrap();
    }

    fn expect_corrupt(dir: &Path, tree: &str) -> String {
        match open(dir) {
            Err(e @ StoreError::Corrupt { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(&dir.display().to_string()), "{msg}");
                assert!(msg.contains(tree), "{msg}");
                msg
            }
            Err(other) => panic!("expected corruption, got {other}"),
            Ok(_) => panic!("corrupt store opened"),
        }
    }

    #[tokio::test]
    async fn reopen_keeps_log_vote_and_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        write_some(dir.path()).await;
        {
            let (_store, mut log, mut sm) = open(dir.path()).unwrap();
            assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(3, 2)));
            let st = log.get_log_state().await.unwrap();
            assert_eq!(st.last_log_id, Some(log_id(1, 1, 5)));
            let entries = log.try_get_log_entries(1..=5).await.unwrap();
            assert_eq!(entries.len(), 5);
            sm.apply(entries).await.unwrap();
            let snap = sm
                .get_snapshot_builder()
                .await
                .build_snapshot()
                .await
                .unwrap();
            assert_eq!(snap.meta.last_log_id, Some(log_id(1, 1, 5)));
            log.purge(log_id(1, 1, 3)).await.unwrap();
        }
        let (_store, mut log, mut sm) = open(dir.path()).unwrap();
        let st = log.get_log_state().await.unwrap();
        assert_eq!(st.last_purged_log_id, Some(log_id(1, 1, 3)));
        assert_eq!(st.last_log_id, Some(log_id(1, 1, 5)));
        assert_eq!(log.try_get_log_entries(0..10).await.unwrap().len(), 2);
        // The state machine restarts from the snapshot.
        let (applied, _) = sm.applied_state().await.unwrap();
        assert_eq!(applied, Some(log_id(1, 1, 5)));
        assert_eq!(sm.shared().read().state.applied, 5);
    }

    #[tokio::test]
    async fn store_refuses_another_nodes_data() {
        let dir = tempfile::tempdir().unwrap();
        write_some(dir.path()).await;
        assert!(matches!(
            super::when_unlocked(|| Store::open(dir.path(), 8, 4)),
            Err(StoreError::WrongNode {
                found: 7,
                expected: 8,
                ..
            })
        ));
        assert!(matches!(
            super::when_unlocked(|| Store::open(dir.path(), 7, 16)),
            Err(StoreError::WrongShardCount {
                found: 4,
                expected: 16,
                ..
            })
        ));
    }

    /// Entry 3 of a log an older release kept in sled replaced by
    /// `bytes`: the node refuses to open (and to move that log into the
    /// WAL), naming the tree and the key.
    async fn a_bad_entry_is_named(bytes: &[u8]) {
        let dir = tempfile::tempdir().unwrap();
        write_some(dir.path()).await;
        poke(dir.path(), "g1.log", &3u64.to_be_bytes(), Some(bytes));
        let msg = expect_corrupt(dir.path(), "g1.log");
        assert!(msg.contains("key 3"), "{msg}");
    }

    #[tokio::test]
    async fn corrupt_log_entry_is_named() {
        a_bad_entry_is_named(b"\x01garbage").await;
    }

    /// A log written before the compact entry format (every entry in the
    /// codec's first format, CBOR), in sled as an older release kept it,
    /// opens, reads and takes new entries.
    #[tokio::test]
    async fn a_log_of_the_first_format_still_reads_beside_new_entries() {
        let dir = tempfile::tempdir().unwrap();
        // Each entry has a random command id: made once, compared whole.
        let written: Vec<Entry> = (1..=7).map(entry).collect();
        for e in &written[..5] {
            let old = canon_raft::codec::encode(e).unwrap();
            assert_eq!(old[0], 1);
            poke(
                dir.path(),
                "g1.log",
                &e.log_id.index.to_be_bytes(),
                Some(&old),
            );
        }
        {
            let (_store, mut log, _sm) = open(dir.path()).unwrap();
            let read = log.try_get_log_entries(1..=5).await.unwrap();
            assert_eq!(read, written[..5]);
            log.blocking_append(written[5..].to_vec()).await.unwrap();
        }
        {
            let (_store, mut log, _sm) = open(dir.path()).unwrap();
            let read = log.try_get_log_entries(1..=7).await.unwrap();
            assert_eq!(read, written);
        }
        let db = super::when_unlocked(|| sled::open(dir.path())).unwrap();
        let tree = db.open_tree("g1.log").unwrap();
        assert!(tree.is_empty(), "the old log moved into the WAL");
    }

    #[tokio::test]
    async fn corrupt_compact_log_entry_is_named() {
        a_bad_entry_is_named(b"\x02\x01\x01").await;
    }

    /// A gap in a log an older release kept in sled.
    #[tokio::test]
    async fn missing_log_entry_is_a_gap() {
        let dir = tempfile::tempdir().unwrap();
        for i in [1u64, 2, 4] {
            let bytes = canon_raft::entry_codec::encode_entry(&entry(i)).unwrap();
            poke(dir.path(), "g1.log", &i.to_be_bytes(), Some(&bytes));
        }
        let msg = expect_corrupt(dir.path(), "g1.log");
        assert!(msg.contains("gap"), "{msg}");
    }

    #[tokio::test]
    async fn corrupt_vote_and_snapshot_are_named() {
        let dir = tempfile::tempdir().unwrap();
        write_some(dir.path()).await;
        poke(dir.path(), "g1.vote", b"vote", Some(b"\x01\xff"));
        expect_corrupt(dir.path(), "g1.vote");

        let dir = tempfile::tempdir().unwrap();
        write_some(dir.path()).await;
        poke(dir.path(), "g1.snap", b"meta", Some(b"\x01\xff"));
        expect_corrupt(dir.path(), "g1.snap");
    }

    #[tokio::test]
    async fn purged_log_without_snapshot_is_loss() {
        let dir = tempfile::tempdir().unwrap();
        write_some(dir.path()).await;
        {
            let (_s, mut log, _sm) = open(dir.path()).unwrap();
            log.purge(log_id(1, 1, 2)).await.unwrap();
        }
        let msg = expect_corrupt(dir.path(), "g1.snap");
        assert!(msg.contains("lost"), "{msg}");
    }

    #[tokio::test]
    async fn damaged_database_file_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        write_some(dir.path()).await;
        let file = dir.path().join("db");
        let len = std::fs::metadata(&file).unwrap().len();
        let mut bytes = std::fs::read(&file).unwrap();
        // Flip bytes throughout the file.
        for i in (0..bytes.len()).step_by(97) {
            bytes[i] ^= 0x5a;
        }
        std::fs::write(&file, &bytes).unwrap();
        assert_eq!(std::fs::metadata(&file).unwrap().len(), len);
        match open(dir.path()) {
            Ok((_s, mut log, _sm)) => {
                let st = log.get_log_state().await.unwrap();
                let v = log.read_vote().await.unwrap();
                panic!("damaged database opened: {st:?} {v:?} len {len}")
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
            }
        }
    }
}

mod rollback {
    use canon_raft::command::{Batch, Command, Request};
    use canon_raft::types::Entry;
    use canon_raft::{Store, StoreError};
    use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
    use openraft::testing::log_id;
    use openraft::EntryPayload;

    /// Appends and commits entries `1..=n` of group 1 of `store`; returns
    /// the group (its log and state machine), to keep it open.
    async fn commit_entries(
        store: &Store,
        n: u64,
    ) -> (
        impl RaftLogStorage<canon_raft::types::TypeConfig>,
        impl Sized,
    ) {
        let (mut log, sm) = store.open_group(1, 4).unwrap();
        let entries = (1..=n).map(|i| Entry {
            log_id: log_id(1, 1, i),
            payload: EntryPayload::Normal(Batch::from(vec![Request::new(i, Command::Noop)])),
        });
        log.blocking_append(entries).await.unwrap();
        log.save_committed(Some(log_id(1, 1, n))).await.unwrap();
        (log, sm)
    }

    /// Loses the last log entry of group 1 behind the store's back, as a
    /// damaged end of the WAL does (its last record torn), then checks
    /// that opening the group is refused as loss, naming the log.
    fn lose_last_entry_and_reopen(dir: &std::path::Path) {
        let wal = dir.join("wal");
        let mut segments: Vec<_> = std::fs::read_dir(&wal)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "wal"))
            .collect();
        segments.sort();
        let newest = segments.pop().unwrap();
        let mut bytes = std::fs::read(&newest).unwrap();
        let last = bytes.iter().rposition(|b| *b != 0).unwrap();
        bytes[last] = 0;
        std::fs::write(&newest, &bytes).unwrap();
        let store = super::when_unlocked(|| Store::open(dir, 7, 4)).unwrap();
        match store.open_group(1, 4) {
            Err(e @ StoreError::Corrupt { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("g1.log") && msg.contains("lost"), "{msg}");
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("rolled-back log opened"),
        }
    }

    /// A database that lost committed entries (a damaged end of the
    /// WAL) is refused, because the marks file remembers them.
    #[tokio::test]
    async fn log_rolled_back_behind_marks_is_loss() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), 7, 4).unwrap();
            let _group = commit_entries(&store, 5).await;
            // The marks file is rewritten at most once a second while
            // writes go on.
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
            store.sync().await.unwrap();
        }
        lose_last_entry_and_reopen(dir.path());
    }

    /// The last burst before a pause is marked too: with no write after it
    /// (an idle cluster, then a crash), the marks file still learns of it
    /// within a marks interval, so losing it is caught.
    #[tokio::test]
    async fn last_burst_before_a_pause_is_marked() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), 7, 4).unwrap();
            let _group = commit_entries(&store, 3).await;
            store.sync().await.unwrap();
            // Idle: no flush follows; the marks are written in the pause.
            tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
            let marks = std::fs::read_to_string(dir.path().join("canon-raft.marks")).unwrap();
            assert!(marks.contains("\"committed\": 3"), "{marks}");
        }
        lose_last_entry_and_reopen(dir.path());
    }
}
