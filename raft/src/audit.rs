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
    pub fn trim_through(&mut self, through: u64) -> usize {
        let mut removed = 0;
        while let Some(first) = self.records.front() {
            if first.entry.seq > through {
                break;
            }
            if let Some(r) = self.records.pop_front() {
                self.anchor = Anchor {
                    seq: r.entry.seq,
                    hash: r.hash,
                };
                removed += 1;
            }
        }
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
