//! Which of a process's creates must look for their ownership tag before
//! they are sent (issue #19), and which cannot have been sent before.
//!
//! A create of a kind without client tokens (a VPC, a subnet, a security
//! group, ...) looks for a resource carrying its ownership tag before it is
//! sent, so that a create whose answer was lost is found rather than made
//! twice (decision 0005). On moto, and on a large estate, that tag-filtered
//! describe costs more than the create. It is only needed when an earlier
//! attempt of the same create may have reached the cloud without its answer
//! reaching the log, which happens in two ways:
//!
//! - **The answer was lost to this actor**: a timeout, a reset connection, a
//!   5xx or an answer it could not read
//!   ([`canon_cloud::CloudError::may_have_taken_effect`]), or the tick ended
//!   between the call and the commit of its `CloudCalled`/`BindingSet`. The
//!   actor saw the attempt, so it remembers it here ([`CreateLedger::sending`]):
//!   a later create of the same resource looks first. A clean refusal (a 4xx
//!   such as `InvalidParameterValue` or throttling) made nothing, and is
//!   forgotten. Even a create that succeeded and was bound is remembered: if
//!   a later plan creates it again (the observation lost sight of it), the
//!   look-up decides.
//! - **Another actor made the attempt**: an earlier leader, or an earlier
//!   actor of this node (a node that crashed between a call and its commit,
//!   #13's crash gap). Its attempts are in no actor's memory here, and the
//!   log does not record a call before it is made (an intent record per
//!   create would cost a Raft commit per create). What the log does record
//!   is each pass's intent, committed (fenced) before the pass's first call:
//!   its `JobProgressed` with `opens_pass`, counted in
//!   [`ProcessRecord::passes`](canon_raft::state::ProcessRecord::passes).
//!   A call without a committed intent was never made. So after committing
//!   its own intent (which applies every earlier entry first), the actor
//!   compares the process's count with the passes it opened itself: equal
//!   means every pass ever opened on the process was this actor's, and so
//!   was every create ever sent for it ([`CreateLedger::history_is_mine`]).
//!   Otherwise every create of this actor looks first, as before issue #19
//!   (batched per kind and pass): a call another actor sent may still land
//!   after any one look-up, so no look-up settles it for good. That costs
//!   only after a change of leader or actor, and a record from a snapshot
//!   written before the count existed (`None`) is never this actor's alone.
//!
//! The ledger lives as long as the actor: a new actor (a new leader, or this
//! node's actor started again) begins with none, and finds the count ahead
//! of it. The count is per process, not per job: a create a crashed pass of
//! one job sent may be made again by the next job.
//!
//! The same knowledge says where a tick may look (issue #19 §2). A pass of
//! a job in progress verifies what the last one did, so it needs a look of
//! this moment, newer than the actor's own changes: of the whole account
//! and region, that costs the estate (O(N) a pass, O(N²) for a fleet's
//! creation). What that look shows the
//! planner beyond the process's bound resources is only what carries its
//! ownership tag unbound, and a resource gets that tag only from a create
//! (or an import's tagging) in a pass. When every pass was this actor's,
//! every create it sent was answered with the id it made (none may have
//! made a resource unseen: [`CreateLedger::made`]), and it remembers the
//! ids it made or let go of that are not bound ([`CreateLedger::let_go`]),
//! the bindings and those ids are all the process can own: a look by those
//! ids ([`CreateLedger::ids_to_look_at`]) shows the planner what the whole
//! look would. Otherwise (an answer lost, another actor's pass, a binding
//! of unknown region) the pass looks at the whole scope, and adopts by tag.

use std::collections::{BTreeMap, BTreeSet};

use canon_cloud::{CloudError, ErrorClass, Outcome};
use canon_model::{DesiredState, LogicalId, Region};
use canon_raft::state::ProcessRecord;

/// One actor's memory of the creates it sent and the look-ups it made.
#[derive(Debug, Default)]
pub(crate) struct CreateLedger {
    /// The passes this actor opened (intents it committed).
    opened: u64,
    /// Resources whose create this actor sent, and which no clean refusal
    /// showed unmade: they may exist without a binding.
    sent: BTreeSet<LogicalId>,
    /// Cloud ids this actor's creates made, or whose binding it replaced
    /// by another, that may not be bound in the log and that no delete it
    /// saw answered has removed, with their region: besides the bindings,
    /// all that can carry the process's ownership tag.
    unbound: BTreeMap<String, Region>,
    /// A create (of any kind) this actor sent may have made a resource
    /// whose id it never learned: only a look by ownership tag finds it.
    unseen: bool,
}

impl CreateLedger {
    /// This actor committed the intent of a pass.
    pub(crate) fn opened_pass(&mut self) {
        self.opened += 1;
    }

    /// Whether every pass ever opened on the process was this actor's:
    /// `passes` is the process's count, read after this actor's latest
    /// intent committed.
    pub(crate) fn history_is_mine(&self, passes: Option<u64>) -> bool {
        passes == Some(self.opened)
    }

    /// Whether a create of `target` must look for its ownership tag first:
    /// an attempt of it may have reached the cloud without its answer
    /// reaching the log. `history_mine` as [`CreateLedger::history_is_mine`]
    /// said for this pass.
    pub(crate) fn needs_look_up(&self, history_mine: bool, target: &LogicalId) -> bool {
        !history_mine || self.sent.contains(target)
    }

    /// A create of `target` is about to be sent: true if no earlier one
    /// may have been (pass it to [`CreateLedger::answered`]).
    pub(crate) fn sending(&mut self, target: LogicalId) -> bool {
        self.sent.insert(target)
    }

    /// The create of `target` was answered with `result`; `first` is what
    /// [`CreateLedger::sending`] said. A first attempt cleanly refused made
    /// nothing.
    pub(crate) fn answered(
        &mut self,
        target: &LogicalId,
        first: bool,
        result: &Result<Outcome, CloudError>,
    ) {
        if let Err(e) = result {
            if first && !e.may_have_taken_effect() {
                self.sent.remove(target);
            }
        }
    }
}

/// Where and by which ids each region of a tick is looked at.
pub(crate) type IdsByRegion = BTreeMap<Region, BTreeSet<String>>;

impl CreateLedger {
    /// A create (of any kind) in `region` was answered with `result`: an
    /// id it made is remembered until it is bound; an answer that may hide
    /// a resource made (lost, a server error, already done without an id)
    /// makes every later tick look by tag. A clean refusal made
    /// nothing.
    pub(crate) fn made(&mut self, region: &Region, result: &Result<Outcome, CloudError>) {
        match result {
            Ok(outcome) => match &outcome.cloud_id {
                Some(id) => {
                    self.unbound.insert(id.clone(), region.clone());
                }
                None => self.unseen = true,
            },
            Err(e) if e.class == ErrorClass::AlreadyDone || e.may_have_taken_effect() => {
                self.unseen = true;
            }
            Err(_) => {}
        }
    }

    /// `id` is bound in the log now (its `BindingSet` committed): the
    /// bindings name it.
    pub(crate) fn bound(&mut self, id: &str) {
        self.unbound.remove(id);
    }

    /// The binding of `id` (in `region`, if known) was replaced by another:
    /// it may still exist and carry the tag. Without a region, no look by
    /// id can find it.
    pub(crate) fn let_go(&mut self, id: &str, region: Option<&Region>) {
        match region.or_else(|| self.unbound.get(id)).cloned() {
            Some(r) => {
                self.unbound.insert(id.to_string(), r);
            }
            None => self.unseen = true,
        }
    }

    /// A delete of `id` was answered: it is gone.
    pub(crate) fn deleted(&mut self, id: &str) {
        self.unbound.remove(id);
    }

    /// The ids (by region) a look that shows the planner of `record`'s tick
    /// what a look at its whole scope would, if there is such a look: every
    /// pass on the process was this actor's (`record.passes`, read at the
    /// tick's start), no create of it may have made an unseen resource, and
    /// every binding's region is known. Every region of the process has an
    /// entry, empty if nothing in it has an id yet.
    pub(crate) fn ids_to_look_at(
        &self,
        record: &ProcessRecord,
        desired: &DesiredState,
    ) -> Option<IdsByRegion> {
        if self.unseen || !self.history_is_mine(record.passes) {
            return None;
        }
        let mut ids: IdsByRegion = record
            .regions(desired)
            .into_iter()
            .map(|r| (r, BTreeSet::new()))
            .collect();
        for b in record.bindings.values() {
            ids.entry(b.region.clone()?)
                .or_default()
                .insert(b.cloud_id.clone());
        }
        for (id, region) in &self.unbound {
            ids.entry(region.clone()).or_default().insert(id.clone());
        }
        Some(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::tests::fid;

    fn target(path: &str) -> LogicalId {
        LogicalId::new(fid(), path)
    }

    #[test]
    fn a_create_first_sent_by_the_only_actor_of_a_process_looks_for_nothing() {
        let mut ledger = CreateLedger::default();
        ledger.opened_pass();
        let mine = ledger.history_is_mine(Some(1));
        assert!(mine);
        assert!(!ledger.needs_look_up(mine, &target("vpc")));
        // Sent and answered: a later create of it (the resource was lost
        // from sight) looks first.
        let first = ledger.sending(target("vpc"));
        assert!(first);
        ledger.answered(&target("vpc"), first, &Ok(Outcome::default()));
        ledger.opened_pass();
        assert!(ledger.needs_look_up(ledger.history_is_mine(Some(2)), &target("vpc")));
        assert!(!ledger.needs_look_up(true, &target("subnet")));
    }

    #[test]
    fn a_lost_answer_is_looked_up_and_a_clean_refusal_is_not() {
        let mut ledger = CreateLedger::default();
        ledger.opened_pass();
        let lost = CloudError::retryable(canon_cloud::error::TRANSPORT, "timed out");
        let server = CloudError::retryable("InternalError", "try again");
        let throttled = CloudError::retryable("RequestLimitExceeded", "slow down");
        let refused = CloudError::new(ErrorClass::Terminal, "InvalidVpc.Range", "bad");
        for (path, e, looks) in [
            ("a", lost, true),
            ("b", server, true),
            ("c", throttled, false),
            ("d", refused, false),
        ] {
            let first = ledger.sending(target(path));
            ledger.answered(&target(path), first, &Err(e));
            assert_eq!(ledger.needs_look_up(true, &target(path)), looks, "{path}");
        }
        // Refused after an ambiguous attempt: still looked up.
        let first = ledger.sending(target("a"));
        assert!(!first);
        let refused = CloudError::new(ErrorClass::Terminal, "InvalidVpc.Range", "bad");
        ledger.answered(&target("a"), first, &Err(refused));
        assert!(ledger.needs_look_up(true, &target("a")));
    }

    #[test]
    fn a_busy_pass_looks_by_id_only_while_every_create_was_answered() {
        use canon_model::{JobKind, JobStatus, ProcessState};
        use canon_raft::state::Binding;

        use crate::reconcile::tests::{job, record};
        let west = Region::new("us-west-2");
        let east = Region::new("us-east-1");
        let desired = DesiredState::empty(fid());
        let mut p = record(
            ProcessState::Running,
            vec![job(1, JobKind::Run, JobStatus::InProgress)],
        );
        let mut ledger = CreateLedger::default();
        // Nothing made yet: the process's region, with no id to look at.
        let ids = ledger.ids_to_look_at(&p, &desired).expect("by id");
        assert!(ids.values().all(BTreeSet::is_empty), "{ids:?}");
        ledger.opened_pass();
        p.passes = Some(1);
        // Made and bound: the binding names it. Made, not bound yet (its
        // commit failed): the ledger does.
        let made = |id: &str| Ok(Outcome::created(id, "made"));
        ledger.made(&west, &made("vpc-1"));
        ledger.bound("vpc-1");
        p.bindings.insert(
            target("vpc"),
            Binding {
                resource: target("vpc"),
                kind: canon_model::ResourceKind::Vpc,
                cloud_id: "vpc-1".into(),
                since: 1,
                region: Some(west.clone()),
            },
        );
        ledger.made(&west, &made("sg-1"));
        // Replaced in another region: the old one may still be there.
        ledger.let_go("subnet-1", Some(&east));
        let ids = ledger.ids_to_look_at(&p, &desired).expect("by id");
        let named = |r: &Region| ids.get(r).cloned().unwrap_or_default();
        assert_eq!(named(&west), ["sg-1", "vpc-1"].map(String::from).into());
        assert_eq!(named(&east), ["subnet-1".to_string()].into());
        ledger.deleted("subnet-1");
        let ids = ledger.ids_to_look_at(&p, &desired).expect("by id");
        assert!(ids.get(&east).is_none_or(BTreeSet::is_empty), "{ids:?}");
        // Another actor's pass: only a look by tag finds what it made.
        p.passes = Some(2);
        assert!(ledger.ids_to_look_at(&p, &desired).is_none());
        p.passes = Some(1);
        // A clean refusal made nothing; a lost answer may have.
        let refused = CloudError::new(ErrorClass::Terminal, "InvalidVpc.Range", "bad");
        ledger.made(&west, &Err(refused));
        assert!(ledger.ids_to_look_at(&p, &desired).is_some());
        let lost = CloudError::retryable(canon_cloud::error::TRANSPORT, "timed out");
        ledger.made(&west, &Err(lost));
        assert!(ledger.ids_to_look_at(&p, &desired).is_none());
    }

    #[test]
    fn a_binding_of_unknown_region_is_looked_at_by_tag() {
        use canon_model::ProcessState;
        use canon_raft::state::Binding;

        use crate::reconcile::tests::record;
        let mut p = record(ProcessState::Running, vec![]);
        p.bindings.insert(
            target("vpc"),
            Binding {
                resource: target("vpc"),
                kind: canon_model::ResourceKind::Vpc,
                cloud_id: "vpc-1".into(),
                since: 1,
                region: None,
            },
        );
        let ledger = CreateLedger::default();
        assert!(ledger
            .ids_to_look_at(&p, &DesiredState::empty(fid()))
            .is_none());
        let mut unknown = CreateLedger::default();
        unknown.let_go("sg-1", None);
        assert!(unknown
            .ids_to_look_at(
                &record(ProcessState::Running, vec![]),
                &DesiredState::empty(fid())
            )
            .is_none());
    }

    #[test]
    fn a_process_with_passes_of_another_actor_looks_every_create_up() {
        let mut ledger = CreateLedger::default();
        ledger.opened_pass();
        // Another actor opened a pass before: the count is ahead.
        let mine = ledger.history_is_mine(Some(2));
        assert!(!mine);
        assert!(ledger.needs_look_up(mine, &target("vpc")));
        ledger.opened_pass();
        assert!(!ledger.history_is_mine(Some(3)));
        // Nor is an actor that has not opened a pass yet (its intent did
        // not commit), nor a record older than the count.
        assert!(!CreateLedger::default().history_is_mine(Some(1)));
        assert!(!ledger.history_is_mine(None));
    }
}
