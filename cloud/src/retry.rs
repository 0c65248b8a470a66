//! Retry with capped exponential backoff and full jitter, for transient
//! failures inside one call (throttling, 5xx, transport).

use std::time::Duration;

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

    /// The pause before retry number `attempt` (1 for the first retry): a
    /// uniformly random duration up to `min(cap, base * 2^(attempt-1))`.
    pub fn backoff<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let ceiling = exp.min(self.cap);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(rng.random_range(0..=nanos))
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
