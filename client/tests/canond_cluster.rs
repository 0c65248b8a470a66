//! Three real `canond` processes on 127.0.0.1 driving a moto EC2 emulator,
//! the CLI driven as a user would: run, a rogue rule added through the EC2
//! API as a console user would add it (found, recorded as drift, removed),
//! then the node leading the process's shard is killed and the story goes
//! on — dry run, update, the rule is there — with nothing lost. moto is
//! found via `MOTO_SERVER`, the workspace's `.venv`, or `PATH`
//! (`scripts/test` installs it); missing moto is a failure, not a skip.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn example(name: &str) -> String {
    root().join("examples").join(name).display().to_string()
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
        let mut c = Command::cargo_bin("canon").expect("binary");
        c.env("CANON_CONFIG", self.dir.join("client.toml"))
            .env("HOME", &self.dir)
            .env_remove("CANON_ENDPOINTS")
            .timeout(Duration::from_secs(90));
        c
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self
            .canon()
            .args(args)
            .arg("--json")
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "canon {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json")
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
        let id = (i + 1).to_string();
        let log = std::fs::File::create(dir.join(format!("node-{id}.log"))).unwrap();
        let child = StdCommand::new(assert_cmd::cargo::cargo_bin("canond"))
            .args(["--id", &id, "--listen", &format!("127.0.0.1:{port}")])
            .args(["--peers", &peers.join(",")])
            .args(["--bootstrap", if i == 0 { "true" } else { "false" }])
            .args(if i == 0 {
                vec![
                    "--metrics-listen".to_string(),
                    format!("127.0.0.1:{metrics_port}"),
                ]
            } else {
                Vec::new()
            })
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
                &public,
            ])
            .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{moto_port}"))
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-west-2")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("canond starts");
        nodes.push(Some(Proc(child)));
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

fn wait_until(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < within, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn the_story_on_three_canond_over_moto_survives_losing_the_shard_leader() {
    let tmp = tempfile::tempdir().unwrap();
    let (_moto, moto_port) = start_moto();
    let mut c = start_cluster(tmp.path(), moto_port);

    c.canon()
        .args(["run", &example("VPC-sam.lw"), "-a", "dev-sam", "--wait"])
        .assert()
        .success();
    let sam = c.json(&["status", "dev-sam"]);
    let sg = sam["resources"]["dev-sam-sg"]["cloud_id"]
        .as_str()
        .expect("bound group")
        .to_string();

    // The console user's all-traffic rule is removed and recorded.
    console_authorize_all_traffic(moto_port, &sg);
    wait_until(
        "the rogue rule to be healed",
        Duration::from_secs(60),
        || {
            c.json(&["history", "dev-sam"])["drift"]
                .as_array()
                .is_some_and(|d| d.iter().any(|d| !d["healed"].is_null()))
        },
    );

    // Node 1's metrics count API calls and show each group's leadership.
    let (code, page) = http(c.metrics_port, "GET", "/metrics", "", "").expect("metrics answer");
    assert_eq!(code, 200, "{page}");
    assert!(
        page.contains("canon_api_calls_total{action=\"run\"} 1"),
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

    // The story goes on: nothing lost, the update lands once.
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
    let dry = c.json(&["update", "dev-sam", &example("VPC-sam-ssh.lw"), "--dry-run"]);
    let types: Vec<&str> = dry["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["request_type"].as_str())
        .collect();
    assert_eq!(
        types,
        vec!["aws.ec2.authorize_security_group_ingress"],
        "{dry}"
    );
    c.canon()
        .args(["update", "dev-sam", &example("VPC-sam-ssh.lw"), "--wait"])
        .assert()
        .success();
    let sam = c.json(&["status", "dev-sam"]);
    let spec = sam["resources"]["dev-sam-sg"]["observed"]["spec"].to_string();
    assert!(spec.contains("\"from_port\":22"), "{sam}");
    assert!(!spec.contains("\"protocol\":\"All\""), "{sam}");

    // SIGTERM: a node stops cleanly (actors stopped, groups handed off,
    // log flushed) and exits 0.
    let i = (0..3).find(|i| c.nodes[*i].is_some()).expect("a live node");
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
