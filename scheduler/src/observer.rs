//! The node's shared observer: one batched observation per account and
//! region per tick window, shared by every process actor on the node, with
//! concurrent requests coalesced into one call.
//!
//! This is what makes the cost of enforcement grow with the number of pages
//! of resources rather than the number of processes: a thousand actors that
//! tick within one window cause one observation of their scope. Looks at a
//! process's own ids go through it too, coalesced ([`IdLooks`]).
//!
//! Each new observation of a scope is compared with what was last seen of
//! it (the observation before, and the looks by id since: [`SeenById`]),
//! and the processes whose resources differ are announced ([`ObservedNews`]):
//! their actors reconcile against it at once instead of at their next tick,
//! so drift is found within one observation window of happening, not two
//! (an actor's own tick may reuse an observation up to a window old).
//!
//! An observation keeps only the resources of the processes led here
//! ([`LedHere`]): on three nodes, each holds about a third of the estate.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use canon_cloud::{Cloud, CloudError, Scope};
use canon_model::{Fid, ObservedResource, ObservedState};
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::id_looks::IdLooks;
use crate::led_here::LedHere;
use crate::seen_by_id::SeenById;
use crate::SchedulerStats;

/// An observation and when it was started.
#[derive(Clone)]
pub struct Observation {
    pub state: Arc<ObservedState>,
    /// When the describe calls began: everything done before this instant
    /// is reflected (up to the cloud's own consistency).
    pub started: Instant,
    /// How long it took to make.
    pub took: std::time::Duration,
}

/// The most an observation's window is cut short to leave room for healing
/// what the next one shows (see [`heal_headroom`]).
const HEAL_HEADROOM_MAX: Duration = Duration::from_secs(3);

/// How much sooner than a whole window after an observation started the
/// next one is made to end: room for the actors it wakes to heal what it
/// shows (their reconcile and the cloud call), and for it to take longer
/// than the one before did. Without it a change made just after an
/// observation started is healed a window *and* those seconds later (at
/// 100,000 processes, heal p99 61.9 s against a 60 s tick). A twentieth of
/// the window, at most [`HEAL_HEADROOM_MAX`]: at a 60 s tick observations
/// come every 57 s instead of 60 (about 5 % more of them).
fn heal_headroom(window: Duration) -> Duration {
    (window / 20).min(HEAL_HEADROOM_MAX)
}

/// Which shared observation a tick may use.
#[derive(Debug, Clone, Copy)]
pub struct Freshness {
    /// It must have started after this (the actor's last change).
    after: Instant,
    /// The start of the actor's window (now − its tick interval), moved on
    /// by the heal headroom. An observation serves for the rest of the
    /// window less its own duration, so the next one ends a headroom before
    /// a window after it started: a change is healed within a window of
    /// being made, not a window and an observation's and a heal's time.
    window_start: Instant,
}

impl Freshness {
    /// The freshness a tick at `now` of an actor with tick interval
    /// `window` and last change at `after` asks for.
    pub fn of_window(now: Instant, window: Duration, after: Instant) -> Self {
        let window_start = now
            .checked_sub(window)
            .map_or(after, |start| start + heal_headroom(window));
        Freshness {
            after,
            window_start,
        }
    }

    fn served_by(&self, o: &Observation) -> bool {
        o.started >= self.after && o.started >= self.window_start + o.took
    }
}

/// A new observation of a scope showed these processes' resources changed
/// since they were last seen.
#[derive(Debug, Clone)]
pub struct ObservedNews {
    pub scope: Scope,
    /// When the new observation started (its [`Observation::started`]).
    pub started: Instant,
    pub fids: Arc<BTreeSet<Fid>>,
}

/// How many announcements wait for a slow listener before it misses some.
/// A listener that misses one loses nothing but speed: the actors it would
/// have woken find the change at their next tick.
const NEWS_BACKLOG: usize = 64;

#[derive(Default)]
struct Slot {
    latest: Option<Observation>,
}

/// One scope's latest observation (locked while the next is made) and
/// what was seen of it by id since.
#[derive(Default)]
struct ScopeSeen {
    slot: tokio::sync::Mutex<Slot>,
    by_id: SeenById,
}

/// Shared, coalescing observer over one cloud.
pub struct SharedObserver {
    cloud: Arc<dyn Cloud>,
    scopes: Mutex<HashMap<Scope, Arc<ScopeSeen>>>,
    ids: Arc<IdLooks>,
    led: Arc<LedHere>,
    news: broadcast::Sender<ObservedNews>,
    stats: Arc<SchedulerStats>,
}

impl SharedObserver {
    pub fn new(cloud: Arc<dyn Cloud>, stats: Arc<SchedulerStats>) -> Self {
        SharedObserver {
            ids: IdLooks::new(cloud.clone()),
            cloud,
            scopes: Mutex::new(HashMap::new()),
            led: Arc::default(),
            news: broadcast::channel(NEWS_BACKLOG).0,
            stats,
        }
    }

    /// The announcements of processes whose resources a new observation
    /// shows changed, from now on.
    pub fn news(&self) -> broadcast::Receiver<ObservedNews> {
        self.news.subscribe()
    }

    /// When the latest observation of `scope` started, if there is one and
    /// no observation of it is being made right now.
    pub fn latest_started(&self, scope: &Scope) -> Option<Instant> {
        let seen = self.scope(scope);
        let slot = seen.slot.try_lock().ok()?;
        slot.latest.as_ref().map(|o| o.started)
    }

    fn scope(&self, scope: &Scope) -> Arc<ScopeSeen> {
        // The map lock is held only to find the scope; a poisoned lock
        // means another thread panicked mid-insert, and the map is still
        // a valid map, so keep using it.
        let mut scopes = self.scopes.lock().unwrap_or_else(|p| p.into_inner());
        scopes.entry(scope.clone()).or_default().clone()
    }

    pub fn cloud(&self) -> &Arc<dyn Cloud> {
        &self.cloud
    }

    /// The processes whose resources this node's observations keep.
    pub(crate) fn led_here(&self) -> &Arc<LedHere> {
        &self.led
    }

    /// The resources among `ids` in `scope`, from a look started after
    /// this call and shared with the actors that asked meanwhile.
    pub async fn observe_ids(
        &self,
        scope: &Scope,
        ids: &BTreeSet<String>,
    ) -> Result<ObservedState, CloudError> {
        let asked = Instant::now();
        let found = self.ids.observe_ids(scope, ids).await?;
        self.scope(scope).by_id.record(asked, ids, &found);
        Ok(found)
    }

    /// An observation of `scope` as fresh as `fresh` asks.
    ///
    /// If one exists it is returned at once; otherwise one observation is
    /// made, and every caller waiting meanwhile gets that same one.
    pub async fn observe(
        &self,
        scope: &Scope,
        fresh: Freshness,
    ) -> Result<Observation, CloudError> {
        let seen = self.scope(scope);
        let mut slot = seen.slot.lock().await;
        if let Some(o) = &slot.latest {
            if fresh.served_by(o) {
                return Ok(o.clone());
            }
        }
        let started = Instant::now();
        let led = &self.led;
        let refused = AtomicUsize::new(0);
        let keep = |r: &ObservedResource| {
            let kept = led.keeps(r);
            if !kept {
                refused.fetch_add(1, Ordering::Relaxed);
            }
            kept
        };
        let state = self.cloud.observe_where(scope, &keep).await?;
        let earlier = slot.latest.take();
        let fids = seen
            .by_id
            .changed_owners(earlier.as_ref().map(|e| &*e.state), &state, started);
        // Its duration counts the comparison too: what it shows is known
        // only when the news goes out.
        let o = Observation {
            state: Arc::new(state),
            started,
            took: started.elapsed(),
        };
        slot.latest = Some(o.clone());
        self.stats
            .observation_made(o.state.len(), refused.load(Ordering::Relaxed), o.took);
        self.announce(scope, &o, fids);
        Ok(o)
    }

    /// Announces the processes whose resources `now` shows changed
    /// (nobody listening is fine: no shard is led here).
    fn announce(&self, scope: &Scope, now: &Observation, fids: BTreeSet<Fid>) {
        if fids.is_empty() {
            return;
        }
        self.stats.observed_changes(fids.len());
        let _ = self.news.send(ObservedNews {
            scope: scope.clone(),
            started: now.started,
            fids: Arc::new(fids),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observation(started: Instant, took_ms: u64) -> Observation {
        Observation {
            state: Arc::new(ObservedState::new()),
            started,
            took: Duration::from_millis(took_ms),
        }
    }

    /// An observation serves a tick only if it started after the actor's
    /// last change, and for a window less its own duration and the heal
    /// headroom: with a 60 s window (headroom 3 s), one that took 2 s
    /// serves until 55 s after it started, so the next one is made in time
    /// to end 57 s after it started, 3 s before a change just after the
    /// first is a window old.
    #[test]
    fn an_observation_serves_for_a_window_less_its_duration_and_only_after_a_change() {
        let window = Duration::from_secs(60);
        let t0 = Instant::now() + window;
        let fresh_at = |now: Instant, after: Instant| Freshness::of_window(now, window, after);
        let slow = observation(t0, 2_000);
        let quick = observation(t0, 0);
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        assert!(fresh_at(at(54), t0).served_by(&slow));
        assert!(!fresh_at(at(56), t0).served_by(&slow));
        assert!(fresh_at(at(56), t0).served_by(&quick));
        assert!(!fresh_at(at(58), t0).served_by(&quick));
        // A change after it started: not even a moment later.
        let changed = t0 + Duration::from_millis(1);
        assert!(!fresh_at(at(1), changed).served_by(&quick));
    }

    /// The headroom is a twentieth of the window, capped, so a short tick
    /// still leaves most of its window to the observation it shares.
    #[test]
    fn the_heal_headroom_is_a_twentieth_of_the_window_at_most_3_s() {
        assert_eq!(
            heal_headroom(Duration::from_secs(1)),
            Duration::from_millis(50)
        );
        assert_eq!(
            heal_headroom(Duration::from_secs(60)),
            Duration::from_secs(3)
        );
        assert_eq!(heal_headroom(Duration::from_secs(600)), HEAL_HEADROOM_MAX);
    }
}
