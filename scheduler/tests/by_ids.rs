//! A process being created is verified by id, not by a look at its whole
//! account and region (issue #19 §2): each pass of a RUN job checks what
//! the last one did, and a look at the whole region there would cost every
//! pass the estate's size, a fleet's creation the square of it. While every
//! create the actor sent was answered, the process's own ids are all it
//! can own, and the look by those ids is enough. A create whose answer was
//! lost may have made something only its ownership tag finds: then the
//! whole scope is looked at, and what the lost answer made is adopted, not
//! made twice. The scheduler acts through a wrapper of the simulated cloud
//! that counts both kinds of look and can lose a create's answer.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use canon_cloud::{BoxFuture, Cloud, CloudError, ExecContext, Keep, Outcome, Scope};
use support::intercept::{Intercept, Intercepted};
use support::*;

use canon_model::*;

/// The simulated cloud, counted.
struct Counting {
    inner: Arc<dyn Cloud>,
    /// Looks at a whole account and region (`Cloud::observe`).
    scope_looks: AtomicUsize,
    /// Looks by id (`Cloud::observe_ids`).
    id_looks: AtomicUsize,
    /// The ids each look by id asked for, in order.
    id_look_sets: Mutex<Vec<BTreeSet<String>>>,
    /// How long a look by id takes (a describe on a busy region).
    id_look_ms: AtomicUsize,
    /// Creates sent, by logical id.
    creates: Mutex<BTreeMap<LogicalId, usize>>,
    /// Lose the answer of the first create of this resource: it is made,
    /// and answered with a transport error.
    lose: Mutex<Option<LogicalId>>,
    /// Whole-scope looks at the moment the answer was lost.
    scope_looks_at_loss: AtomicUsize,
}

impl Counting {
    fn new(inner: Arc<dyn Cloud>) -> Arc<Counting> {
        Arc::new(Counting {
            inner,
            scope_looks: AtomicUsize::new(0),
            id_looks: AtomicUsize::new(0),
            id_look_sets: Mutex::default(),
            id_look_ms: AtomicUsize::new(0),
            creates: Mutex::default(),
            lose: Mutex::default(),
            scope_looks_at_loss: AtomicUsize::new(0),
        })
    }

    fn creates_of(&self, target: LogicalId) -> usize {
        self.creates
            .lock()
            .unwrap()
            .get(&target)
            .copied()
            .unwrap_or(0)
    }

    async fn execute_counted(
        &self,
        request: &Request,
        ctx: &ExecContext,
    ) -> Result<Outcome, CloudError> {
        if request.action.creates().is_none() {
            return self.inner.execute(request, ctx).await;
        }
        *self
            .creates
            .lock()
            .unwrap()
            .entry(request.target)
            .or_default() += 1;
        let result = self.inner.execute(request, ctx).await;
        let mut lose = self.lose.lock().unwrap();
        if result.is_ok() && *lose == Some(request.target) {
            *lose = None;
            self.scope_looks_at_loss
                .store(self.scope_looks.load(Ordering::SeqCst), Ordering::SeqCst);
            return Err(CloudError::retryable(
                canon_cloud::error::TRANSPORT,
                "connection reset before the answer",
            ));
        }
        result
    }
}

impl Intercept for Counting {
    fn inner(&self) -> &dyn Cloud {
        self.inner.as_ref()
    }

    fn observe_where<'a>(
        &'a self,
        scope: &'a Scope,
        keep: Keep<'a>,
    ) -> BoxFuture<'a, Result<ObservedState, CloudError>> {
        self.scope_looks.fetch_add(1, Ordering::SeqCst);
        self.inner.observe_where(scope, keep)
    }

    fn observe_ids<'a>(
        &'a self,
        scope: &'a Scope,
        ids: &'a BTreeSet<String>,
    ) -> BoxFuture<'a, Result<ObservedState, CloudError>> {
        self.id_looks.fetch_add(1, Ordering::SeqCst);
        self.id_look_sets.lock().unwrap().push(ids.clone());
        let took = Duration::from_millis(self.id_look_ms.load(Ordering::SeqCst) as u64);
        Box::pin(async move {
            tokio::time::sleep(took).await;
            self.inner.observe_ids(scope, ids).await
        })
    }

    fn execute<'a>(
        &'a self,
        request: &'a Request,
        ctx: &'a ExecContext,
    ) -> BoxFuture<'a, Result<Outcome, CloudError>> {
        Box::pin(self.execute_counted(request, ctx))
    }
}

/// A one-node cluster acting through a counted simulated cloud, ticking
/// every minute: within a test, only passes look.
async fn counted() -> (Harness, Arc<Counting>) {
    let mut counting = None;
    let h = Harness::start_through(
        1,
        1,
        quick_config(Duration::from_secs(60)),
        1_763_769_600_000,
        |cloud| {
            let c = Counting::new(cloud);
            counting = Some(c.clone());
            Arc::new(Intercepted(c))
        },
    )
    .await;
    (h, counting.expect("the harness wrapped the cloud"))
}

/// Waits for the RUN job of `alias` to succeed.
async fn run_to_the_end(
    h: &Harness,
    alias: &str,
    d: &DesiredState,
) -> canon_raft::state::ProcessRecord {
    let p = h
        .wait_for(alias, d.fid, Duration::from_secs(20), "the RUN job", |p| {
            last_job(p, JobKind::Run).is_some_and(|j| j.status.is_finished())
        })
        .await;
    let job = last_job(&p, JobKind::Run).unwrap();
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    p
}

/// The process's resources, by logical id: one each, none twice, each the
/// one bound.
fn one_of_each_bound(
    h: &Harness,
    p: &canon_raft::state::ProcessRecord,
) -> BTreeMap<LogicalId, String> {
    let mut seen = BTreeMap::new();
    for r in h.owned(p.fid) {
        let owner = r.owner().expect("owned");
        if let Some(other) = seen.insert(owner, r.cloud_id.clone()) {
            panic!("{owner} made twice: {other} and {}", r.cloud_id);
        }
    }
    let bound: BTreeMap<LogicalId, String> = p
        .bindings
        .iter()
        .map(|(l, b)| (*l, b.cloud_id.clone()))
        .collect();
    assert_eq!(seen, bound, "what the cloud holds is what is bound");
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_being_created_is_verified_by_id_not_by_scope() {
    let (h, counting) = counted().await;
    // Another process's network in the same region: a look at the scope
    // would describe it on every pass.
    let other = network(Fid::random(), "other", false);
    h.run("other", &other).await;
    run_to_the_end(&h, "other", &other).await;
    let scope_looks = counting.scope_looks.load(Ordering::SeqCst);
    let id_looks = counting.id_looks.load(Ordering::SeqCst);

    let fid = Fid::random();
    let d = network(fid, "web", true);
    h.run("web", &d).await;
    let p = run_to_the_end(&h, "web", &d).await;

    assert_eq!(
        counting.scope_looks.load(Ordering::SeqCst),
        scope_looks,
        "no pass of the RUN job looked at the whole region"
    );
    let passes = p.passes.expect("counted");
    assert!(passes >= 1, "{passes} passes");
    // Every look after the first pass (which had no id to look at, and
    // looked at nothing) was by id, once for its one region: the one that
    // verified each pass's work. The actor's own records (its JobFinished)
    // do not wake it for another.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let looked = counting.id_looks.load(Ordering::SeqCst) - id_looks;
    assert_eq!(
        looked as u64, passes,
        "{looked} looks by id for {passes} passes"
    );
    let made = one_of_each_bound(&h, &p);
    assert_eq!(made.len(), d.resources.len(), "{made:?}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_was_lost_is_found_by_tag_and_adopted() {
    let (h, counting) = counted().await;
    let fid = Fid::random();
    let d = network(fid, "web", true);
    let vpc = LogicalId::new(fid, "net.vpc");
    assert!(d.resources.contains_key(&vpc), "{:?}", d.resources.keys());
    *counting.lose.lock().unwrap() = Some(vpc);
    h.run("web", &d).await;
    let p = run_to_the_end(&h, "web", &d).await;

    // The pass after the loss looked at the whole scope, found the VPC by
    // its tag and adopted it: its create was sent once.
    let at_loss = counting.scope_looks_at_loss.load(Ordering::SeqCst);
    assert!(
        counting.scope_looks.load(Ordering::SeqCst) > at_loss,
        "the whole scope was looked at after the loss"
    );
    assert_eq!(counting.creates_of(vpc), 1, "adopted, not created again");
    let made = one_of_each_bound(&h, &p);
    assert_eq!(made.len(), d.resources.len(), "{made:?}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_by_the_actor_that_made_it_is_looked_at_by_id() {
    let (h, counting) = counted().await;
    let fid = Fid::random();
    let d = network(fid, "web", true);
    h.run("web", &d).await;
    run_to_the_end(&h, "web", &d).await;
    let scope_looks = counting.scope_looks.load(Ordering::SeqCst);
    let job = h.kill_process("web", fid).await;
    let kill = h.wait_job("web", fid, job, Duration::from_secs(20)).await;
    assert_eq!(kill.status, JobStatus::Succeeded, "{kill:?}");
    assert_eq!(counting.scope_looks.load(Ordering::SeqCst), scope_looks);
    assert!(h.owned(fid).is_empty(), "{:?}", h.owned(fid));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_created_together_share_their_looks_by_id() {
    let (h, counting) = counted().await;
    // A describe of a busy region takes a while: actors finishing their
    // passes meanwhile wait for the next look, and share it.
    counting.id_look_ms.store(300, Ordering::SeqCst);
    let processes: Vec<(String, DesiredState)> = (0..10)
        .map(|i| {
            (
                format!("p{i}"),
                network(Fid::random(), &format!("n{i}"), false),
            )
        })
        .collect();
    for (alias, d) in &processes {
        h.run(alias, d).await;
    }
    let mut made = Vec::new();
    for (alias, d) in &processes {
        let p = run_to_the_end(&h, alias, d).await;
        let ids: BTreeSet<String> = one_of_each_bound(&h, &p).into_values().collect();
        assert_eq!(ids.len(), d.resources.len(), "{alias}: {ids:?}");
        made.push(ids);
    }
    let looks = counting.id_look_sets.lock().unwrap().clone();
    for ids in &made {
        assert!(
            looks.iter().any(|l| ids.is_subset(l)),
            "a look verified all of {ids:?}"
        );
    }
    let shared = looks
        .iter()
        .filter(|l| made.iter().filter(|ids| !ids.is_disjoint(l)).count() > 1)
        .count();
    assert!(shared >= 1, "no look served two processes: {looks:?}");
    assert!(
        looks.len() < processes.len(),
        "{} looks by id for {} processes",
        looks.len(),
        processes.len()
    );
    h.shutdown().await;
}
