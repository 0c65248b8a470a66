//! Which processes this node's actors run, and which cloud ids those
//! processes have bound: what the node's observations keep (issue #19,
//! memory per node).
//!
//! Every node used to hold its scope's whole observation, a million
//! resources at 100,000 processes, though its actors look only at the
//! processes whose shards it leads (about a third of them on three nodes).
//! An observation now keeps a resource if its ownership tag names a process
//! with an actor here, if such a process has bound its id (a resource whose
//! ownership tag was changed is still its binder's to heal), or if its tag
//! names no process at all (malformed: nobody's, kept as before).
//!
//! An actor enters before it takes the instant its observations must start
//! after (`ProcessActor::new`), so every observation it may use was
//! filtered with its process in: one made before it entered is too old for
//! it ([`crate::observer::Freshness`]).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use canon_model::{Fid, ObservedResource};

/// The processes with an actor on this node and the ids they have bound.
#[derive(Default)]
pub(crate) struct LedHere {
    registry: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    processes: HashMap<Fid, Led>,
    /// Bound ids (by hash) → how many processes here bind them.
    bound: HashMap<u64, u32>,
}

#[derive(Default)]
struct Led {
    /// Actors of the process here: two for a moment when a term's actor
    /// stops as the next term's starts.
    actors: u32,
    /// Hashes of the cloud ids the process has bound, sorted.
    bound: Vec<u64>,
}

/// A process's place in [`LedHere`] while its actor runs: dropped with the
/// actor, so an actor never ticks without its resources kept.
pub(crate) struct LedGuard {
    led: Arc<LedHere>,
    fid: Fid,
}

impl Drop for LedGuard {
    fn drop(&mut self) {
        self.led.leave(self.fid);
    }
}

/// A cloud id's key in [`Registry::bound`]. Two ids of one hash only keep
/// a resource nobody here needed.
fn id_hash(cloud_id: &str) -> u64 {
    let mut h = DefaultHasher::new();
    cloud_id.hash(&mut h);
    h.finish()
}

/// The cloud ids a process has bound, as [`LedHere`] keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BoundIds(Vec<u64>);

/// [`BoundIds`] of `cloud_ids`.
pub(crate) fn bound_ids<'a>(cloud_ids: impl IntoIterator<Item = &'a str>) -> BoundIds {
    let mut bound: Vec<u64> = cloud_ids.into_iter().map(id_hash).collect();
    bound.sort_unstable();
    bound.dedup();
    BoundIds(bound)
}

impl LedHere {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        // Held only for map updates that leave the maps valid at every
        // step: a panic elsewhere while holding it leaves nothing torn.
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts an actor of `fid` in until the guard drops.
    pub(crate) fn enter(self: &Arc<Self>, fid: Fid) -> LedGuard {
        self.lock().processes.entry(fid).or_default().actors += 1;
        LedGuard {
            led: self.clone(),
            fid,
        }
    }

    fn leave(&self, fid: Fid) {
        let mut registry = self.lock();
        let Some(led) = registry.processes.get_mut(&fid) else {
            return;
        };
        led.actors = led.actors.saturating_sub(1);
        if led.actors == 0 {
            let bound = std::mem::take(&mut led.bound);
            registry.processes.remove(&fid);
            registry.unbind(&bound);
        }
    }

    /// Records the cloud ids `fid` has bound now ([`bound_ids`]), if it
    /// has an actor here.
    pub(crate) fn set_bound(&self, fid: Fid, bound: BoundIds) {
        let BoundIds(bound) = bound;
        let mut registry = self.lock();
        let Some(led) = registry.processes.get_mut(&fid) else {
            return;
        };
        if led.bound == bound {
            return;
        }
        let old = std::mem::replace(&mut led.bound, bound.clone());
        registry.unbind(&old);
        for h in bound {
            *registry.bound.entry(h).or_default() += 1;
        }
    }

    /// Whether an observation made on this node keeps `r`.
    pub(crate) fn keeps(&self, r: &ObservedResource) -> bool {
        let Some(owner) = r.owner() else {
            return true;
        };
        let registry = self.lock();
        registry.processes.contains_key(&owner.fid)
            || registry.bound.contains_key(&id_hash(&r.cloud_id))
    }

    /// How many processes have an actor here.
    #[cfg(test)]
    fn processes(&self) -> usize {
        self.lock().processes.len()
    }
}

impl Registry {
    fn unbind(&mut self, hashes: &[u64]) {
        for h in hashes {
            if let Some(n) = self.bound.get_mut(h) {
                *n -= 1;
                if *n == 0 {
                    self.bound.remove(h);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use canon_model::{InternetGatewaySpec, LogicalId, Region, Spec, Tags, OWNERSHIP_TAG};

    use super::*;

    fn gateway(id: &str, owner: Option<&str>) -> ObservedResource {
        let mut tags = Tags::new();
        if let Some(o) = owner {
            tags.insert(OWNERSHIP_TAG.to_string(), o.to_string());
        }
        ObservedResource {
            cloud_id: id.to_string(),
            region: Region::new("us-west-2"),
            spec: Spec::InternetGateway(InternetGatewaySpec { vpc: None, tags }),
            association_ids: Default::default(),
            pending: false,
            life: None,
        }
    }

    fn owned_by(fid: Fid) -> String {
        LogicalId::new(fid, "igw").to_string()
    }

    /// A node keeps what its actors' processes own or have bound, and what
    /// names no process; it drops what processes led elsewhere own, and
    /// forgets a process when its last actor stops.
    #[test]
    fn a_node_keeps_what_its_actors_own_or_bind_and_nothing_led_elsewhere() {
        let led = Arc::new(LedHere::default());
        let (here, elsewhere) = (Fid::random(), Fid::random());
        let mine = gateway("igw-1", Some(&owned_by(here)));
        let theirs = gateway("igw-2", Some(&owned_by(elsewhere)));
        let malformed = gateway("igw-3", Some("not a logical id"));
        assert!(!led.keeps(&mine), "no actor here yet");
        assert!(led.keeps(&malformed));

        let first = led.enter(here);
        assert!(led.keeps(&mine));
        assert!(!led.keeps(&theirs));
        // Its ownership tag changed to another process's: still ours to heal.
        led.set_bound(here, bound_ids(["igw-1", "igw-2"]));
        assert!(led.keeps(&theirs));
        led.set_bound(here, bound_ids(["igw-1"]));
        assert!(!led.keeps(&theirs));

        // The next term's actor starts before this term's stops.
        let second = led.enter(here);
        drop(first);
        assert!(led.keeps(&mine));
        drop(second);
        assert!(!led.keeps(&mine));
        assert_eq!(led.processes(), 0);
        // A process with no actor here records no bindings.
        led.set_bound(here, bound_ids(["igw-2"]));
        assert!(!led.keeps(&theirs));
    }
}
