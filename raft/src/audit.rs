//! The audit log in the replicated state: what a user's command carries
//! into the log for its record ([`DoorContext`], filled by the node's door)
//! and each group's hash chain of records ([`AuditChain`], in
//! [`CanonState`](crate::CanonState), so it is in every snapshot and every
//! replica holds the same one). Which commands leave a record, and what it
//! says, is the state machine's rule (`state::audit`); the record format
//! and the chain's hash are `canon_trust::audit`'s.
//!
//! Chains are per Raft group: a group's records are totally ordered by its
//! log; records of different groups are ordered only by their time.

use canon_trust::audit::{verify, Anchor, AuditEntry, AuditRecord, ChainBreak, Channel};
use serde::{Deserialize, Serialize};

/// What the node's door knew of a user's command, carried in its
/// [`Request`](crate::Request) so that the state machine can record it.
/// Part of the log's format (see [`crate::command`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoorContext {
    /// The policy action the command needed (`process.run`).
    pub action: String,
    pub channel: Channel,
    /// SHA-256 (hex) of the signed command bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_hash: Option<String>,
    /// SHA-256 of the client's TLS certificate, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_fingerprint: Option<String>,
    /// The rule that allowed it (`root key` for root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The policy version the door decided against (none for root, which
    /// needs no policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<u64>,
    /// The region the command's composition declares, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// One group's audit records, oldest first, after its anchor (the last
/// record retention removed). The records are a persistent vector
/// (`imbl`): a snapshot's frozen view shares them (O(1)), and they are
/// serialised as the sequence earlier releases wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditChain {
    #[serde(default)]
    pub anchor: Anchor,
    #[serde(default)]
    pub records: imbl::Vector<AuditRecord>,
}

impl AuditChain {
    /// The sequence number and hash the next record follows.
    pub fn head(&self) -> (u64, &str) {
        match self.records.back() {
            Some(r) => (r.entry.seq, &r.hash),
            None => (self.anchor.seq, &self.anchor.hash),
        }
    }

    /// Appends `entry` as the next record of group `group` (its group and
    /// sequence number are set here).
    pub fn append(&mut self, group: u64, mut entry: AuditEntry) {
        let (seq, prev) = self.head();
        entry.group = group;
        entry.seq = seq + 1;
        let record = AuditRecord::link(prev, entry);
        self.records.push_back(record);
    }

    /// Removes the records up to and including `through`; the last one
    /// removed becomes the anchor. How many were removed.
    ///
    /// The records are split off at once (the vector is ordered by
    /// sequence number) and freed on a thread of their own: a minute's
    /// retention sweep on a busy cluster trims tens of thousands of
    /// records a group, each a dozen allocations, and every replica
    /// applies the trim at about the same moment, inside its apply. The
    /// frees cost the same CPU elsewhere: this moves them, not saves them.
    pub fn trim_through(&mut self, through: u64) -> usize {
        let removed = match self.records.binary_search_by(|r| r.entry.seq.cmp(&through)) {
            Ok(at) => at + 1,
            Err(at) => at,
        };
        if removed == 0 {
            return 0;
        }
        let kept = self.records.split_off(removed);
        let gone = std::mem::replace(&mut self.records, kept);
        if let Some(last) = gone.back() {
            self.anchor = Anchor {
                seq: last.entry.seq,
                hash: last.hash.clone(),
            };
        }
        free_elsewhere(gone);
        removed
    }

    /// The sequence number to trim through (`AuditTrimmed`) so that the
    /// newest `keep` records remain; none if it holds no more than that.
    pub fn trim_point_keeping(&self, keep: u64) -> Option<u64> {
        let held = self.records.len() as u64;
        let last_dropped = usize::try_from(held.checked_sub(keep.checked_add(1)?)?).ok()?;
        self.records.get(last_dropped).map(|r| r.entry.seq)
    }

    /// Recomputes the chain from its anchor (see
    /// [`canon_trust::audit::verify`]).
    pub fn verify(&self, group: u64) -> Result<u64, ChainBreak> {
        verify(group, &self.anchor, &self.records)
    }
}

/// Trims this small are freed in place: a thread costs more than they do.
const FREE_INLINE_RECORDS_MAX: usize = 1_000;

/// Drops `records` on a short-lived thread of their own (in place if they
/// are few, or if no thread can be made): what they free does not depend
/// on where, and the caller is the state machine's apply.
fn free_elsewhere(records: imbl::Vector<AuditRecord>) {
    if records.len() <= FREE_INLINE_RECORDS_MAX {
        return;
    }
    // On failure `spawn` drops the closure here, and the records with it.
    let spawned = std::thread::Builder::new()
        .name("canon-audit-free".into())
        .spawn(move || drop(records));
    if let Err(e) = spawned {
        tracing::debug!(error = %e, "trimmed audit records freed in place");
    }
}
