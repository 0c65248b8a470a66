//! A turmoil simulation: three nodes (memory disks that outlive the hosts,
//! gRPC over turmoil TCP), a client writing through the network, the
//! leader partitioned away and healed. Afterwards every node holds exactly
//! the acknowledged writes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use canon_raft::shard::group_of_shard;
use canon_raft::store::MemDisk;
use canon_raft::turmoil_net::{serve, TurmoilTransport, PORT};
use canon_raft::{
    propose_via, Consistency, NodeConfig, NodeId, RaftNode, RaftSettings, RaftThreads, Storage,
};
use common::{aliases_in, create};

const HOSTS: [&str; 3] = ["n1", "n2", "n3"];

fn sim_settings() -> RaftSettings {
    RaftSettings {
        heartbeat: Duration::from_millis(50),
        election_min: Duration::from_millis(300),
        election_max: Duration::from_millis(600),
        forward_timeout: Duration::from_millis(500),
        propose_timeout: Duration::from_secs(2),
        ..RaftSettings::loopback()
    }
}

fn members() -> BTreeMap<NodeId, String> {
    HOSTS
        .iter()
        .enumerate()
        .map(|(i, h)| (i as NodeId + 1, format!("{h}:{PORT}")))
        .collect()
}

/// What a simulated run observed, for invariants and replay.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Trace {
    old_leader: NodeId,
    new_leader: Option<NodeId>,
    /// Per node: term and last applied index of the shard group at the end.
    terms: Vec<(NodeId, u64, Option<u64>)>,
}

#[test]
fn partitioned_leader_loses_nothing_acknowledged() {
    for seed in [1, 2] {
        let t = simulate(seed);
        assert!(t.new_leader.is_some_and(|l| l != t.old_leader), "{t:?}");
    }
}

#[test]
fn same_seed_same_run() {
    let a = simulate(7);
    let b = simulate(7);
    assert_eq!(a, b);
}

/// Runs the scenario and checks that every node ends with exactly the
/// acknowledged writes.
fn simulate(seed: u64) -> Trace {
    common::init_tracing();
    canon_raft::runtime::seed_election_rng(seed);
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(120))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(5))
        .build();

    let handles: Arc<Mutex<BTreeMap<NodeId, RaftNode>>> = Arc::default();
    let disks: Vec<MemDisk> = HOSTS.iter().map(|_| MemDisk::new()).collect();
    let shards = 1;
    let g = group_of_shard(0);

    for (i, host) in HOSTS.iter().enumerate() {
        let id = i as NodeId + 1;
        let disk = disks[i].clone();
        let handles = handles.clone();
        sim.host(*host, move || {
            let disk = disk.clone();
            let handles = handles.clone();
            async move {
                let node = RaftNode::start(
                    NodeConfig {
                        id,
                        addr: format!("{}:{PORT}", HOSTS[i]),
                        storage: Storage::Memory(disk),
                        shard_count: shards,
                        settings: sim_settings(),
                        link_faults: None,
                        // One thread, deterministic: everything on the caller's.
                        threads: RaftThreads::Caller,
                    },
                    Arc::new(TurmoilTransport::default()),
                )
                .await?;
                handles.lock().unwrap().insert(id, node.clone());
                if id == 1 {
                    let n = node.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        n.initialize(&members()).await.expect("initialize");
                    });
                }
                serve(node.grpc_service()).await
            }
        });
    }

    let outcome: Arc<Mutex<(Vec<String>, Vec<String>)>> = Arc::default();
    let leaders: Arc<Mutex<(NodeId, Option<NodeId>)>> = Arc::default();
    {
        let handles = handles.clone();
        let outcome = outcome.clone();
        let leaders = leaders.clone();
        sim.client("client", async move {
            let transport = TurmoilTransport::default();
            let nodes: Vec<(NodeId, String)> = members().into_iter().collect();
            let aliases = aliases_in(g, shards, 200, "sim");
            let mut names = aliases.into_iter();
            let mut acked = Vec::new();
            let mut unacked = Vec::new();
            let call = Duration::from_millis(500);

            // Before the partition: everything is acknowledged.
            tokio::time::sleep(Duration::from_secs(2)).await;
            for _ in 0..20 {
                let a = names.next().unwrap();
                let r = propose_via(
                    &transport,
                    &nodes,
                    g,
                    &create(&a, 1),
                    call,
                    Duration::from_secs(5),
                )
                .await?;
                assert!(r.is_applied());
                acked.push(a);
            }

            // Cut the leader off from the other nodes and from the client.
            let leader = {
                let h = handles.lock().unwrap();
                h.values()
                    .find(|n| n.leadership(g).unwrap().borrow().is_me)
                    .map(|n| n.id())
                    .expect("a leader")
            };
            let lhost = HOSTS[leader as usize - 1];
            for h in HOSTS.iter().chain(["client"].iter()) {
                if *h != lhost {
                    turmoil::partition(lhost, *h);
                }
            }
            // Writes sent to the isolated leader alone cannot commit.
            let isolated = vec![(leader, format!("{lhost}:{PORT}"))];
            for _ in 0..3 {
                let a = names.next().unwrap();
                match propose_via(
                    &transport,
                    &isolated,
                    g,
                    &create(&a, 2),
                    call,
                    Duration::from_secs(1),
                )
                .await
                {
                    Ok(r) => panic!("isolated leader acknowledged {a}: {r:?}"),
                    Err(_) => unacked.push(a),
                }
            }
            // The majority elects a new leader and keeps acknowledging.
            let majority: Vec<_> = nodes
                .iter()
                .filter(|(id, _)| *id != leader)
                .cloned()
                .collect();
            let cut_at = tokio::time::Instant::now();
            for k in 0..20 {
                if k == 1 {
                    eprintln!(
                        "sim: majority acknowledged {:?} after the partition",
                        cut_at.elapsed()
                    );
                }
                let a = names.next().unwrap();
                let r = propose_via(
                    &transport,
                    &majority,
                    g,
                    &create(&a, 3),
                    call,
                    Duration::from_secs(10),
                )
                .await?;
                assert!(r.is_applied());
                acked.push(a);
            }
            let new_leader = {
                let h = handles.lock().unwrap();
                h.values()
                    .filter(|n| n.id() != leader)
                    .find(|n| n.leadership(g).unwrap().borrow().is_me)
                    .map(|n| n.id())
            };
            *leaders.lock().unwrap() = (leader, new_leader);
            // Heal and let the old leader catch up.
            for h in HOSTS.iter().chain(["client"].iter()) {
                if *h != lhost {
                    turmoil::repair(lhost, *h);
                }
            }
            for _ in 0..5 {
                let a = names.next().unwrap();
                let r = propose_via(
                    &transport,
                    &nodes,
                    g,
                    &create(&a, 4),
                    call,
                    Duration::from_secs(10),
                )
                .await?;
                assert!(r.is_applied());
                acked.push(a);
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
            *outcome.lock().unwrap() = (acked, unacked);
            Ok(())
        });
    }

    sim.run().unwrap();

    let (acked, unacked) = outcome.lock().unwrap().clone();
    assert_eq!(acked.len(), 45);
    let acked_set: BTreeSet<String> = acked.into_iter().collect();
    let handles = handles.lock().unwrap();
    assert_eq!(handles.len(), 3);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (id, node) in handles.iter() {
        let present: BTreeSet<String> = rt
            .block_on(node.read(g, Consistency::Stale, |s| {
                s.aliases.keys().cloned().collect()
            }))
            .unwrap();
        assert_eq!(present, acked_set, "seed {seed} node {id}");
        for a in &unacked {
            assert!(
                !present.contains(a),
                "seed {seed}: node {id} has unacknowledged {a}"
            );
        }
    }
    let (old_leader, new_leader) = *leaders.lock().unwrap();
    let terms = handles
        .iter()
        .map(|(id, n)| {
            let m = n.metrics(g).unwrap().borrow().clone();
            (*id, m.current_term, m.last_applied.map(|l| l.index))
        })
        .collect();
    let trace = Trace {
        old_leader,
        new_leader,
        terms,
    };
    eprintln!("seed {seed}: {trace:?}");
    trace
}
