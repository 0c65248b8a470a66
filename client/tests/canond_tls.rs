//! Three real `canond` processes with mutual TLS, their certificates made
//! by `canon cert`: they elect over TLS, accept `canon run` and serve
//! status to a client holding a client certificate; a plaintext client is
//! told the nodes require TLS. The simulated cloud (each node its own), so
//! no emulator is needed.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command as StdCommand, Stdio};
use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value;

mod support;
use support::story::{self, aliases, example, wait_until};

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// `canon ARGS` in `dir`, which must succeed; its stdout.
fn canon_ok(dir: &Path, args: &[&str]) -> String {
    let out = Command::cargo_bin("canon")
        .unwrap()
        .current_dir(dir)
        .env_remove("CANON_CLUSTER_ID")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "canon {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `canon` with the `client.toml` named `config` in `dir`.
fn canon_with(dir: &Path, config: &str) -> Command {
    let mut c = Command::cargo_bin("canon").expect("binary");
    c.env("CANON_CONFIG", dir.join(config))
        .env("HOME", dir)
        .env_remove("CANON_ENDPOINTS")
        .timeout(Duration::from_secs(90));
    c
}

fn spawn_canond(dir: &Path, id: u64, port: u16, peers: &str, public: &str) -> Proc {
    let log = std::fs::File::create(dir.join(format!("node-{id}.log"))).unwrap();
    let pki = dir.join("pki");
    let child = StdCommand::new(assert_cmd::cargo::cargo_bin("canond"))
        .args(["--id", &id.to_string(), "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--peers", peers, "--bootstrap", &(id == 1).to_string()])
        .arg("--data-dir")
        .arg(dir.join(format!("node-{id}")))
        .args(["--cloud", "sim", "--tick", "1s", "--shards", "2"])
        .args(["--admin-key", public, "--cluster-id", "prod"])
        .arg("--tls-cert")
        .arg(pki.join(format!("node-{id}.crt")))
        .arg("--tls-key")
        .arg(pki.join(format!("node-{id}.key")))
        .arg("--tls-peer-ca")
        .arg(pki.join("peer/ca.crt"))
        .arg("--tls-client-ca")
        .arg(pki.join("client/ca.crt"))
        .env_remove("CANON_CLUSTER_ID")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("canond starts");
    Proc(child)
}

#[test]
fn three_canond_with_mutual_tls_elect_run_and_serve_status() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    canon_ok(
        dir,
        &["cert", "create-ca", "--kind", "peer", "--out", "pki/peer"],
    );
    canon_ok(
        dir,
        &[
            "cert",
            "create-ca",
            "--kind",
            "client",
            "--out",
            "pki/client",
        ],
    );
    for id in ["1", "2", "3"] {
        canon_ok(
            dir,
            &[
                "cert",
                "create-node",
                id,
                "127.0.0.1",
                "localhost",
                "--ca",
                "pki/peer",
                "--cluster",
                "prod",
            ],
        );
    }
    // create-node wrote into the current directory; keep them with the rest.
    for id in 1..=3 {
        for ext in ["crt", "key"] {
            let name = format!("node-{id}.{ext}");
            std::fs::rename(dir.join(&name), dir.join("pki").join(&name)).unwrap();
        }
    }
    canon_ok(
        dir,
        &[
            "cert",
            "create-client",
            "admin",
            "--ca",
            "pki/client",
            "--out",
            "pki",
        ],
    );
    let public = canon_ok(dir, &["keygen", "-o", "admin.key"]);
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let peers: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}=127.0.0.1:{p}", i + 1))
        .collect();
    let endpoints: Vec<String> = ports.iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect();
    std::fs::write(
        dir.join("client.toml"),
        format!(
            "endpoints = [{}]\nuser = \"admin\"\nkey = \"admin.key\"\n\n[tls]\nca = \"pki/peer/ca.crt\"\ncert = \"pki/client-admin.crt\"\nkey = \"pki/client-admin.key\"\n",
            endpoints.join(", ")
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("plain.toml"),
        format!(
            "endpoints = [{}]\nuser = \"admin\"\nkey = \"admin.key\"\n",
            endpoints.join(", ")
        ),
    )
    .unwrap();
    let _nodes: Vec<Proc> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| spawn_canond(dir, i as u64 + 1, *p, &peers.join(","), &public))
        .collect();

    let canon = || canon_with(dir, "client.toml");
    wait_until(
        "every group to have a leader",
        Duration::from_secs(60),
        || {
            let out = canon()
                .args(["cluster", "status", "--json"])
                .output()
                .unwrap();
            out.status.success()
                && serde_json::from_slice::<Value>(&out.stdout)
                    .map(|v| {
                        v["members"].as_array().is_some_and(|m| m.len() == 3)
                            && v["groups"].as_array().is_some_and(|g| {
                                g.iter().all(|g| g["leader"].as_u64().unwrap_or(0) > 0)
                            })
                    })
                    .unwrap_or(false)
        },
    );
    canon()
        .arg("run")
        .arg(example("VPC-sam.lw"))
        .args(["-a", "tls-sam", "--wait"])
        .assert()
        .success();
    let status = story::json(&canon, &["status"]);
    assert!(
        aliases(&status).iter().any(|(a, _)| a == "tls-sam"),
        "{status}"
    );

    // The run's audit record names the certificate it came over: the
    // SHA-256 of the client certificate that `canon cert list` shows.
    let certs: Value = serde_json::from_str(&canon_ok(dir, &["cert", "list", "pki", "--json"]))
        .expect("cert list --json");
    let fingerprint = certs
        .as_array()
        .and_then(|rows| {
            rows.iter().find(|r| {
                r["file"]
                    .as_str()
                    .is_some_and(|f| f.ends_with("client-admin.crt"))
            })
        })
        .and_then(|r| r["fingerprint"].as_str())
        .unwrap_or_else(|| panic!("client-admin.crt in {certs}"))
        .to_string();
    assert_eq!(fingerprint.len(), 64, "{fingerprint}");
    let records = story::json(&canon, &["audit", "--alias", "tls-sam"]);
    let run = records
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["command"] == "ProcessCreated"))
        .unwrap_or_else(|| panic!("the run's record in {records:#}"));
    assert_eq!(run["principal"]["cert_fingerprint"], fingerprint, "{run:#}");

    // Plaintext: every node closes on it, and the client says why.
    let out = canon_with(dir, "plain.toml")
        .args(["status"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("the node requires TLS"), "{err}");
    let log = std::fs::read_to_string(dir.join("node-1.log")).unwrap();
    assert!(
        log.contains("TLS handshake from 127.0.0.1:") && log.contains("did not speak TLS"),
        "{log}"
    );
}
