//! Multi-node tests over real gRPC on 127.0.0.1: bootstrap, replication,
//! forwarding, leader failover, restart from disk, snapshot catch-up.

mod common;

use std::time::{Duration, Instant};

use canon_raft::shard::group_of_shard;
use canon_raft::{Consistency, RaftSettings, META_GROUP};
use common::{aliases_in, create, init_tracing, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_fail_over_and_recover() {
    init_tracing();
    let shards = 3;
    let mut c = Cluster::start(3, shards, RaftSettings::loopback()).await;
    c.bootstrap().await;

    // Every group elected a leader; writes through any node reach it.
    let g = group_of_shard(1);
    let aliases = aliases_in(g, shards, 30, "p");
    let mut acked = Vec::new();
    for (k, alias) in aliases.iter().take(20).enumerate() {
        let via = k % 3;
        let r = c
            .node(via)
            .propose(g, create(alias, k as u64))
            .await
            .unwrap();
        assert!(r.is_applied(), "{r:?}");
        acked.push(alias.clone());
    }
    // A repeated command id is answered, not re-applied.
    let again = create(&aliases[0], 99);
    let first = c.node(0).propose(g, again.clone()).await.unwrap();
    let second = c.node(1).propose(g, again).await.unwrap();
    assert_eq!(first, second);
    assert!(!first.is_applied(), "alias already taken");

    // Linearizable reads see every acknowledged write on every node.
    for i in 0..3 {
        let n = c
            .node(i)
            .read(g, Consistency::Linearizable, |s| s.aliases.len())
            .await
            .unwrap();
        assert_eq!(n, acked.len(), "node {i}");
    }
    // The meta group works too.
    let meta = c
        .node(2)
        .propose(
            META_GROUP,
            canon_raft::Request::new(
                1,
                canon_raft::Command::ClusterCreated {
                    shard_count: shards,
                },
            ),
        )
        .await
        .unwrap();
    assert!(meta.is_applied());

    // Kill the group's leader: a new leader serves within 2 s.
    let old = c.wait_leader(g, Duration::from_secs(2)).await;
    c.kill(old).await;
    let survivor = (old + 1) % 3;
    let started = Instant::now();
    let r = c
        .node(survivor)
        .propose(g, create(&aliases[20], 100))
        .await
        .unwrap();
    let failover = started.elapsed();
    assert!(r.is_applied());
    acked.push(aliases[20].clone());
    eprintln!("failover: first write after leader kill took {failover:?}");
    assert!(
        failover < Duration::from_secs(2),
        "failover took {failover:?}"
    );
    let new = c.wait_leader(g, Duration::from_secs(2)).await;
    assert_ne!(new, old);

    // No acknowledged write was lost.
    let present = c
        .node(survivor)
        .read(g, Consistency::Linearizable, |s| {
            acked
                .iter()
                .filter(|a| s.process_by_alias(a).is_some())
                .count()
        })
        .await
        .unwrap();
    assert_eq!(present, acked.len());

    // More writes while the node is down, then restart it from its data dir:
    // it catches up.
    for (k, alias) in aliases.iter().enumerate().skip(21) {
        assert!(c
            .node(new)
            .propose(g, create(alias, 200 + k as u64))
            .await
            .unwrap()
            .is_applied());
        acked.push(alias.clone());
    }
    c.restart(old).await;
    let target = c.applied(new, g);
    c.wait_applied(old, g, target, Duration::from_secs(5)).await;
    let on_restarted = c
        .node(old)
        .read(g, Consistency::Stale, |s| {
            acked
                .iter()
                .filter(|a| s.process_by_alias(a).is_some())
                .count()
        })
        .await
        .unwrap();
    assert_eq!(on_restarted, acked.len());
    // It serves linearizable reads again (through the leader's read index).
    let n = c
        .node(old)
        .read(g, Consistency::Linearizable, |s| s.aliases.len())
        .await
        .unwrap();
    assert_eq!(n, acked.len());
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_node_catches_up_by_snapshot() {
    init_tracing();
    // Small chunks, so the snapshot travels as many InstallSnapshot calls.
    let chunk = 1024;
    let settings = RaftSettings {
        snapshot_every: 40,
        keep_behind_snapshot: 0,
        snapshot_chunk_bytes: chunk,
        ..RaftSettings::loopback()
    };
    let shards = 1;
    let mut c = Cluster::start(3, shards, settings).await;
    c.bootstrap().await;
    let g = group_of_shard(0);
    let leader = c.wait_leader(g, Duration::from_secs(2)).await;
    let lagging = (leader + 1) % 3;
    let lagging_has = c.applied(lagging, g);
    c.kill(lagging).await;

    let aliases = aliases_in(g, shards, 120, "s");
    for chunk in aliases.chunks(20) {
        let writes = chunk
            .iter()
            .map(|a| c.node(leader).propose(g, create(a, 1)));
        for r in futures::future::join_all(writes).await {
            assert!(r.unwrap().is_applied());
        }
    }
    // The leader has compacted its log past what the lagging node has.
    let compacted = c.applied(leader, g);
    assert!(compacted > lagging_has, "only {compacted} entries");
    let raft = c.node(leader).raft(g).unwrap();
    raft.trigger().snapshot().await.unwrap();
    let m = raft
        .wait(Some(Duration::from_secs(5)))
        .metrics(
            |m| m.purged.is_some_and(|p| p.index >= compacted),
            "log purged",
        )
        .await
        .unwrap();
    eprintln!("leader snapshot {:?}, purged {:?}", m.snapshot, m.purged);
    // The snapshot is a file of the leader's data directory, sent from it
    // chunk by chunk.
    let snap_file = |dir: std::path::PathBuf| dir.join("snapshots").join(format!("g{g}.snap"));
    let lagging_file = snap_file(c.data_dir(lagging));
    let image = std::fs::metadata(snap_file(c.data_dir(leader)))
        .unwrap()
        .len();
    assert!(
        image > 8 * chunk,
        "snapshot of {image} bytes fits in a few chunks"
    );

    c.restart(lagging).await;
    let target = c.applied(leader, g);
    c.wait_applied(lagging, g, target, Duration::from_secs(10))
        .await;
    let m = c.node(lagging).metrics(g).unwrap().borrow().clone();
    assert!(
        m.snapshot.is_some_and(|s| s.index >= compacted),
        "lagging node did not install a snapshot: {:?}",
        m.snapshot
    );
    // Received into a file of its own data directory, kept there.
    assert!(std::fs::metadata(&lagging_file).unwrap().len() > 8 * chunk);
    let have = c
        .node(lagging)
        .read(g, Consistency::Stale, |s| {
            aliases
                .iter()
                .filter(|a| s.process_by_alias(a).is_some())
                .count()
        })
        .await
        .unwrap();
    assert_eq!(have, aliases.len());
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applied_changes_are_announced_on_every_replica() {
    use canon_raft::store::sm::Applied;
    init_tracing();
    let c = Cluster::start(3, 1, RaftSettings::loopback()).await;
    c.bootstrap().await;
    let g = group_of_shard(0);
    let mut watchers: Vec<_> = (0..3)
        .map(|i| c.node(i).subscribe_applied(g).unwrap())
        .collect();
    let req = create("watched", 1);
    let fid = req.command.fid().unwrap();
    assert!(c.node(0).propose(g, req).await.unwrap().is_applied());
    // A rejected command (alias taken) changes nothing and is not announced.
    assert!(!c
        .node(0)
        .propose(g, create("watched", 2))
        .await
        .unwrap()
        .is_applied());
    let meta = canon_raft::Request::new(1, canon_raft::Command::ClusterCreated { shard_count: 1 });
    assert!(c
        .node(1)
        .propose(META_GROUP, meta)
        .await
        .unwrap()
        .is_applied());
    for (i, w) in watchers.iter_mut().enumerate() {
        let notice = tokio::time::timeout(Duration::from_secs(2), w.recv())
            .await
            .unwrap()
            .unwrap();
        match notice {
            Applied::Processes { fids, .. } => assert_eq!(fids, [fid].into(), "node {i}"),
            other => panic!("node {i}: {other:?}"),
        }
        assert!(
            w.try_recv().is_err(),
            "node {i}: the rejection was announced"
        );
    }
    let mut meta_watch = c.node(2).subscribe_applied(META_GROUP).unwrap();
    let again = canon_raft::Request::new(
        2,
        canon_raft::Command::MemberSet {
            node: 1,
            addr: "a".into(),
        },
    );
    assert!(c
        .node(1)
        .propose(META_GROUP, again)
        .await
        .unwrap()
        .is_applied());
    let notice = tokio::time::timeout(Duration::from_secs(2), meta_watch.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(notice, Applied::Cluster { .. }), "{notice:?}");
    c.shutdown().await;
}

/// A node whose log file was cut short (a damaged disk, a bad copy) must
/// not start with whatever can still be read: it stops with an error
/// naming the file, and the cluster carries on without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_data_file_stops_the_node_naming_it() {
    init_tracing();
    let shards = 1;
    let settings = RaftSettings {
        open_timeout: Duration::from_secs(10),
        ..RaftSettings::loopback()
    };
    let mut c = Cluster::start(3, shards, settings).await;
    c.bootstrap().await;
    let g = group_of_shard(0);
    let aliases = aliases_in(g, shards, 400, "t");
    for a in &aliases {
        assert!(c
            .node(0)
            .propose(g, create(a, 1))
            .await
            .unwrap()
            .is_applied());
    }
    // Let the nodes record what they hold (at most once a second, on a
    // flush).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(c
        .node(0)
        .propose(g, create("last", 1))
        .await
        .unwrap()
        .is_applied());
    let victim = 2;
    c.wait_applied(victim, g, c.applied(0, g), Duration::from_secs(5))
        .await;
    c.kill(victim).await;
    let file = newest_wal_segment(&c.data_dir(victim));
    let len = std::fs::metadata(&file).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    f.set_len(len / 3).unwrap();
    drop(f);

    let err = canon_raft::local::LocalCluster::restart(&mut c, victim)
        .await
        .expect_err("a truncated database started");
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(msg.contains(&file.display().to_string()), "{msg}");
    // The others still serve.
    assert!(c
        .node(0)
        .propose(g, create("after", 2))
        .await
        .unwrap()
        .is_applied());
    c.shutdown().await;
}

/// The newest segment of the write-ahead log in database directory `dir`.
fn newest_wal_segment(dir: &std::path::Path) -> std::path::PathBuf {
    let mut segments: Vec<_> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    segments.sort();
    segments.pop().unwrap()
}

/// Several groups' AppendEntries in one batch call: each gets its own
/// answer or its own error, as a call of its own would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_answers_each_group_on_its_own() {
    use canon_raft::grpc::GrpcTransport;
    use canon_raft::network::{BatchItem, Transport, TransportError};
    use canon_raft::types::{NodeId, TypeConfig};
    use openraft::error::RaftError;
    use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse};
    use tokio::sync::oneshot;

    init_tracing();
    let c = Cluster::start(1, 2, RaftSettings::loopback()).await;
    c.bootstrap().await;
    let addr = c.addr(0).unwrap().to_string();
    let id = canon_raft::local::id_of(0);
    // A heartbeat from a stale leader: answered (with a rejection).
    let stale = AppendEntriesRequest::<TypeConfig> {
        vote: openraft::Vote::new_committed(0, 99),
        prev_log_id: None,
        entries: vec![],
        leader_commit: None,
    };
    let heartbeat = canon_raft::codec::encode(&stale).unwrap();
    let mut answers = Vec::new();
    let mut items = Vec::new();
    for (group, payload) in [
        (group_of_shard(0), heartbeat.clone()),
        (999, heartbeat.clone()),
        (group_of_shard(1), b"not an AppendEntries".to_vec()),
        (META_GROUP, heartbeat),
    ] {
        let (reply, answer) = oneshot::channel();
        answers.push(answer);
        items.push(BatchItem {
            group,
            payload,
            timeout: Duration::from_secs(2),
            reply,
        });
    }
    let transport = GrpcTransport::new(Duration::from_millis(500));
    transport.call_batch(id, &addr, items).await;
    let mut got = Vec::new();
    for a in answers {
        got.push(a.await.expect("every item answered"));
    }
    for i in [0, 3] {
        let r: Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>> =
            canon_raft::codec::decode(got[i].as_ref().unwrap()).unwrap();
        assert!(r.is_ok(), "item {i}: {r:?}");
    }
    assert!(
        matches!(got[1], Err(TransportError::Unreachable { .. })),
        "unknown group: {:?}",
        got[1]
    );
    assert!(
        matches!(got[2], Err(TransportError::Failed { .. })),
        "bad payload: {:?}",
        got[2]
    );
    c.shutdown().await;
}

/// A follower that was away while large entries were written catches up by
/// log, not stuck resending one oversize AppendEntries: openraft gives each
/// AppendEntries one heartbeat to answer, so the log hands it a bounded
/// number of bytes, not `max_payload_entries` entries of any size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_catches_up_on_large_entries() {
    init_tracing();
    let shards = 1;
    let mut c = Cluster::start(3, shards, RaftSettings::loopback()).await;
    c.bootstrap().await;
    let g = group_of_shard(0);
    let leader = c.wait_leader(g, Duration::from_secs(2)).await;
    let away = (leader + 1) % 3;
    c.kill(away).await;

    // 600 entries of 64 KiB: 300 of them (the most one AppendEntries
    // carries) are 19 MiB, more than one heartbeat can carry and store.
    let composition_bytes = 64 * 1024;
    let aliases = aliases_in(g, shards, 600, "big");
    for chunk in aliases.chunks(50) {
        let writes = chunk.iter().map(|a| {
            let mut r = create(a, 1);
            if let canon_raft::Command::ProcessCreated { composition, .. } = &mut r.command {
                composition.bytes = vec![b'x'; composition_bytes];
            }
            c.node(leader).propose(g, r)
        });
        for r in futures::future::join_all(writes).await {
            assert!(r.unwrap().is_applied());
        }
    }
    let target = c.applied(leader, g);
    c.restart(away).await;
    c.wait_applied(away, g, target, Duration::from_secs(30))
        .await;
    c.shutdown().await;
}

/// A node restarting on its own data needs nothing from a peer: with its
/// log purged behind its own snapshots and every other node down, it
/// comes back holding every write (its snapshot plus the log after it),
/// before any leader exists to send it one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarts_whole_from_its_own_data_alone() {
    init_tracing();
    let settings = RaftSettings {
        snapshot_every: 20,
        keep_behind_snapshot: 0,
        ..RaftSettings::loopback()
    };
    let shards = 1;
    let mut c = Cluster::start(3, shards, settings).await;
    c.bootstrap().await;
    let g = group_of_shard(0);
    let leader = c.wait_leader(g, Duration::from_secs(2)).await;
    let aliases = aliases_in(g, shards, 50, "own");
    for a in &aliases {
        assert!(c
            .node(leader)
            .propose(g, create(a, 1))
            .await
            .unwrap()
            .is_applied());
    }
    let target = c.applied(leader, g);
    for i in 0..3 {
        c.wait_applied(i, g, target, Duration::from_secs(10)).await;
    }
    let alone = (leader + 1) % 3;
    let m = c.node(alone).metrics(g).unwrap().borrow().clone();
    assert!(
        m.snapshot.is_some_and(|s| s.index >= 20) && m.purged.is_some(),
        "its own snapshot, its log purged behind it: {:?} {:?}",
        m.snapshot,
        m.purged
    );
    // Its snapshot is a file of its own data directory.
    let own = c
        .data_dir(alone)
        .join("snapshots")
        .join(format!("g{g}.snap"));
    assert!(own.is_file(), "{}", own.display());
    for i in 0..3 {
        c.kill(i).await;
    }
    c.restart(alone).await;
    let have = c
        .node(alone)
        .read(g, Consistency::Stale, |s| {
            aliases
                .iter()
                .filter(|a| s.process_by_alias(a).is_some())
                .count()
        })
        .await
        .unwrap();
    assert_eq!(have, aliases.len(), "every write, from its own disk alone");
    let (applied, ()) = c.node(alone).read_applied(g, |_| ()).unwrap();
    assert_eq!(applied, target, "applied as far as before it went down");
    c.shutdown().await;
}

/// A fleet state of at least `processes` processes whose snapshot file
/// takes longer than `at_least` to decode (doubling the fleet until it
/// does): its size, the state and the decode time measured.
fn state_decoding_longer_than(
    at_least: Duration,
    mut processes: u64,
) -> (u64, canon_raft::state::CanonState, Duration) {
    use canon_raft::fleet_state::{fleet_state, FleetShape};
    use canon_raft::store::snap_files::{self, SnapFiles};
    let dir = tempfile::tempdir().unwrap();
    loop {
        let state = fleet_state(processes, FleetShape::DEFAULT_KEEP, 11);
        let files = SnapFiles::new(dir.path(), 1);
        files.prepare().unwrap();
        let meta = canon_raft::types::SnapshotMeta::default();
        let (temp, _) = files
            .write_temp("probe", &meta, state.snapshot_view())
            .unwrap();
        files.publish(&temp).unwrap();
        let file = files.current();
        let started = Instant::now();
        snap_files::read_file(&file, std::fs::File::open(&file).unwrap()).unwrap();
        let decode = started.elapsed();
        if decode > at_least || processes >= 64_000 {
            assert!(
                decode > at_least,
                "{processes} processes decode in {decode:?}"
            );
            return (processes, state, decode);
        }
        processes *= 2;
    }
}

/// A follower whose install of a snapshot outlasts the chunk timeout many
/// times over gets it once: the leader's last chunk is answered before the
/// install ends, and the leader asks until it is done instead of sending
/// it all again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_installing_longer_than_the_chunk_timeout_is_sent_once() {
    use canon_raft::store::snap_files::{self, SnapFiles};
    use canon_raft::types::{LogId, SnapshotMeta};
    init_tracing();
    let chunk_timeout = Duration::from_millis(500);
    // Installing must take many chunk timeouts (decoding alone, here):
    // the state grows until decoding it does, however fast this machine
    // and build are.
    let (processes, state, decode) = state_decoding_longer_than(4 * chunk_timeout, 600);
    eprintln!("decoding the snapshot of {processes} processes takes {decode:?}");
    let settings = RaftSettings {
        snapshot_every: u64::MAX / 2,
        snapshot_chunk_bytes: 256 * 1024,
        snapshot_chunk_timeout: chunk_timeout,
        ..RaftSettings::loopback()
    };
    let mut c = Cluster::start(3, 1, settings).await;
    c.bootstrap().await;
    let g = group_of_shard(0);
    let leader = c.wait_leader(g, Duration::from_secs(5)).await;
    let lagging = (leader + 1) % 3;
    let m = c.node(leader).metrics(g).unwrap().borrow().clone();
    let last = c.applied(leader, g);
    for i in 0..3 {
        c.wait_applied(i, g, last, Duration::from_secs(5)).await;
    }
    for i in 0..3 {
        c.kill(i).await;
    }
    // Two nodes "applied" a large state after those entries (their
    // snapshot says so); the third must install it from the leader.
    let index = last + 10;
    let meta = SnapshotMeta {
        last_log_id: Some(LogId::new(
            openraft::CommittedLeaderId::new(m.current_term, m.id),
            index,
        )),
        last_membership: (*m.membership_config).clone(),
        snapshot_id: format!("large-{index}"),
    };
    for i in (0..3).filter(|i| *i != lagging) {
        let files = SnapFiles::new(&c.data_dir(i), g);
        files.prepare().unwrap();
        let (temp, _) = files
            .write_temp("test", &meta, state.snapshot_view())
            .unwrap();
        files.publish(&temp).unwrap();
    }
    let file = SnapFiles::new(&c.data_dir(leader), g).current();
    let image = snap_files::read_file(&file, std::fs::File::open(&file).unwrap()).unwrap();
    assert_eq!(image.state, state);
    for i in (0..3).filter(|i| *i != lagging) {
        c.restart(i).await;
    }
    let leader = c.wait_leader(g, Duration::from_secs(10)).await;
    c.restart(lagging).await;
    c.wait_applied(lagging, g, index, Duration::from_secs(120))
        .await;
    let have = c
        .node(lagging)
        .read(g, Consistency::Stale, |s| s.processes.len())
        .await
        .unwrap();
    assert_eq!(have as u64, processes);
    let m = c.node(lagging).metrics(g).unwrap().borrow().clone();
    assert!(m.snapshot.is_some_and(|s| s.index >= index), "{m:?}");
    // Sent once; a little longer, and still once.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let to = canon_raft::local::id_of(lagging);
    assert_eq!(c.node(leader).snapshots_sent(g, to).unwrap(), 1);
    c.shutdown().await;
}

/// Commands proposed together in order apply in that order, answered in
/// order, whether the node asked leads the group (they go to its log back
/// to back) or not (they are sent one after another): the first of two
/// creates of one alias takes it, the second is refused, every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_proposed_in_order_apply_in_order() {
    init_tracing();
    let shards = 2;
    let c = Cluster::start(3, shards, RaftSettings::loopback()).await;
    c.bootstrap().await;
    let g = group_of_shard(1);
    let leader = c.wait_leader(g, Duration::from_secs(10)).await;
    let follower = (leader + 1) % 3;
    let aliases = aliases_in(g, shards, 20, "o");
    for (k, alias) in aliases.iter().enumerate() {
        let via = if k % 2 == 0 { leader } else { follower };
        let (first, second) = (create(alias, 1), create(alias, 2));
        let first_fid = match &first.command {
            canon_raft::Command::ProcessCreated { fid, .. } => *fid,
            other => panic!("{other:?}"),
        };
        let answers = c
            .node(via)
            .propose_in_order(g, vec![first, second])
            .await
            .unwrap();
        assert_eq!(answers.len(), 2);
        assert!(answers[0].is_applied(), "{alias} via {via}: {answers:?}");
        assert!(!answers[1].is_applied(), "{alias} via {via}: {answers:?}");
        let holder = c
            .node(via)
            .read(g, Consistency::Linearizable, |s| {
                s.aliases.get(alias).copied()
            })
            .await
            .unwrap();
        assert_eq!(
            holder,
            Some(first_fid),
            "{alias}: the first create holds it"
        );
    }
    c.shutdown().await;
}
