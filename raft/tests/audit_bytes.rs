//! The audit records' in-memory form (shared text, issue #13) changes no
//! byte anyone else sees: a state's snapshot, the chain's hashes and a
//! signed batch's log entry are pinned against what the release before it
//! wrote for the same history (`tests/data/audit_golden.txt`, made by that
//! release from `support/audit_golden.rs`).

use std::sync::Arc;

use canon_raft::command::Batch;
use canon_raft::entry_codec::{decode_entry, encode_entry};
use canon_raft::types::Entry;
use canon_raft::CanonState;
use openraft::EntryPayload;

#[path = "support/audit_golden.rs"]
mod audit_golden;
use audit_golden::{golden_entry, golden_state, golden_text};

#[test]
fn snapshot_hashes_and_entry_bytes_are_as_the_release_before_wrote_them() {
    let pinned = include_str!("data/audit_golden.txt");
    let now = golden_text();
    for (line, (was, is)) in pinned.lines().zip(now.lines()).enumerate() {
        assert_eq!(was, is, "line {} of the pinned bytes", line + 1);
    }
    assert_eq!(pinned.lines().count(), now.lines().count());
}

#[test]
fn the_golden_chain_verifies_and_shares_its_text() {
    let s = golden_state();
    assert_eq!(s.audit.verify(s.group), Ok(s.audit.records.len() as u64));
    let r: Vec<_> = s.audit.records.iter().collect();
    for pair in r.windows(2) {
        assert_eq!(pair[1].prev, pair[0].hash);
    }
    let actions: Vec<_> = r
        .iter()
        .filter(|r| r.entry.action == "process.run")
        .map(|r| r.entry.action.clone())
        .collect();
    assert!(actions.len() >= 2);
    assert!(actions.windows(2).all(|a| a[0].shares(&a[1])));
    // A snapshot read back holds the same chain and writes the same bytes.
    let bytes = canon_raft::codec::encode(&s).unwrap();
    let back = CanonState::decode(&bytes).unwrap();
    assert_eq!(back, s);
    assert_eq!(canon_raft::codec::encode(&back).unwrap(), bytes);
    assert_eq!(back.audit.verify(back.group), s.audit.verify(s.group));
}

#[test]
fn a_decoded_batch_shares_its_users_and_door_text() {
    let bytes = encode_entry(&golden_entry()).unwrap();
    let entry = decode_entry(&bytes).unwrap();
    let EntryPayload::Normal(batch) = &entry.payload else {
        panic!("a normal entry");
    };
    let requests = batch.requests();
    // alice's run and job start, one after the other: one principal.
    let (a, b) = (&requests[0], &requests[1]);
    assert_eq!(a.principal, b.principal);
    assert!(Arc::ptr_eq(
        a.principal.as_ref().unwrap(),
        b.principal.as_ref().unwrap()
    ));
    let (da, db) = (a.door.as_ref().unwrap(), b.door.as_ref().unwrap());
    assert!(da.action.shares(&db.action));
    assert!(da.rule.as_ref().unwrap().shares(db.rule.as_ref().unwrap()));
    // Each request keeps its own hash.
    assert_ne!(da.request_hash, db.request_hash);
    // And what was decoded encodes again to the bytes written.
    let fresh = Entry {
        log_id: entry.log_id,
        payload: EntryPayload::Normal(Batch::from(requests.to_vec())),
    };
    assert_eq!(encode_entry(&fresh).unwrap(), bytes);
}
