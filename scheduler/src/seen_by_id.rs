//! What the actors of a node saw of a scope by id since its latest whole
//! observation: the other half of "what was last seen" when a new whole
//! observation is compared with it ([`crate::observer::ObservedNews`]).
//!
//! Without it the comparison would be with the previous whole observation
//! only, and miss a change that undoes an actor's own: a rogue rule that
//! was healed (the heal verified by a look at the process's ids) and then
//! put back shows in two whole observations alike.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use canon_model::{Fid, ObservedResource, ObservedState};
use tokio::time::Instant;

/// The looks by id of one scope since its latest whole observation.
#[derive(Default)]
pub(crate) struct SeenById {
    inner: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    /// Whether the scope was ever observed whole: until then there is
    /// nothing to compare with, and nothing is kept.
    observed_whole: bool,
    /// Each id looked at: what the look found (`None`: gone).
    resources: BTreeMap<String, Option<ObservedResource>>,
    /// When the look of each id was asked for (it started no earlier).
    asked: BTreeMap<String, Instant>,
}

impl SeenById {
    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        // Held only for map updates that cannot panic halfway; a poisoned
        // lock still guards valid maps.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps what a look at `ids`, asked for at `asked`, `found`.
    pub(crate) fn record(&self, asked: Instant, ids: &BTreeSet<String>, found: &ObservedState) {
        let mut seen = self.lock();
        if !seen.observed_whole {
            return;
        }
        for id in ids {
            seen.resources.insert(id.clone(), found.get(id).cloned());
            seen.asked.insert(id.clone(), asked);
        }
    }

    /// The processes whose resources in `now` (a whole observation that
    /// started at `started`) differ from what was last seen: `earlier`,
    /// the whole observation before it (if any), updated by the looks by
    /// id since. Looks asked for before `started` are then forgotten
    /// (`now` is newer); later ones are kept for the next comparison.
    pub(crate) fn changed_owners(
        &self,
        earlier: Option<&ObservedState>,
        now: &ObservedState,
        started: Instant,
    ) -> BTreeSet<Fid> {
        // Compared outside the lock: a comparison of a large scope takes
        // milliseconds, and looks by id record meanwhile.
        let (resources, asked) = {
            let mut seen = self.lock();
            seen.observed_whole = true;
            (
                std::mem::take(&mut seen.resources),
                std::mem::take(&mut seen.asked),
            )
        };
        let changed = earlier.map_or_else(BTreeSet::new, |earlier| {
            now.owners_changed_since(earlier, &resources)
        });
        let mut seen = self.lock();
        for (id, found) in resources {
            let Some(at) = asked.get(&id).copied().filter(|at| *at >= started) else {
                continue;
            };
            // A look recorded during the comparison is newer: it stays.
            if !seen.asked.contains_key(&id) {
                seen.resources.insert(id.clone(), found);
                seen.asked.insert(id, at);
            }
        }
        changed
    }
}
