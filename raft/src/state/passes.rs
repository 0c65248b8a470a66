//! The open pass of each process: what closes #13's crash gap in the
//! audit.
//!
//! The actor makes a cloud call and only then commits its `CloudCalled`,
//! so a node that stops between the two leaves a mutation the audit never
//! names. An intent record per call would cost a Raft commit per call;
//! instead the intent each pass already commits before its first call
//! (`JobProgressed` with `opens_pass`) names the pass's calls (`planned`),
//! and is audited (`conductor.pass-planned`): no conductor mutation
//! reaches the cloud without an earlier record naming it.
//!
//! The state machine keeps the calls of the open pass that no
//! `CloudCalled` has answered yet ([`OpenPass`]), ticking one off per
//! `CloudCalled` and dropping the pass once all are answered or its job
//! finishes, so a process holds at most one pass's list, and none between
//! passes. A tick that finds a pass still open found one that was cut off
//! (a crash, a lost leadership, a failed call): it commits
//! `PassInterrupted`, whose record lists the calls that may have been made
//! unrecorded, and those never sent: the actor says how many of the last
//! calls were never sent (`unsent`). A later tick knows that only the first
//! unanswered call can have been sent (a pass sends one call at a time,
//! each after the previous answer committed); an actor that stops its own
//! pass on a failed call commits it at once, and counts the failed call as
//! unsent too when the cloud refused it cleanly (a throttle). The pass stays, marked interrupted, with
//! only the calls that may have been made, until the next pass
//! opens or the job finishes, so that the adoption of what one of those
//! calls made (a `BindingSet` marked `adopted`) names it.

use canon_model::{Fid, LogicalId};
use serde::{Deserialize, Serialize};

use super::CanonState;
use crate::command::{Command, PlannedCall, Rejection};

/// The calls of a process's latest pass that no `CloudCalled` answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenPass {
    /// The job the pass ran for.
    pub job: u64,
    /// Its planned calls without a `CloudCalled` yet, in plan order.
    pub unanswered: Vec<PlannedCall>,
    /// `PassInterrupted` closed it: the calls left may have been made.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

/// `calls`, each named, for a record. All of them, however many: the
/// record's point is that no call reaches the cloud unnamed (each name is
/// about as long as the detail of the call's own `CloudCalled` record).
pub(super) fn call_list(calls: &[PlannedCall]) -> String {
    let mut out = String::with_capacity(calls.len() * 112);
    for (i, c) in calls.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        out.push_str(&c.to_string());
    }
    out
}

/// The calls of `unanswered` that may have been made, when its last
/// `unsent` were never sent.
fn may_have_been_made(unanswered: &[PlannedCall], unsent: u64) -> &[PlannedCall] {
    let unsent = usize::try_from(unsent).unwrap_or(usize::MAX);
    &unanswered[..unanswered.len().saturating_sub(unsent)]
}

/// The outcome of a `PassInterrupted` record: the calls that may have been
/// made unrecorded, and those known never sent.
fn interrupted_outcome(unanswered: &[PlannedCall], unsent: u64) -> String {
    let made = may_have_been_made(unanswered, unsent);
    let never = &unanswered[made.len()..];
    let never_sent = format!(
        "{} planned call(s) never sent: {}",
        never.len(),
        call_list(never)
    );
    if made.is_empty() {
        return format!("not made: {never_sent}");
    }
    let mut out = format!(
        "unknown: {} planned call(s) unanswered, may have been made: {}",
        made.len(),
        call_list(made)
    );
    if !never.is_empty() {
        out.push_str(&format!("; {never_sent}"));
    }
    out
}

impl CanonState {
    /// A pass of `job` on `fid` opens, planning `planned` (replaces any
    /// earlier pass: an interrupted one was recorded when it was closed).
    pub(super) fn open_pass(&mut self, fid: Fid, job: u64, planned: &[PlannedCall]) {
        if planned.is_empty() {
            return;
        }
        if let Ok(p) = self.get_mut(&fid) {
            p.open_pass = Some(OpenPass {
                job,
                unanswered: planned.to_vec(),
                interrupted: false,
            });
        }
    }

    /// `CloudCalled` (audit only but for ticking its call off the open
    /// pass) and `PassInterrupted`.
    pub(super) fn apply_to_pass(&mut self, command: &Command) -> Result<(), Rejection> {
        match command {
            Command::CloudCalled {
                fid,
                request,
                resource,
                ..
            } => {
                self.answer_call(*fid, request, resource);
                Ok(())
            }
            Command::PassInterrupted { fid, job, unsent } => {
                self.interrupt_pass(*fid, *job, *unsent)
            }
            _ => Ok(()),
        }
    }

    /// `CloudCalled`: ticks the call off the open pass of `fid`.
    fn answer_call(&mut self, fid: Fid, request: &str, resource: &LogicalId) {
        let Some(p) = self.processes.get(&fid) else {
            return;
        };
        let open = p.open_pass.as_ref().filter(|o| !o.interrupted);
        let Some(i) = open.and_then(|o| {
            o.unanswered
                .iter()
                .position(|c| c.answered_by(request, resource))
        }) else {
            return;
        };
        if let Ok(p) = self.get_mut(&fid) {
            if let Some(open) = p.open_pass.as_mut() {
                open.unanswered.remove(i);
                if open.unanswered.is_empty() {
                    p.open_pass = None;
                }
            }
        }
    }

    /// `PassInterrupted`: the open pass of `job` on `fid` ended with calls
    /// unanswered, the last `unsent` of them never sent; it keeps those
    /// that may have been made.
    fn interrupt_pass(&mut self, fid: Fid, job: u64, unsent: u64) -> Result<(), Rejection> {
        let p = self.get_mut(&fid)?;
        match p.open_pass.as_mut() {
            Some(open) if open.job == job && !open.interrupted => {
                let made = may_have_been_made(&open.unanswered, unsent).len();
                open.unanswered.truncate(made);
                open.interrupted = true;
                Ok(())
            }
            _ => Err(Rejection::NoOpenPass { fid, job }),
        }
    }

    /// `JobFinished` of `job`: its pass is over (its actor finishes a job
    /// only after closing any pass it did not run to the end).
    pub(super) fn end_passes_of(&mut self, fid: Fid, job: u64) {
        let open = self.processes.get(&fid).and_then(|p| p.open_pass.as_ref());
        if open.is_some_and(|o| o.job == job) {
            if let Ok(p) = self.get_mut(&fid) {
                p.open_pass = None;
            }
        }
    }

    /// What a record of `command` says of the open pass, read before it
    /// applies: for `PassInterrupted`, its outcome (the calls that may have
    /// been made unrecorded); for a pass's intent, the calls an earlier
    /// pass left unanswered without being closed; for an adoption, the
    /// interrupted call that made what it adopts.
    pub(super) fn pass_note(&self, command: &Command) -> Option<String> {
        let fid = command.fid()?;
        let open = self.processes.get(&fid)?.open_pass.as_ref()?;
        match command {
            Command::PassInterrupted { job, unsent, .. }
                if *job == open.job && !open.interrupted =>
            {
                Some(interrupted_outcome(&open.unanswered, *unsent))
            }
            Command::JobProgressed { planned, .. } if !planned.is_empty() && !open.interrupted => {
                Some(format!(
                    "pass of job {} left {} call(s) unanswered, may have been made: {}",
                    open.job,
                    open.unanswered.len(),
                    call_list(&open.unanswered)
                ))
            }
            Command::BindingSet {
                resource,
                adopted: true,
                ..
            } if open.interrupted => open
                .unanswered
                .iter()
                .find(|c| c.resource == *resource)
                .map(|c| {
                    format!(
                        "made by {} of job {}, interrupted before its answer was recorded",
                        c.request, open.job
                    )
                }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use canon_model::{JobKind, JobStatus, ResourceKind};

    use super::super::tests::{create, finished, shard_state_for, started};
    use super::*;
    use crate::command::{Request, Response};

    fn call(request: &str, resource: LogicalId) -> PlannedCall {
        PlannedCall {
            request: request.into(),
            resource,
            region: "us-west-2".into(),
        }
    }

    fn intent(fid: Fid, job: u64, planned: Vec<PlannedCall>) -> Command {
        Command::JobProgressed {
            fid,
            job,
            ticks: 1,
            message: Some("creating".into()),
            opens_pass: true,
            planned,
        }
    }

    fn interrupted(fid: Fid, job: u64, unsent: u64) -> Command {
        Command::PassInterrupted { fid, job, unsent }
    }

    fn called(fid: Fid, job: u64, c: &PlannedCall, cloud_id: &str) -> Command {
        Command::CloudCalled {
            fid,
            job,
            request: c.request.clone(),
            resource: c.resource,
            cloud_id: Some(cloud_id.into()),
            region: c.region.clone(),
            outcome: "ok".into(),
            aws_request_ids: vec![],
        }
    }

    /// A process with a RUN job (7) in progress, and its VPC and subnet.
    fn running() -> (CanonState, Fid, LogicalId, LogicalId) {
        let mut s = shard_state_for("web");
        let fid = Fid::random();
        for c in [create(fid, "web"), started(fid, 7, JobKind::Run)] {
            assert!(s.apply(&Request::new(1, c)).is_applied());
        }
        let vpc = LogicalId::new(fid, "net.vpc");
        let subnet = LogicalId::new(fid, "net.subnet");
        (s, fid, vpc, subnet)
    }

    fn apply(s: &mut CanonState, command: Command) -> Response {
        s.apply(&Request::new(2, command))
    }

    fn actions(s: &CanonState) -> Vec<String> {
        s.audit
            .records
            .iter()
            .map(|r| r.entry.action.to_string())
            .collect()
    }

    #[test]
    fn a_pass_names_its_calls_before_them_and_each_answer_ticks_one_off() {
        let (mut s, fid, vpc, subnet) = running();
        let calls = vec![
            call("aws.ec2.create_vpc", vpc),
            call("aws.ec2.create_subnet", subnet),
        ];
        assert!(apply(&mut s, intent(fid, 7, calls.clone())).is_applied());
        let planned = &s.audit.records.last().unwrap().entry;
        assert_eq!(planned.action, "conductor.pass-planned");
        assert_eq!(
            planned.detail.as_deref(),
            Some(
                format!(
                    "job 7: 2 call(s) planned: aws.ec2.create_vpc {vpc} (us-west-2); \
                     aws.ec2.create_subnet {subnet} (us-west-2)"
                )
                .as_str()
            )
        );
        assert_eq!(
            s.process(&fid)
                .unwrap()
                .open_pass
                .as_ref()
                .unwrap()
                .unanswered,
            calls
        );
        apply(&mut s, called(fid, 7, &calls[0], "vpc-1"));
        assert_eq!(
            s.process(&fid)
                .unwrap()
                .open_pass
                .as_ref()
                .unwrap()
                .unanswered,
            calls[1..]
        );
        apply(&mut s, called(fid, 7, &calls[1], "subnet-1"));
        assert_eq!(
            s.process(&fid).unwrap().open_pass,
            None,
            "nothing kept between passes"
        );
        // Progress that opens no pass is bookkeeping, not audited.
        let before = s.audit.records.len();
        apply(
            &mut s,
            Command::JobProgressed {
                fid,
                job: 7,
                ticks: 3,
                message: None,
                opens_pass: false,
                planned: Vec::new(),
            },
        );
        assert_eq!(s.audit.records.len(), before);
        assert!(!actions(&s)
            .iter()
            .any(|a| a == "conductor.pass-interrupted"));
        assert_eq!(s.audit.verify(s.group), Ok(s.audit.records.len() as u64));
    }

    #[test]
    fn a_cut_off_pass_is_recorded_with_its_unanswered_calls_and_its_adoption_names_them() {
        let (mut s, fid, vpc, subnet) = running();
        let calls = vec![
            call("aws.ec2.create_vpc", vpc),
            call("aws.ec2.create_subnet", subnet),
        ];
        apply(&mut s, intent(fid, 7, calls.clone()));
        // The VPC's create was made; the node died before its answer.
        let r = apply(&mut s, interrupted(fid, 7, 0));
        assert!(r.is_applied(), "{r:?}");
        let rec = &s.audit.records.last().unwrap().entry;
        assert_eq!(rec.action, "conductor.pass-interrupted");
        assert_eq!(rec.target.fid.as_deref(), Some(fid.to_string().as_str()));
        assert_eq!(
            rec.outcome,
            format!(
                "unknown: 2 planned call(s) unanswered, may have been made: \
                 aws.ec2.create_vpc {vpc} (us-west-2); aws.ec2.create_subnet {subnet} (us-west-2)"
            )
        );
        // Closed once: a second close is refused (and says so).
        let again = apply(&mut s, interrupted(fid, 7, 0));
        assert_eq!(
            again,
            Response::Rejected(Rejection::NoOpenPass { fid, job: 7 })
        );
        // The next pass adopts the VPC by its tag.
        let adopt = Command::BindingSet {
            resource: vpc,
            kind: ResourceKind::Vpc,
            cloud_id: "vpc-9".into(),
            region: Some(canon_model::Region::new("us-west-2")),
            adopted: true,
        };
        assert!(apply(&mut s, adopt).is_applied());
        let rec = &s.audit.records.last().unwrap().entry;
        assert_eq!(rec.action, "conductor.adopt");
        assert_eq!(rec.target.region.as_deref(), Some("us-west-2"));
        assert_eq!(
            rec.detail,
            Some(format!(
                "{vpc} adopted vpc-9, found by its ownership tag; made by \
                 aws.ec2.create_vpc of job 7, interrupted before its answer was recorded"
            ))
        );
        // A binding a create's answer made is bookkeeping.
        let n = s.audit.records.len();
        let bound = Command::BindingSet {
            resource: subnet,
            kind: ResourceKind::Subnet,
            cloud_id: "subnet-9".into(),
            region: None,
            adopted: false,
        };
        assert!(apply(&mut s, bound).is_applied());
        assert_eq!(s.audit.records.len(), n);
        // The job's end drops the pass.
        apply(&mut s, finished(fid, 7, JobStatus::Succeeded));
        assert_eq!(s.process(&fid).unwrap().open_pass, None);
        assert_eq!(s.audit.verify(s.group), Ok(s.audit.records.len() as u64));
    }

    #[test]
    fn the_actor_that_stops_a_pass_says_which_calls_it_never_sent() {
        let (mut s, fid, vpc, subnet) = running();
        let calls = vec![
            call("aws.ec2.create_vpc", vpc),
            call("aws.ec2.create_subnet", subnet),
            call("aws.ec2.modify_subnet_attribute", subnet),
        ];
        apply(&mut s, intent(fid, 7, calls.clone()));
        apply(&mut s, called(fid, 7, &calls[0], "vpc-1"));
        // The subnet's create timed out (it may have been made); the
        // attribute was never sent.
        let stop = interrupted(fid, 7, 1);
        assert!(apply(&mut s, stop).is_applied());
        assert_eq!(
            s.audit.records.last().unwrap().entry.outcome,
            format!(
                "unknown: 1 planned call(s) unanswered, may have been made: \
                 aws.ec2.create_subnet {subnet} (us-west-2); 1 planned call(s) never sent: \
                 aws.ec2.modify_subnet_attribute {subnet} (us-west-2)"
            )
        );
        let open = s.process(&fid).unwrap().open_pass.clone().unwrap();
        assert_eq!(open.unanswered, calls[1..2], "only what may have been made");
        // A pass stopped before it sent anything made nothing.
        apply(&mut s, intent(fid, 7, calls.clone()));
        let stop = interrupted(fid, 7, 3);
        assert!(apply(&mut s, stop).is_applied());
        let outcome = &s.audit.records.last().unwrap().entry.outcome;
        assert!(
            outcome.starts_with("not made: 3 planned call(s) never sent: "),
            "{outcome}"
        );
    }

    #[test]
    fn a_pass_opened_over_one_never_closed_names_what_that_one_left() {
        let (mut s, fid, vpc, subnet) = running();
        apply(
            &mut s,
            intent(fid, 7, vec![call("aws.ec2.create_vpc", vpc)]),
        );
        apply(
            &mut s,
            intent(fid, 7, vec![call("aws.ec2.create_subnet", subnet)]),
        );
        let rec = &s.audit.records.last().unwrap().entry;
        assert_eq!(
            rec.detail,
            Some(format!(
                "job 7: 1 call(s) planned: aws.ec2.create_subnet {subnet} (us-west-2); \
                 pass of job 7 left 1 call(s) unanswered, may have been made: \
                 aws.ec2.create_vpc {vpc} (us-west-2)"
            ))
        );
        let open = s.process(&fid).unwrap().open_pass.clone().unwrap();
        assert_eq!(open.unanswered, vec![call("aws.ec2.create_subnet", subnet)]);
    }

    #[test]
    fn entries_written_before_passes_named_their_calls_decode_and_stay_unaudited() {
        #[derive(Serialize)]
        enum Old {
            JobProgressed {
                fid: Fid,
                job: u64,
                ticks: u64,
                message: Option<String>,
                opens_pass: bool,
            },
        }
        let (mut s, fid, _, _) = running();
        let old = crate::codec::encode(&Old::JobProgressed {
            fid,
            job: 7,
            ticks: 1,
            message: Some("creating".into()),
            opens_pass: true,
        })
        .unwrap();
        let decoded: Command = crate::codec::decode(&old).unwrap();
        assert_eq!(decoded, intent(fid, 7, Vec::new()));
        // And the new field is left out when empty: the bytes are the old ones.
        assert_eq!(crate::codec::encode(&decoded).unwrap(), old);
        let n = s.audit.records.len();
        assert!(apply(&mut s, decoded).is_applied());
        assert_eq!(s.audit.records.len(), n, "as before: not audited");
        assert_eq!(s.process(&fid).unwrap().open_pass, None);
    }
}
