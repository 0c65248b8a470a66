//! The error policy's arithmetic: exponential backoff with full jitter,
//! capped, per process — so a throttled account sees callers spread out
//! instead of a synchronized storm.

use std::time::Duration;

use rand::Rng;

/// Backoff state for one process.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Backoff {
            base,
            cap: cap.max(base),
            attempt: 0,
        }
    }

    /// The delay before the next retry: uniform in `[base/2, min(cap,
    /// base·2ⁿ)]`. Each call counts one more failure.
    pub fn next_delay<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Duration {
        let exp = self.attempt.min(20);
        self.attempt = self.attempt.saturating_add(1);
        let ceiling = self
            .base
            .checked_mul(1u32 << exp)
            .unwrap_or(self.cap)
            .min(self.cap);
        let floor = (self.base / 2).min(ceiling);
        let span = ceiling.saturating_sub(floor).as_millis() as u64;
        floor
            + Duration::from_millis(if span == 0 {
                0
            } else {
                rng.random_range(0..=span)
            })
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.attempt
    }

    /// Forget past failures (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn grows_to_the_cap_and_resets() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut last_ceiling = Duration::ZERO;
        for n in 0..12 {
            let d = b.next_delay(&mut rng);
            let ceiling = Duration::from_millis(100 * (1 << n)).min(Duration::from_secs(5));
            assert!(d <= ceiling, "attempt {n}: {d:?} > {ceiling:?}");
            assert!(d >= Duration::from_millis(50));
            last_ceiling = ceiling;
        }
        assert_eq!(last_ceiling, Duration::from_secs(5));
        assert_eq!(b.failures(), 12);
        b.reset();
        assert!(b.next_delay(&mut rng) <= Duration::from_millis(100));
    }

    #[test]
    fn jitter_spreads_callers() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let delays: std::collections::BTreeSet<_> = (0..50)
            .map(|_| {
                let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
                for _ in 0..4 {
                    b.next_delay(&mut rng);
                }
                b.next_delay(&mut rng)
            })
            .collect();
        assert!(delays.len() > 30, "only {} distinct delays", delays.len());
    }
}
