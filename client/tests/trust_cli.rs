//! Users, roles and accounts as a user drives them with the `canon` binary
//! against an in-process dev cluster: `policy get`, `policy apply
//! --dry-run` (prints the diff, changes nothing), `policy apply`, `auth
//! can-i` (exit 0 allow, 6 deny, naming the rule), `user add/remove`,
//! `account add/list`, `run --account`, and a refused command exiting 6
//! with the user, action and missing permission.

use std::path::Path;
use std::time::Duration;

use canon_node::dev::{DevCluster, DevOptions};

mod support;

use support::dev_cluster::{canon, client_toml, tls_paths};

/// A user's key file and client.toml in `dir`; the public key (hex).
fn user_config(cluster: &DevCluster, dir: &Path, name: &str) -> (std::path::PathBuf, String) {
    let key = canon_node::keys::generate();
    let key_path = dir.join(format!("{name}.key"));
    canon_node::keys::write_signing_key(&key_path, &key).unwrap();
    let path = dir.join(format!("{name}.toml"));
    canon_client::config::ClientConfig {
        endpoints: cluster.endpoints.clone(),
        user: Some(name.into()),
        key: Some(key_path),
        // The dev user's client certificate: TLS lets any of the cluster's
        // users in; the signing key says who they are.
        tls: tls_paths(cluster),
        // No cluster id: the CLI asks the cluster for it.
        cluster_id: None,
        ..Default::default()
    }
    .write(&path)
    .unwrap();
    (path, canon_node::keys::public_key_hex(&key.verifying_key()))
}

fn policy(alice: &str) -> String {
    format!(
        r#"[[users]]
name = "alice"
keys = ["{alice}"]
groups = ["web"]

[[accounts]]
name = "web-prod"
aws_account_id = "222222222222"
role_arn = "arn:aws:iam::222222222222:role/canon"
region = "us-west-2"

[[accounts]]
name = "web-dev"
aws_account_id = "333333333333"

[[roles]]
name = "web-deployer"
rules = [
  {{ effect = "allow", actions = ["process.*"], accounts = ["web-*"] }},
  {{ effect = "deny",  actions = ["process.kill"], accounts = ["web-prod"], aliases = ["*"] }},
]

[[bindings]]
role = "web-deployer"
subjects = ["group:web", "user:bob"]
"#
    )
}

/// A dev cluster (with mutual TLS or not), root's and alice's client.toml,
/// and the example policy written to a file (not applied).
struct World {
    tmp: tempfile::TempDir,
    cluster: DevCluster,
    root: std::path::PathBuf,
    alice: std::path::PathBuf,
    file: String,
}

async fn start(tls: bool) -> World {
    let tmp = tempfile::tempdir().unwrap();
    let cluster = DevCluster::start(DevOptions {
        tick: Duration::from_secs(60),
        shards: 2,
        tls,
        ..DevOptions::new(tmp.path().join("dev"))
    })
    .await
    .unwrap();
    let root = client_toml(&cluster, tmp.path());
    let (alice, alice_key) = user_config(&cluster, tmp.path(), "alice");
    let file = tmp.path().join("policy.toml");
    std::fs::write(&file, policy(&alice_key)).unwrap();
    let file = file.to_str().unwrap().to_string();
    World {
        tmp,
        cluster,
        root,
        alice,
        file,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_auth_user_and_account_verbs() {
    let w = start(false).await;
    let (tmp, file) = (&w.tmp, w.file.as_str());
    let (root, alice) = (w.root.clone(), w.alice.clone());

    let (code, out, _) = canon(&root, &["policy", "get"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("no policy yet"), "{out}");
    // Before any policy alice's key is nobody's.
    let (code, _, err) = canon(&alice, &["policy", "get"]).await;
    assert_eq!(code, 6, "{err}");

    // A dry run prints the diff and changes nothing. The issue's example
    // binds user bob, whom it does not list: allowed, and said.
    let (code, out, err) = canon(&root, &["policy", "apply", file, "--dry-run"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("no user named `bob` yet"), "{err}");
    for part in [
        "+ user alice",
        "+ account web-prod",
        "+ role web-deployer",
        "dry run",
    ] {
        assert!(out.contains(part), "{part} in {out}");
    }
    let (_, out, _) = canon(&root, &["policy", "get", "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["version"], 0);
    // A file that does not read names its line, and nothing is sent.
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "[[users]]\nname = \"x\nkeys = []\n").unwrap();
    let (code, _, err) = canon(&root, &["policy", "apply", bad.to_str().unwrap()]).await;
    assert_eq!(code, 1);
    assert!(err.contains("line 2"), "{err}");

    let (code, out, err) = canon(&root, &["policy", "apply", file]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("policy version 1"), "{out}");
    let (code, out, _) = canon(&root, &["policy", "get"]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("web-deployer") && out.contains("version 1"),
        "{out}"
    );

    // can-i: allow exits 0, deny 6, each naming the rule.
    let (code, out, _) = canon(
        &alice,
        &["auth", "can-i", "process.run", "--account", "web-dev"],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("allow") && out.contains("web-deployer rule 1"),
        "{out}"
    );
    let kill = [
        "auth",
        "can-i",
        "process.kill",
        "--account",
        "web-prod",
        "--alias",
        "p1",
    ];
    let (code, out, _) = canon(&alice, &kill).await;
    assert_eq!(code, 6, "{out}");
    assert!(
        out.starts_with("deny") && out.contains("web-deployer rule 2"),
        "{out}"
    );
    let (code, out, _) = canon(&root, &[&kill[..], &["--as", "alice"]].concat()).await;
    assert_eq!(code, 6, "{out}");
    let (code, out, _) = canon(&root, &["auth", "can-i", "process.run", "--as", "zed"]).await;
    assert_eq!(code, 6);
    assert!(out.contains("no user named \"zed\""), "{out}");
    let (code, out, _) = canon(&alice, &["auth", "can-i", "account.add"]).await;
    assert_eq!(code, 6);
    assert!(out.contains("no rule allows it"), "{out}");
    let (code, _, err) = canon(&alice, &["auth", "can-i", "proces.run"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("perhaps you mean process.run"), "{err}");

    // A refused command exits 6 and says who, what and what is missing.
    let (code, _, err) = canon(&alice, &["policy", "apply", file]).await;
    assert_eq!(code, 6, "{err}");
    for part in ["alice", "policy.put", "missing permission"] {
        assert!(err.contains(part), "{part} in {err}");
    }
    let (code, _, err) = canon(&alice, &["account", "list"]).await;
    assert_eq!(code, 6, "{err}");

    // Users and accounts.
    let dave = canon_node::keys::public_key_hex(&canon_node::keys::generate().verifying_key());
    let add = ["user", "add", "dave", "--key", &dave, "--groups", "web,ops"];
    let (code, out, err) = canon(&root, &add).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("+ user dave") && out.contains("policy version 2"),
        "{out}"
    );
    let (code, _, err) = canon(&root, &add).await;
    assert_eq!(code, 1);
    assert!(err.contains("user `dave` already exists"), "{err}");
    let (code, out, err) = canon(
        &root,
        &[
            "account",
            "add",
            "web-stage",
            "--aws-account",
            "555555555555",
            "--region",
            "eu-west-1",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("+ account web-stage"), "{out}");
    let (code, out, _) = canon(&root, &["account", "list"]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("web-stage") && out.contains("555555555555"),
        "{out}"
    );
    let (code, _, err) = canon(&root, &["account", "add", "bad", "--aws-account", "12"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("not 12 digits"), "{err}");

    // alice runs in an account her role covers.
    let lw = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/bench/one-vpc.lw");
    let lw = lw.to_str().unwrap();
    let (code, _, err) = canon(&alice, &["run", lw, "-a", "s1", "--account", "web-stage"]).await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = canon(&alice, &["run", lw, "-a", "d1"]).await;
    assert_eq!(code, 6, "{err}");
    assert!(
        err.contains("missing permission process.run on account"),
        "{err}"
    );
    let (code, out, _) = canon(&alice, &["status"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("s1"), "{out}");

    // An update changes what it names and keeps the rest.
    let (code, _, err) = canon(
        &root,
        &["account", "update", "web-stage", "--region", "us-east-1"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let listed = |out: &str| {
        let v: serde_json::Value = serde_json::from_str(out).unwrap();
        v["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "web-stage")
            .cloned()
            .unwrap()
    };
    let (_, out, _) = canon(&root, &["account", "list", "--json"]).await;
    let stage = listed(&out);
    assert_eq!(stage["region"], "us-east-1", "{stage}");
    assert_eq!(stage["aws_account_id"], "555555555555", "{stage}");
    // s1 runs in web-stage: removing the account, or pointing the
    // conductor at another AWS account for it (web-stage has no role: the
    // conductor acts there with its own credentials; a role would move it),
    // would strand it. Refused, naming it; nothing changes. alice, who may
    // not remove accounts, learns nothing of it.
    let role = "arn:aws:iam::555555555555:role/canon";
    // The policy file as first applied has no web-stage: applying it again
    // would remove it.
    for change in [
        &["account", "remove", "web-stage"][..],
        &["account", "update", "web-stage", "--role-arn", role],
        &["policy", "apply", &w.file],
    ] {
        let (code, _, err) = canon(&root, change).await;
        assert_ne!(code, 0, "{err}");
        assert!(
            err.contains("web-stage") && err.contains("(s1): kill or release it first"),
            "{err}"
        );
        assert_ne!(code, 6, "a precondition, not a permission: {err}");
    }
    let (_, out, _) = canon(&root, &["account", "list", "--json"]).await;
    assert_eq!(listed(&out), stage);
    // Each refusal is on record, as every refusal at the door is, on the
    // account in use (which a whole policy does not name itself).
    let (code, out, err) = canon(&root, &["audit", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let records: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let refused = |action: &str| {
        records.iter().any(|r| {
            r["command"] == "AuditRefused"
                && r["action"] == action
                && r["target"]["account"] == "web-stage"
                && r["outcome"]
                    .as_str()
                    .is_some_and(|o| o.contains("(s1): kill or release it first"))
        })
    };
    assert!(refused("account.remove"), "{out}");
    assert!(refused("account.update"), "{out}");
    assert!(refused("policy.put"), "{out}");
    let (code, _, err) = canon(&alice, &["account", "remove", "web-stage"]).await;
    assert_eq!(code, 6, "{err}");
    assert!(!err.contains("s1"), "{err}");

    let (code, _, err) = canon(&root, &["user", "remove", "alice"]).await;
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = canon(&alice, &["status"]).await;
    assert_eq!(code, 6);
}

/// `canon user create` hands a teammate a working client.toml; `canon user
/// rotate-key` replaces a key in one change: the new key signs, the old one
/// is refused; only user.rotate-key rotates someone else's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_create_and_rotate_key() {
    // Mutual TLS: carol also needs a client certificate.
    let w = start(true).await;
    let (tmp, cluster, root) = (&w.tmp, &w.cluster, w.root.clone());
    let (code, _, err) = canon(&root, &["policy", "apply", &w.file]).await;
    assert_eq!(code, 0, "{err}");

    // Without the client CA her certificate cannot be made: nothing is.
    let dir = tmp.path().join("carol");
    let create = ["user", "create", "carol", "--groups", "web"];
    let out_dir = ["--out", dir.to_str().unwrap()];
    let (code, _, err) = canon(&root, &[&create[..], &out_dir[..]].concat()).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--client-ca"), "{err}");
    assert!(!dir.join("carol.key").exists());
    // carol, made by root, works as herself straight away.
    let client_ca = tmp.path().join("dev/tls/client-ca");
    let out_dir = [
        "--out",
        dir.to_str().unwrap(),
        "--client-ca",
        client_ca.to_str().unwrap(),
    ];
    let (code, out, err) = canon(&root, &[&create[..], &out_dir[..]].concat()).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("+ user carol"), "{out}");
    let carol = dir.join("client.toml");
    let theirs = canon_client::config::read(&carol).unwrap();
    assert_eq!(theirs.user.as_deref(), Some("carol"));
    assert_eq!(
        theirs.cluster_id.as_deref(),
        Some(cluster.cluster_id.as_str())
    );
    assert!(theirs
        .tls
        .unwrap()
        .cert
        .unwrap()
        .ends_with("client-carol.crt"));
    // An admin whose client.toml names the client CA (as `canon dev`
    // writes it) needs no --client-ca.
    let mut admin = canon_client::config::read(&root).unwrap();
    admin.tls.as_mut().unwrap().client_ca = Some(client_ca.clone());
    let admin_toml = tmp.path().join("admin-with-ca.toml");
    admin.write(&admin_toml).unwrap();
    let erin = tmp.path().join("erin");
    let (code, _, err) = canon(
        &admin_toml,
        &["user", "create", "erin", "--out", erin.to_str().unwrap()],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(erin.join("client-erin.crt").exists());
    let can_run = ["auth", "can-i", "process.run", "--account", "web-dev"];
    let (code, out, err) = canon(&carol, &can_run).await;
    assert_eq!(code, 0, "{out} {err}");
    let (code, _, err) = canon(&carol, &["status"]).await;
    assert_eq!(code, 0, "{err}");
    // Making her twice touches nothing she holds.
    let (code, _, err) = canon(&root, &[&create[..], &out_dir[..]].concat()).await;
    assert_eq!(code, 1);
    assert!(err.contains("exists"), "{err}");
    let (code, _, _) = canon(&carol, &["status"]).await;
    assert_eq!(code, 0);

    // She rotates her own key (no role grants user.rotate-key).
    let old_key = canon_client::config::read(&carol).unwrap().key.unwrap();
    let old_config = dir.join("old.toml");
    std::fs::copy(&carol, &old_config).unwrap();
    // As the README has her do it: CANON_CONFIG=carol/client.toml, a path
    // relative to where she runs it (the rewritten client.toml must still
    // name her files relative to itself).
    let rotated = tokio::process::Command::new(env!("CARGO_BIN_EXE_canon"))
        .args(["user", "rotate-key"])
        .current_dir(tmp.path())
        .env("CANON_CONFIG", "carol/client.toml")
        .env_remove("CANON_ENDPOINTS")
        .output()
        .await
        .unwrap();
    let (code, out, err) = (
        rotated.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&rotated.stdout).into_owned(),
        String::from_utf8_lossy(&rotated.stderr).into_owned(),
    );
    assert_eq!(code, 0, "{out} {err}");
    let text = std::fs::read_to_string(&carol).unwrap();
    assert!(text.contains("cert = \"client-carol.crt\""), "{text}");
    let new_key = canon_client::config::read(&carol).unwrap().key.unwrap();
    assert_ne!(new_key, old_key);
    assert!(out.contains("no longer valid"), "{out}");
    let (code, _, err) = canon(&carol, &["status"]).await;
    assert_eq!(code, 0, "the new key signs: {err}");
    let (code, _, err) = canon(&old_config, &["status"]).await;
    assert_eq!(code, 6, "the old key is refused: {err}");
    assert!(err.contains("no key with id"), "{err}");

    // Someone else's key needs user.rotate-key: carol may not, root may.
    let bobs = tmp.path().join("alice-new.key");
    let rotate_alice = [
        "user",
        "rotate-key",
        "alice",
        "--out",
        bobs.to_str().unwrap(),
    ];
    let (code, _, err) = canon(&carol, &rotate_alice).await;
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("user.rotate-key"), "{err}");
    assert!(!bobs.exists(), "a refused rotation leaves no key file");
    let (code, _, err) = canon(&root, &rotate_alice).await;
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = canon(&tmp.path().join("alice.toml"), &["status"]).await;
    assert_eq!(code, 6, "alice's old key was replaced");
}

/// A client of node 1 only, signing as `user` with `key`, for the SDK's
/// streams.
fn sdk(cluster: &DevCluster, user: &str, key: &Path) -> canon_client::Client {
    let signer = canon_client::Signer::from_file(user, key).unwrap();
    canon_client::Client::connect(&cluster.endpoints[..1])
        .unwrap()
        .with_audience(cluster.cluster_id.clone())
        .with_signer(signer)
}

/// The events of `stream` until one of `alias` has kind `kind` (or the
/// time runs out: a failure).
async fn events_until(
    stream: &mut tonic::Streaming<canon_client::pb::Event>,
    alias: &str,
    kind: &str,
) -> Vec<canon_client::pb::Event> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let next = tokio::time::timeout_at(deadline, stream.message()).await;
        let e = next
            .expect("the event came in time")
            .unwrap()
            .expect("the stream stays open");
        let done = e.alias == alias && e.kind == kind;
        seen.push(e);
        if done {
            return seen;
        }
    }
}

/// A user's event stream carries only the processes they may
/// `process.status`, judged by the policy in force when each change
/// arrives: taking the permission away stops the events that follow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_events_are_only_of_processes_they_may_see() {
    let w = start(false).await;
    let (code, _, err) = canon(&w.root, &["policy", "apply", &w.file]).await;
    assert_eq!(code, 0, "{err}");
    let root = sdk(&w.cluster, &w.cluster.user, &w.cluster.admin_key);
    let alice = sdk(&w.cluster, "alice", &w.tmp.path().join("alice.key"));
    let mut everything = root.events("").await.unwrap();
    let mut hers = alice.events("").await.unwrap();

    let lw = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/bench/one-vpc.lw");
    let lw = lw.to_str().unwrap();
    let run = |alias: &'static str, account: Option<&'static str>| {
        let root = w.root.clone();
        async move {
            let mut args = vec!["run", lw, "-a", alias];
            args.extend(account.map(|a| ["--account", a]).into_iter().flatten());
            let (code, _, err) = canon(&root, &args).await;
            assert_eq!(code, 0, "{err}");
        }
    };
    // Root's process in the node's default account first: alice's role
    // does not cover it.
    run("hidden", None).await;
    events_until(&mut everything, "hidden", "job.finished").await;
    run("seen", Some("web-dev")).await;
    let got = events_until(&mut hers, "seen", "job.finished").await;
    assert!(got.iter().all(|e| e.alias == "seen"), "{got:?}");

    // Alice is removed: once node 1 has applied that (its linearizable
    // read refuses her), her stream carries nothing more. What it queued
    // before is drained first.
    let (code, _, err) = canon(&w.root, &["user", "remove", "alice"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(alice.status("", false).await.is_err(), "alice is gone");
    while let Ok(Ok(Some(_))) =
        tokio::time::timeout(Duration::from_millis(500), hers.message()).await
    {}
    run("later", Some("web-dev")).await;
    events_until(&mut everything, "later", "job.finished").await;
    let more = tokio::time::timeout(Duration::from_secs(2), hers.message()).await;
    assert!(
        !matches!(more, Ok(Ok(Some(_)))),
        "an event after the permission went: {more:?}"
    );
}
