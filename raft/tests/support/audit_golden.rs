//! A fixed history of audited requests (fixed ids, times and FIDs), so
//! that what a state made from it encodes to can be pinned: the snapshot
//! bytes, the chain's hashes and a signed batch's log entry must not change
//! when the records' in-memory form does (see `tests/audit_bytes.rs`).
//! Written against the public API only, with `.into()` for every text, so
//! the same file builds against releases whose fields are `String`s
//! (hence the conversions clippy finds useless here).
#![allow(clippy::useless_conversion)]

use canon_model::{Fid, JobKind, ProcessState};
use canon_raft::audit::DoorContext;
use canon_raft::command::{Batch, CommandId, Composition, DoorRefusal};
use canon_raft::types::Entry;
use canon_raft::{group_of_alias, CanonState, Command, Principal, Request};
use canon_trust::audit::Channel;
use openraft::{CommittedLeaderId, EntryPayload, LogId};
use uuid::Uuid;

const SHARDS: u32 = 4;

fn user(name: &str, root: bool) -> Principal {
    Principal {
        user: name.into(),
        key_id: format!("k-{name}"),
        root,
    }
}

fn door(action: &str, n: u8) -> DoorContext {
    DoorContext {
        action: action.into(),
        channel: Channel::Grpc,
        request_hash: Some(format!("{n:02x}").repeat(32).into()),
        cert_fingerprint: Some("ef".repeat(32).into()),
        rule: Some("role web rule 1 (allow process.* on accounts web-*)".into()),
        policy_version: Some(3),
        region: Some("us-east-1".into()),
    }
}

fn at(n: u128, at: u64, command: Command) -> Request {
    let mut r = Request::new(at, command);
    r.id = CommandId(Uuid::from_u128(
        0x5c6a_4e0e_8a47_4b1e_9f57_3f1d_2a6b_7c00 + n,
    ));
    r
}

/// The requests, in order.
pub fn golden_requests() -> Vec<Request> {
    let fid = Fid(Uuid::from_u128(0x03ac_9846_a3ad_4378_ab0e_3ad5_78de_e1b7));
    let alice = user("alice", false);
    vec![
        at(
            1,
            1_700_000_000_001,
            Command::ProcessCreated {
                imports: Default::default(),
                fid,
                alias: "web".into(),
                account: "web-dev".into(),
                composition: Composition {
                    bytes: vec![1, 2, 3],
                    source_hash: "h".into(),
                },
                tick_interval_ms: None,
            },
        )
        .by(alice.clone())
        .with_door(door("process.run", 1)),
        at(
            2,
            1_700_000_000_002,
            Command::JobStarted {
                fid,
                job: 2,
                kind: JobKind::Run,
                message: String::new(),
            },
        )
        .by(alice.clone())
        .with_door(door("process.run", 2)),
        at(3, 1_700_000_000_003, Command::Noop)
            .by(user("bob", false))
            .with_door(DoorContext {
                action: "process.run".into(),
                request_hash: Some("ab".repeat(32).into()),
                ..DoorContext::default()
            }),
        at(4, 1_700_000_000_004, Command::Noop).by(user("root", true)),
        // Rejected: a process that is not killing cannot be killed.
        at(
            5,
            1_700_000_000_005,
            Command::ProcessStateChanged {
                fid,
                state: ProcessState::Killed,
            },
        ),
        at(
            6,
            1_700_000_000_006,
            Command::AuditRefused {
                refusal: Box::new(DoorRefusal {
                    user: "mallory".into(),
                    key_id: None,
                    root: false,
                    channel: Channel::Sqs,
                    action: "process.kill".into(),
                    account: None,
                    alias: Some("web".into()),
                    reason: "bad signature".into(),
                    policy_version: None,
                    request_hash: Some("cd".repeat(32).into()),
                    dropped: 7,
                    cert_fingerprint: None,
                }),
            },
        ),
        at(
            7,
            1_700_000_000_007,
            Command::ProcessStateChanged {
                fid,
                state: ProcessState::Killing,
            },
        )
        .by(alice)
        .with_door(door("process.kill", 7)),
        at(8, 1_700_000_000_008, Command::AuditTrimmed { through: 2 }),
        at(9, 1_700_000_000_009, Command::Noop)
            .by(user("bob", false))
            .with_door(door("process.run", 9)),
    ]
}

/// A shard's state after [`golden_requests`].
pub fn golden_state() -> CanonState {
    let mut s = CanonState::new(group_of_alias("web", SHARDS), SHARDS);
    for r in golden_requests() {
        s.apply(&r);
    }
    s
}

/// The signed requests as one log entry.
pub fn golden_entry() -> Entry {
    let signed = golden_requests()
        .into_iter()
        .filter(|r| r.principal.is_some())
        .collect::<Vec<_>>();
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(3, 1), 42),
        payload: EntryPayload::Normal(Batch::from(signed)),
    }
}

/// `bytes` as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What is pinned, one item a line: the snapshot's bytes, each record's
/// hash, the anchor's, and the entry's bytes.
pub fn golden_text() -> String {
    let s = golden_state();
    let mut out = String::new();
    let snapshot = canon_raft::codec::encode(&s).expect("a state encodes");
    out.push_str(&format!("snapshot {}\n", hex(&snapshot)));
    out.push_str(&format!(
        "anchor {} {}\n",
        s.audit.anchor.seq, s.audit.anchor.hash
    ));
    for r in &s.audit.records {
        out.push_str(&format!("record {} {} {}\n", r.entry.seq, r.prev, r.hash));
    }
    let entry = canon_raft::entry_codec::encode_entry(&golden_entry()).expect("an entry encodes");
    out.push_str(&format!("entry {}\n", hex(&entry)));
    out
}
