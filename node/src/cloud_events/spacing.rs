//! Pokes a process at most once per [`POKE_SPACING`], holding back what
//! comes sooner instead of dropping it. A rogue change right after a heal
//! (the process poked, looked and cleared its suspicion within the second)
//! must still be looked at before the tick: a dropped poke would leave it
//! to the tick, tens of seconds later.

use std::collections::{BTreeMap, HashMap};

use canon_model::Fid;
use tokio::time::Instant;

use super::{Poke, POKE_SPACING};

/// When each process was last poked, and the pokes held back.
#[derive(Debug, Default)]
pub(super) struct Spacing {
    last: HashMap<Fid, Instant>,
    held: BTreeMap<Fid, Poke>,
}

impl Spacing {
    /// The pokes of `pokes` to propose at `now`, with the held ones now
    /// due; the rest are held (one per process, the earliest event's).
    pub(super) fn admit(
        &mut self,
        pokes: impl IntoIterator<Item = Poke>,
        now: Instant,
    ) -> Vec<Poke> {
        self.forget_before(now);
        for p in pokes {
            hold(&mut self.held, p);
        }
        let due: Vec<Fid> = self
            .held
            .keys()
            .filter(|f| !self.last.contains_key(f))
            .copied()
            .collect();
        due.iter().filter_map(|f| self.held.remove(f)).collect()
    }

    /// `poke` was committed at `now`.
    pub(super) fn poked(&mut self, fid: Fid, now: Instant) {
        self.last.insert(fid, now);
    }

    /// `poke` could not be committed, and nothing else will bring it
    /// back (its message is gone): try again when next due.
    pub(super) fn retry(&mut self, poke: Poke) {
        hold(&mut self.held, poke);
    }

    /// When the earliest held poke is due, if any is held.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.held
            .keys()
            .map(|f| {
                self.last
                    .get(f)
                    .map_or_else(Instant::now, |at| *at + POKE_SPACING)
            })
            .min()
    }

    fn forget_before(&mut self, now: Instant) {
        self.last
            .retain(|_, at| now.duration_since(*at) < POKE_SPACING);
    }
}

/// Adds `p` to `held`, keeping the earliest event per process.
fn hold(held: &mut BTreeMap<Fid, Poke>, p: Poke) {
    held.entry(p.fid)
        .and_modify(|h| {
            if p.at < h.at {
                *h = p.clone();
            }
        })
        .or_insert(p);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn poke(fid: Fid, at: u64) -> Poke {
        Poke {
            group: canon_raft::META_GROUP,
            fid,
            at,
            by: None,
        }
    }

    #[test]
    fn a_poke_within_the_spacing_is_held_then_made_not_dropped() {
        let (a, b) = (Fid::random(), Fid::random());
        let mut s = Spacing::default();
        let t0 = Instant::now();
        let now = s.admit([poke(a, 10)], t0);
        assert_eq!(now, vec![poke(a, 10)]);
        s.poked(a, t0);
        assert_eq!(s.next_due(), None);

        // Half a second later: a again is held (its earliest kept), b goes.
        let t1 = t0 + POKE_SPACING / 2;
        let now = s.admit([poke(a, 30), poke(b, 31), poke(a, 20)], t1);
        assert_eq!(now, vec![poke(b, 31)]);
        s.poked(b, t1);
        assert_eq!(s.next_due(), Some(t0 + POKE_SPACING));
        assert!(s.admit([], t1).is_empty(), "not due yet");

        // Once the spacing has passed, the held poke is made, once.
        let t2 = t0 + POKE_SPACING + Duration::from_millis(1);
        assert_eq!(s.admit([], t2), vec![poke(a, 20)]);
        assert!(s.admit([], t2).is_empty());
        assert_eq!(s.next_due(), None);
    }

    #[test]
    fn a_failed_held_poke_is_tried_again() {
        let a = Fid::random();
        let mut s = Spacing::default();
        let t0 = Instant::now();
        s.retry(poke(a, 5));
        assert!(s.next_due().is_some_and(|d| d <= Instant::now()));
        assert_eq!(s.admit([], t0), vec![poke(a, 5)]);
    }
}
