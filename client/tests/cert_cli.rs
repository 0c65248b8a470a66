//! `canon cert` as an operator runs it: CAs, a node and a client
//! certificate; keys 0600; nothing replaced without `--overwrite`, the
//! refusal naming the file; a CA of the wrong kind named; `list` shows
//! subjects and expiry.

use assert_cmd::Command;
use predicates::str::contains;

fn canon(dir: &std::path::Path) -> Command {
    let mut c = Command::cargo_bin("canon").unwrap();
    c.current_dir(dir).env_remove("CANON_CLUSTER_ID");
    c
}

#[cfg(unix)]
fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn cert_makes_cas_nodes_and_clients_and_overwrites_only_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    canon(d)
        .args(["cert", "create-ca", "--kind", "peer", "--out", "peer"])
        .assert()
        .success()
        .stdout(contains("peer CA"));
    canon(d)
        .args(["cert", "create-ca", "--kind", "client", "--out", "client"])
        .assert()
        .success();
    #[cfg(unix)]
    {
        assert_eq!(mode(&d.join("peer/ca.key")), 0o600);
        assert_eq!(mode(&d.join("peer/ca.crt")), 0o644);
    }
    let before = std::fs::read(d.join("peer/ca.key")).unwrap();
    canon(d)
        .args(["cert", "create-ca", "--kind", "peer", "--out", "peer"])
        .assert()
        .code(1)
        .stderr(contains(
            "peer/ca.crt exists; not overwriting it (give --overwrite",
        ));
    assert_eq!(std::fs::read(d.join("peer/ca.key")).unwrap(), before);
    canon(d)
        .args([
            "cert",
            "create-ca",
            "--kind",
            "peer",
            "--out",
            "peer",
            "--overwrite",
        ])
        .assert()
        .success();
    assert_ne!(std::fs::read(d.join("peer/ca.key")).unwrap(), before);

    canon(d)
        .args([
            "cert",
            "create-node",
            "2",
            "127.0.0.1",
            "node-2.local",
            "--ca",
            "peer",
        ])
        .args(["--out", "certs", "--cluster", "prod"])
        .assert()
        .success()
        .stdout(contains("node 2 of cluster \"prod\""));
    #[cfg(unix)]
    assert_eq!(mode(&d.join("certs/node-2.key")), 0o600);
    canon(d)
        .args(["cert", "create-node", "3", "127.0.0.1", "--ca", "client"])
        .assert()
        .code(1)
        .stderr(contains("holds the client CA"));
    canon(d)
        .args([
            "cert",
            "create-client",
            "alice",
            "--ca",
            "client",
            "--out",
            "certs",
        ])
        .assert()
        .success();
    canon(d)
        .args([
            "cert",
            "create-client",
            "alice",
            "--ca",
            "client",
            "--out",
            "certs",
        ])
        .assert()
        .code(1)
        .stderr(contains("client-alice.crt exists"));

    let out = canon(d).args(["cert", "list", "certs"]).assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        text.contains("canon node 2") && text.contains("node 2 of prod"),
        "{text}"
    );
    assert!(text.contains("alice") && text.contains("(in 36"), "{text}");
    let out = canon(d)
        .args(["cert", "list", "peer", "--json"])
        .assert()
        .success();
    let rows: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(rows[0]["kind"], "peer CA", "{rows}");
    assert_eq!(rows[0]["expired"], false, "{rows}");
    // The CAs' own directories are listed too, one level down.
    let out = canon(d).args(["cert", "list", "."]).assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    for row in ["peer/ca.crt", "client/ca.crt", "certs/client-alice.crt"] {
        assert!(text.contains(row), "{row} in {text}");
    }
}

/// deploy/kubernetes/make-tls-secret.sh makes what the overlay three-tls
/// mounts: both CAs' certificates and every member's own certificate
/// (named for its node id and cluster) and key, plus a client certificate.
#[test]
fn the_kubernetes_tls_script_makes_each_members_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/kubernetes/make-tls-secret.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .args([d.join("tls").to_str().unwrap(), "ops", "prod", "3"])
        .env("CANON", assert_cmd::cargo::cargo_bin("canon"))
        .env_remove("CANON_CLUSTER_ID")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("kubectl -n ops create secret generic canon-tls"),
        "{said}"
    );
    let secret = d.join("tls/secret");
    let listed = canon(d)
        .args(["cert", "list", secret.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let kinds: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    for id in 1..=3 {
        assert!(
            kinds.contains(&format!("node {id} of prod").as_str()),
            "{kinds:?}"
        );
        #[cfg(unix)]
        assert_eq!(mode(&secret.join(format!("node-{id}.key"))), 0o600);
    }
    for file in ["peer-ca.crt", "client-ca.crt"] {
        assert!(secret.join(file).exists(), "{file}");
    }
    assert!(!secret.join("ca.key").exists(), "no CA key in the Secret");
    assert!(d.join("tls/admin/client-admin.crt").exists());
    // Run again: nothing is overwritten, and it says so.
    let again = std::process::Command::new("bash")
        .arg(&script)
        .args([d.join("tls").to_str().unwrap(), "ops", "prod", "3"])
        .env("CANON", assert_cmd::cargo::cargo_bin("canon"))
        .output()
        .unwrap();
    assert!(!again.status.success());
}
