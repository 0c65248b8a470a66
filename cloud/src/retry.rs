//! Retry of one API call after a transient failure (throttling, 5xx,
//! transport): how many attempts, and the pause before each retry, which is
//! [`canon_model::Backoff`] with full jitter.

use std::time::Duration;

use canon_model::{Backoff, Jitter};
use rand::Rng;

/// How often and how patiently to retry one API call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 means no retry.
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The pause before retry number `attempt` (1 for the first retry):
    /// uniformly random in whole milliseconds up to `min(cap, base *
    /// 2^(attempt-1))` (full jitter).
    pub fn backoff<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        let schedule = Backoff {
            base: self.base,
            cap: self.cap,
            jitter: Jitter::Full,
        };
        schedule.delay(attempt.saturating_sub(1), rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for attempt in 1..30 {
            let d = p.backoff(attempt, &mut rng);
            let ceiling = (p.base * 2u32.pow((attempt - 1).min(20))).min(p.cap);
            assert!(d <= ceiling, "{attempt}: {d:?} > {ceiling:?}");
        }
        // Jitter: not all equal.
        let a: Vec<_> = (0..5).map(|_| p.backoff(5, &mut rng)).collect();
        assert!(a.iter().any(|d| *d != a[0]));
    }
}
