//! `kill -9` of real node processes: three processes on 127.0.0.1 (this test
//! binary re-run as a node), a client writing the whole time; the leader is
//! killed, then every node at once; after restarts every acknowledged write
//! is still there.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use canon_model::Fid;
use canon_raft::grpc::{serve, GrpcTransport};
use canon_raft::shard::group_of_shard;
use canon_raft::{
    find_leader, propose_via, Command as Cmd, Composition, NodeConfig, NodeId, RaftNode,
    RaftSettings, Rejection, Request, Response, Storage,
};
use common::{aliases_in, create};
use serde::{Deserialize, Serialize};

const CHILD_ENV: &str = "CANON_RAFT_CRASH_CHILD";
const SHARDS: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ChildSpec {
    id: NodeId,
    addr: String,
    dir: std::path::PathBuf,
    members: Vec<(NodeId, String)>,
    initialize: bool,
}

/// A node process when started by the test below; otherwise does nothing.
#[test]
fn crash_child_node() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let spec: ChildSpec = serde_json::from_str(&spec).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let listener = loop {
            match tokio::net::TcpListener::bind(&spec.addr).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        let node = RaftNode::start_grpc(NodeConfig {
            id: spec.id,
            addr: spec.addr.clone(),
            storage: Storage::Sled(spec.dir.clone()),
            shard_count: SHARDS,
            settings: RaftSettings::loopback(),
            link_faults: None,
            threads: canon_raft::RaftThreads::default(),
        })
        .await
        .unwrap();
        if spec.initialize {
            let n = node.clone();
            let members = spec.members.iter().cloned().collect();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                n.initialize(&members).await.unwrap();
            });
        }
        serve(node.grpc_service(), listener, std::future::pending())
            .await
            .unwrap();
    });
}

/// Node processes, killed (SIGKILL) when dropped.
struct Procs {
    specs: Vec<ChildSpec>,
    children: Vec<Option<Child>>,
}

impl Procs {
    fn spawn(&mut self, i: usize) {
        let child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_child_node",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_ENV, serde_json::to_string(&self.specs[i]).unwrap())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.children[i] = Some(child);
    }

    /// SIGKILL: no shutdown code runs.
    fn kill9(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill9(i);
        }
    }
}

fn free_port_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let members: Vec<(NodeId, String)> = (1..=3).map(|id| (id, free_port_addr())).collect();
    let specs: Vec<ChildSpec> = members
        .iter()
        .map(|(id, addr)| ChildSpec {
            id: *id,
            addr: addr.clone(),
            dir: dir.path().join(format!("node-{id}")),
            members: members.clone(),
            initialize: *id == 1,
        })
        .collect();
    let mut procs = Procs {
        children: (0..specs.len()).map(|_| None).collect(),
        specs,
    };
    for i in 0..3 {
        procs.spawn(i);
    }

    let g = group_of_shard(0);
    let transport = GrpcTransport::new(Duration::from_millis(200));
    let call = Duration::from_millis(500);
    let aliases = aliases_in(g, SHARDS, 2000, "k9");
    let mut names = aliases.iter();
    let mut acked: Vec<String> = Vec::new();

    // Writes while the cluster runs, through a leader kill and a total kill.
    // (Writes run one at a time so that "acknowledged" is exact.)
    async fn write_for(
        transport: &GrpcTransport,
        members: &[(NodeId, String)],
        g: u64,
        names: &mut std::slice::Iter<'_, String>,
        acked: &mut Vec<String>,
        how_long: Duration,
        limit: Duration,
    ) {
        let until = tokio::time::Instant::now() + how_long;
        while tokio::time::Instant::now() < until {
            let a = names.next().unwrap();
            match propose_via(
                transport,
                members,
                g,
                &create(a, 1),
                Duration::from_millis(500),
                limit,
            )
            .await
            {
                Ok(Response::Applied) => acked.push(a.clone()),
                Ok(other) => panic!("{a}: {other:?}"),
                Err(_) => {}
            }
        }
    }

    // The cluster comes up (first write may wait for the election).
    write_for(
        &transport,
        &members,
        g,
        &mut names,
        &mut acked,
        Duration::from_millis(500),
        Duration::from_secs(20),
    )
    .await;
    assert!(!acked.is_empty(), "cluster never came up");

    let leader = find_leader(&transport, &members, g, call)
        .await
        .expect("a leader");
    let li = (leader - 1) as usize;
    procs.kill9(li);
    let before = acked.len();
    write_for(
        &transport,
        &members,
        g,
        &mut names,
        &mut acked,
        Duration::from_secs(2),
        Duration::from_secs(5),
    )
    .await;
    assert!(
        acked.len() > before,
        "no write acknowledged after the leader was killed"
    );
    procs.spawn(li);
    write_for(
        &transport,
        &members,
        g,
        &mut names,
        &mut acked,
        Duration::from_millis(500),
        Duration::from_secs(5),
    )
    .await;

    // Everyone at once, mid-stream.
    let stream = {
        let transport = GrpcTransport::new(Duration::from_millis(200));
        let members = members.clone();
        let rest: Vec<String> = names.clone().cloned().collect();
        tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut it = rest.iter();
            write_for(
                &transport,
                &members,
                g,
                &mut it,
                &mut acked,
                Duration::from_secs(1),
                Duration::from_millis(300),
            )
            .await;
            acked
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..3 {
        procs.kill9(i);
    }
    acked.extend(stream.await.unwrap());
    for i in 0..3 {
        procs.spawn(i);
    }

    // Every acknowledged alias is still claimed: creating it again is refused.
    for a in &acked {
        let again = Request::new(
            2,
            Cmd::ProcessCreated {
                imports: Default::default(),
                fid: Fid::random(),
                alias: a.clone(),
                account: "x".into(),
                composition: Composition {
                    bytes: vec![],
                    source_hash: String::new(),
                },
                tick_interval_ms: None,
            },
        );
        let r = propose_via(
            &transport,
            &members,
            g,
            &again,
            call,
            Duration::from_secs(20),
        )
        .await
        .unwrap();
        assert!(
            matches!(r, Response::Rejected(Rejection::AliasTaken { .. })),
            "acknowledged {a} lost: {r:?}"
        );
    }
    eprintln!(
        "{} acknowledged writes survived kill -9 of the leader and of every node",
        acked.len()
    );
}
