//! The scheduler's one error policy, in the shape of kube-runtime's
//! `Controller` `error_policy`: a pure function from a failed tick's error
//! and the number of failures before it to what the actor does next.
//!
//! - Lost leadership stops the actor: the new leader's actor takes over.
//! - A terminal failure (the cloud refused for good, the composition does
//!   not decode) parks the process until it changes: its job was failed,
//!   and retrying the same thing would fail the same way.
//! - Anything else is retried after a backoff ([`canon_model::Backoff`]
//!   with [`Jitter::FullAboveHalfBase`]: full jitter that never retries
//!   sooner than half the base delay), which grows with each failure since
//!   the last success, so a throttled account sees its callers spread out.

use std::time::Duration;

use canon_model::{Backoff, Jitter};
use rand::Rng;

use crate::tick_error::TickError;

/// What the actor does after a failed tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// Tick again after this long.
    After(Duration),
    /// Tick again only when the process changes (a wake).
    AwaitChange,
    /// Tick again once this node leads the shard in the actor's term again
    /// ([`crate::fence`]): a leader whose quorum acknowledgements went
    /// stale past the lease (a loaded machine) stops counting itself leader
    /// without losing its term, and counts itself leader again once they
    /// resume. If the term is gone for good, the supervisor, which sees the
    /// newer term, stops the actor.
    WhenLeading,
}

/// The retry schedule of a scheduler with first delay `base` and `cap` (a
/// cap under `base` is raised to it).
pub fn retry_backoff(base: Duration, cap: Duration) -> Backoff {
    Backoff {
        base,
        cap: cap.max(base),
        jitter: Jitter::FullAboveHalfBase,
    }
}

/// What follows `error`, the tick's failure after `failures` failures since
/// the last success; a retry's delay is drawn from `rng`.
pub fn error_policy<R: Rng + ?Sized>(
    error: &TickError,
    failures: u32,
    backoff: &Backoff,
    rng: &mut R,
) -> Requeue {
    match error {
        TickError::NotLeader(_) | TickError::Deposed => Requeue::WhenLeading,
        TickError::Terminal { .. } | TickError::Undecodable(_) => Requeue::AwaitChange,
        TickError::ReadLog(_)
        | TickError::WriteLog(_)
        | TickError::WriteRefused(_)
        | TickError::Observe { .. }
        | TickError::PlanOutOfDate(_)
        | TickError::Retryable { .. } => Requeue::After(backoff.delay(failures, rng)),
    }
}

#[cfg(test)]
mod tests {
    use canon_cloud::{CloudError, Scope};
    use canon_model::{Fid, LogicalId};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn throttled() -> TickError {
        TickError::Retryable {
            request_type: "ec2.create_vpc".into(),
            source: CloudError::classified("ec2.create_vpc", "RequestLimitExceeded", "slow down"),
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn retries_back_off_from_half_the_base_up_to_the_cap() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let backoff = retry_backoff(ms(100), Duration::from_secs(5));
        let mut last_ceiling = Duration::ZERO;
        for failures in 0..12 {
            let Requeue::After(d) = error_policy(&throttled(), failures, &backoff, &mut rng) else {
                panic!("a throttled request is retried");
            };
            let ceiling = ms(100 * (1 << failures)).min(Duration::from_secs(5));
            assert!(d <= ceiling, "failure {failures}: {d:?} > {ceiling:?}");
            assert!(d >= ms(50), "failure {failures}: {d:?} under half the base");
            last_ceiling = ceiling;
        }
        assert_eq!(last_ceiling, Duration::from_secs(5));
        // After a success the count starts again: back under the base.
        assert!(matches!(
            error_policy(&throttled(), 0, &backoff, &mut rng),
            Requeue::After(d) if d <= ms(100)
        ));
    }

    #[test]
    fn jitter_spreads_callers() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let backoff = retry_backoff(ms(100), Duration::from_secs(10));
        let delays: std::collections::BTreeSet<Duration> = (0..50)
            .filter_map(
                |_| match error_policy(&throttled(), 4, &backoff, &mut rng) {
                    Requeue::After(d) => Some(d),
                    _ => None,
                },
            )
            .collect();
        assert!(delays.len() > 30, "only {} distinct delays", delays.len());
    }

    #[test]
    fn every_failure_has_its_requeue() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let backoff = retry_backoff(ms(100), Duration::from_secs(10));
        let fid: Fid = "03ac9846-a3ad-4378-ab0e-3ad578dee1b7"
            .parse()
            .expect("a uuid");
        let cases = [
            (TickError::NotLeader("lost leadership"), "when leading"),
            (TickError::Deposed, "when leading"),
            (
                TickError::Terminal {
                    message: "ec2.create_vpc failed: InvalidVpc.Range: no".into(),
                },
                "await",
            ),
            (TickError::Undecodable("garbage".into()), "await"),
            (
                TickError::Observe {
                    scope: Scope::new("1", "us-west-2"),
                    source: CloudError::classified("ec2.describe_vpcs", "Throttling", ""),
                },
                "retry",
            ),
            (
                TickError::PlanOutOfDate(canon_model::Unresolved(LogicalId::new(fid, "vpc"))),
                "retry",
            ),
            (throttled(), "retry"),
        ];
        for (error, want) in cases {
            let got = match error_policy(&error, 0, &backoff, &mut rng) {
                Requeue::WhenLeading => "when leading",
                Requeue::AwaitChange => "await",
                Requeue::After(_) => "retry",
            };
            assert_eq!(got, want, "{error}");
        }
    }

    #[test]
    fn a_cap_under_the_base_is_raised_to_it() {
        let b = retry_backoff(ms(500), ms(100));
        assert_eq!(b.cap, ms(500));
        assert_eq!(b.ceiling(3), ms(500));
    }
}
