//! The look-up before creates (issue #19): a create of a kind without client
//! tokens looks for its ownership tag only when an earlier attempt of it may
//! have reached the cloud unrecorded. A fresh RUN job sends its creates
//! without looking; a create whose answer was lost, and a job resumed from a
//! pass another actor opened, look first and make nothing twice. The
//! scheduler acts through a wrapper of the simulated cloud that records each
//! create and can lose an answer, and hide what it made from observations
//! (a snapshot older than the create), so that only the look-up can find it.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use canon_cloud::idempotency::{owner_to_find, OwnedLookups};
use canon_cloud::{BoxFuture, Cloud, CloudError, ExecContext, Keep, Outcome, Scope};
use canon_raft::Command;
use support::intercept::{Intercept, Intercepted};
use support::*;

use canon_model::*;

/// One create of a kind without client tokens, as the scheduler sent it.
#[derive(Debug, Clone)]
struct Sent {
    target: LogicalId,
    /// The scheduler said no earlier attempt can have reached the cloud.
    never_sent: bool,
    /// The cloud found it made already (by its ownership tag).
    already_done: bool,
    /// The calls it took (its look-up, if any, and the create).
    calls: usize,
}

/// The simulated cloud, watched.
struct Watching {
    inner: Arc<dyn Cloud>,
    sent: Mutex<Vec<Sent>>,
    /// Pass look-ups asked for (`Cloud::look_up_owned`).
    look_ups: AtomicUsize,
    /// Lose the answer of the first create of this resource: it is made,
    /// and answered with a transport error.
    lose: Mutex<Option<LogicalId>>,
    /// Resources observations do not show yet, by id, until a create of
    /// their logical id comes again.
    hidden: Mutex<BTreeMap<LogicalId, String>>,
}

impl Watching {
    fn new(inner: Arc<dyn Cloud>) -> Arc<Watching> {
        Arc::new(Watching {
            inner,
            sent: Mutex::default(),
            look_ups: AtomicUsize::new(0),
            lose: Mutex::default(),
            hidden: Mutex::default(),
        })
    }

    fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap().clone()
    }

    fn hide(&self, target: LogicalId, id: String) {
        self.hidden.lock().unwrap().insert(target, id);
    }

    fn without_hidden(&self, mut o: ObservedState) -> ObservedState {
        for id in self.hidden.lock().unwrap().values() {
            o.remove(id);
        }
        o
    }

    async fn execute_watched(
        &self,
        request: &Request,
        ctx: &ExecContext,
    ) -> Result<Outcome, CloudError> {
        if owner_to_find(&request.action).is_none() {
            return self.inner.execute(request, ctx).await;
        }
        // A create sent again: the snapshot that hid its first result is
        // past.
        let retried = self.hidden.lock().unwrap().remove(&request.target);
        let result = self.inner.execute(request, ctx).await;
        if let Ok(o) = &result {
            self.sent.lock().unwrap().push(Sent {
                target: request.target,
                never_sent: ctx.never_sent,
                already_done: o.already_done,
                calls: o.request_ids.len(),
            });
            let mut lose = self.lose.lock().unwrap();
            if retried.is_none() && *lose == Some(request.target) {
                *lose = None;
                if let Some(id) = &o.cloud_id {
                    self.hide(request.target, id.clone());
                }
                return Err(CloudError::retryable(
                    canon_cloud::error::TRANSPORT,
                    "connection reset before the answer",
                ));
            }
        }
        result
    }
}

impl Intercept for Watching {
    fn inner(&self) -> &dyn Cloud {
        self.inner.as_ref()
    }

    fn observe_where<'a>(
        &'a self,
        scope: &'a Scope,
        keep: Keep<'a>,
    ) -> BoxFuture<'a, Result<ObservedState, CloudError>> {
        Box::pin(async move {
            let o = self.inner.observe_where(scope, keep).await?;
            Ok(self.without_hidden(o))
        })
    }

    fn observe_ids<'a>(
        &'a self,
        scope: &'a Scope,
        ids: &'a BTreeSet<String>,
    ) -> BoxFuture<'a, Result<ObservedState, CloudError>> {
        Box::pin(async move {
            let o = self.inner.observe_ids(scope, ids).await?;
            Ok(self.without_hidden(o))
        })
    }

    fn execute<'a>(
        &'a self,
        request: &'a Request,
        ctx: &'a ExecContext,
    ) -> BoxFuture<'a, Result<Outcome, CloudError>> {
        Box::pin(self.execute_watched(request, ctx))
    }

    fn look_up_owned<'a>(
        &'a self,
        scope: &'a Scope,
        requests: &'a [Request],
    ) -> BoxFuture<'a, Result<OwnedLookups, CloudError>> {
        self.look_ups.fetch_add(1, Ordering::SeqCst);
        self.inner.look_up_owned(scope, requests)
    }
}

/// A one-node cluster acting through a watched simulated cloud.
async fn watched() -> (Harness, Arc<Watching>) {
    let mut watching = None;
    let h = Harness::start_through(
        1,
        1,
        quick_config(Duration::from_millis(500)),
        1_763_769_600_000,
        |cloud| {
            let w = Watching::new(cloud);
            watching = Some(w.clone());
            Arc::new(Intercepted(w))
        },
    )
    .await;
    (h, watching.expect("the harness wrapped the cloud"))
}

/// The process's resources, by logical id: one each, none twice.
fn one_of_each(h: &Harness, fid: Fid) -> BTreeMap<LogicalId, String> {
    let mut seen = BTreeMap::new();
    for r in h.owned(fid) {
        let owner = r.owner().expect("owned");
        if let Some(other) = seen.insert(owner, r.cloud_id.clone()) {
            panic!("{owner} made twice: {other} and {}", r.cloud_id);
        }
    }
    seen
}

async fn run_to_the_end(h: &Harness, alias: &str, d: &DesiredState) {
    let p = h
        .wait_for(alias, d.fid, Duration::from_secs(20), "the RUN job", |p| {
            last_job(p, JobKind::Run).is_some_and(|j| j.status.is_finished())
        })
        .await;
    let job = last_job(&p, JobKind::Run).unwrap();
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_run_job_sends_its_creates_without_looking_them_up() {
    let (h, watching) = watched().await;
    let fid = Fid::random();
    let d = network(fid, "web", true);
    h.run("web", &d).await;
    run_to_the_end(&h, "web", &d).await;

    let sent = watching.sent();
    // The VPC, its gateway, two subnets and the group.
    assert!(sent.len() >= 5, "{sent:#?}");
    for s in &sent {
        assert!(s.never_sent, "{s:?}");
        assert!(!s.already_done, "{s:?}");
        assert_eq!(s.calls, 1, "the create alone, no look-up: {s:?}");
    }
    let targets: BTreeSet<LogicalId> = sent.iter().map(|s| s.target).collect();
    assert_eq!(targets.len(), sent.len(), "each sent once: {sent:#?}");
    assert_eq!(watching.look_ups.load(Ordering::SeqCst), 0);
    let made = one_of_each(&h, fid);
    assert!(targets.iter().all(|t| made.contains_key(t)), "{made:?}");
    let p = h.process("web", fid).await;
    assert!(p.passes.is_some_and(|n| n >= 1), "{:?}", p.passes);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_was_lost_is_looked_up_and_made_once() {
    let (h, watching) = watched().await;
    let fid = Fid::random();
    let d = network(fid, "web", true);
    let vpc = LogicalId::new(fid, "net.vpc");
    assert!(d.resources.contains_key(&vpc), "{:?}", d.resources.keys());
    *watching.lose.lock().unwrap() = Some(vpc);
    h.run("web", &d).await;
    run_to_the_end(&h, "web", &d).await;

    let sent: Vec<Sent> = watching
        .sent()
        .into_iter()
        .filter(|s| s.target == vpc)
        .collect();
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert!(sent[0].never_sent && !sent[0].already_done, "{sent:?}");
    // The retry looked for its tag and found what the lost answer made.
    assert!(!sent[1].never_sent && sent[1].already_done, "{sent:?}");
    assert_eq!(sent[1].calls, 1, "the look-up alone, no create: {sent:?}");
    let made = one_of_each(&h, fid);
    let p = h.process("web", fid).await;
    assert_eq!(p.bindings[&vpc].cloud_id, made[&vpc]);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_resumed_from_another_actors_pass_looks_its_creates_up() {
    let (h, watching) = watched().await;
    let fid = Fid::random();
    let d = network(fid, "web", true);
    let vpc = LogicalId::new(fid, "net.vpc");
    // An earlier leader's actor opened a pass of the RUN job and made the
    // VPC; it crashed before recording the answer. The process waits,
    // suspended, while that history is written.
    let created = h
        .propose(
            "web",
            Command::ProcessCreated {
                imports: Default::default(),
                fid,
                alias: "web".into(),
                account: ACCOUNT.into(),
                composition: encode(&d),
                tick_interval_ms: None,
            },
        )
        .await;
    assert!(created.is_applied(), "{created:?}");
    h.set_state("web", fid, ProcessState::Suspended).await;
    let job = h.start_job("web", fid, JobKind::Run).await;
    let opened = h
        .propose(
            "web",
            Command::JobProgressed {
                fid,
                job,
                ticks: 1,
                message: Some("creating".into()),
                opens_pass: true,
                planned: Vec::new(),
            },
        )
        .await;
    assert!(opened.is_applied(), "{opened:?}");
    let Spec::Vpc(spec) = &d.resources[&vpc].spec else {
        panic!("net.vpc is a VPC");
    };
    let lost = Request {
        target: vpc,
        part: None,
        region: Region::new(REGION),
        action: Action::CreateVpc {
            cidr_block: spec.cidr_block,
            instance_tenancy: Tenancy::Default,
            amazon_provided_ipv6_cidr_block: false,
            tags: [(OWNERSHIP_TAG.to_string(), vpc.to_string())]
                .into_iter()
                .collect(),
        },
    };
    let ctx = ExecContext::new(ACCOUNT, format!("{fid}.{job}"), 9, 1);
    let made = h
        .cloud
        .execute(&lost, &ctx)
        .await
        .unwrap()
        .cloud_id
        .unwrap();
    watching.hide(vpc, made.clone());

    h.set_state("web", fid, ProcessState::Running).await;
    run_to_the_end(&h, "web", &d).await;
    let sent = watching.sent();
    let first = sent
        .iter()
        .find(|s| s.target == vpc)
        .expect("the VPC's create");
    assert!(!first.never_sent && first.already_done, "{first:?}");
    let made_now = one_of_each(&h, fid);
    assert_eq!(made_now[&vpc], made, "found, not made twice");
    assert_eq!(h.process("web", fid).await.bindings[&vpc].cloud_id, made);
    h.shutdown().await;
}
