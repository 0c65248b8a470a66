//! Raft keeps its pace when the application's runtime is busy (issue #19).
//!
//! Three nodes in one process, opened from the test's runtime (2 workers,
//! like a small node). For about five seconds tasks that do not yield for
//! 300–800 ms keep both workers busy, one after another, as thousands of
//! actors or a CPU-heavy call would, while every shard is written through
//! every node. Heartbeats and AppendEntries run on the nodes' own Raft
//! threads, so no follower calls an election and no write fails.

mod common;

use std::time::{Duration, Instant};

use canon_raft::shard::group_of_shard;
use canon_raft::{GroupId, RaftSettings};
use common::{aliases_in, create, init_tracing, Cluster};

const SHARDS: u32 = 4;
const NODES: usize = 3;
/// How long the test runtime's workers are kept busy.
const BUSY_FOR: Duration = Duration::from_secs(5);
/// Workers of the test's runtime (see the `tokio::test` attribute).
const WORKERS: usize = 2;

/// Every group's highest term among the nodes.
fn terms(c: &Cluster) -> Vec<(GroupId, u64)> {
    c.groups()
        .into_iter()
        .map(|g| {
            let term = (0..NODES)
                .map(|i| c.node(i).metrics(g).unwrap().borrow().current_term)
                .max()
                .unwrap_or(0);
            (g, term)
        })
        .collect()
}

/// Holds the worker it runs on for `d` without yielding to Tokio (it lets
/// the OS run other threads: the machine's cores are not the point).
fn hold_worker(d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        std::thread::yield_now();
    }
}

/// Keeps one worker busy until `until`: blocking tasks of 300–800 ms, one
/// after another (20 ms apart, so that the writes go on too).
async fn hog(seed: u64, until: Instant) {
    let mut k = seed;
    while Instant::now() < until {
        k = k
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let d = Duration::from_millis(300 + (k >> 33) % 501);
        let _ = tokio::spawn(async move { hold_worker(d) }).await;
        // A breath between blocks, in which the writers' tasks run.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_succeed_and_terms_hold_while_the_runtime_is_busy() {
    init_tracing();
    let c = Cluster::start(NODES, SHARDS, RaftSettings::loopback()).await;
    c.bootstrap().await;
    // Leaders settled and every group written once before the load.
    for s in 0..SHARDS {
        let g = group_of_shard(s);
        let alias = &aliases_in(g, SHARDS, 1, "warm")[0];
        assert!(c
            .node(0)
            .propose(g, create(alias, 0))
            .await
            .unwrap()
            .is_applied());
    }
    let before = terms(&c);

    let until = Instant::now() + BUSY_FOR;
    let hogs: Vec<_> = (0..WORKERS as u64)
        .map(|w| tokio::spawn(hog(w + 1, until)))
        .collect();

    // Rounds of one write per shard through every node, all at once.
    let aliases: Vec<Vec<String>> = (0..SHARDS)
        .map(|s| aliases_in(group_of_shard(s), SHARDS, 3_000, "busy"))
        .collect();
    let (mut written, mut failed, mut slowest) = (0usize, Vec::new(), Duration::ZERO);
    let mut round = 0usize;
    let most_rounds = aliases[0].len() / NODES;
    while Instant::now() < until && round < most_rounds {
        let mut calls = Vec::new();
        for s in 0..SHARDS {
            let g = group_of_shard(s);
            for i in 0..NODES {
                let node = c.node(i).clone();
                let alias = aliases[s as usize][round * NODES + i].clone();
                let at = (round * NODES + i) as u64 + 1;
                calls.push(tokio::spawn(async move {
                    let started = Instant::now();
                    let r = node.propose(g, create(&alias, at)).await;
                    (g, i, r, started.elapsed())
                }));
            }
        }
        for call in calls {
            let (g, i, r, took) = call.await.unwrap();
            slowest = slowest.max(took);
            match r {
                Ok(r) if r.is_applied() => written += 1,
                other => failed.push(format!("group {g} via node {i}: {other:?}")),
            }
        }
        round += 1;
    }
    for h in hogs {
        h.await.unwrap();
    }
    let after = terms(&c);
    eprintln!(
        "busy runtime: {written} writes in {round} rounds, slowest {slowest:?}; \
         terms before {before:?}, after {after:?}"
    );

    assert!(failed.is_empty(), "writes failed: {failed:#?}");
    // Writes went on all along, not once or twice.
    assert!(round >= 3, "only {round} rounds of writes");
    for ((g, t0), (_, t1)) in before.iter().zip(&after) {
        assert!(
            *t1 <= t0 + 1,
            "group {g}: term rose from {t0} to {t1} while the runtime was busy"
        );
    }
    c.shutdown().await;
}
