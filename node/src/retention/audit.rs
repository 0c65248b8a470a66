//! Audit retention: how many records, and how old, each group's audit
//! chain keeps (canond's `audit_keep_records`, `audit_keep_days`). The
//! sweep ([`super`]) proposes an `AuditTrimmed` up to the newest record
//! past the limits; the state machine drops those records and keeps the
//! last one's hash as the chain's anchor, so what remains still verifies,
//! and the trim is itself a record. By count, a chain is trimmed back to
//! its limit once it holds a tenth more, not one record at a time.

use std::time::Duration;

use canon_raft::audit::AuditChain;

/// Records each group keeps unless configured otherwise.
pub const DEFAULT_KEEP_RECORDS: u64 = 20_000;

/// What each group's audit chain keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditRetention {
    /// The newest records kept (none: no limit by count).
    pub keep_records: Option<u64>,
    /// Records younger than this are kept (none: no limit by age).
    pub keep_for: Option<Duration>,
}

impl Default for AuditRetention {
    fn default() -> Self {
        AuditRetention {
            keep_records: Some(DEFAULT_KEEP_RECORDS),
            keep_for: None,
        }
    }
}

impl AuditRetention {
    /// From canond's settings: a count and a number of days, 0 meaning no
    /// limit; absent, the defaults.
    pub fn from_settings(keep_records: Option<u64>, keep_days: Option<u64>) -> Self {
        let default = AuditRetention::default();
        AuditRetention {
            keep_records: super::count_setting(keep_records, default.keep_records),
            keep_for: super::days_setting(keep_days, default.keep_for),
        }
    }
}

/// The sequence number to trim `chain` through at `now_ms`, if any.
pub fn trim_point(chain: &AuditChain, r: &AuditRetention, now_ms: u64) -> Option<u64> {
    let mut through = None;
    if let Some(keep) = r.keep_records {
        let held = chain.records.len() as u64;
        if held > keep.saturating_add(super::slack(keep)) {
            let last_dropped = usize::try_from(held - keep - 1).ok()?;
            through = chain.records.get(last_dropped).map(|r| r.entry.seq);
        }
    }
    if let Some(age) = r.keep_for {
        let cutoff = super::cutoff_ms(now_ms, age);
        let old = chain
            .records
            .iter()
            .take_while(|r| r.entry.at < cutoff)
            .last()
            .map(|r| r.entry.seq);
        through = through.max(old);
    }
    through
}

#[cfg(test)]
mod tests {
    use canon_trust::audit::{AuditDecision, AuditEntry, AuditTarget, Decider};
    use canon_trust::Effect;

    use super::*;

    fn chain(n: u64) -> AuditChain {
        let mut c = AuditChain::default();
        for at in 1..=n {
            c.append(
                1,
                AuditEntry {
                    group: 0,
                    seq: 0,
                    at: at * 1000,
                    command_id: "".into(),
                    command: "JobStarted".into(),
                    principal: None,
                    action: "conductor.job-start".into(),
                    target: AuditTarget::default(),
                    decision: AuditDecision {
                        effect: Effect::Allow,
                        rule: None,
                        policy_version: None,
                        by: Decider::Conductor,
                    },
                    outcome: "applied".into(),
                    detail: None,
                    request_hash: None,
                    aws_request_ids: Vec::new(),
                    dropped: 0,
                },
            );
        }
        c
    }

    #[test]
    fn counts_trim_back_to_the_limit_only_past_the_slack() {
        let r = AuditRetention::from_settings(Some(100), None);
        assert_eq!(trim_point(&chain(110), &r, 0), None);
        // 111 held: trim the oldest 11, keeping 100.
        assert_eq!(trim_point(&chain(111), &r, 0), Some(11));
        let unlimited = AuditRetention::from_settings(Some(0), None);
        assert_eq!(trim_point(&chain(1_000), &unlimited, 0), None);
        assert_eq!(
            AuditRetention::from_settings(None, None),
            AuditRetention::default()
        );
    }

    #[test]
    fn age_trims_what_is_older_than_the_limit() {
        let r = AuditRetention::from_settings(Some(0), Some(1));
        let day = 86_400_000;
        // Records at 1 s .. 50 s; a day and 20 s later, 1..19 are too old.
        assert_eq!(trim_point(&chain(50), &r, day + 20_000), Some(19));
        assert_eq!(trim_point(&chain(50), &r, 1_000), None);
    }
}
