//! How much of the log one AppendEntries carries.
//!
//! openraft gives each AppendEntries one heartbeat interval to be answered
//! and, when it is not, sends the same range again. A follower that fell
//! behind on large entries (compositions of tens of KiB) would be sent
//! `max_payload_entries` of them at once, megabytes that no follower
//! decodes and fsyncs within a heartbeat: it would time out forever, never
//! catching up. openraft lets the log reader return fewer entries than
//! asked (`limited_get_log_entries`); ours returns a prefix of at most
//! [`APPEND_BYTES_MAX`], and always the first entry, however large.

use openraft::EntryPayload;

use crate::types::Entry;

/// Approximate bytes of entries one AppendEntries carries at most (unless
/// one entry alone is larger). A follower stores 1 MiB well within the
/// shortest heartbeat we run with (50 ms on loopback), and replication
/// still moves tens of MiB a second.
pub(crate) const APPEND_BYTES_MAX: usize = 1024 * 1024;

/// The approximate size of an entry: what its requests carry.
pub(crate) fn entry_bytes(entry: &Entry) -> usize {
    match &entry.payload {
        EntryPayload::Normal(batch) => batch.requests().iter().map(|r| r.approx_size()).sum(),
        _ => 64,
    }
}

/// Whether an entry of `bytes` still goes after `taken` entries of
/// `total` bytes: the first always does.
pub(crate) fn fits(taken: usize, total: usize, bytes: usize) -> bool {
    taken == 0 || total.saturating_add(bytes) <= APPEND_BYTES_MAX
}

/// The longest prefix of `entries` within the budget (at least one).
pub(crate) fn within_budget(entries: Vec<Entry>) -> Vec<Entry> {
    let mut total = 0usize;
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let bytes = entry_bytes(&e);
        if !fits(out.len(), total, bytes) {
            break;
        }
        total += bytes;
        out.push(e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Batch, Command, Composition, Request};
    use crate::types::LogId;
    use canon_model::Fid;

    fn entry(index: u64, bytes: usize) -> Entry {
        let req = Request::new(
            1,
            Command::ProcessCreated {
                imports: Default::default(),
                fid: Fid::random(),
                alias: "a".into(),
                account: "123456789012".into(),
                composition: Composition {
                    bytes: vec![0; bytes],
                    source_hash: String::new(),
                },
                tick_interval_ms: None,
            },
        );
        Entry {
            log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(Batch::from(vec![req])),
        }
    }

    #[test]
    fn large_entries_are_cut_to_the_budget_and_the_first_always_goes() {
        let big = APPEND_BYTES_MAX / 3;
        let kept = within_budget((1..=10).map(|i| entry(i, big)).collect());
        assert_eq!(kept.len(), 2, "two of a third fit with their overhead");
        assert_eq!(kept[0].log_id.index, 1);
        let huge = within_budget(vec![entry(1, 2 * APPEND_BYTES_MAX), entry(2, 1)]);
        assert_eq!(huge.len(), 1, "an entry over the budget goes alone");
        let small = within_budget((1..=300).map(|i| entry(i, 100)).collect());
        assert_eq!(small.len(), 300, "small entries are not cut");
    }
}
