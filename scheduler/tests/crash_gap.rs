//! Issue #13's crash gap in the audit: the actor makes a cloud call and
//! only then commits its `CloudCalled`, so a node that stops between the
//! two must not leave a mutation the audit never names. Each pass's intent
//! names its calls (`conductor.pass-planned`) before the first is sent; a
//! pass cut off is closed by the next actor with the calls that may have
//! been made unrecorded (`conductor.pass-interrupted`); and the adoption of
//! what such a call made names it (`conductor.adopt`). The scheduler acts
//! through a wrapper of the simulated cloud that, once, makes a create and
//! then never answers, until the node is killed.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use canon_cloud::{BoxFuture, Cloud, CloudError, ExecContext, Outcome};
use canon_raft::{group_of_alias, Consistency};
use support::intercept::{Intercept, Intercepted};
use support::*;

use canon_model::*;

/// The simulated cloud, with one create whose answer never comes.
struct Cutting {
    inner: Arc<dyn Cloud>,
    /// Make the first create of this resource, then hang.
    cut: Mutex<Option<LogicalId>>,
    /// The cloud id that create made.
    made: Mutex<Option<String>>,
    /// Make the first call of this request type, then answer that it was
    /// done already (as a retry whose first answer was lost hears).
    done_already: Mutex<Option<&'static str>>,
    /// Refuse the first call of this request type as throttled, making
    /// nothing.
    throttle: Mutex<Option<&'static str>>,
}

impl Cutting {
    async fn execute_cut(
        &self,
        request: &Request,
        ctx: &ExecContext,
    ) -> Result<Outcome, CloudError> {
        let cut_here = {
            let mut cut = self.cut.lock().unwrap();
            let here = *cut == Some(request.target) && request.action.creates().is_some();
            if here {
                *cut = None;
            }
            here
        };
        let done_already = take_once(&self.done_already, request.request_type());
        if take_once(&self.throttle, request.request_type()) {
            return Err(CloudError::retryable(
                "RequestLimitExceeded",
                "request limit exceeded",
            ));
        }
        let result = self.inner.execute(request, ctx).await;
        if done_already && result.is_ok() {
            return Err(CloudError::classified(
                request.request_type(),
                "InvalidPermission.Duplicate",
                "the specified rule already exists",
            ));
        }
        if cut_here {
            *self.made.lock().unwrap() = result.as_ref().ok().and_then(|o| o.cloud_id.clone());
            // The node dies before the answer is recorded.
            std::future::pending::<()>().await;
        }
        result
    }
}

/// Whether `once` names `request_type`; it names nothing after.
fn take_once(once: &Mutex<Option<&'static str>>, request_type: &str) -> bool {
    let mut once = once.lock().unwrap();
    let here = *once == Some(request_type);
    if here {
        *once = None;
    }
    here
}

impl Intercept for Cutting {
    fn inner(&self) -> &dyn Cloud {
        self.inner.as_ref()
    }

    fn execute<'a>(
        &'a self,
        request: &'a Request,
        ctx: &'a ExecContext,
    ) -> BoxFuture<'a, Result<Outcome, CloudError>> {
        Box::pin(self.execute_cut(request, ctx))
    }
}

/// A one-node cluster acting through a cutting simulated cloud.
async fn cutting() -> (Harness, Arc<Cutting>) {
    let mut cutting = None;
    let h = Harness::start_through(
        1,
        1,
        quick_config(Duration::from_millis(500)),
        1_763_769_600_000,
        |cloud| {
            let c = Arc::new(Cutting {
                inner: cloud,
                cut: Mutex::default(),
                made: Mutex::default(),
                done_already: Mutex::default(),
                throttle: Mutex::default(),
            });
            cutting = Some(c.clone());
            Arc::new(Intercepted(c))
        },
    )
    .await;
    (h, cutting.expect("the harness wrapped the cloud"))
}

/// One audit record, as `canon audit` shows it.
#[derive(Debug, Clone)]
struct Seen {
    seq: u64,
    action: String,
    outcome: String,
    detail: String,
}

/// The records of `alias`'s group about `fid`, read from the state as
/// `canon audit` reads them, after checking the chain verifies.
async fn audit_of(h: &Harness, alias: &str, fid: Fid) -> Vec<Seen> {
    let group = group_of_alias(alias, h.cluster.shards());
    let node = h.cluster.node(0).expect("node 0 runs");
    let (verified, records) = node
        .read(group, Consistency::Linearizable, |s| {
            let records: Vec<Seen> = s
                .audit
                .records
                .iter()
                .filter(|r| r.entry.target.fid.as_deref() == Some(fid.to_string().as_str()))
                .map(|r| Seen {
                    seq: r.entry.seq,
                    action: r.entry.action.to_string(),
                    outcome: r.entry.outcome.to_string(),
                    detail: r.entry.detail.clone().unwrap_or_default(),
                })
                .collect();
            (s.audit.verify(s.group), records)
        })
        .await
        .unwrap();
    assert!(verified.is_ok(), "the chain verifies: {verified:?}");
    records
}

fn with_action<'a>(records: &'a [Seen], action: &str) -> Vec<&'a Seen> {
    records.iter().filter(|r| r.action == action).collect()
}

/// Runs process `web` (a network) as `fid` and waits for its RUN job to
/// finish; it must have succeeded.
async fn run_web_to_success(h: &Harness, fid: Fid) -> canon_raft::state::ProcessRecord {
    h.run("web", &network(fid, "web", true)).await;
    let p = h
        .wait_for("web", fid, Duration::from_secs(20), "the RUN job", |p| {
            last_job(p, JobKind::Run).is_some_and(|j| j.status.is_finished())
        })
        .await;
    assert_eq!(
        last_job(&p, JobKind::Run).unwrap().status,
        JobStatus::Succeeded
    );
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_cut_off_by_a_crash_is_planned_interrupted_and_adopted_in_the_audit() {
    let (mut h, cutting) = cutting().await;
    let fid = Fid::random();
    let d = network(fid, "web", true);
    let vpc = LogicalId::new(fid, "net.vpc");
    *cutting.cut.lock().unwrap() = Some(vpc);
    h.run("web", &d).await;
    // The create lands in the cloud; its answer is never recorded.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let made = loop {
        if let Some(id) = cutting.made.lock().unwrap().clone() {
            break id;
        }
        assert!(tokio::time::Instant::now() < deadline, "the VPC's create");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    h.kill(0).await;
    h.restart(0).await;
    let p = h
        .wait_for("web", fid, Duration::from_secs(30), "the RUN job", |p| {
            last_job(p, JobKind::Run).is_some_and(|j| j.status.is_finished())
        })
        .await;
    let job = last_job(&p, JobKind::Run).unwrap();
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert_eq!(p.bindings[&vpc].cloud_id, made, "adopted, not made twice");
    assert_eq!(
        h.owned(fid)
            .iter()
            .filter(|r| r.kind() == ResourceKind::Vpc)
            .count(),
        1
    );
    assert!(p.open_pass.is_none(), "{:?}", p.open_pass);

    let records = audit_of(&h, "web", fid).await;
    let create = format!("aws.ec2.create_vpc {vpc} ({REGION})");
    let planned = with_action(&records, "conductor.pass-planned");
    let first = planned
        .iter()
        .find(|r| r.detail.contains(&create))
        .unwrap_or_else(|| panic!("a pass names the create before it is sent: {records:#?}"));
    let interrupted = with_action(&records, "conductor.pass-interrupted");
    assert_eq!(interrupted.len(), 1, "{records:#?}");
    let interrupted = interrupted[0];
    assert!(first.seq < interrupted.seq, "{records:#?}");
    // The create was the pass's first call: none of its calls was
    // answered; the create may have been made (it was), the rest were
    // never sent.
    let planned_count: usize = first
        .detail
        .split(' ')
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or_default();
    assert!(planned_count > 1, "{first:?}");
    assert!(
        interrupted.outcome.starts_with(&format!(
            "unknown: 1 planned call(s) unanswered, may have been made: {create}; {} planned call(s) never sent: ",
            planned_count - 1
        )),
        "{first:?} {interrupted:?}"
    );
    let adopted = with_action(&records, "conductor.adopt");
    assert_eq!(adopted.len(), 1, "{records:#?}");
    assert!(
        adopted[0].detail.contains(&made)
            && adopted[0].detail.contains("made by aws.ec2.create_vpc")
            && adopted[0].detail.contains("interrupted"),
        "{:?}",
        adopted[0]
    );
    assert!(interrupted.seq < adopted[0].seq, "{records:#?}");
    // The lost create has no `CloudCalled`: the planned and interrupted
    // records are all that say it was sent.
    assert!(
        !records.iter().any(|r| r.action == "conductor.cloud-call"
            && r.detail.contains(&format!("aws.ec2.create_vpc {made}"))),
        "{records:#?}"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_that_ends_normally_has_one_cloud_call_per_planned_call() {
    let (h, _cutting) = cutting().await;
    let fid = Fid::random();
    let d = network(fid, "web", true);
    h.run("web", &d).await;
    let p = h
        .wait_for("web", fid, Duration::from_secs(20), "the RUN job", |p| {
            last_job(p, JobKind::Run).is_some_and(|j| j.status.is_finished())
        })
        .await;
    assert!(p.open_pass.is_none(), "{:?}", p.open_pass);

    let records = audit_of(&h, "web", fid).await;
    let planned = with_action(&records, "conductor.pass-planned");
    assert!(!planned.is_empty(), "{records:#?}");
    let calls = with_action(&records, "conductor.cloud-call");
    let mut named = 0;
    for pass in &planned {
        // "job J: N call(s) planned: a; b; …"
        let (count, _) = pass
            .detail
            .split_once(" call(s) planned: ")
            .and_then(|(head, list)| Some((head.rsplit(' ').next()?.parse::<usize>().ok()?, list)))
            .unwrap_or_else(|| panic!("{pass:?}"));
        named += count;
        // Every call comes after the intent that names it.
        assert!(calls.iter().any(|c| c.seq > pass.seq), "{records:#?}");
    }
    assert_eq!(
        named,
        calls.len(),
        "one CloudCalled per planned call: {records:#?}"
    );
    assert!(with_action(&records, "conductor.pass-interrupted").is_empty());
    assert!(with_action(&records, "conductor.adopt").is_empty());
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_answered_done_already_is_recorded_and_leaves_no_pass_open() {
    let (h, cutting) = cutting().await;
    let authorize = "aws.ec2.authorize_security_group_ingress";
    *cutting.done_already.lock().unwrap() = Some(authorize);
    let fid = Fid::random();
    let p = run_web_to_success(&h, fid).await;
    assert!(
        cutting.done_already.lock().unwrap().is_none(),
        "the call was made"
    );
    assert!(p.open_pass.is_none(), "{:?}", p.open_pass);
    let records = audit_of(&h, "web", fid).await;
    let answered = with_action(&records, "conductor.cloud-call");
    // Its `CloudCalled` (the record names the request, not the answer).
    assert!(
        answered.iter().any(|r| r.detail.contains(authorize)),
        "{records:#?}"
    );
    assert!(
        with_action(&records, "conductor.pass-interrupted").is_empty(),
        "{records:#?}"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_stopped_by_a_throttled_call_records_its_calls_as_never_sent() {
    let (h, cutting) = cutting().await;
    let create_subnet = "aws.ec2.create_subnet";
    *cutting.throttle.lock().unwrap() = Some(create_subnet);
    let fid = Fid::random();
    run_web_to_success(&h, fid).await;
    assert!(
        cutting.throttle.lock().unwrap().is_none(),
        "it was throttled"
    );
    let records = audit_of(&h, "web", fid).await;
    let stopped = with_action(&records, "conductor.pass-interrupted");
    assert_eq!(stopped.len(), 1, "{records:#?}");
    // A throttled call made nothing, and the calls after it were never
    // sent: nothing may have been made unrecorded.
    assert!(
        stopped[0].outcome.starts_with("not made: ") && stopped[0].outcome.contains(create_subnet),
        "{:?}",
        stopped[0]
    );
    assert!(
        !records.iter().any(|r| r.outcome.starts_with("unknown")),
        "{records:#?}"
    );
    h.shutdown().await;
}
