//! The cluster as an operator sees it, on a 3-node loopback dev cluster:
//! `cluster status` from any node reports every group as its leader sees it
//! (with each follower's lag); events arrive as soon as a change commits;
//! a fourth node joins, shows in cluster status and serves; a member is
//! removed with `canon cluster remove` (through itself) while a process
//! runs, and the shards keep three voters on the nodes that stay; real
//! `canond` processes removed from their cluster (one through itself, one
//! while it was down and then restarted) say so and exit. The dev clusters
//! require signed reads, which the SDK makes with its key.

use std::time::{Duration, Instant};

use canon_client::{pb, Client, Signer};
use canon_node::dev::{DevCluster, DevOptions};

mod support;

fn composition() -> pb::CompiledComposition {
    let out = canon_lang::compile_file(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/bench/one-vpc.lw"),
        canon_lang::Options::default(),
    )
    .unwrap();
    let c = out.compiled.unwrap();
    pb::CompiledComposition {
        bytes: c.encode(),
        source_hash: c.source_hash.clone(),
    }
}

async fn dev(dir: &std::path::Path, shards: u32) -> DevCluster {
    DevCluster::start(DevOptions {
        tick: Duration::from_secs(60),
        shards,
        // Every read these tests make is signed (the SDK signs with its key).
        tls: false,
        ..DevOptions::new(dir)
    })
    .await
    .unwrap()
}

fn client(cluster: &DevCluster, endpoints: &[String]) -> Client {
    let signer = Signer::from_file("admin", &cluster.admin_key).unwrap();
    Client::connect(endpoints).unwrap().with_signer(signer)
}

/// Every group has a leader that answered for it, and it reports every
/// other voter as a follower it has heard from.
fn whole(s: &pb::ClusterStatusReply, members: usize) -> Result<(), String> {
    if s.members.len() != members || !s.members.iter().all(|m| m.reachable) {
        return Err(format!("members: {:?}", s.members));
    }
    for g in &s.groups {
        if g.leader == 0 || g.reported_by != g.leader {
            return Err(format!(
                "group {} not reported by its leader: {g:?}",
                g.group
            ));
        }
        let mut followers: Vec<u64> = g.followers.iter().map(|f| f.node).collect();
        followers.sort_unstable();
        let mut want: Vec<u64> = g
            .voters
            .iter()
            .copied()
            .filter(|v| *v != g.leader)
            .collect();
        want.extend(g.learners.iter().copied());
        want.sort_unstable();
        if followers != want || !g.followers.iter().all(|f| f.matched_known) {
            return Err(format!("group {} followers: {g:?}", g.group));
        }
    }
    Ok(())
}

/// Every group holds exactly `members` (voters or learners, out of any
/// joint configuration), each shard with three voters and the meta group
/// with all of them: a join or removal has finished.
fn settled(s: &pb::ClusterStatusReply, members: &[u64]) -> bool {
    s.groups.iter().all(|g| {
        let mut all: Vec<u64> = g.voters.iter().chain(&g.learners).copied().collect();
        all.sort_unstable();
        let voters = if g.group == 0 { members.len() } else { 3 };
        all == members && g.voters.len() == voters
    })
}

/// Waits until cluster status through `c` shows `members`, each answering,
/// and every group settled over them.
async fn wait_settled(c: &Client, members: &[u64], groups: usize) -> pb::ClusterStatusReply {
    let started = Instant::now();
    loop {
        let s = wait_whole(c, members.len(), groups).await;
        let listed: Vec<u64> = s.members.iter().map(|m| m.node).collect();
        if listed == members && settled(&s, members) {
            return s;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{s:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_whole(c: &Client, members: usize, groups: usize) -> pb::ClusterStatusReply {
    let started = Instant::now();
    loop {
        let s = c.cluster_status().await.unwrap();
        match whole(&s, members) {
            Ok(()) if s.groups.len() == groups => return s,
            Ok(()) => {}
            Err(e) if started.elapsed() > Duration::from_secs(30) => panic!("{e}"),
            Err(_) => {}
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{s:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_status_from_any_node_shows_every_leader_and_follower_lag() {
    let tmp = tempfile::tempdir().unwrap();
    let cluster = dev(tmp.path(), 2).await;
    let sdk = client(&cluster, &cluster.endpoints);
    sdk.run("lagging", composition(), false).await.unwrap();
    let group = sdk.status("lagging", false).await.unwrap().processes[0].group;
    // Asked through each node in turn: at least two of them lead nothing
    // of some group, so only asking the leaders gives the lag.
    for endpoint in &cluster.endpoints {
        let c = client(&cluster, std::slice::from_ref(endpoint));
        let s = wait_whole(&c, 3, 3).await;
        let shard = s.groups.iter().find(|g| g.group == group).unwrap();
        assert!(shard.applied_index > 0, "{shard:?}");
        // The placement the cluster was created with is recorded, and it
        // is the one it really has.
        assert_eq!(s.placement.len(), 2, "{s:?}");
        for p in &s.placement {
            let g = s.groups.iter().find(|g| g.group == p.group).unwrap();
            assert_eq!(p.replicas, g.voters, "{s:?}");
        }
        for f in &shard.followers {
            assert!(f.matched_index <= shard.last_log_index, "{shard:?}");
            assert_eq!(f.lag, shard.last_log_index - f.matched_index, "{shard:?}");
        }
    }
    cluster.shutdown().await;
}

async fn next_event(stream: &mut tonic::Streaming<pb::Event>) -> pb::Event {
    tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("an event within 5 s of the commit")
        .unwrap()
        .expect("the stream goes on")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_arrives_as_soon_as_the_change_commits() {
    let tmp = tempfile::tempdir().unwrap();
    let cluster = dev(tmp.path(), 2).await;
    let sdk = client(&cluster, &cluster.endpoints);
    // This cluster requires signed reads: a client without a key is refused.
    let anonymous = Client::connect(&cluster.endpoints).unwrap();
    assert!(
        matches!(
            anonymous.status("", false).await,
            Err(canon_client::ClientError::Unauthenticated(_))
        ),
        "an unsigned read passed"
    );
    assert!(anonymous.events("prompt").await.is_err());
    let mut mine = sdk.events("prompt").await.unwrap();
    let mut all = sdk.events("").await.unwrap();
    let sent = Instant::now();
    let reply = sdk.run("prompt", composition(), false).await.unwrap();
    sdk.run("someone-else", composition(), false).await.unwrap();
    let committed = sent.elapsed();
    let job = reply.job;
    // With a 60 s tick nothing else happens: the events are the commands'.
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        let e = next_event(&mut mine).await;
        assert_eq!(e.alias, "prompt", "{e:?}");
        kinds.push(e.kind.clone());
        if e.kind == "job.started" {
            assert_eq!(e.job.as_ref().map(|j| j.id), Some(job), "{e:?}");
        }
    }
    assert_eq!(
        kinds,
        ["process.state", "job.started"],
        "after {committed:?}"
    );
    // The stream of every process carries both. Each process has at most
    // four events here (its state, its RUN job started and finished, its
    // first SYSTEM job started), and prompt's actor may finish all four
    // before someone-else is even created: so up to eight.
    let mut aliases = Vec::new();
    for _ in 0..8 {
        aliases.push(next_event(&mut all).await.alias);
        if aliases.iter().any(|a| a == "someone-else") {
            break;
        }
    }
    aliases.sort();
    aliases.dedup();
    assert_eq!(aliases, ["prompt", "someone-else"]);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_resumed_on_another_node_gets_what_it_missed_once() {
    let tmp = tempfile::tempdir().unwrap();
    let cluster = dev(tmp.path(), 2).await;
    let sdk = client(&cluster, &cluster.endpoints);
    let via_first = client(&cluster, &cluster.endpoints[..1]);
    let via_second = client(&cluster, &cluster.endpoints[1..2]);
    let mut stream = via_first.events("").await.unwrap();
    sdk.run("first", composition(), false).await.unwrap();
    let mut before = Vec::new();
    loop {
        let e = next_event(&mut stream).await;
        assert!(
            !e.cursor.is_empty(),
            "every event names its position: {e:?}"
        );
        before.push(e.clone());
        if e.alias == "first" && e.kind == "job.started" {
            break;
        }
    }
    let cursor = before.last().unwrap().cursor.clone();
    drop(stream);
    // While nobody listens.
    sdk.run("second", composition(), false).await.unwrap();
    // Positions are Raft indices, the same on every replica: another node
    // resumes where the first left off.
    let mut resumed = via_second.events_after("", &cursor).await.unwrap();
    let key = |e: &pb::Event| {
        (
            e.alias.clone(),
            e.kind.clone(),
            e.job.as_ref().map(|j| j.id),
            e.state.clone(),
        )
    };
    let mut after = Vec::new();
    loop {
        let e = next_event(&mut resumed).await;
        assert_ne!(e.kind, "events.gap", "{cursor} is held: {e:?}");
        assert!(
            !before.iter().any(|b| key(b) == key(&e)),
            "{e:?} came twice"
        );
        after.push(e.clone());
        if e.alias == "second" && e.kind == "job.started" {
            break;
        }
    }
    assert!(
        after
            .iter()
            .any(|e| e.alias == "second" && e.kind == "process.state"),
        "{after:?}"
    );
    // A position this node does not hold (it names none of the shards)
    // starts with a gap, then goes on live; one it cannot read is refused.
    let mut gap = via_second.events_after("", "0:0").await.unwrap();
    let first = next_event(&mut gap).await;
    assert_eq!(first.kind, "events.gap", "{first:?}");
    assert!(!first.cursor.is_empty(), "{first:?}");
    assert!(via_second.events_after("", "yesterday").await.is_err());
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fourth_node_joins_shows_in_cluster_status_and_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cluster = dev(tmp.path(), 4).await;
    let sdk = client(&cluster, &cluster.endpoints);
    sdk.run("before-join", composition(), false).await.unwrap();
    let fourth = cluster.add_node().await.unwrap();
    let via_fourth = client(&cluster, std::slice::from_ref(&fourth));
    let s = wait_whole(&via_fourth, 4, 5).await;
    assert_eq!(s.node, 4);
    let holds: Vec<u64> = s
        .groups
        .iter()
        .filter(|g| g.voters.contains(&4))
        .map(|g| g.group)
        .collect();
    // Four nodes, four shards, three replicas: at most three shards per
    // node, and the newcomer takes its share.
    assert!(holds.contains(&0), "a meta voter: {s:?}");
    assert_eq!(holds.len(), 4, "meta and three shards: {s:?}");
    for g in s.groups.iter().filter(|g| g.group != 0) {
        assert_eq!(g.voters.len(), 3, "{g:?}");
    }
    // It serves: reads and commands through it alone, for every shard.
    for i in 0..8 {
        via_fourth
            .run(&format!("after-join-{i}"), composition(), false)
            .await
            .unwrap();
    }
    let status = via_fourth.status("", false).await.unwrap();
    assert_eq!(status.processes.len(), 9, "{status:?}");
    cluster.shutdown().await;
}

/// `canon cluster remove ARGS... --json` against the endpoints given, with
/// the key in `config`: its exit code, stdout and stderr.
async fn canon_remove(
    config: &std::path::Path,
    endpoint: &str,
    args: &[&str],
) -> (i32, String, String) {
    let mut all = vec!["cluster", "remove"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--json", "--endpoints", endpoint]);
    support::dev_cluster::canon(config, &all).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_is_removed_through_itself_and_every_shard_keeps_three_voters() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cluster = dev(tmp.path(), 4).await;
    let sdk = client(&cluster, &cluster.endpoints);
    sdk.run("before-remove", composition(), false)
        .await
        .unwrap();
    let fourth = cluster.add_node().await.unwrap();
    let config = support::dev_cluster::client_toml(&cluster, tmp.path());
    let first = cluster.endpoints[0].clone();
    let mut staying: Vec<String> = cluster.endpoints[1..].to_vec();
    staying.push(fourth);
    let stay = client(&cluster, &staying);
    wait_settled(&stay, &[1, 2, 3, 4], 5).await;

    // Refused: an unknown id, and a key the cluster does not know.
    let (code, _, err) = canon_remove(&config, &first, &["9", "-y"]).await;
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("no member 9"), "{err}");
    let stranger = tmp.path().join("stranger.toml");
    std::fs::write(tmp.path().join("stranger.key"), hex::encode([9u8; 32])).unwrap();
    std::fs::write(
        &stranger,
        format!("endpoints = [{first:?}]\nuser = \"admin\"\nkey = \"stranger.key\"\n"),
    )
    .unwrap();
    let (code, _, err) = canon_remove(&stranger, &first, &["2", "-y"]).await;
    assert_eq!(code, 6, "{err}");

    // Without -y it asks; no yes, nothing done.
    let (code, out, err) = canon_remove(&config, &first, &["1"]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("not confirmed"), "{err}");
    // A dry run shows the placement without node 1 and changes nothing.
    let (code, out, err) = canon_remove(&config, &first, &["1", "--dry-run"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let plan: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(plan["members"], serde_json::json!([2, 3, 4]), "{plan}");
    for p in plan["placement"].as_array().unwrap() {
        let replicas = p["replicas"].as_array().unwrap();
        assert!(
            replicas.len() == 3 && !replicas.contains(&1.into()),
            "{plan}"
        );
    }
    assert_eq!(stay.cluster_status().await.unwrap().members.len(), 4);

    // Node 1 removes itself, and answers once the change is committed.
    let (code, out, err) = canon_remove(&config, &first, &["1", "-y"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let reply: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(reply["members"], serde_json::json!([2, 3, 4]), "{reply}");

    // The nodes that stay: three members, every shard three voters among
    // them, node 1 in no group, the recorded placement the real one.
    let s = wait_settled(&stay, &[2, 3, 4], 5).await;
    assert_eq!(s.placement.len(), 4, "{s:?}");
    for p in &s.placement {
        let g = s.groups.iter().find(|g| g.group == p.group).unwrap();
        assert_eq!(p.replicas, g.voters, "{s:?}");
    }
    // The removed node serves no client.
    let gone = client(&cluster, std::slice::from_ref(&first));
    let refused = gone.status("", false).await.unwrap_err().to_string();
    assert!(refused.contains("removed from the cluster"), "{refused}");

    // What was written before is there, and the cluster takes new work.
    let status = stay.status("before-remove", false).await.unwrap();
    assert_eq!(status.processes[0].state, "Running", "{status:?}");
    for i in 0..4 {
        stay.run(&format!("after-remove-{i}"), composition(), false)
            .await
            .unwrap();
    }
    assert_eq!(stay.status("", false).await.unwrap().processes.len(), 5);

    // Three members, three replicas: removing another is refused.
    let (code, _, err) = canon_remove(&config, &staying[0], &["2", "-y"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("fewer than the 3 replicas"), "{err}");
    cluster.shutdown().await;
}

/// A `canond` child process, killed on drop.
struct Canond(std::process::Child);

impl Drop for Canond {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn canond(dir: &std::path::Path, id: u64, port: u16, public: &str, extra: &[String]) -> Canond {
    let log = std::fs::File::create(dir.join(format!("node-{id}.log"))).unwrap();
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("canond"))
        .args([
            "--id",
            &id.to_string(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--shards", "4", "--tick", "60s", "--admin-key", public])
        .args(extra)
        .arg("--data-dir")
        .arg(dir.join(format!("node-{id}")))
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Canond(child)
}

/// Waits until canond `node` exits; its status and log.
async fn exited(
    dir: &std::path::Path,
    node: &mut Canond,
    id: u64,
) -> (std::process::ExitStatus, String) {
    let started = Instant::now();
    loop {
        if let Some(s) = node.0.try_wait().unwrap() {
            let log = std::fs::read_to_string(dir.join(format!("node-{id}.log"))).unwrap();
            return (s, log);
        }
        if started.elapsed() >= Duration::from_secs(30) {
            let log = std::fs::read_to_string(dir.join(format!("node-{id}.log")));
            panic!(
                "node {id} still runs; its log:\n{}",
                log.unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Three `canond` processes on plaintext (nodes 1-3, node 1 creating the
/// cluster, each started with `extra` too), ports for `spare` more, and
/// the admin's client.toml and SDK client through node 1.
struct Plaintext {
    nodes: Vec<Canond>,
    ports: Vec<u16>,
    endpoints: Vec<String>,
    public: String,
    config: std::path::PathBuf,
    first: Client,
}

fn plaintext_cluster(dir: &std::path::Path, spare: usize, extra: &[&str]) -> Plaintext {
    let key = ed25519_dalek::SigningKey::from_bytes(&[5u8; 32]);
    std::fs::write(dir.join("admin.key"), hex::encode(key.to_bytes())).unwrap();
    let public = hex::encode(key.verifying_key().to_bytes());
    let ports: Vec<u16> = (0..3 + spare).map(|_| free_port()).collect();
    let peers: Vec<String> = ports[..3]
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}=127.0.0.1:{p}", i + 1))
        .collect();
    let nodes: Vec<Canond> = (0..3)
        .map(|i| {
            let mut args: Vec<String> = vec![
                "--peers".into(),
                peers.join(","),
                "--bootstrap".into(),
                (i == 0).to_string(),
            ];
            args.extend(extra.iter().map(|a| a.to_string()));
            canond(dir, i as u64 + 1, ports[i], &public, &args)
        })
        .collect();
    let endpoints: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let config = dir.join("client.toml");
    std::fs::write(
        &config,
        format!("endpoints = {endpoints:?}\nuser = \"admin\"\nkey = \"admin.key\"\n"),
    )
    .unwrap();
    let signer = Signer::from_file("admin", &dir.join("admin.key")).unwrap();
    let first = Client::connect(&endpoints[..1])
        .unwrap()
        .with_signer(signer);
    Plaintext {
        nodes,
        ports,
        endpoints,
        public,
        config,
        first,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_canond_processes_say_so_and_exit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // --open-join: nodes 4 and 5 join with no token, while the cluster is
    // still being created (no token could exist yet).
    let Plaintext {
        mut nodes,
        ports,
        endpoints,
        public,
        config,
        first,
    } = plaintext_cluster(dir, 2, &["--open-join", "true"]);
    let join = ["--join".to_string(), format!("127.0.0.1:{}", ports[0])];
    // Nodes 4 and 5 join through node 1 at once, while canond --bootstrap
    // creates the cluster (joins wait for the members and placement to be
    // recorded, and go one at a time).
    nodes.push(canond(dir, 4, ports[3], &public, &join));
    nodes.push(canond(dir, 5, ports[4], &public, &join));
    let s = wait_settled(&first, &[1, 2, 3, 4, 5], 5).await;
    assert_eq!(s.placement.len(), 4, "{s:?}");
    for p in &s.placement {
        let g = s.groups.iter().find(|g| g.group == p.group).unwrap();
        assert_eq!(p.replicas, g.voters, "{s:?}");
    }
    first.run("stays", composition(), false).await.unwrap();

    // Node 5 is removed while it is down; started again on its old data,
    // it learns from a peer that it was removed, says so and exits 0.
    drop(nodes.pop());
    let (code, out, err) = canon_remove(&config, &endpoints[0], &["5", "-y"]).await;
    assert_eq!(code, 0, "{out}{err}");
    std::fs::rename(dir.join("node-5.log"), dir.join("node-5-first.log")).unwrap();
    let mut fifth = canond(dir, 5, ports[4], &public, &[]);
    // Node 4 is asked to remove itself: it answers, then exits 0.
    let (code, out, err) = canon_remove(&config, &endpoints[3], &["4", "-y"]).await;
    assert_eq!(code, 0, "{out}{err}");
    for (id, node) in [(4, &mut nodes[3]), (5, &mut fifth)] {
        let (status, log) = exited(dir, node, id).await;
        assert!(status.success(), "{status:?}\n{log}");
        assert!(
            log.contains(&format!("node {id} was removed from the cluster")),
            "{log}"
        );
    }
    wait_settled(&first, &[1, 2, 3], 5).await;
    assert_eq!(
        first.status("stays", false).await.unwrap().processes.len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canond_joins_a_plaintext_cluster_only_with_a_join_token() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let c = plaintext_cluster(dir, 2, &[]);
    let mut nodes = c.nodes;
    wait_settled(&c.first, &[1, 2, 3], 5).await;
    let through = format!("127.0.0.1:{}", c.ports[0]);
    let join = |token: &str| {
        let mut args = vec!["--join".to_string(), through.clone()];
        if !token.is_empty() {
            args.extend(["--join-token".to_string(), token.to_string()]);
        }
        args
    };

    // No token: refused, and the node says what to do.
    let mut stray = canond(dir, 5, c.ports[4], &c.public, &join(""));
    let log = wait_log(dir, 5, "join failed").await;
    assert!(log.contains("canon cluster join-token"), "{log}");
    let _ = stray.0.kill();
    let _ = stray.0.wait();

    // An admin's token for node 4 admits node 4, once.
    let (code, out, err) = support::dev_cluster::canon(
        &c.config,
        &[
            "cluster",
            "join-token",
            "--node",
            "4",
            "--ttl",
            "10m",
            "--json",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let made: serde_json::Value = serde_json::from_str(&out).unwrap();
    let token = made["token"].as_str().unwrap().to_string();
    nodes.push(canond(dir, 4, c.ports[3], &c.public, &join(&token)));
    wait_settled(&c.first, &[1, 2, 3, 4], 5).await;
    std::fs::rename(dir.join("node-5.log"), dir.join("node-5-first.log")).unwrap();
    let _stray = canond(dir, 5, c.ports[4], &c.public, &join(&token));
    let log = wait_log(dir, 5, "join failed").await;
    assert!(log.contains("admits node 4, not node 5"), "{log}");

    // The token is in the log only as its hash; its issue is audited.
    let (code, out, err) = support::dev_cluster::canon(&c.config, &["audit", "--json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains(&token), "the secret never reaches the log");
    let hash = made["token_hash"].as_str().unwrap();
    assert!(out.contains(&hash[..12]), "{out}");
    assert!(out.contains("cluster.join"), "{out}");
}

/// Waits until node `id`'s log says `what`; the log.
async fn wait_log(dir: &std::path::Path, id: u64, what: &str) -> String {
    let started = Instant::now();
    loop {
        let log = std::fs::read_to_string(dir.join(format!("node-{id}.log"))).unwrap_or_default();
        if log.contains(what) {
            return log;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "node {id} never logged {what:?}:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A node that takes calls and never answers them (as a paused or cut-off
/// node does) is passed over after the client's attempt timeout, and a
/// command sent on lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_holds_calls_is_passed_over_after_the_attempt_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let cluster = dev(tmp.path(), 2).await;
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole_addr = format!("http://{}", hole.local_addr().unwrap());
    // Accepts connections, reads, never writes.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hole.accept().await {
            held.push(s);
        }
    });
    let mut endpoints = vec![hole_addr];
    endpoints.extend(cluster.endpoints.iter().cloned());
    let sdk = client(&cluster, &endpoints).with_attempt_timeout(Duration::from_millis(400));
    let started = Instant::now();
    sdk.run("passed-over", composition(), false).await.unwrap();
    let status = sdk.status("passed-over", false).await.unwrap();
    assert_eq!(status.processes.len(), 1, "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    cluster.shutdown().await;
}
