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
//!
//! # Shared text
//! A record's text fields are [`Text`]s (shared strings) and each chain
//! keeps an [`Interner`], so that the hundreds of thousands of records a
//! busy replica holds share one copy of each user, key, action, rule and
//! target instead of allocating their own (issue #13: the allocations and
//! the growing heap were most of what the audit added to a write); the
//! hashes and the command id, which no record repeats, are held as their
//! bytes inside the record ([`Packed`]). Neither changes a byte of a
//! record, a hash or a snapshot (`tests/audit_bytes.rs` pins them).

use std::collections::HashSet;

use canon_trust::audit::{
    verify, Anchor, AuditEntry, AuditRecord, ChainBreak, Channel, Packed, Text,
};
use serde::{Deserialize, Serialize};

/// What the node's door knew of a user's command, carried in its
/// [`Request`](crate::Request) so that the state machine can record it.
/// Part of the log's format (see [`crate::command`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoorContext {
    /// The policy action the command needed (`process.run`).
    pub action: Text,
    pub channel: Channel,
    /// SHA-256 (hex) of the signed command bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_hash: Option<Packed>,
    /// SHA-256 of the client's TLS certificate, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_fingerprint: Option<Text>,
    /// The rule that allowed it (`root key` for root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<Text>,
    /// The policy version the door decided against (none for root, which
    /// needs no policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<u64>,
    /// The region the command's composition declares, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<Text>,
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
    /// The text the records share (see the module doc); not part of the
    /// chain's value, so not serialised or compared.
    #[serde(skip)]
    pub interner: Interner,
}

impl AuditChain {
    /// The sequence number and hash the next record follows.
    pub fn head(&self) -> (u64, String) {
        match self.records.back() {
            Some(r) => (r.entry.seq, r.hash.to_string()),
            None => (self.anchor.seq, self.anchor.hash.clone()),
        }
    }

    /// Appends `entry` as the next record of group `group` (its group and
    /// sequence number are set here).
    pub fn append(&mut self, group: u64, mut entry: AuditEntry) {
        let (seq, prev) = match self.records.back() {
            Some(r) => (r.entry.seq, r.hash.clone()),
            None => (self.anchor.seq, Packed::new(&self.anchor.hash)),
        };
        entry.group = group;
        entry.seq = seq + 1;
        let record = AuditRecord::link_after(&prev, entry);
        self.records.push_back(record);
    }

    /// `text` as the records share it (see [`Interner`]).
    pub fn intern(&mut self, text: &str) -> Text {
        self.interner.intern(text)
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
                hash: last.hash.to_string(),
            };
        }
        free_elsewhere(gone);
        // Text only the trimmed records used is no longer held by the
        // interner either (a thread may still be freeing the records: what
        // it holds then is swept at the next trim or when the interner
        // fills).
        self.interner.sweep();
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

/// The strings a chain's records share: each distinct text once, handed
/// out as a [`Text`] (a reference count, no allocation) to every record
/// that repeats it.
///
/// Bounded: it holds at most [`Interner::MAX`] strings. A string stays
/// while records use it; one that no record uses any more (trimmed, or
/// the last request that used it long gone) is dropped when retention
/// trims the chain, or when the interner is full and meets a string it
/// does not hold. When full of strings all in use, what is new is simply
/// not shared (allocated as before), and the interner sweeps again only
/// after [`Interner::SWEEP_EVERY`] such misses, so that a stream of
/// distinct strings costs no scan each.
///
/// A cache, not state: replicas may share differently and their chains are
/// still equal, so it is skipped by serde and equal to any other; a clone
/// (a snapshot's frozen view) starts empty.
#[derive(Default)]
pub struct Interner {
    strings: HashSet<Text, foldhash::fast::RandomState>,
    /// Misses while full since the last sweep.
    full_misses: usize,
}

impl Interner {
    /// The most strings held.
    pub const MAX: usize = 4096;
    /// Misses while full between two sweeps.
    pub const SWEEP_EVERY: usize = Interner::MAX / 8;

    /// `text`, shared with every other holder of the same text.
    pub fn intern(&mut self, text: &str) -> Text {
        if let Some(t) = self.strings.get(text) {
            return t.clone();
        }
        let t = Text::from(text);
        if self.strings.len() >= Self::MAX {
            self.full_misses += 1;
            if self.full_misses < Self::SWEEP_EVERY {
                return t;
            }
            self.sweep();
            if self.strings.len() >= Self::MAX {
                return t;
            }
        }
        self.strings.insert(t.clone());
        t
    }

    /// Drops the strings only the interner holds.
    pub fn sweep(&mut self) {
        self.strings.retain(|t| t.holders() > 1);
        self.full_misses = 0;
    }

    /// How many strings it holds.
    pub fn len(&self) -> usize {
        self.strings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }
}

impl Clone for Interner {
    fn clone(&self) -> Interner {
        Interner::default()
    }
}

impl PartialEq for Interner {
    fn eq(&self, _: &Interner) -> bool {
        true
    }
}

impl Eq for Interner {}

impl std::fmt::Debug for Interner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Interner({} strings)", self.strings.len())
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

#[cfg(test)]
mod tests {
    use canon_trust::audit::{AuditDecision, AuditTarget, Decider};
    use canon_trust::Effect;

    use super::*;

    fn entry(chain: &mut AuditChain, user: &str) -> AuditEntry {
        AuditEntry {
            group: 0,
            seq: 0,
            at: 1,
            command_id: "".into(),
            command: chain.intern("Noop"),
            principal: Some(canon_trust::audit::AuditPrincipal {
                user: chain.intern(user),
                key_id: None,
                cert_fingerprint: None,
                channel: Channel::Grpc,
                root: false,
            }),
            action: chain.intern("process.run"),
            target: AuditTarget::default(),
            decision: AuditDecision {
                effect: Effect::Allow,
                rule: None,
                policy_version: None,
                by: Decider::Door,
            },
            outcome: chain.intern("applied"),
            detail: None,
            request_hash: None,
            aws_request_ids: Vec::new(),
            dropped: 0,
        }
    }

    #[test]
    fn records_share_repeated_text_and_each_prev_is_the_hash_before_it() {
        let mut c = AuditChain::default();
        for _ in 0..3 {
            let e = entry(&mut c, "alice");
            c.append(7, e);
        }
        assert_eq!(c.verify(7), Ok(3));
        let r: Vec<&AuditRecord> = c.records.iter().collect();
        let user = |r: &AuditRecord| r.entry.principal.as_ref().map(|p| p.user.clone());
        let (a, b) = (user(r[0]), user(r[2]));
        assert!(a.zip(b).is_some_and(|(a, b)| a.shares(&b)));
        assert!(r[0].entry.action.shares(&r[2].entry.action));
        assert_eq!(r[1].prev, r[0].hash);
        assert_eq!(r[2].prev, r[1].hash);
        // What is shared is not part of the chain's value.
        let copy = AuditChain {
            interner: Interner::default(),
            ..c.clone()
        };
        assert_eq!(copy, c);
        assert!(copy.interner.is_empty());
    }

    #[test]
    fn the_interner_is_bounded_and_keeps_only_what_records_use() {
        let mut i = Interner::default();
        // Strings nobody keeps: never more than the bound.
        for n in 0..(Interner::MAX * 3) {
            drop(i.intern(&format!("user-{n}")));
        }
        assert!(i.len() <= Interner::MAX, "{}", i.len());
        i.sweep();
        assert!(i.is_empty());
        // Strings all kept: it stops sharing new ones, and still holds
        // no more than the bound.
        let kept: Vec<Text> = (0..Interner::MAX + 100)
            .map(|n| i.intern(&format!("kept-{n}")))
            .collect();
        assert_eq!(i.len(), Interner::MAX);
        let again = i.intern("kept-0");
        assert!(again.shares(&kept[0]));
        let unshared = i.intern(&format!("kept-{}", Interner::MAX + 50));
        assert!(!unshared.shares(&kept[Interner::MAX + 50]));
        // Once records let go, a sweep frees them.
        drop(kept);
        drop((again, unshared));
        i.sweep();
        assert!(i.is_empty());
    }

    #[test]
    fn a_trim_releases_text_only_the_trimmed_records_used() {
        let mut c = AuditChain::default();
        for n in 0..10 {
            let e = entry(&mut c, &format!("user-{n}"));
            c.append(1, e);
        }
        // Ten users, the command, the action and the outcome.
        assert_eq!(c.interner.len(), 13);
        c.trim_through(8);
        assert_eq!(c.verify(1), Ok(2));
        // Users 0 to 7 went with their records.
        assert_eq!(c.interner.len(), 5);
    }
}
