//! The async runtime given to openraft: Tokio, except that election
//! timeouts are drawn from a per-thread random source that a simulation can
//! seed ([`seed_election_rng`]), so a turmoil run can be replayed.
//!
//! Outside simulations the source is seeded from the OS, per thread, on
//! first use.

use std::cell::RefCell;
use std::future::Future;
use std::time::Duration;

use openraft::{AsyncRuntime, OptionalSend, TokioRuntime};
use rand08::rngs::StdRng;
use rand08::{RngCore, SeedableRng};

thread_local! {
    static ELECTION_RNG: RefCell<Option<StdRng>> = const { RefCell::new(None) };
}

/// Seeds this thread's election-timeout source (turmoil runs every host on
/// the test's thread, so one call seeds the whole simulation).
pub fn seed_election_rng(seed: u64) {
    ELECTION_RNG.with(|r| *r.borrow_mut() = Some(StdRng::seed_from_u64(seed)));
}

fn with_rng<T>(f: impl FnOnce(&mut StdRng) -> T) -> T {
    ELECTION_RNG.with(|r| {
        let mut r = r.borrow_mut();
        f(r.get_or_insert_with(StdRng::from_entropy))
    })
}

/// Handle to this thread's election-timeout source.
#[derive(Debug, Clone, Copy, Default)]
pub struct ElectionRng;

impl RngCore for ElectionRng {
    fn next_u32(&mut self) -> u32 {
        with_rng(|r| r.next_u32())
    }
    fn next_u64(&mut self) -> u64 {
        with_rng(|r| r.next_u64())
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        with_rng(|r| r.fill_bytes(dest))
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand08::Error> {
        with_rng(|r| r.try_fill_bytes(dest))
    }
}

/// Tokio with a seedable election-timeout source.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CanonRuntime;

type Tokio = TokioRuntime;

impl AsyncRuntime for CanonRuntime {
    type JoinError = <Tokio as AsyncRuntime>::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = <Tokio as AsyncRuntime>::JoinHandle<T>;
    type Sleep = <Tokio as AsyncRuntime>::Sleep;
    type Instant = <Tokio as AsyncRuntime>::Instant;
    type TimeoutError = <Tokio as AsyncRuntime>::TimeoutError;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = <Tokio as AsyncRuntime>::Timeout<R, T>;
    type ThreadLocalRng = ElectionRng;
    type OneshotSender<T: OptionalSend> = <Tokio as AsyncRuntime>::OneshotSender<T>;
    type OneshotReceiverError = <Tokio as AsyncRuntime>::OneshotReceiverError;
    type OneshotReceiver<T: OptionalSend> = <Tokio as AsyncRuntime>::OneshotReceiver<T>;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        Tokio::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        Tokio::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        Tokio::sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        Tokio::timeout(duration, future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        Tokio::timeout_at(deadline, future)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        Tokio::is_panic(join_error)
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        ElectionRng
    }

    fn oneshot<T>() -> (Self::OneshotSender<T>, Self::OneshotReceiver<T>)
    where
        T: OptionalSend,
    {
        Tokio::oneshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand08::Rng;

    #[test]
    fn seeded_draws_repeat() {
        seed_election_rng(7);
        let a: Vec<u64> = (0..5)
            .map(|_| CanonRuntime::thread_rng().gen_range(150..300))
            .collect();
        seed_election_rng(7);
        let b: Vec<u64> = (0..5)
            .map(|_| CanonRuntime::thread_rng().gen_range(150..300))
            .collect();
        assert_eq!(a, b);
        assert!(a.iter().all(|x| (150..300).contains(x)));
    }
}
