//! Which declared resources each cloud id is bound to: the index the cloud
//! events consumer (`node::cloud_events`) looks an event's resource ids up
//! in, so that a batch of events costs the ids it names rather than a scan
//! of every binding. Derived from the processes' bindings: kept in step by
//! `BindingSet`, `BindingCleared` and `ProcessDeleted`, never serialised,
//! and rebuilt whole when a state is decoded from a snapshot
//! ([`CanonState::decode`]).

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};

use canon_model::{Fid, LogicalId};

use super::CanonState;
use crate::codec::{self, CodecError};

/// Cloud id → the declared resources bound to it, sorted and distinct
/// (one, unless two processes claim the same resource). A `Vec` of
/// exactly that one rather than a `BTreeSet`: a set's first insert
/// allocates a node of eleven slots (≈ 370 bytes for one 32-byte id), and
/// every replica holds an entry per bound resource (issue #19: 10 a
/// process, 100,000 processes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BindingIndex(HashMap<String, Vec<LogicalId>>);

impl BindingIndex {
    /// The index of every binding of `processes`.
    fn of(processes: &super::ProcessMap) -> BindingIndex {
        let mut index = BindingIndex::default();
        for b in processes.values().flat_map(|p| p.bindings.values()) {
            index.bind(&b.cloud_id, b.resource);
        }
        index
    }

    pub(super) fn bind(&mut self, cloud_id: &str, resource: LogicalId) {
        match self.0.entry(cloud_id.to_string()) {
            // `vec![]` allocates exactly one slot; a push would allocate four.
            Entry::Vacant(slot) => {
                slot.insert(vec![resource]);
            }
            Entry::Occupied(mut slot) => {
                let resources = slot.get_mut();
                if let Err(at) = resources.binary_search(&resource) {
                    resources.insert(at, resource);
                }
            }
        }
    }

    pub(super) fn unbind(&mut self, cloud_id: &str, resource: LogicalId) {
        if let Some(resources) = self.0.get_mut(cloud_id) {
            if let Ok(at) = resources.binary_search(&resource) {
                resources.remove(at);
            }
            if resources.is_empty() {
                self.0.remove(cloud_id);
            }
        }
    }

    /// The declared resources bound to `cloud_id`.
    pub fn resources(&self, cloud_id: &str) -> impl Iterator<Item = &LogicalId> {
        self.0.get(cloud_id).into_iter().flatten()
    }

    /// How many cloud ids are bound.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl CanonState {
    /// The live processes that bind `cloud_id` (killed and released
    /// processes bind nothing).
    pub fn owners_of(&self, cloud_id: &str) -> BTreeSet<Fid> {
        self.bound
            .resources(cloud_id)
            .map(|r| r.fid)
            .filter(|f| self.processes.get(f).is_some_and(|p| p.state.is_live()))
            .collect()
    }

    /// The index of bound cloud ids.
    pub fn bound(&self) -> &BindingIndex {
        &self.bound
    }

    /// A state from the bytes of a snapshot, its derived indexes rebuilt.
    pub fn decode(bytes: &[u8]) -> Result<CanonState, CodecError> {
        let mut state: CanonState = codec::decode(bytes)?;
        state.rebuild_indexes();
        Ok(state)
    }

    /// A copy of everything a snapshot holds, for a snapshot to be written
    /// from while the state moves on. O(1) whatever the group's size:
    /// processes, aliases, command ids, the audit chain and the bench's
    /// values are persistent collections whose clone shares their trees
    /// (the state copies a node only when it next changes it); the derived
    /// indexes are left out (a snapshot does not hold them; decoding
    /// rebuilds them); only the meta group's small cluster tables are
    /// cloned.
    pub fn snapshot_view(&self) -> CanonState {
        CanonState {
            group: self.group,
            shard_count: self.shard_count,
            processes: self.processes.clone(),
            aliases: self.aliases.clone(),
            meta: self.meta.clone(),
            clock: self.clock,
            applied: self.applied,
            dedup: self.dedup.frozen_view(),
            audit: self.audit.clone(),
            bench_values: self.bench_values.clone(),
            bound: BindingIndex::default(),
            by_alias: super::AliasIndex::default(),
        }
    }

    /// Rebuilds what is derived from the processes and never serialised,
    /// once a snapshot's records are all read.
    pub(crate) fn rebuild_indexes(&mut self) {
        self.bound = BindingIndex::of(&self.processes);
        self.by_alias = super::AliasIndex::of(&self.processes);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use canon_model::{ProcessState, ResourceKind};

    use super::super::tests::{create, shard_state_for};
    use super::super::ProcessRecord;
    use super::*;
    use crate::command::{Command, Request, Response};

    fn apply(s: &mut CanonState, at: u64, command: Command) {
        let r = s.apply(&Request::new(at, command));
        assert_eq!(r, Response::Applied);
    }

    fn bind(resource: LogicalId, cloud_id: &str) -> Command {
        Command::BindingSet {
            resource,
            kind: ResourceKind::SecurityGroup,
            cloud_id: cloud_id.into(),
            region: None,
            adopted: false,
        }
    }

    fn owners(s: &CanonState, id: &str) -> Vec<Fid> {
        s.owners_of(id).into_iter().collect()
    }

    #[test]
    fn follows_bindings_as_they_change_and_drops_the_dead() {
        let mut s = shard_state_for("web");
        let fid = Fid::random();
        apply(&mut s, 1, create(fid, "web"));
        let (a, b) = (LogicalId::new(fid, "a"), LogicalId::new(fid, "b"));
        apply(&mut s, 2, bind(a, "sg-1"));
        apply(&mut s, 3, bind(b, "sg-2"));
        assert_eq!(owners(&s, "sg-1"), [fid]);
        assert_eq!(owners(&s, "sg-2"), [fid]);
        assert!(owners(&s, "sg-3").is_empty());
        // Rebinding a resource forgets its old id.
        apply(&mut s, 4, bind(a, "sg-3"));
        assert!(owners(&s, "sg-1").is_empty());
        assert_eq!(owners(&s, "sg-3"), [fid]);
        // The index a snapshot rebuilds is the one apply kept.
        let bytes = codec::encode(&s).unwrap();
        assert_eq!(CanonState::decode(&bytes).unwrap(), s);
        // Killing: cleared bindings drop out, then the process dies.
        apply(
            &mut s,
            6,
            Command::ProcessStateChanged {
                fid,
                state: ProcessState::Killing,
            },
        );
        assert_eq!(owners(&s, "sg-2"), [fid], "killing is still live");
        apply(&mut s, 7, Command::BindingCleared { resource: a });
        apply(&mut s, 8, Command::BindingCleared { resource: b });
        assert!(s.bound().is_empty());
        apply(
            &mut s,
            9,
            Command::ProcessStateChanged {
                fid,
                state: ProcessState::Killed,
            },
        );
        apply(&mut s, 10, Command::ProcessDeleted { fid });
        assert!(owners(&s, "sg-2").is_empty() && s.bound().is_empty());
    }

    /// Two processes that claim one cloud id both own it, each once however
    /// often it is bound, until each lets go.
    #[test]
    fn a_cloud_id_claimed_twice_keeps_both_claims_once_each() {
        let mut index = BindingIndex::default();
        let (one, two) = (Fid::random(), Fid::random());
        let (a, b) = (LogicalId::new(one, "g"), LogicalId::new(two, "g"));
        for r in [b, a, b, a] {
            index.bind("sg-1", r);
        }
        let mut expected = vec![a, b];
        expected.sort();
        assert_eq!(
            index.resources("sg-1").copied().collect::<Vec<_>>(),
            expected
        );
        assert_eq!(index.len(), 1);
        index.unbind("sg-1", a);
        assert_eq!(index.resources("sg-1").copied().collect::<Vec<_>>(), [b]);
        index.unbind("sg-1", a);
        index.unbind("sg-2", b);
        assert_eq!(index.resources("sg-1").count(), 1);
        index.unbind("sg-1", b);
        assert!(index.is_empty());
    }

    /// A snapshot's view of the state shares every collection that grows
    /// with the group (taking it costs O(1) under the state's read lock),
    /// and keeps what it saw while the state moves on.
    #[test]
    fn a_frozen_view_shares_the_state_and_keeps_what_it_saw() {
        use crate::fleet_state::{fleet_state, FleetShape};
        let shape = FleetShape {
            composition_bytes: 30,
            resources: 2,
            jobs: 3,
            drift: 1,
        };
        let mut s = fleet_state(40, shape, 3);
        let frozen = codec::encode(&s).unwrap();
        let view = s.snapshot_view();
        assert!(view.processes.ptr_eq(&s.processes));
        assert!(view.aliases.ptr_eq(&s.aliases));
        assert!(view.dedup.shares_with(&s.dedup));
        assert!(view.bench_values.ptr_eq(&s.bench_values));
        assert!(!view.audit.records.is_empty());
        // The state moves on: a new process and alias, a changed record,
        // command ids, audit records, a bench value.
        let (fid, changed) = (Fid::random(), *s.processes.keys().nth(7).unwrap());
        let at = s.clock;
        apply(&mut s, at + 1, create(fid, "after-the-view"));
        apply(
            &mut s,
            at + 2,
            bind(LogicalId::new(changed, "late"), "sg-late"),
        );
        apply(
            &mut s,
            at + 3,
            Command::BenchPut {
                key: 1,
                value: b"v".to_vec(),
            },
        );
        assert_eq!(codec::encode(&view).unwrap(), frozen, "the view moved");
        assert_ne!(codec::encode(&s).unwrap(), frozen);
        assert!(view.process(&fid).is_none() && s.process(&fid).is_some());
        assert_eq!(view.process(&changed).unwrap().bindings.len(), 2);
        assert_eq!(s.process(&changed).unwrap().bindings.len(), 3);
        // Records the state did not change are still shared with the view.
        let untouched = s.processes.keys().nth(3).unwrap();
        assert!(std::sync::Arc::ptr_eq(
            &s.processes[untouched],
            &view.processes[untouched]
        ));
    }

    /// The state as releases before the persistent collections declared
    /// it: the same fields, `BTreeMap`s and `VecDeque`s.
    #[derive(serde::Serialize, serde::Deserialize)]
    struct EarlierState {
        group: u64,
        shard_count: u32,
        processes: BTreeMap<Fid, ProcessRecord>,
        aliases: BTreeMap<String, Fid>,
        meta: crate::state::ClusterMeta,
        clock: u64,
        applied: u64,
        dedup: EarlierDedup,
        audit: EarlierAudit,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        bench_values: BTreeMap<u64, serde_bytes::ByteBuf>,
    }

    #[derive(serde::Serialize, serde::Deserialize)]
    struct EarlierDedup {
        answers: BTreeMap<crate::command::CommandId, Response>,
        order: std::collections::VecDeque<(crate::command::CommandId, u64)>,
        indexes: BTreeMap<crate::command::CommandId, u64>,
    }

    #[derive(serde::Serialize, serde::Deserialize)]
    struct EarlierAudit {
        anchor: canon_trust::audit::Anchor,
        records: std::collections::VecDeque<canon_trust::audit::AuditRecord>,
    }

    /// Snapshots (old whole-state images, and the records of streamed
    /// ones) are byte for byte what earlier releases wrote and read.
    #[test]
    fn the_persistent_state_encodes_as_the_earlier_one_did() {
        use crate::fleet_state::{fleet_state, FleetShape};
        let mut s = fleet_state(25, FleetShape::DEFAULT_KEEP, 9);
        let at = s.clock + 1;
        apply(
            &mut s,
            at,
            Command::BenchPut {
                key: 4,
                value: vec![1, 2, 3],
            },
        );
        let ours = codec::encode(&s).unwrap();
        let earlier: EarlierState = codec::decode(&ours).unwrap();
        assert_eq!(earlier.processes.len(), 25);
        assert_eq!(earlier.dedup.order.len(), s.dedup.len());
        assert!(!earlier.audit.records.is_empty());
        assert_eq!(codec::encode(&earlier).unwrap(), ours);
        assert_eq!(CanonState::decode(&ours).unwrap(), s);
    }
}
