//! When a group's append may flush on its caller's thread instead of the
//! flusher's: the rule, apart from the locking, so it can be tested alone.
//!
//! A flush handed to the flusher thread costs two thread wake-ups on a
//! write's path (the flusher's, then the Raft core's), on the leader and on
//! the follower whose answer commits the write. When one group writes alone
//! nobody else waits for that flush, so the group's own thread may as well
//! make it (as etcd's raft loop makes its own). When several write, one
//! flush on the flusher thread serves them all, while a Raft worker blocked
//! on the disk would hold the others up; so as soon as a second group
//! appends, flushes go back to the thread until one group has again
//! written alone for [`ALONE_FOR`]. And any flush, here or on the thread,
//! that took longer than [`HERE_FLUSH_MAX`] (a slow or busy disk) sends the
//! next ones to the thread for [`SLOW_DISK_BACKOFF`]: the Raft worker must
//! not wait on a slow disk while other groups' heartbeats wait on it, and
//! the thread's flushes keep telling whether the disk is still slow.

use std::time::{Duration, Instant};

use crate::ids::GroupId;

/// How long one group must have been the only one appending.
pub(super) const ALONE_FOR: Duration = Duration::from_millis(50);

/// The longest flush on the caller's thread that does not send the next
/// ones to the flusher thread.
pub(super) const HERE_FLUSH_MAX: Duration = Duration::from_millis(2);

/// How long flushes go to the flusher thread after a slow one.
pub(super) const SLOW_DISK_BACKOFF: Duration = Duration::from_secs(1);

// A slow flush backs off for many flushes' time, and a group is alone only
// after many of its own flushes: both decisions look past one flush.
const _: () = assert!(HERE_FLUSH_MAX.as_micros() * 100 <= SLOW_DISK_BACKOFF.as_micros());
const _: () = assert!(HERE_FLUSH_MAX.as_micros() * 10 <= ALONE_FOR.as_micros());

/// What a database has seen of its groups' appends and of its flushes.
#[derive(Debug, Default)]
pub(super) struct Solo {
    /// The group that appended last.
    last: Option<GroupId>,
    /// When a group appended after another one last.
    mixed_at: Option<Instant>,
    /// Until when flushes go to the thread after a slow one.
    slow_until: Option<Instant>,
}

impl Solo {
    /// Notes an append by `group` at `now`; whether its flush may be made
    /// on its own thread (the flusher being idle is the caller's check).
    pub(super) fn may_flush_here(&mut self, group: GroupId, now: Instant) -> bool {
        if self.last != Some(group) {
            if self.last.is_some() {
                self.mixed_at = Some(now);
            }
            self.last = Some(group);
        }
        let alone = self
            .mixed_at
            .is_none_or(|at| now.saturating_duration_since(at) >= ALONE_FOR);
        let disk_fast = self.slow_until.is_none_or(|until| now >= until);
        alone && disk_fast
    }

    /// Notes a flush (on either thread) that took `took`, ending at `now`.
    pub(super) fn flushed(&mut self, took: Duration, now: Instant) {
        if took > HERE_FLUSH_MAX {
            self.slow_until = Some(now + SLOW_DISK_BACKOFF);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_writing_alone_flushes_here() {
        let t0 = Instant::now();
        let mut s = Solo::default();
        assert!(s.may_flush_here(3, t0), "the first group is alone");
        assert!(s.may_flush_here(3, t0 + Duration::from_millis(1)));
    }

    #[test]
    fn a_second_group_sends_flushes_to_the_thread_until_one_is_alone_again() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut s = Solo::default();
        assert!(s.may_flush_here(3, t0));
        assert!(!s.may_flush_here(4, ms(1)), "two groups write");
        assert!(!s.may_flush_here(4, ms(20)));
        assert!(!s.may_flush_here(3, ms(30)), "and again");
        assert!(!s.may_flush_here(3, ms(79)));
        assert!(
            s.may_flush_here(3, ms(80)),
            "group 3 alone for {ALONE_FOR:?}"
        );
        // Groups taking turns never count as alone.
        for i in 0..100 {
            assert!(!s.may_flush_here(3 + (i + 1) % 2, ms(100 + i)));
        }
    }

    #[test]
    fn a_slow_flush_sends_the_next_ones_to_the_thread_while_the_disk_stays_slow() {
        let t0 = Instant::now();
        let slow = HERE_FLUSH_MAX + Duration::from_micros(1);
        let mut s = Solo::default();
        assert!(s.may_flush_here(3, t0));
        s.flushed(HERE_FLUSH_MAX, t0);
        assert!(s.may_flush_here(3, t0), "a flush at the bound is not slow");
        s.flushed(slow, t0);
        assert!(!s.may_flush_here(3, t0 + SLOW_DISK_BACKOFF / 2));
        // The thread's flush meanwhile is slow too: the back-off goes on.
        s.flushed(slow, t0 + SLOW_DISK_BACKOFF / 2);
        assert!(!s.may_flush_here(3, t0 + SLOW_DISK_BACKOFF));
        let later = t0 + SLOW_DISK_BACKOFF / 2 + SLOW_DISK_BACKOFF;
        assert!(s.may_flush_here(3, later), "fast again for a back-off");
    }
}
