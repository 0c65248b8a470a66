//! How long to wait before retrying: the one backoff of Canon, used by the
//! scheduler's error policy, the cloud adapters' retries of one API call and
//! the SDK's pause between rounds of failover.
//!
//! The delay before retry number `n` (0 for the first retry) is drawn under
//! a ceiling that doubles with each retry, `min(cap, base · 2ⁿ)` (the
//! doubling stops after 20 retries), and is spread by [`Jitter`]: full
//! jitter (uniform in `[0, ceiling]`), full jitter above a floor of half the
//! base (uniform in `[min(base/2, ceiling), ceiling]`), or none (the
//! ceiling itself). Delays are whole milliseconds, the resolution of tokio's
//! timer. The random draw comes from the caller's generator, so a seeded
//! caller (a simulation) replays its delays exactly.
//!
//! Jitter exists so that callers failing together (throttled by one
//! account, cut off by one election) spread their retries out instead of
//! returning in a synchronized storm.

use std::time::Duration;

use rand::Rng;

/// The doubling stops after this many retries (`2²⁰ · base` is far above
/// any cap in use; it keeps the arithmetic from overflowing).
const MAX_DOUBLINGS: u32 = 20;

/// How a delay is spread under its ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Uniform in `[0, ceiling]`: "full jitter". A retry may come at once.
    Full,
    /// Uniform in `[min(base/2, ceiling), ceiling]`: full jitter that never
    /// retries sooner than half the base delay, so a caller whose failure
    /// is immediate (a refused write) cannot spin.
    FullAboveHalfBase,
    /// Exactly the ceiling: a fixed or purely exponential pause.
    None,
}

/// A capped exponential backoff schedule. It holds no state: the caller
/// counts its retries and asks for the delay of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first retry's delay.
    pub base: Duration,
    /// No delay is longer than this.
    pub cap: Duration,
    pub jitter: Jitter,
}

impl Backoff {
    /// The same pause before every retry, without jitter.
    pub const fn fixed(pause: Duration) -> Self {
        Backoff {
            base: pause,
            cap: pause,
            jitter: Jitter::None,
        }
    }

    /// The longest delay before retry number `retry` (0 for the first):
    /// `min(cap, base · 2^min(retry, 20))`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        self.base
            .saturating_mul(1u32 << retry.min(MAX_DOUBLINGS))
            .min(self.cap)
    }

    /// The delay before retry number `retry` (0 for the first), drawn from
    /// `rng` as [`Jitter`] says, in whole milliseconds.
    pub fn delay<R: Rng + ?Sized>(&self, retry: u32, rng: &mut R) -> Duration {
        let ceiling = self.ceiling(retry);
        let floor = match self.jitter {
            Jitter::Full => Duration::ZERO,
            Jitter::FullAboveHalfBase => (self.base / 2).min(ceiling),
            Jitter::None => return ceiling,
        };
        let span = millis(ceiling.saturating_sub(floor));
        floor
            + Duration::from_millis(if span == 0 {
                0
            } else {
                rng.random_range(0..=span)
            })
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_ceiling_doubles_up_to_the_cap() {
        let b = Backoff {
            base: ms(100),
            cap: Duration::from_secs(5),
            jitter: Jitter::Full,
        };
        let ceilings: Vec<Duration> = (0..8).map(|n| b.ceiling(n)).collect();
        assert_eq!(
            ceilings,
            [100, 200, 400, 800, 1600, 3200, 5000, 5000].map(ms)
        );
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(5));
    }

    #[test]
    fn full_jitter_stays_under_the_ceiling_and_reaches_zero() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let b = Backoff {
            base: ms(100),
            cap: Duration::from_secs(20),
            jitter: Jitter::Full,
        };
        for retry in 0..30 {
            let d = b.delay(retry, &mut rng);
            assert!(
                d <= b.ceiling(retry),
                "{retry}: {d:?} > {:?}",
                b.ceiling(retry)
            );
        }
        let low = (0..200).map(|_| b.delay(0, &mut rng)).min();
        assert!(low < Some(ms(10)), "full jitter never came near 0: {low:?}");
    }

    #[test]
    fn full_jitter_above_half_base_stays_between_half_base_and_the_ceiling() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let b = Backoff {
            base: ms(100),
            cap: Duration::from_secs(5),
            jitter: Jitter::FullAboveHalfBase,
        };
        for retry in 0..12 {
            let d = b.delay(retry, &mut rng);
            assert!(
                d <= b.ceiling(retry),
                "{retry}: {d:?} > {:?}",
                b.ceiling(retry)
            );
            assert!(d >= ms(50), "{retry}: {d:?} under half the base");
        }
        // A cap under half the base: the ceiling wins.
        let tight = Backoff { cap: ms(30), ..b };
        assert_eq!(tight.delay(0, &mut rng), ms(30));
    }

    #[test]
    fn jitter_spreads_callers() {
        for jitter in [Jitter::Full, Jitter::FullAboveHalfBase] {
            let mut rng = ChaCha8Rng::seed_from_u64(1);
            let b = Backoff {
                base: ms(100),
                cap: Duration::from_secs(10),
                jitter,
            };
            let delays: BTreeSet<Duration> = (0..50).map(|_| b.delay(4, &mut rng)).collect();
            assert!(
                delays.len() > 30,
                "{jitter:?}: only {} distinct",
                delays.len()
            );
        }
    }

    #[test]
    fn no_jitter_is_the_ceiling_itself() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let fixed = Backoff::fixed(ms(700));
        assert!((0..5).all(|n| fixed.delay(n, &mut rng) == ms(700)));
        let doubling = Backoff {
            base: ms(10),
            cap: ms(35),
            jitter: Jitter::None,
        };
        let delays: Vec<Duration> = (0..4).map(|n| doubling.delay(n, &mut rng)).collect();
        assert_eq!(delays, [10, 20, 35, 35].map(ms));
    }

    #[test]
    fn a_seeded_generator_replays_the_same_delays() {
        let b = Backoff {
            base: ms(100),
            cap: Duration::from_secs(10),
            jitter: Jitter::Full,
        };
        let draw = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..10).map(|n| b.delay(n, &mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
    }
}
