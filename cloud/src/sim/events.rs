//! The simulated cloud's CloudTrail: once a reader opens the feed
//! ([`super::SimCloud::open_event_feed`]), every mutating call (a rogue's
//! or Canon's own) becomes a CloudTrail-shaped record, as EventBridge
//! delivers "AWS API Call via CloudTrail" to the events queue, so the
//! cloud events consumer (`node::cloud_events`) reads the simulated cloud
//! as it reads SQS. Canon's calls carry its role session name (`canon`),
//! so the consumer's own-call filter is exercised too. Delivery has seeded
//! faults ([`EventFaults`]): a delay, drops, duplicates, and reordering (a
//! random extra delay per copy).

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng;
use serde_json::json;

use super::log::{Caller, Mutation};

/// How the feed delivers, drawn from the simulation's seeded RNG.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFaults {
    /// Every record arrives at least this long after its call.
    pub delay: Duration,
    /// Each copy is late by up to this much more, at random: records
    /// overtake each other.
    pub reorder: Duration,
    /// Probability that a record never arrives.
    pub drop_rate: f64,
    /// Probability that a record arrives twice.
    pub duplicate_rate: f64,
}

/// The caller ARN of Canon's own calls: its role session is `canon`.
pub fn conductor_arn(account: &str) -> String {
    format!("arn:aws:sts::{account}:assumed-role/canon-conductor/canon")
}

/// The caller ARN of a rogue's calls.
pub fn rogue_arn(account: &str) -> String {
    format!("arn:aws:iam::{account}:user/rogue")
}

/// Records on their way, by (arrival time, sequence number).
#[derive(Debug, Default)]
pub(super) struct EventFeed {
    pending: BTreeMap<(u64, u64), String>,
    next: u64,
    /// Records dropped, duplicated, delivered so far.
    pub(super) counts: FeedCounts,
}

/// What the feed has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedCounts {
    pub published: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub delivered: u64,
}

impl EventFeed {
    /// Sends the record of `m` on its way, with `faults` drawn from `rng`.
    pub(super) fn publish<R: Rng + ?Sized>(
        &mut self,
        m: &Mutation,
        faults: &EventFaults,
        rng: &mut R,
    ) {
        self.counts.published += 1;
        if faults.drop_rate > 0.0 && rng.random_bool(faults.drop_rate.min(1.0)) {
            self.counts.dropped += 1;
            return;
        }
        let copies =
            if faults.duplicate_rate > 0.0 && rng.random_bool(faults.duplicate_rate.min(1.0)) {
                self.counts.duplicated += 1;
                2
            } else {
                1
            };
        let body = record(m);
        for _ in 0..copies {
            let late = if faults.reorder.is_zero() {
                0
            } else {
                rng.random_range(0..=super::ms(faults.reorder))
            };
            let at = m
                .at_ms
                .saturating_add(super::ms(faults.delay))
                .saturating_add(late);
            self.pending.insert((at, self.next), body.clone());
            self.next += 1;
        }
    }

    /// Up to `max` records that have arrived by `now_ms`, oldest first.
    pub(super) fn take(&mut self, now_ms: u64, max: usize) -> Vec<String> {
        let mut out = Vec::new();
        while out.len() < max {
            let Some(entry) = self.pending.first_entry() else {
                break;
            };
            if entry.key().0 > now_ms {
                break;
            }
            out.push(entry.remove());
        }
        self.counts.delivered += out.len() as u64;
        out
    }
}

/// The EventBridge-wrapped CloudTrail record of `m`.
fn record(m: &Mutation) -> String {
    let account = &m.scope.account;
    let arn = match m.caller {
        Caller::Conductor { .. } => conductor_arn(account),
        Caller::Rogue => rogue_arn(account),
    };
    let name = crate::names::ec2_action(&m.action);
    let time = canon_model::utc::iso_millis(m.at_ms);
    json!({
        "version": "0",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ec2",
        "account": account,
        "region": m.scope.region.to_string(),
        "time": time,
        "detail": {
            "eventName": name,
            "eventTime": time,
            "eventSource": "ec2.amazonaws.com",
            "userIdentity": {"arn": arn},
            "requestParameters": {"resourceId": m.resource},
            "responseElements": null,
        }
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::Scope;

    fn rogue_at(at_ms: u64, sg: &str) -> Mutation {
        Mutation {
            seq: 0,
            at_ms,
            caller: Caller::Rogue,
            scope: Scope {
                account: "123456789012".into(),
                region: canon_model::Region::new("us-west-2"),
            },
            action: "aws.ec2.authorize_security_group_ingress".into(),
            target: None,
            resource: Some(sg.into()),
        }
    }

    #[test]
    fn times_read_as_cloudtrail_writes_them() {
        assert_eq!(canon_model::utc::iso_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            canon_model::utc::iso_millis(951_868_800_500),
            "2000-03-01T00:00:00.500Z"
        );
        assert_eq!(
            canon_model::utc::iso_millis(1_796_364_000_000),
            "2026-12-04T06:00:00.000Z"
        );
    }

    #[test]
    fn records_arrive_after_their_delay_and_name_the_call() {
        let mut feed = EventFeed::default();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let faults = EventFaults {
            delay: Duration::from_millis(100),
            ..EventFaults::default()
        };
        feed.publish(&rogue_at(1_000, "sg-0a"), &faults, &mut rng);
        assert!(feed.take(1_099, 10).is_empty());
        let got = feed.take(1_100, 10);
        assert_eq!(got.len(), 1);
        let v: serde_json::Value = serde_json::from_str(&got[0]).unwrap();
        assert_eq!(v["detail"]["eventName"], "AuthorizeSecurityGroupIngress");
        assert_eq!(v["detail"]["eventTime"], "1970-01-01T00:00:01.000Z");
        assert_eq!(v["detail"]["requestParameters"]["resourceId"], "sg-0a");
        assert_eq!(
            v["detail"]["userIdentity"]["arn"],
            rogue_arn("123456789012")
        );
        assert!(feed.take(u64::MAX, 10).is_empty());
    }

    #[test]
    fn seeded_faults_drop_duplicate_and_reorder() {
        let faults = EventFaults {
            delay: Duration::ZERO,
            reorder: Duration::from_secs(5),
            drop_rate: 0.2,
            duplicate_rate: 0.2,
        };
        let run = |seed| {
            let mut feed = EventFeed::default();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            for i in 0..200u64 {
                feed.publish(&rogue_at(i * 10, &format!("sg-{i:x}")), &faults, &mut rng);
            }
            (feed.take(u64::MAX, usize::MAX), feed.counts)
        };
        let (got, counts) = run(7);
        assert_eq!(run(7).0, got, "the same seed delivers the same way");
        assert!(counts.dropped > 0 && counts.duplicated > 0, "{counts:?}");
        assert_eq!(got.len() as u64, 200 - counts.dropped + counts.duplicated);
        let times: Vec<String> = got
            .iter()
            .map(|b| serde_json::from_str::<serde_json::Value>(b).unwrap()["time"].to_string())
            .collect();
        let mut sorted = times.clone();
        sorted.sort();
        assert_ne!(times, sorted, "some records overtook others");
    }
}
