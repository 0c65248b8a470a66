//! Users, roles and accounts at the API, over real gRPC against an
//! in-process cluster: before any policy only the root key works; a policy
//! applied by root lets its users sign; each user can do what their roles
//! allow and nothing else; a matching deny wins; an unauthorised or
//! escalating policy change, a stale base version and a refused process
//! command each change nothing (state compared before and after), and
//! each refusal leaves a deny record in the audit chain.

use std::time::Duration;

use canon_node::dev::{DevCluster, DevOptions};
use canon_proto::canon::api::v1 as pb;
use canon_proto::canon::api::v1::canon_client::CanonClient;
use canon_trust::audit::AuditRecord;
use ed25519_dalek::Signer as _;
use tonic::transport::Channel;
use tonic::Code;

use pb::command::Action;

mod support;
use support::audit::denials;
use support::who::Who;

struct World {
    _tmp: tempfile::TempDir,
    _cluster: DevCluster,
    api: CanonClient<Channel>,
    root: Who,
    alice: Who,
    bob: Who,
    carol: Who,
}

async fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let cluster = DevCluster::start(DevOptions {
        tick: Duration::from_secs(5),
        shards: 2,
        signed_reads: false,
        tls: false,
        ..DevOptions::new(tmp.path())
    })
    .await
    .unwrap();
    let root_key = canon_node::keys::read_signing_key(&cluster.admin_key).unwrap();
    let api = CanonClient::connect(cluster.endpoints[1].clone())
        .await
        .unwrap();
    let id = cluster.cluster_id.clone();
    World {
        _tmp: tmp,
        _cluster: cluster,
        api,
        alice: Who::new("alice", 1, &id),
        bob: Who::new("bob", 2, &id),
        carol: Who::new("carol", 3, &id),
        root: Who {
            name: "admin",
            key: root_key,
            audience: id.clone(),
        },
    }
}

/// alice (group web) deploys to web-*, but may not kill in web-prod; bob
/// edits the policy and holds nothing else; carol holds nothing.
fn policy(w: &World, extra_binding: &str) -> String {
    format!(
        r#"
[[users]]
name = "alice"
keys = ["{alice}"]
groups = ["web"]

[[users]]
name = "bob"
keys = ["{bob}"]

[[users]]
name = "carol"
keys = ["{carol}"]

[[accounts]]
name = "web-prod"
aws_account_id = "222222222222"
region = "us-west-2"

[[accounts]]
name = "web-dev"
aws_account_id = "333333333333"

[[accounts]]
name = "db-prod"
aws_account_id = "444444444444"

[[roles]]
name = "web-deployer"
rules = [
  {{ effect = "allow", actions = ["process.*"], accounts = ["web-*"] }},
  {{ effect = "deny",  actions = ["process.kill"], accounts = ["web-prod"], aliases = ["*"] }},
]

[[roles]]
name = "policy-editor"
rules = [{{ effect = "allow", actions = ["policy.get", "policy.put"] }}]

[[bindings]]
role = "web-deployer"
subjects = ["group:web"{extra_binding}]

[[bindings]]
role = "policy-editor"
subjects = ["user:bob"]
"#,
        alice = w.alice.public(),
        bob = w.bob.public(),
        carol = w.carol.public(),
    )
}

fn put(toml: String, base_version: Option<u64>) -> Action {
    Action::PolicyPut(pb::PolicyPut { toml, base_version })
}

fn compiled() -> pb::CompiledComposition {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/bench/one-vpc.lw");
    let out = canon_lang::compile_file(&path, canon_lang::Options::default()).unwrap();
    let c = out.compiled.unwrap();
    pb::CompiledComposition {
        bytes: c.encode(),
        source_hash: c.source_hash,
    }
}

fn run(alias: &str, account: &str) -> Action {
    Action::Run(pb::Run {
        alias: alias.into(),
        fid: uuid::Uuid::new_v4().to_string(),
        account: account.into(),
        composition: Some(compiled()),
        tick_interval_ms: 0,
        import: false,
        composition_ref: None,
    })
}

fn kill(alias: &str) -> Action {
    Action::Kill(pb::Kill {
        alias: alias.into(),
    })
}

impl World {
    async fn submit(
        &mut self,
        who: &str,
        action: Action,
    ) -> Result<pb::CommandReply, tonic::Status> {
        let env = self.who(who).envelope(action, false);
        self.api.submit(env).await.map(|r| r.into_inner())
    }

    async fn dry_run(
        &mut self,
        who: &str,
        action: Action,
    ) -> Result<pb::CommandReply, tonic::Status> {
        let env = self.who(who).envelope(action, true);
        self.api.submit(env).await.map(|r| r.into_inner())
    }

    fn who(&self, name: &str) -> &Who {
        match name {
            "admin" => &self.root,
            "alice" => &self.alice,
            "bob" => &self.bob,
            _ => &self.carol,
        }
    }

    /// The policy as root reads it: (version, TOML).
    async fn policy_now(&mut self) -> (u64, String) {
        let req = self.root.read("GetPolicy", pb::GetPolicyRequest {});
        let r = self.api.get_policy(req).await.unwrap().into_inner();
        (r.version, r.toml)
    }

    /// Every process as root sees it: (alias, account, state).
    async fn processes(&mut self) -> Vec<(String, String, String)> {
        let req = pb::StatusRequest {
            alias: String::new(),
            all: true,
            ..Default::default()
        };
        let r = self.api.status(req).await.unwrap().into_inner();
        let mut rows: Vec<_> = r
            .processes
            .into_iter()
            .map(|p| (p.alias, p.account, p.state))
            .collect();
        rows.sort();
        rows
    }

    async fn can_i(
        &mut self,
        who: &str,
        action: &str,
        account: &str,
        alias: &str,
    ) -> pb::CanIReply {
        let body = pb::CanIRequest {
            action: action.into(),
            account: account.into(),
            alias: alias.into(),
            user: String::new(),
        };
        let req = self.who(who).read("CanI", body);
        self.api.can_i(req).await.unwrap().into_inner()
    }
}

fn denied(r: Result<pb::CommandReply, tonic::Status>, parts: &[&str]) {
    let e = r.expect_err("expected a refusal");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    for part in parts {
        assert!(e.message().contains(part), "{part:?} in {:?}", e.message());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_changes_are_authorised_and_refusals_change_nothing() {
    let mut w = world().await;
    // No policy yet: only root works; alice is nobody.
    assert_eq!(w.policy_now().await, (0, String::new()));
    let doc = policy(&w, "");
    let e = w.submit("alice", put(doc.clone(), None)).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    // A document that does not read is refused with its line.
    let e = w
        .submit(
            "admin",
            put("[[users]]\nname = \"x\nkeys = []".into(), None),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("line 2"), "{e:?}");
    // Root applies it (against version 0).
    let r = w.submit("admin", put(doc.clone(), Some(0))).await.unwrap();
    assert_eq!(r.policy_version, 1);
    assert!(r.message.contains("+ user alice"), "{}", r.message);
    let before = w.policy_now().await;
    assert_eq!(before.0, 1);

    // alice may not change the policy.
    let r = w
        .submit("alice", put(policy(&w, ", \"user:carol\""), None))
        .await;
    denied(r, &["alice", "policy.put", "missing permission policy.put"]);
    assert_eq!(w.policy_now().await, before);
    // bob may, but not give carol (or himself) process rights he lacks.
    let r = w
        .submit("bob", put(policy(&w, ", \"user:carol\""), None))
        .await;
    denied(r, &["bob", "carol", "policy.escalate"]);
    assert_eq!(w.policy_now().await, before);
    // A dry run shows the diff and changes nothing, refused or not.
    let r = w
        .dry_run("bob", put(policy(&w, ", \"user:bob\""), None))
        .await;
    denied(r, &["policy.escalate"]);
    let less = policy(&w, "").replace("\"policy.get\", ", "");
    let r = w.dry_run("bob", put(less.clone(), Some(1))).await.unwrap();
    assert!(r.message.contains("role policy-editor"), "{}", r.message);
    assert_eq!(w.policy_now().await, before);
    // A stale base version is refused; the current one applies.
    let e = w
        .submit("bob", put(less.clone(), Some(0)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("version 1"), "{e:?}");
    assert_eq!(w.policy_now().await, before);
    let r = w.submit("bob", put(less, Some(1))).await.unwrap();
    assert_eq!(r.policy_version, 2);
    // bob gave up policy.get: he may no longer read the policy.
    let req = w.bob.read("GetPolicy", pb::GetPolicyRequest {});
    let e = w.api.get_policy(req).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("policy.get"), "{e:?}");

    // Users come and go: a removed user's key no longer signs.
    w.submit(
        "admin",
        Action::UserRemove(pb::NameOnly {
            name: "carol".into(),
        }),
    )
    .await
    .unwrap();
    let e = w.submit("carol", run("c-1", "web-dev")).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let r = w
        .submit(
            "admin",
            Action::UserAdd(pb::UserAdd {
                name: "carol".into(),
                keys: vec![w.carol.public()],
                groups: vec!["web".into()],
            }),
        )
        .await
        .unwrap();
    assert!(r.message.contains("+ user carol"), "{}", r.message);
    w.submit("carol", run("c-1", "web-dev")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_do_what_their_roles_allow_and_deny_wins() {
    let mut w = world().await;
    let doc = policy(&w, "");
    w.submit("admin", put(doc, None)).await.unwrap();

    // alice deploys in web-dev and web-prod.
    w.submit("alice", run("dev-1", "web-dev")).await.unwrap();
    w.submit("alice", run("prod-1", "web-prod")).await.unwrap();
    let before = w.processes().await;
    // Deny wins: she may not kill in web-prod, though process.* allows it.
    let r = w.submit("alice", kill("prod-1")).await;
    denied(
        r,
        &[
            "alice",
            "process.kill",
            "prod-1",
            "web-prod",
            "denied by role web-deployer rule 2",
        ],
    );
    // Nothing outside web-*, and nothing for carol, who holds no role.
    let r = w.submit("alice", run("db-1", "db-prod")).await;
    denied(r, &["missing permission process.run on account db-prod"]);
    let r = w.submit("carol", run("c-1", "web-dev")).await;
    denied(r, &["carol", "process.run"]);
    let r = w.submit("carol", kill("prod-1")).await;
    denied(r, &["carol", "process.kill"]);
    // An account the policy does not list is refused before anything.
    let e = w
        .submit("alice", run("x-1", "web-nowhere"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(w.processes().await, before);
    // She kills in web-dev; root still does anything.
    w.submit("alice", kill("dev-1")).await.unwrap();
    w.submit("admin", kill("prod-1")).await.unwrap();

    // can-i says the same, with the rule.
    let a = w.can_i("alice", "process.kill", "web-prod", "prod-1").await;
    assert!(!a.allowed);
    assert!(a.rule.contains("web-deployer rule 2"), "{a:?}");
    let a = w.can_i("alice", "process.run", "web-dev", "").await;
    assert!(a.allowed);
    assert!(a.rule.contains("web-deployer rule 1"), "{a:?}");
    let a = w.can_i("carol", "process.run", "web-dev", "").await;
    assert!(!a.allowed && a.rule.is_empty(), "{a:?}");
    // Reads are authorised too: carol sees no process, alice sees hers.
    for (who, visible) in [("carol", 0), ("alice", 2)] {
        let body = pb::StatusRequest {
            alias: String::new(),
            all: true,
            ..Default::default()
        };
        let req = w.who(who).read("Status", body);
        let rows = w.api.status(req).await.unwrap().into_inner().processes;
        assert_eq!(rows.len(), visible, "{who}: {rows:?}");
    }
    // Accounts: only root may add one here; alice may not list them.
    let add = Action::AccountAdd(pb::AccountView {
        name: "web-stage".into(),
        aws_account_id: "555555555555".into(),
        role_arn: "arn:aws:iam::555555555555:role/canon".into(),
        external_id: "x".into(),
        region: "eu-west-1".into(),
        events_queues: Default::default(),
    });
    denied(
        w.submit("alice", add.clone()).await,
        &["account.add", "web-stage"],
    );
    w.submit("admin", add).await.unwrap();
    w.submit("alice", run("stage-1", "web-stage"))
        .await
        .unwrap();
    let req = w.alice.read("ListAccounts", pb::ListAccountsRequest {});
    assert_eq!(
        w.api.list_accounts(req).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let req = w.root.read("ListAccounts", pb::ListAccountsRequest {});
    let names: Vec<String> = w
        .api
        .list_accounts(req)
        .await
        .unwrap()
        .into_inner()
        .accounts
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["web-prod", "web-dev", "db-prod", "web-stage"]);
}

impl World {
    /// Every group's audit records as root reads them, each chain checked
    /// from its anchor.
    async fn audit_records(&mut self) -> Vec<AuditRecord> {
        support::audit::records(&mut self.api, &self.root).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_refusal_leaves_a_deny_record_and_changes_nothing_else() {
    let mut w = world().await;
    w.submit("admin", put(policy(&w, ""), None)).await.unwrap();
    w.submit("alice", run("dev-1", "web-dev")).await.unwrap();
    let before = (w.processes().await, w.policy_now().await);
    assert!(denials(&w.audit_records().await).is_empty());

    // Unauthorised, and refused by the policy (decided at the door).
    denied(w.submit("carol", run("c-1", "web-dev")).await, &["carol"]);
    denied(
        w.submit("alice", run("db-1", "db-prod")).await,
        &["db-prod"],
    );
    // Escalating (decided in the meta group's state machine).
    let escalate = put(policy(&w, ", \"user:carol\""), None);
    denied(w.submit("bob", escalate).await, &["policy.escalate"]);
    // Forged: alice's name and key id, carol's signature.
    let mut forged = w.alice.envelope(run("f-1", "web-dev"), false);
    forged.signature = w.carol.key.sign(&forged.command).to_bytes().to_vec();
    let e = w.api.submit(forged).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    // Signed for another cluster.
    let staging = Who::new("alice", 1, "staging");
    let e = w
        .api
        .submit(staging.envelope(run("s-1", "web-dev"), false))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    // Someone the cluster does not know.
    let mallory = Who::new("mallory", 9, &w.alice.audience);
    let e = w
        .api
        .submit(mallory.envelope(kill("dev-1"), false))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    // Replayed: the same envelope twice (refused by the policy first).
    let env = w.carol.envelope(kill("dev-1"), false);
    denied(w.api.submit(env.clone()).await.map(|r| r.into_inner()), &[]);
    let e = w.api.submit(env).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    // Signed an hour ago, expired a minute after (past any clock skew).
    let an_hour_ago = canon_node::now_ms() - 3_600_000;
    let old = w
        .alice
        .sign(&Who::command(kill("dev-1"), false), an_hour_ago, 60_000);
    let e = w.api.submit(old).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);

    // Nothing changed...
    assert_eq!((w.processes().await, w.policy_now().await), before);
    // ...but each refusal is on record, as a deny.
    let records = w.audit_records().await;
    let denied_now = denials(&records);
    let expect: [(&str, &str, &str); 9] = [
        ("carol", "process.run", "missing permission process.run"),
        ("alice", "process.run", "db-prod"),
        ("bob", "policy.put", "policy.escalate"),
        ("alice", "process.run", "signature does not verify"),
        ("alice", "process.run", "another cluster"),
        ("mallory", "process.kill", "unknown user"),
        ("carol", "process.kill", "missing permission process.kill"),
        ("carol", "process.kill", "replayed"),
        ("alice", "process.kill", "expired"),
    ];
    assert_eq!(denied_now.len(), expect.len(), "{denied_now:#?}");
    for (user, action, why) in expect {
        assert!(
            denied_now
                .iter()
                .any(|(u, a, o)| u == user && a == action && o.contains(why)),
            "no deny record of {user} {action} ({why}) in {denied_now:#?}"
        );
    }
    // An allowed command's record: who, what, which rule, which policy.
    let run = records
        .iter()
        .find(|r| {
            r.entry.command == "ProcessCreated" && r.entry.target.alias.as_deref() == Some("dev-1")
        })
        .expect("a record of alice's run");
    let e = &run.entry;
    assert_eq!(e.principal.as_ref().map(|p| p.user.as_str()), Some("alice"));
    assert_eq!(e.action, "process.run");
    assert_eq!(e.target.account.as_deref(), Some("web-dev"));
    assert_eq!(e.decision.policy_version, Some(1));
    let rule = e.decision.rule.as_deref().unwrap_or_default();
    assert!(rule.contains("web-deployer rule 1"), "{rule}");
    assert_eq!(
        e.request_hash.as_ref().map(|h| h.to_string().len()),
        Some(64)
    );
    assert_eq!(e.outcome, "applied");

    // Reading the audit needs audit.read: alice lacks it; unsigned is refused.
    let req = w.alice.read("Audit", pb::AuditRequest::default());
    let e = w.api.audit(req).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("audit.read"), "{e:?}");
    let e = w
        .api
        .audit(tonic::Request::new(pb::AuditRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
}

/// Reads are refused and recorded like commands: a read the policy
/// refuses (process.status of someone else's process, audit.read), a
/// forged read token, an unsigned read where a signer is needed; and so
/// is a member removal the policy refuses (which removes nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_reads_and_member_removals_leave_deny_records() {
    let mut w = world().await;
    w.submit("admin", put(policy(&w, ""), None)).await.unwrap();
    w.submit("alice", run("dev-1", "web-dev")).await.unwrap();
    let members = |r: pb::ClusterStatusReply| r.members.len();
    let status = pb::ClusterStatusRequest { local: false };
    let before = members(w.api.cluster_status(status).await.unwrap().into_inner());

    // carol holds nothing: not process.status on alice's process...
    let body = pb::StatusRequest {
        alias: "dev-1".into(),
        all: false,
        ..Default::default()
    };
    let e = w
        .api
        .status(w.carol.read("Status", body))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    // ...nor cluster.remove.
    let remove = Action::RemoveMember(pb::RemoveMember { node: 3 });
    let e = w
        .api
        .remove_member(w.carol.envelope(remove, false))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    // alice may not read the audit.
    let req = w.alice.read("Audit", pb::AuditRequest::default());
    let e = w.api.audit(req).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    // A forged token: alice's name and key id, carol's signature.
    let body = pb::HistoryRequest {
        alias: "dev-1".into(),
        ..pb::HistoryRequest::default()
    };
    let mut forged = w.alice.read("History", body.clone());
    let carols = w.carol.read("History", body);
    let sig = carols.metadata().get("canon-signature").unwrap().clone();
    forged.metadata_mut().insert("canon-signature", sig);
    let e = w.api.history(forged).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    // The audit needs a signed read, whatever the node's setting.
    let e = w
        .api
        .audit(tonic::Request::new(pb::AuditRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");

    let status = pb::ClusterStatusRequest { local: false };
    let after = members(w.api.cluster_status(status).await.unwrap().into_inner());
    assert_eq!(after, before);
    let records = w.audit_records().await;
    let denied_now = denials(&records);
    let expect: [(&str, &str, &str); 5] = [
        (
            "carol",
            "process.status",
            "missing permission process.status",
        ),
        (
            "carol",
            "cluster.remove",
            "missing permission cluster.remove",
        ),
        ("alice", "audit.read", "missing permission audit.read"),
        ("alice", "process.history", "signature does not verify"),
        ("(unsigned)", "audit.read", "needs a signed read"),
    ];
    assert_eq!(denied_now.len(), expect.len(), "{denied_now:#?}");
    for (user, action, why) in expect {
        assert!(
            denied_now
                .iter()
                .any(|(u, a, o)| u == user && a == action && o.contains(why)),
            "no deny record of {user} {action} ({why}) in {denied_now:#?}"
        );
    }
    // The refused reads of dev-1 are on its record, with what was signed.
    let about_dev_1: Vec<_> = records
        .iter()
        .filter(|r| r.entry.command == "AuditRefused")
        .filter(|r| r.entry.target.alias.as_deref() == Some("dev-1"))
        .collect();
    assert_eq!(about_dev_1.len(), 2, "{about_dev_1:#?}");
    assert!(about_dev_1
        .iter()
        .all(|r| r.entry.request_hash.as_ref().map(|h| h.to_string().len()) == Some(64)));
}
