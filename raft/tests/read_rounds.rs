//! Linearizable reads share their leader's leadership confirmations
//! (`node::read_rounds`): many reads at once cost a few heartbeat rounds,
//! not one round each, and every read, on the leader or a follower, still
//! sees every write acknowledged before it was asked.

mod common;

use std::time::Duration;

use canon_raft::command::{Command, Request};
use canon_raft::{Consistency, RaftSettings};
use common::cuttable::{wait_acting_leader, CutCluster};

/// Writes acknowledged before the reads, and reads asked at once.
const WRITES: u64 = 100;
const READS: u64 = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_linearizable_reads_share_confirmations_and_see_acknowledged_writes() {
    let settings = RaftSettings::loopback();
    let c = CutCluster::start(&settings, 1).await;
    c.nodes[&1].initialize(&c.addrs).await.unwrap();
    let group = 1;
    let leader = wait_acting_leader(&c.nodes, group, Duration::from_secs(10)).await;
    for key in 0..WRITES {
        let put = Command::BenchPut {
            key,
            value: vec![1; 16],
        };
        c.nodes[&leader]
            .propose(group, Request::new(key, put))
            .await
            .unwrap();
    }

    let sent_before = c.appends_sent(leader);
    let mut reads = Vec::new();
    for i in 0..READS {
        // Spread over the three nodes: a follower's read asks the leader
        // for the read index, then waits until it applied that far.
        let node = c.nodes[&(i % 3 + 1)].clone();
        reads.push(tokio::spawn(async move {
            node.read(group, Consistency::Linearizable, |s| {
                s.bench_values.len() as u64
            })
            .await
            .unwrap()
        }));
    }
    for r in reads {
        let seen = r.await.unwrap();
        assert_eq!(seen, WRITES, "a read missed an acknowledged write");
    }
    let sent = c.appends_sent(leader) - sent_before;
    println!("{sent} AppendEntries from the leader for {READS} reads");
    // A round of its own for each read would be 2 × READS AppendEntries
    // (two followers); shared, a few rounds and the heartbeats.
    assert!(
        sent < READS,
        "{sent} AppendEntries from the leader for {READS} reads: they did not share confirmations"
    );
    c.shutdown().await;
}
