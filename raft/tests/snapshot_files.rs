//! Snapshots as files: a built snapshot is a file of the data directory
//! that a reopened store starts from; a damaged or cut file is an error
//! naming it, at open and at install, with nothing lost; a snapshot an
//! older release kept in sled is moved into its file; a received snapshot
//! is installed from the file its chunks were written to.

use std::path::{Path, PathBuf};

use canon_raft::command::{Batch, Command, Request};
use canon_raft::fleet_state::{fleet_state, FleetShape};
use canon_raft::store::{LogStore, StateMachineStore};
use canon_raft::types::{Entry, SnapshotMeta, StoredMembership};
use canon_raft::{codec, Store, StoreError};
use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::testing::log_id;
use openraft::{EntryPayload, RaftSnapshotBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const GROUP: u64 = 1;

fn open(dir: &Path) -> Result<(Store, LogStore, StateMachineStore), StoreError> {
    let started = std::time::Instant::now();
    let store = loop {
        // sled lets go of its lock a moment after a handle is dropped.
        match Store::open(dir, 7, 4) {
            Err(e) if e.to_string().contains("lock") && started.elapsed().as_secs() < 10 => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            other => break other?,
        }
    };
    let (log, sm) = store.open_group(GROUP, 4)?;
    Ok((store, log, sm))
}

/// The sled database of `dir`, once its last owner has let go.
fn sled_open(dir: &Path) -> sled::Db {
    let started = std::time::Instant::now();
    loop {
        match sled::open(dir) {
            Ok(db) => return db,
            Err(e) if started.elapsed().as_secs() < 10 => {
                let _ = e;
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(e) => panic!("{e}"),
        }
    }
}

fn snap_file(dir: &Path) -> PathBuf {
    dir.join("snapshots").join(format!("g{GROUP}.snap"))
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

/// Entries 1..=n, creating one process each.
fn creates(n: u64) -> Vec<Entry> {
    let aliases = (0..)
        .map(|i| format!("p-{i}"))
        .filter(|a| canon_raft::shard::group_of_alias(a, 4) == GROUP);
    aliases
        .take(n as usize)
        .enumerate()
        .map(|(i, alias)| {
            let index = i as u64 + 1;
            let req = Request::new(
                index,
                Command::ProcessCreated {
                    imports: Default::default(),
                    fid: canon_model::Fid::random(),
                    alias,
                    account: "123456789012".into(),
                    composition: canon_raft::Composition {
                        bytes: vec![7; 300],
                        source_hash: format!("h{index}"),
                    },
                    tick_interval_ms: None,
                },
            );
            Entry {
                log_id: log_id(1, 1, index),
                payload: EntryPayload::Normal(Batch::from(vec![req])),
            }
        })
        .collect()
}

/// A store in `dir` that applied `n` creates and built a snapshot of
/// them, its log purged behind it. Returns the state it had.
async fn snapshotted(dir: &Path, n: u64) -> canon_raft::CanonState {
    let (_store, mut log, mut sm) = open(dir).unwrap();
    log.blocking_append(creates(n)).await.unwrap();
    sm.apply(creates(n)).await.unwrap();
    let snap = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    assert_eq!(snap.meta.last_log_id, Some(log_id(1, 1, n)));
    log.purge(log_id(1, 1, n)).await.unwrap();
    let state = sm.shared().read().state.clone();
    state
}

#[tokio::test]
async fn a_built_snapshot_is_a_file_the_store_reopens_from() {
    let dir = tempfile::tempdir().unwrap();
    let state = snapshotted(dir.path(), 12).await;
    assert!(snap_file(dir.path()).is_file());
    assert!(
        temp_files(dir.path()).is_empty(),
        "{:?}",
        temp_files(dir.path())
    );
    let (_store, _log, mut sm) = open(dir.path()).unwrap();
    let (applied, _) = sm.applied_state().await.unwrap();
    assert_eq!(applied, Some(log_id(1, 1, 12)));
    assert_eq!(sm.shared().read().state, state);
    // What openraft sends is that file, read as it is.
    let mut current = sm.get_current_snapshot().await.unwrap().unwrap();
    let mut sent = Vec::new();
    current.snapshot.read_to_end(&mut sent).await.unwrap();
    assert_eq!(sent, std::fs::read(snap_file(dir.path())).unwrap());
}

#[tokio::test]
async fn a_cut_or_damaged_snapshot_file_is_named_at_open_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let state = snapshotted(dir.path(), 10).await;
    let file = snap_file(dir.path());
    let good = std::fs::read(&file).unwrap();
    let damages: [(&str, Vec<u8>); 3] = [
        ("truncated", good[..good.len() - 5].to_vec()),
        ("checksum", {
            let mut b = good.clone();
            let at = b.len() / 2;
            b[at] ^= 0x10;
            b
        }),
        (
            "not a snapshot",
            b"garbage, and not a snapshot at all".to_vec(),
        ),
    ];
    for (what, bytes) in damages {
        std::fs::write(&file, &bytes).unwrap();
        match open(dir.path()) {
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains(&file.display().to_string()), "{what}: {msg}");
                assert!(msg.contains(what), "{what}: {msg}");
            }
            Ok(_) => panic!("{what}: a damaged snapshot opened"),
        }
        // The file is left as found, for the operator.
        assert_eq!(std::fs::read(&file).unwrap(), bytes);
    }
    std::fs::write(&file, &good).unwrap();
    let (_store, _log, sm) = open(dir.path()).unwrap();
    assert_eq!(sm.shared().read().state, state);
}

#[tokio::test]
async fn a_missing_snapshot_file_behind_a_purged_log_is_loss() {
    let dir = tempfile::tempdir().unwrap();
    snapshotted(dir.path(), 4).await;
    std::fs::remove_file(snap_file(dir.path())).unwrap();
    let msg = match open(dir.path()) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("opened without its snapshot"),
    };
    assert!(msg.contains("lost"), "{msg}");
    assert!(
        msg.contains(&snap_file(dir.path()).display().to_string()),
        "{msg}"
    );
}

#[tokio::test]
async fn an_old_sled_snapshot_is_moved_into_its_file() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_store, mut log, _sm) = open(dir.path()).unwrap();
        log.blocking_append(creates(3)).await.unwrap();
        log.purge(log_id(1, 1, 3)).await.unwrap();
    }
    // What an older release left: the whole state, one codec value, in sled.
    let state = fleet_state(25, FleetShape::DEFAULT_KEEP, 3);
    let meta = SnapshotMeta {
        last_log_id: Some(log_id(1, 1, 3)),
        last_membership: StoredMembership::default(),
        snapshot_id: "old-release".into(),
    };
    {
        let db = sled_open(dir.path());
        let t = db.open_tree(format!("g{GROUP}.snap")).unwrap();
        t.insert(b"meta", codec::encode(&meta).unwrap()).unwrap();
        t.insert(b"data", codec::encode(&state).unwrap()).unwrap();
        db.flush().unwrap();
    }
    {
        let (_store, _log, mut sm) = open(dir.path()).unwrap();
        assert_eq!(sm.shared().read().state, state);
        let (applied, _) = sm.applied_state().await.unwrap();
        assert_eq!(applied, Some(log_id(1, 1, 3)));
        assert!(snap_file(dir.path()).is_file(), "moved into its file");
    }
    {
        let db = sled_open(dir.path());
        let t = db.open_tree(format!("g{GROUP}.snap")).unwrap();
        assert!(
            t.is_empty(),
            "the sled copy is gone once the file is durable"
        );
    }
    // And the next start reads the file.
    let (_store, _log, sm) = open(dir.path()).unwrap();
    assert_eq!(sm.shared().read().state, state);
}

#[tokio::test]
async fn a_received_snapshot_is_installed_from_its_file() {
    let from = tempfile::tempdir().unwrap();
    let state = snapshotted(from.path(), 9).await;
    let sent = std::fs::read(snap_file(from.path())).unwrap();
    let (_s, _l, mut source) = open(from.path()).unwrap();
    let meta = source.get_current_snapshot().await.unwrap().unwrap().meta;

    let to = tempfile::tempdir().unwrap();
    let (_store, _log, mut sm) = open(to.path()).unwrap();
    let mut data = sm.begin_receiving_snapshot().await.unwrap();
    let receiving = data.path().expect("a file").to_path_buf();
    assert!(receiving.starts_with(to.path()), "{}", receiving.display());
    for chunk in sent.chunks(100) {
        data.write_all(chunk).await.unwrap();
    }
    data.shutdown().await.unwrap();
    sm.install_snapshot(&meta, data).await.unwrap();
    assert_eq!(sm.shared().read().state, state);
    assert_eq!(std::fs::read(snap_file(to.path())).unwrap(), sent);
    assert!(temp_files(to.path()).is_empty());
    let (applied, _) = sm.applied_state().await.unwrap();
    assert_eq!(applied, Some(log_id(1, 1, 9)));
}

#[tokio::test]
async fn a_damaged_received_snapshot_is_refused_naming_its_file() {
    let from = tempfile::tempdir().unwrap();
    snapshotted(from.path(), 6).await;
    let mut sent = std::fs::read(snap_file(from.path())).unwrap();
    let (_s, _l, mut source) = open(from.path()).unwrap();
    let meta = source.get_current_snapshot().await.unwrap().unwrap().meta;
    sent.truncate(sent.len() - 3);

    let to = tempfile::tempdir().unwrap();
    let before = snapshotted(to.path(), 2).await;
    let kept = std::fs::read(snap_file(to.path())).unwrap();
    let (_store, _log, mut sm) = open(to.path()).unwrap();
    let mut data = sm.begin_receiving_snapshot().await.unwrap();
    let receiving = data.path().expect("a file").to_path_buf();
    data.write_all(&sent).await.unwrap();
    data.shutdown().await.unwrap();
    let err = sm
        .install_snapshot(&meta, data)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&receiving.display().to_string()), "{err}");
    assert!(err.contains("truncated"), "{err}");
    // Nothing replaced: the state, the kept snapshot.
    assert_eq!(sm.shared().read().state, before);
    assert_eq!(std::fs::read(snap_file(to.path())).unwrap(), kept);
    assert!(temp_files(to.path()).is_empty());
}

#[tokio::test]
async fn a_received_snapshot_never_installed_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, _log, mut sm) = open(dir.path()).unwrap();
    let mut data = sm.begin_receiving_snapshot().await.unwrap();
    data.write_all(b"part of a snapshot").await.unwrap();
    data.shutdown().await.unwrap();
    let path = data.path().expect("a file").to_path_buf();
    assert!(path.is_file());
    // openraft drops what it does not need to install: released on a
    // thread of its own (a large file is shortened step by step first).
    drop(data);
    let since = std::time::Instant::now();
    while path.exists() && since.elapsed() < std::time::Duration::from_secs(10) {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(!path.exists(), "{} left behind", path.display());
}
