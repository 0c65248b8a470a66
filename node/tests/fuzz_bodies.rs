//! The fuzz targets' bodies (`fuzz/src/lib.rs`) on stable, so CI runs them
//! without nightly: each over its checked-in seed corpus
//! (`fuzz/corpus/<target>/`), then over a few thousand mutations of those
//! seeds and random inputs. None may panic, and the seeds must reach the
//! deep end (an envelope that verifies, a policy that is accepted, a chain
//! that checks out), or libFuzzer would start from nothing.
//!
//! The seeds are made by
//! `cargo test -p canon-node --test fuzz_bodies -- --ignored write_seeds`
//! (envelopes signed with the bodies' fixed keys at their fixed time, a
//! policy in the README's shape naming those keys, an exported chain).

#[path = "../../fuzz/src/lib.rs"]
mod bodies;

use std::path::{Path, PathBuf};

use bodies::Reached;
use canon_node::envelope::{signing_payload, SignedBy};
use canon_proto::canon::api::v1 as pb;
use canon_trust::audit::{
    AuditDecision, AuditEntry, AuditPrincipal, AuditRecord, AuditTarget, Channel, Decider, GENESIS,
};
use canon_trust::{Effect, PublicKey};
use ed25519_dalek::{Signer as _, SigningKey};
use prost::Message;

/// Mutated and random inputs per target.
const MUTATIONS: usize = 3000;
const RANDOM: usize = 500;

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus(target))
        .unwrap_or_else(|e| panic!("{}: {e}", corpus(target).display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

/// xorshift64*: a seeded generator, so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Bytes that mean something to protobuf, TOML or JSON.
const TOKENS: &[&[u8]] = &[
    b"\n",
    b"=",
    b"\"",
    b"[",
    b"]",
    b"[[",
    b"]]",
    b"{",
    b"}",
    b",",
    b":",
    b"*",
    b"#",
    b"\\",
    b"\\u0000",
    b"-1",
    b"18446744073709551615",
    b"1e999",
    b"null",
    b"true",
    b"\xff\xff\xff\xff\x0f",
    b"\x0a\x80\x01",
    b"\x12\x00",
    b"\xc3\xa9",
];

/// One mutation of a seed: bits flipped, bytes set, tokens inserted,
/// ranges cut, truncation, splices with another seed.
fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(7) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = [0, 0x7f, 0x80, 0xff, rng.next() as u8][rng.below(5)];
            }
            2 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                v.splice(at..at, t.iter().copied());
            }
            3 if !v.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(v.len());
                v.drain(at.min(end)..end);
            }
            4 => v.truncate(at),
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                let to = (from + rng.below(64)).min(other.len());
                v.splice(at..at, other[from..to].iter().copied());
            }
            _ => {
                let end = (at + rng.below(32)).min(v.len());
                let chunk = v[at..end].to_vec();
                v.splice(at..at, chunk);
            }
        }
    }
    v
}

/// Runs `body` over `target`'s seeds (the best of which must reach
/// `deepest`) and over mutations and random inputs; how many inputs
/// reached each outcome.
fn exercise(target: &str, body: fn(&[u8]) -> Reached, deepest: Reached) -> [usize; 3] {
    let seeds = seeds(target);
    assert!(!seeds.is_empty(), "no seeds for {target}");
    let best = seeds.iter().map(|s| body(s)).max();
    assert_eq!(best, Some(deepest), "{target}'s seeds reach no further");
    let mut reached = [0; 3];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ target.len() as u64);
    for i in 0..MUTATIONS + RANDOM {
        let input = if i < MUTATIONS {
            mutate(&mut rng, &seeds)
        } else {
            let n = rng.below(512);
            rng.bytes(n)
        };
        reached[body(&input) as usize] += 1;
    }
    reached
}

#[test]
fn envelope_body_over_its_corpus_and_mutations() {
    let [_, refused, _] = exercise("envelope", bodies::envelope, Reached::Accepted);
    assert!(refused > 0);
}

/// [`exercise`] for a body whose mutations must land on both sides: some
/// refused, some accepted.
fn refuses_some_and_accepts_some(target: &str, body: fn(&[u8]) -> Reached) {
    let [_, refused, accepted] = exercise(target, body, Reached::Accepted);
    assert!(
        refused > 0 && accepted > 0,
        "{target}: {refused} refused, {accepted} accepted"
    );
}

#[test]
fn policy_body_over_its_corpus_and_mutations() {
    refuses_some_and_accepts_some("policy", bodies::policy);
}

#[test]
fn audit_record_body_over_its_corpus_and_mutations() {
    let [_, refused, _] = exercise("audit_record", bodies::audit_record, Reached::Accepted);
    assert!(refused > 0);
}

#[test]
fn snapshot_body_over_its_corpus_and_mutations() {
    refuses_some_and_accepts_some("snapshot", bodies::snapshot);
}

#[test]
fn entry_body_over_its_corpus_and_mutations() {
    refuses_some_and_accepts_some("entry", bodies::entry);
}

/// The requests a log entry carries: bare, fenced, a user's command
/// through the door (every door field set), a bench value, and a command
/// the compact format writes as CBOR.
fn entry_requests() -> Vec<canon_raft::Request> {
    use canon_raft::{Command, DoorContext, Principal, Request};
    let at = bodies::NOW_MS;
    let alice = Principal {
        user: bodies::POLICY_USER.into(),
        key_id: "0123456789abcdef".into(),
        root: false,
    };
    vec![
        Request::new(at, Command::Noop),
        Request::fenced(7, at + 1, Command::AuditTrimmed { through: 40 }),
        Request::new(at + 2, Command::Noop)
            .by(alice.clone())
            .with_door(DoorContext {
                action: "process.run".into(),
                channel: Channel::Sqs,
                request_hash: Some("ab".repeat(32).into()),
                cert_fingerprint: Some("cd".repeat(32).into()),
                rule: Some("role web rule 1 (allow process.* on accounts web-*)".into()),
                policy_version: Some(3),
                region: Some("us-west-2".into()),
            }),
        Request::new(at + 3, Command::Noop)
            .by(alice)
            .with_door(DoorContext {
                action: "process.kill".into(),
                request_hash: Some("not a sha-256".into()),
                ..DoorContext::default()
            }),
        Request::new(
            at + 4,
            Command::BenchPut {
                key: 9,
                value: b"value".to_vec(),
            },
        ),
    ]
}

/// Log entries as the WAL holds them, an AppendEntries as a peer sends
/// one and a proposal as a peer forwards one, in both formats.
fn entry_seeds() -> Vec<(String, Vec<u8>)> {
    use canon_raft::command::Batch;
    use canon_raft::entry_codec::{self as codec, WriteFormat};
    use openraft::{CommittedLeaderId, EntryPayload, LogId, Vote};
    let log_id = |index| LogId::new(CommittedLeaderId::new(3, 2), index);
    let entries = vec![
        canon_raft::types::Entry {
            log_id: log_id(16),
            payload: EntryPayload::Blank,
        },
        canon_raft::types::Entry {
            log_id: log_id(17),
            payload: EntryPayload::Normal(Batch::from(entry_requests())),
        },
    ];
    let append = openraft::raft::AppendEntriesRequest {
        vote: Vote::new_committed(3, 2),
        prev_log_id: Some(log_id(15)),
        entries: entries.clone(),
        leader_commit: Some(log_id(14)),
    };
    let requests = entry_requests();
    let proposal = &requests[2];
    let mut seeds = Vec::new();
    for (format, tag) in [
        (WriteFormat::Compact, "compact"),
        (WriteFormat::First, "cbor"),
    ] {
        for e in &entries {
            let bytes = codec::encode_entry_as(format, e).unwrap();
            seeds.push((format!("entry-{}-{tag}", e.log_id.index), bytes));
        }
        let bytes = codec::encode_append_entries_as(format, &append).unwrap();
        seeds.push((format!("append-entries-{tag}"), bytes));
        let bytes = codec::encode_request_as(format, proposal).unwrap();
        seeds.push((format!("proposal-{tag}"), bytes));
    }
    seeds
}

/// A shard's snapshot image whose audit chain holds records of users'
/// commands (principal and door context) and of the conductor's own (a
/// small chain, so that mutations land in it often).
fn snapshot_image() -> Vec<u8> {
    use canon_raft::store::snap_format::encode_image;
    use canon_raft::{Command, DoorContext, Principal, Request};
    let mut state = canon_raft::CanonState::new(canon_raft::shard::group_of_shard(0), 4);
    let alice = Principal {
        user: bodies::POLICY_USER.into(),
        key_id: "0123456789abcdef".into(),
        root: false,
    };
    for i in 0..60u64 {
        let at = bodies::NOW_MS + i;
        let req = match i % 3 {
            0 => Request::new(at, Command::AuditTrimmed { through: 0 }),
            _ => Request::new(at, Command::Noop)
                .by(alice.clone())
                .with_door(DoorContext {
                    action: "process.run".into(),
                    request_hash: Some(format!("{i:064x}").as_str().into()),
                    rule: Some("role web rule 1 (allow process.* on accounts web-*)".into()),
                    policy_version: Some(3),
                    ..DoorContext::default()
                }),
        };
        state.apply(&req);
    }
    assert_eq!(state.audit.records.len(), 60);
    encode_image(&Default::default(), state).unwrap()
}

// The seed corpus.

fn signed_envelope(
    user: &str,
    key: &SigningKey,
    audience: &str,
    alias: &str,
) -> pb::SignedEnvelope {
    let command = pb::Command {
        command_id: "5c6a4e0e-8a47-4b1e-9f57-3f1d2a6b7c80".into(),
        dry_run: false,
        reply_queue: String::new(),
        action: Some(pb::command::Action::Kill(pb::Kill {
            alias: alias.into(),
        })),
    }
    .encode_to_vec();
    let key_id = PublicKey(key.verifying_key().to_bytes()).id().0;
    let nonce = vec![0x5a; 16];
    let at = bodies::NOW_MS - 1000;
    let expires_ms = at + 60_000;
    let by = SignedBy {
        user,
        key_id: &key_id,
        audience,
        timestamp_ms: at,
    };
    let payload = signing_payload(&by, &nonce, expires_ms, &command);
    pb::SignedEnvelope {
        command,
        user: user.into(),
        nonce,
        timestamp_ms: at,
        signature: key.sign(&payload).to_bytes().to_vec(),
        audience: audience.into(),
        key_id,
        expires_ms,
    }
}

fn record_chain() -> Vec<AuditRecord> {
    let mut prev = GENESIS.to_string();
    let mut out = Vec::new();
    for seq in 1..=3 {
        let entry = AuditEntry {
            group: 1,
            seq,
            at: bodies::NOW_MS + seq,
            command_id: format!("5c6a4e0e-8a47-4b1e-9f57-3f1d2a6b7c8{seq}").into(),
            command: "ProcessCreated".into(),
            principal: Some(AuditPrincipal {
                user: "alice".into(),
                key_id: Some("0123456789abcdef".into()),
                cert_fingerprint: Some("ab".repeat(32).into()),
                channel: Channel::Grpc,
                root: false,
            }),
            action: "process.run".into(),
            target: AuditTarget {
                account: Some("web-dev".into()),
                region: Some("us-west-2".into()),
                alias: Some("web-1".into()),
                fid: Some("03ac9846-a3ad-4378-ab0e-3ad578dee1b7".into()),
            },
            decision: AuditDecision {
                effect: Effect::Allow,
                rule: Some("role web rule 1 (allow process.* on accounts web-*)".into()),
                policy_version: Some(3),
                by: Decider::Door,
            },
            outcome: "applied".into(),
            detail: Some("job 2 (RUN)".into()),
            request_hash: Some("cd".repeat(32).into()),
            aws_request_ids: vec!["00000000-0000-4000-8000-000000000001".into()],
            dropped: seq - 1,
        };
        let r = AuditRecord::link(&prev, entry);
        prev = r.hash.to_string();
        out.push(r);
    }
    out
}

/// A policy in the README's shape (keys filled in by `write_seeds`).
const POLICY: &str = r#"[[users]]
name = "alice"
keys = ["ALICE"]
groups = ["web"]

[[users]]
name = "bob"
keys = ["ROOT"]

[[accounts]]
name = "web-prod"
aws_account_id = "222222222222"
role_arn = "arn:aws:iam::222222222222:role/canon"
external_id = "x-1"
region = "us-west-2"

[[accounts]]
name = "web-dev"
aws_account_id = "333333333333"

[[roles]]
name = "web-deployer"
rules = [
  { effect = "allow", actions = ["process.*"], accounts = ["web-*"] },
  { effect = "deny",  actions = ["process.kill"], accounts = ["web-prod"], aliases = ["*"] },
]

[[roles]]
name = "admin"
rules = [{ effect = "allow", actions = ["policy.*", "user.*", "audit.read"] }]

[[bindings]]
role = "web-deployer"
subjects = ["group:web", "user:bob"]

[[bindings]]
role = "admin"
subjects = ["user:bob"]
accounts = ["web-dev"]
"#;

/// Writes the generated seeds (run after a change to the envelope or
/// record format; the tests above say when).
#[test]
#[ignore]
fn write_seeds() {
    let write = |target: &str, name: &str, bytes: &[u8]| {
        std::fs::create_dir_all(corpus(target)).unwrap();
        std::fs::write(corpus(target).join(name), bytes).unwrap();
    };
    let root = bodies::root_key();
    let user = bodies::user_key();
    let a = bodies::AUDIENCE;
    let envelopes = [
        (
            "root-kill",
            signed_envelope(bodies::ROOT_USER, &root, a, "web-1"),
        ),
        (
            "user-kill",
            signed_envelope(bodies::POLICY_USER, &user, a, "web-1"),
        ),
        (
            "other-cluster",
            signed_envelope(bodies::POLICY_USER, &user, "staging", "web-1"),
        ),
        (
            "wrong-key",
            signed_envelope(bodies::POLICY_USER, &root, a, "web-1"),
        ),
    ];
    for (name, env) in envelopes {
        write("envelope", name, &env.encode_to_vec());
    }
    let hex = |k: &SigningKey| hex::encode(k.verifying_key().to_bytes());
    let policy = POLICY
        .replace("ALICE", &hex(&user))
        .replace("ROOT", &hex(&root));
    write("policy", "readme-shape.toml", policy.as_bytes());
    let first_user = policy.split("\n\n").next().unwrap_or_default();
    write("policy", "one-user.toml", first_user.as_bytes());
    write("policy", "empty.toml", b"");
    let lines: Vec<String> = record_chain()
        .iter()
        .map(AuditRecord::to_json_line)
        .collect();
    write(
        "audit_record",
        "chain-of-3.jsonl",
        lines.join("\n").as_bytes(),
    );
    write("audit_record", "one-record.jsonl", lines[0].as_bytes());
    write("snapshot", "audited-shard.snap", &snapshot_image());
    for (name, bytes) in entry_seeds() {
        write("entry", &name, &bytes);
    }
}
