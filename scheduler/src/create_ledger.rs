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

use std::collections::BTreeSet;

use canon_cloud::{CloudError, Outcome};
use canon_model::LogicalId;

/// One actor's memory of the creates it sent and the look-ups it made.
#[derive(Debug, Default)]
pub(crate) struct CreateLedger {
    /// The passes this actor opened (intents it committed).
    opened: u64,
    /// Resources whose create this actor sent, and which no clean refusal
    /// showed unmade: they may exist without a binding.
    sent: BTreeSet<LogicalId>,
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

#[cfg(test)]
mod tests {
    use canon_cloud::ErrorClass;

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
