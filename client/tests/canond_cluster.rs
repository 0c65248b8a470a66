//! Three real `canond` processes on 127.0.0.1 driving a moto EC2 emulator,
//! the CLI driven as a user would through the whole demo story (the steps
//! shared with the dev-cluster story): three processes, kill one, run a
//! fourth, its history, a rogue rule added through the EC2 API as a console
//! user would add it (found, recorded as drift labelled with the
//! organisation's validation it breaks, removed); then the node
//! leading the demo's shard is killed, and the story goes on — both compile errors, dry run, update, the rule is there
//! — with nothing lost. One cluster serves the whole story. moto is found
//! via `MOTO_SERVER`, the workspace's `.venv`, or `PATH` (`scripts/test`
//! installs it); missing moto is a failure, not a skip. (Joining a fourth
//! node is tested in `cluster_ops.rs`; done here, mid-story, it sometimes
//! left shards without their learner step, and a removed replica then timed
//! out reads — a known gap of `--join`.)

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

mod support;
use support::story::{self, wait_until};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn moto_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let venv = root().join(".venv/bin/moto_server");
    if venv.is_file() {
        return venv;
    }
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("moto_server"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!("moto_server not found: run scripts/test once, or set MOTO_SERVER")
        })
}

/// One HTTP/1.1 request; returns the status code and body.
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((code, text))
}

fn start_moto() -> (Proc, u16) {
    let port = free_port();
    let child = StdCommand::new(moto_bin())
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto starts");
    let p = Proc(child);
    let started = Instant::now();
    while !matches!(http(port, "GET", "/moto-api/", "", ""), Ok((200, _))) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "moto did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (p, port)
}

/// What a console user does: an EC2 API call outside Canon.
fn console_authorize_all_traffic(port: u16, group: &str) {
    let body = format!(
        "Action=AuthorizeSecurityGroupIngress&Version=2016-11-15&GroupId={group}\
         &IpPermissions.1.IpProtocol=-1&IpPermissions.1.IpRanges.1.CidrIp=0.0.0.0%2F0"
    );
    let headers = "Content-Type: application/x-www-form-urlencoded\r\n\
        Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-west-2/ec2/aws4_request, SignedHeaders=host, Signature=0\r\n";
    let (code, text) = http(port, "POST", "/", headers, &body).expect("moto answers");
    assert_eq!(code, 200, "{text}");
}

struct Cluster {
    dir: PathBuf,
    nodes: Vec<Option<Proc>>,
    /// Node 1's Prometheus port.
    metrics_port: u16,
}

impl Cluster {
    fn canon(&self) -> Command {
        canon_in(&self.dir)
    }

    fn json(&self, args: &[&str]) -> Value {
        story::json(&|| self.canon(), args)
    }
}

fn start_cluster(dir: &Path, moto_port: u16) -> Cluster {
    let key = dir.join("admin.key");
    let out = Command::cargo_bin("canon")
        .unwrap()
        .args(["keygen", "-o"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success());
    let public = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let metrics_port = free_port();
    let peers: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}=127.0.0.1:{p}", i + 1))
        .collect();
    let mut nodes = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let mut extra = vec![
            "--peers".to_string(),
            peers.join(","),
            "--bootstrap".to_string(),
            (i == 0).to_string(),
        ];
        if i == 0 {
            extra.push("--metrics-listen".to_string());
            extra.push(format!("127.0.0.1:{metrics_port}"));
        }
        nodes.push(Some(spawn_canond(
            dir,
            i as u64 + 1,
            *port,
            moto_port,
            &public,
            &extra,
        )));
    }
    let endpoints: Vec<String> = ports
        .iter()
        .map(|p| format!("\"http://127.0.0.1:{p}\""))
        .collect();
    std::fs::write(
        dir.join("client.toml"),
        format!(
            "endpoints = [{}]\nuser = \"admin\"\nkey = {:?}\n",
            endpoints.join(", "),
            key.display().to_string()
        ),
    )
    .unwrap();
    let c = Cluster {
        dir: dir.to_path_buf(),
        nodes,
        metrics_port,
    };
    wait_until(
        "every group to have a leader",
        Duration::from_secs(60),
        || {
            let out = c
                .canon()
                .args(["cluster", "status", "--json"])
                .output()
                .unwrap();
            out.status.success()
                && serde_json::from_slice::<Value>(&out.stdout)
                    .map(|v| {
                        v["groups"].as_array().is_some_and(|g| {
                            g.iter().all(|g| g["leader"].as_u64().unwrap_or(0) > 0)
                        })
                    })
                    .unwrap_or(false)
        },
    );
    c
}

/// `canon` with the cluster's `client.toml` in `dir`.
fn canon_in(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("canon").expect("binary");
    c.env("CANON_CONFIG", dir.join("client.toml"))
        .env("HOME", dir)
        .env_remove("CANON_ENDPOINTS")
        .timeout(Duration::from_secs(90));
    c
}

/// One `canond` over moto, logging to `node-ID.log` in `dir`.
fn spawn_canond(
    dir: &Path,
    id: u64,
    port: u16,
    moto_port: u16,
    public: &str,
    extra: &[String],
) -> Proc {
    let log = std::fs::File::create(dir.join(format!("node-{id}.log"))).unwrap();
    let child = StdCommand::new(assert_cmd::cargo::cargo_bin("canond"))
        .args([
            "--id",
            &id.to_string(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args(extra)
        .arg("--data-dir")
        .arg(dir.join(format!("node-{id}")))
        .args([
            "--cloud",
            "aws",
            "--tick",
            "1s",
            "--shards",
            "4",
            "--admin-key",
            public,
        ])
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{moto_port}"))
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-west-2")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("canond starts");
    Proc(child)
}

#[test]
fn the_story_on_three_canond_over_moto_survives_losing_the_shard_leader() {
    let tmp = tempfile::tempdir().unwrap();
    let (_moto, moto_port) = start_moto();
    let mut c = start_cluster(tmp.path(), moto_port);

    let dir = c.dir.clone();
    let canon = || canon_in(&dir);
    story::three_processes(&canon);
    story::kill_lisa(&canon);
    let sam = story::run_sam(&canon);
    let sg = sam["resources"]["dev-sam-sg"]["cloud_id"]
        .as_str()
        .expect("bound group")
        .to_string();

    // The console user's all-traffic rule is removed and recorded, and
    // labelled with the organisation's validation it breaks (issue #20).
    story::add_policy(&canon);
    console_authorize_all_traffic(moto_port, &sg);
    story::rogue_rule_healed(&canon);
    story::rogue_rule_labelled(&canon);
    story::remove_policy(&canon);

    // Each cloud mutation's audit record names the request ids AWS (here
    // moto) answered with: the group's create, a RUN job's step, and the
    // revoke that healed the rogue rule.
    let records = c.json(&["audit", "--alias", "dev-sam"]);
    for request in [
        "aws.ec2.create_security_group",
        "aws.ec2.revoke_security_group_ingress",
    ] {
        let call = records
            .as_array()
            .and_then(|rs| {
                rs.iter().find(|r| {
                    r["command"] == "CloudCalled"
                        && r["detail"]
                            .as_str()
                            .is_some_and(|d| d.contains(request) && d.contains(&sg))
                })
            })
            .unwrap_or_else(|| panic!("no record of {request} on {sg} in {records:#}"));
        let ids = call["aws_request_ids"].as_array();
        assert!(
            ids.is_some_and(|ids| !ids.is_empty()
                && ids
                    .iter()
                    .all(|i| i.as_str().is_some_and(|i| !i.is_empty()))),
            "{call:#}"
        );
    }

    // Node 1's metrics count API calls and show each group's leadership.
    let (code, page) = http(c.metrics_port, "GET", "/metrics", "", "").expect("metrics answer");
    assert_eq!(code, 200, "{page}");
    assert!(
        page.contains("canon_api_calls_total{action=\"run\"} 4"),
        "{page}"
    );
    assert!(page.contains("canon_raft_is_leader{group=\"0\"}"), "{page}");
    assert!(page.contains("canon_raft_applied_index"), "{page}");

    // Kill the node leading dev-sam's shard.
    let group = sam["group"].as_u64().expect("group");
    let cluster = c.json(&["cluster", "status"]);
    let leader = cluster["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"].as_u64() == Some(group))
        .and_then(|g| g["leader"].as_u64())
        .expect("a leader");
    let index = usize::try_from(leader - 1).unwrap();
    drop(c.nodes[index].take());

    // The story goes on with nothing lost.
    let h = c.json(&["history", "dev-sam"]);
    assert!(
        h["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["kind"] == "RUN"),
        "{h}"
    );
    assert!(!h["drift"].as_array().unwrap().is_empty(), "{h}");
    story::compile_errors(&canon, &c.dir);
    story::ssh_update(&canon);

    // SIGTERM: a node stops cleanly (actors stopped, groups handed off,
    // log flushed) and exits 0.
    let i = (0..c.nodes.len())
        .find(|i| c.nodes[*i].is_some())
        .expect("a live node");
    let mut node = c.nodes[i].take().expect("live");
    let _ = StdCommand::new("kill")
        .args(["-TERM", &node.0.id().to_string()])
        .status();
    let started = Instant::now();
    let status = loop {
        if let Ok(Some(s)) = node.0.try_wait() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "canond did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
    drop(node);
}
