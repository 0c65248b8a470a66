//! The process actor: one tokio task per live process on its shard's leader.
//!
//! Each tick reads the process from the log, observes through the shared
//! observer, asks [`reconcile`] what to do, and does it. Every write is
//! fenced to the leadership term the actor was started in, and every cloud
//! mutation is preceded by a committed, fenced intent and a leadership
//! check ([`crate::fence`]), so a deposed leader's actor stops instead of
//! acting; every mutation's result is committed as a `CloudCalled` audit
//! record. The pass's intent names its calls beforehand (audited), and a
//! tick that finds a pass still open records it interrupted, with the
//! calls that may have been made unrecorded (issue #13's crash gap:
//! `canon_raft::state::passes`); the next pass adopts what they made. A create
//! of a kind without client tokens looks for its ownership tag first only
//! when an earlier attempt of it may have reached the cloud unrecorded: a
//! lost answer, or a pass another actor opened ([`crate::create_ledger`]).
//! The same ledger lets a tick right after the actor's own changes (the
//! passes of a job in progress, the tick after it ends) look at the
//! process's own resources by id instead of at its whole account and
//! region, when that shows the planner the same (issue #19 §2: creation
//! that is not quadratic in the estate).
//! The actor is cancelled the moment its shard's leadership is lost. A tick
//! that fails says why as a [`TickError`], and [`error_policy`] decides what
//! follows.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use canon_cloud::idempotency::{owner_to_find, OwnedLookups};
use canon_cloud::{ErrorClass, ExecContext, Scope};
use canon_model::rollout_failure::PARK_AFTER;
use canon_model::{
    Backoff, Bindings, DesiredState, Fid, LogicalId, ObservedState, ProcessState,
    Request as CloudRequest, ResourceKind, RolloutFailure, UnixMillis,
};
use canon_raft::state::ProcessRecord;
use canon_raft::{Command, Consistency, GroupId, Leadership};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::alerts::Alert;
use crate::config::MIN_TICK_INTERVAL;
use crate::create_ledger::{CreateLedger, IdsByRegion};
use crate::error_policy::{error_policy, retry_backoff, Requeue};
use crate::fence::{Fence, Mailbox};
use crate::led_here::LedGuard;
use crate::observer::Freshness;
use crate::reconcile::{adopting, bindings_of, reconcile, Decision, TickState};
use crate::tick_error::TickError;
use crate::Shared;

/// Why an actor is woken outside its schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The process changed in the log (new state, composition or job).
    Changed,
    /// Tick now (an operator asked).
    TickNow,
    /// An observation of the process's scope that started at this instant
    /// shows its resources changed ([`crate::observer::ObservedNews`]):
    /// reconcile against it now, unless this actor already did, or changed
    /// the cloud itself since it started (the actor verifies its own
    /// changes), or is backing off or asleep.
    Observed(Instant),
}

/// How long after a look an event asked for, which found nothing, the
/// actor looks once more before it drops the suspicion: EC2's reads lag
/// its writes by a second or two.
const EVENT_RECHECK: Duration = Duration::from_secs(2);

/// How a tick looked at the cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Look {
    /// The whole scope (shared), or no look at all.
    Scope,
    /// The process's own resources by id, on the ledger's word that they
    /// are all it can own ([`CreateLedger::ids_to_look_at`]).
    Ids,
}

/// What the actor does after a tick that carried out its decision.
enum Next {
    /// Tick again after the interval.
    Interval,
    /// Tick again after this long.
    After(Duration),
    /// Tick again at once (verify what was just done).
    Soon,
    /// Wait for a wake.
    Sleep,
    /// Stop: the process is gone.
    Exit(&'static str),
}

pub(crate) struct ProcessActor {
    shared: Arc<Shared>,
    group: GroupId,
    fid: Fid,
    cancel: CancellationToken,
    mailbox: Mailbox<Wake>,
    fence: Fence,
    rng: ChaCha8Rng,
    backoff: Backoff,
    /// Failed ticks since the last success (the error policy's attempt).
    failures: u32,
    ticks: TickState,
    /// Observations must start after this (our last mutation).
    fresh_after: Instant,
    /// This process's tick interval (its own setting, else the node's).
    tick_interval: Duration,
    /// A look an event asked for found nothing once; the next one that
    /// finds nothing drops the suspicion.
    rechecked: bool,
    /// A cloud event poked the process, and no pass has found it quiet
    /// since: the heal it led to is checked by the same look by id, so an
    /// event costs the process, not a fresh look at the whole estate.
    after_event: bool,
    /// The passes this actor opened and the creates it sent: which creates
    /// need a look-up by ownership tag ([`CreateLedger`]).
    creates: CreateLedger,
    /// When the newest whole-scope observation a tick of this actor
    /// reconciled against started (the oldest, over several regions).
    scope_looked: Option<Instant>,
    /// Keeps the process's resources in the node's observations while the
    /// actor lives.
    _led: LedGuard,
}

/// The tick interval of `record`: its own setting (never below
/// [`MIN_TICK_INTERVAL`]), else the node's `default`.
pub(crate) fn tick_interval_of(record: &ProcessRecord, default: Duration) -> Duration {
    record.tick_interval_ms.map_or(default, |ms| {
        Duration::from_millis(ms).max(MIN_TICK_INTERVAL)
    })
}

impl ProcessActor {
    pub(crate) fn new(
        shared: Arc<Shared>,
        group: GroupId,
        fid: Fid,
        term: u64,
        cancel: CancellationToken,
        wake: mpsc::Receiver<Wake>,
        leadership: watch::Receiver<Leadership>,
    ) -> Self {
        let seed = shared.config.seed ^ (fid.0.as_u128() as u64) ^ term.rotate_left(17);
        let now = shared.clock.now_ms();
        let shared_tick = shared.config.tick_interval;
        let fence = Fence::new(term, leadership, &shared.config);
        let (cancel, mailbox) = fence.stop_signals(cancel, wake);
        // Before `fresh_after` is taken: an observation this actor may use
        // starts after it, so it was filtered with this process in.
        let led = shared.observer.led_here().enter(fid);
        ProcessActor {
            backoff: retry_backoff(shared.config.backoff_base, shared.config.backoff_cap),
            failures: 0,
            ticks: TickState {
                unflushed_ticks: 0,
                last_flush: now,
                flush_every: shared.config.flush_every.as_millis() as u64,
            },
            shared,
            group,
            fid,
            cancel,
            mailbox,
            fence,
            rng: ChaCha8Rng::seed_from_u64(seed),
            fresh_after: Instant::now(),
            tick_interval: shared_tick,
            rechecked: false,
            after_event: false,
            creates: CreateLedger::default(),
            scope_looked: None,
            _led: led,
        }
    }

    /// Runs until cancelled or the process is gone.
    pub(crate) async fn run(self, first_tick_in: Duration) {
        if self.fence.runs_detached() {
            let _ = tokio::spawn(self.enforce(first_tick_in)).await;
            return;
        }
        self.enforce(first_tick_in).await
    }

    async fn enforce(mut self, first_tick_in: Duration) {
        let mut due = Some(Instant::now() + first_tick_in);
        loop {
            let sleep_until = due.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return,
                w = self.mailbox.recv() => match w {
                    None => return,
                    Some(Wake::Observed(started)) => {
                        if due.is_some() && self.failures == 0 && self.is_news_to_me(started) {
                            self.shared.stats.observed_tick();
                            due = Some(Instant::now());
                        }
                        continue;
                    }
                    Some(_) => {
                        self.failures = 0;
                        due = Some(Instant::now());
                        continue;
                    }
                },
                _ = tokio::time::sleep_until(sleep_until), if due.is_some() => {}
            }
            let started = Instant::now();
            if let Some(d) = due {
                self.shared
                    .stats
                    .record_tick(started.saturating_duration_since(d));
            }
            let cancel = self.cancel.clone();
            // The tick's future is boxed: inline, its state (the largest
            // of the actor's) would be part of every idle actor's task,
            // some 9 KB a process on the leader (issue #19, memory).
            let tick = Box::pin(self.tick());
            let next = tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                next = tick => next,
            };
            due = match next {
                Ok(Next::Interval) => Some(Instant::now() + self.interval()),
                Ok(Next::After(d)) => Some(Instant::now() + d),
                Ok(Next::Soon) => Some(Instant::now()),
                Ok(Next::Sleep) => None,
                Ok(Next::Exit(why)) => {
                    tracing::debug!(fid = %self.fid, why, "actor exits");
                    return;
                }
                Err(e) => {
                    let requeue = error_policy(&e, self.failures, &self.backoff, &mut self.rng);
                    self.failures = self.failures.saturating_add(1);
                    match requeue {
                        Requeue::After(d) => {
                            tracing::debug!(fid = %self.fid, ?d, why = %e, "backing off");
                            Some(Instant::now() + d)
                        }
                        Requeue::AwaitChange => {
                            tracing::debug!(fid = %self.fid, why = %e, "waiting for a change");
                            None
                        }
                        Requeue::WhenLeading => {
                            // Not `return`: the supervisor keeps this
                            // actor's place while the node leads the shard
                            // in this term, and would never start another.
                            tracing::debug!(fid = %self.fid, why = %e, "waiting to lead the shard again");
                            tokio::select! {
                                biased;
                                _ = self.cancel.cancelled() => return,
                                () = self.fence.until_leads() => Some(Instant::now()),
                            }
                        }
                    }
                }
            };
        }
    }

    /// Whether an observation of the scope that started at `started` can
    /// tell this actor something: it started after the actor's own last
    /// change, and after the observation its last tick reconciled against.
    fn is_news_to_me(&self, started: Instant) -> bool {
        started > self.fresh_after && self.scope_looked.is_none_or(|l| l < started)
    }

    /// The tick interval with jitter, so processes don't tick in lockstep.
    fn interval(&mut self) -> Duration {
        let base = self.tick_interval;
        let j = self.shared.config.jitter.clamp(0.0, 0.9);
        let factor = 1.0 + j * (self.rng.random::<f64>() * 2.0 - 1.0);
        base.mul_f64(factor)
    }

    async fn tick(&mut self) -> Result<Next, TickError> {
        if !self.fence.leads() {
            return Err(TickError::NotLeader("not leader in my term"));
        }
        let fid = self.fid;
        let record = match self
            .shared
            .node
            .read(self.group, Consistency::Stale, |s| s.process(&fid).cloned())
            .await
        {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(Next::Exit("process deleted")),
            Err(e) => return Err(TickError::ReadLog(e)),
        };
        self.tick_interval = tick_interval_of(&record, self.shared.config.tick_interval);
        if !record.state.is_live() {
            return Ok(Next::Exit("process killed or released"));
        }
        self.close_interrupted_pass(&record).await?;
        let desired = match (self.shared.decoder)(&record.composition, fid) {
            Ok(d) => d,
            Err(e) => {
                let error = TickError::Undecodable(e);
                tracing::error!(%fid, msg = %error);
                if let Some(job) = record.busy_job() {
                    let _ = self
                        .commit(vec![Command::JobFinished {
                            fid,
                            job,
                            status: canon_model::JobStatus::Failed,
                            message: error.to_string(),
                        }])
                        .await;
                }
                return Err(error);
            }
        };
        if record.state == ProcessState::Suspended {
            return self
                .settle(&record, &desired, &ObservedState::new(), Look::Scope)
                .await;
        }
        if record.suspected.is_some() || adopting(&record) {
            // An event says the cloud changed: a snapshot taken before it
            // cannot show that. An import about to tag what it adopts
            // checks nobody took it since with a look of this moment.
            self.fresh_after = self.fresh_after.max(Instant::now());
        }
        self.after_event |= record.suspected.is_some();
        let alone = self.after_event.then(|| looked_at_alone(&record, &desired));
        let by_ids = (self.changed_lately()
            && may_look_by_id(&record)
            && !self.scope_looked_at_since_change(&record, &desired))
        .then(|| self.creates.ids_to_look_at(&record, &desired))
        .flatten();
        let (observed, look) = match (alone.flatten(), by_ids) {
            (Some((scope, ids)), _) => (self.observe_own(scope, &ids).await?, Look::Scope),
            (None, Some(ids)) => (self.observe_by_ids(&record, ids).await?, Look::Ids),
            (None, None) => (self.observe(&record, &desired).await?, Look::Scope),
        };
        self.settle(&record, &desired, &observed, look).await
    }

    /// Records (`PassInterrupted`) that the pass `record` shows open was
    /// cut off: no pass of this process runs between ticks, so its first
    /// call without a `CloudCalled` may have been made unrecorded (by
    /// another actor, or by this one before a failure ended its tick), and
    /// the calls after it were never sent.
    async fn close_interrupted_pass(&mut self, record: &ProcessRecord) -> Result<(), TickError> {
        let Some(open) = record.open_pass.as_ref().filter(|o| !o.interrupted) else {
            return Ok(());
        };
        tracing::info!(fid = %self.fid, job = open.job, unanswered = open.unanswered.len(), "a pass was cut off; recording its unanswered calls");
        // A pass sends its calls one at a time, in plan order, each after
        // the previous one's answer committed (`execute`): of the calls
        // left unanswered, only the first can have been sent.
        let unsent = open.unanswered.len().saturating_sub(1);
        self.commit(vec![Command::PassInterrupted {
            fid: self.fid,
            job: open.job,
            unsent: u64::try_from(unsent).unwrap_or(u64::MAX),
        }])
        .await
    }

    /// Records (`PassInterrupted`) that this actor stops its pass of `job`
    /// with its last `unsent` calls never sent, so the record says which
    /// calls may have been made and which were not. Best effort: if the
    /// write fails, the next tick records the pass with all its
    /// unanswered calls as calls that may have been made.
    async fn stop_pass(&mut self, job: u64, unsent: usize) {
        let stop = Command::PassInterrupted {
            fid: self.fid,
            job,
            unsent: u64::try_from(unsent).unwrap_or(u64::MAX),
        };
        if let Err(e) = self.commit(vec![stop]).await {
            tracing::debug!(fid = %self.fid, job, error = %e, "could not record the pass stopped");
        }
    }

    /// Whether this actor changed the cloud within the last tick interval:
    /// a whole-scope look must then be newer than that change, and no
    /// snapshot the observer shares can serve it (a new look of the whole
    /// scope would be made for this process alone). A tick of a settled
    /// process shares the window's snapshot instead, the cheaper look.
    fn changed_lately(&self) -> bool {
        Instant::now()
            .checked_sub(self.tick_interval)
            .is_none_or(|window_start| self.fresh_after > window_start)
    }

    /// Whether every region the process is in was observed whole since the
    /// actor's last change (and no observation of one is under way): that
    /// observation shows the change, so the tick shares it instead of
    /// looking at the process's ids.
    fn scope_looked_at_since_change(&self, record: &ProcessRecord, desired: &DesiredState) -> bool {
        record.regions(desired).into_iter().all(|region| {
            let scope = Scope {
                account: record.account.clone(),
                region,
            };
            self.shared
                .observer
                .latest_started(&scope)
                .is_some_and(|started| started > self.fresh_after)
        })
    }

    /// A fresh look at the ids of each region of `ids` (regions without
    /// one are not asked about): the look right after the actor's own
    /// changes, whose cost is the process's size, not the estate's.
    async fn observe_by_ids(
        &self,
        record: &ProcessRecord,
        ids: IdsByRegion,
    ) -> Result<Arc<ObservedState>, TickError> {
        let mut merged = ObservedState::new();
        for (region, ids) in ids.into_iter().filter(|(_, ids)| !ids.is_empty()) {
            let scope = Scope {
                account: record.account.clone(),
                region,
            };
            merged.extend((*self.observe_own(scope, &ids).await?).clone());
        }
        Ok(Arc::new(merged))
    }

    /// A fresh look at the process's own resources only, by id (see
    /// [`looked_at_alone`]): the cost of the process, not of the estate.
    async fn observe_own(
        &self,
        scope: Scope,
        ids: &BTreeSet<String>,
    ) -> Result<Arc<ObservedState>, TickError> {
        match self.shared.observer.observe_ids(&scope, ids).await {
            Ok(o) => Ok(Arc::new(o)),
            Err(source) => Err(TickError::Observe { scope, source }),
        }
    }

    /// Observes every region the process declares or still holds
    /// something in. One region (the usual case) shares the observer's
    /// snapshot; several are merged.
    async fn observe(
        &mut self,
        record: &ProcessRecord,
        desired: &DesiredState,
    ) -> Result<Arc<ObservedState>, TickError> {
        let regions = record.regions(desired);
        let fresh = Freshness::of_window(Instant::now(), self.tick_interval, self.fresh_after);
        let mut snapshots = Vec::with_capacity(regions.len());
        let mut oldest = Instant::now();
        for region in regions {
            let scope = Scope {
                account: record.account.clone(),
                region,
            };
            let o = self
                .shared
                .observer
                .observe(&scope, fresh)
                .await
                .map_err(|source| TickError::Observe {
                    scope: scope.clone(),
                    source,
                })?;
            oldest = oldest.min(o.started);
            snapshots.push(o.state);
        }
        if !snapshots.is_empty() {
            self.scope_looked = Some(oldest);
        }
        Ok(match snapshots.len() {
            0 => Arc::new(ObservedState::new()),
            1 => snapshots.swap_remove(0),
            _ => {
                let mut merged = ObservedState::new();
                for s in snapshots {
                    merged.extend((*s).clone());
                }
                Arc::new(merged)
            }
        })
    }

    /// Decides and carries out the decision.
    async fn settle(
        &mut self,
        record: &ProcessRecord,
        desired: &DesiredState,
        observed: &ObservedState,
        look: Look,
    ) -> Result<Next, TickError> {
        let cloud = self.shared.observer.cloud();
        let reached = crate::probe::probe(cloud, record, desired, observed).await;
        if self.commanded_meanwhile(record).await? {
            // A command (update, kill, property, rotate) landed while we
            // looked: deciding on the record read before it would act
            // against what the user has just said. Look again at once.
            return Ok(Next::Soon);
        }
        let now = self.shared.clock.now_ms();
        match reconcile(record, desired, observed, &reached, now, self.ticks) {
            Decision::Sleep { commit, why } => {
                tracing::debug!(fid = %self.fid, %why, "sleeping");
                self.commit(commit).await?;
                self.ticks.unflushed_ticks = 0;
                Ok(Next::Sleep)
            }
            Decision::Wait { commit, why } => {
                tracing::debug!(fid = %self.fid, %why, "waiting");
                let parked = parked_alerts(record, &commit, now);
                self.commit(commit).await?;
                self.send_all(&parked);
                self.failures = 0;
                Ok(Next::Interval)
            }
            Decision::Steady {
                mut commit,
                flushed,
            } => {
                let next = self.settle_suspicion(record, &mut commit);
                // A fleet without surge records a failed replacement on a
                // pass that may change nothing (it waits out the backoff).
                let parked = parked_alerts(record, &commit, now);
                self.commit(commit).await?;
                self.send_all(&parked);
                if flushed {
                    self.ticks.unflushed_ticks = 0;
                    self.ticks.last_flush = now;
                } else {
                    self.ticks.unflushed_ticks += 1;
                }
                self.failures = 0;
                self.shared.stats.quiet_tick();
                Ok(next)
            }
            Decision::Detected { commit, flushed } => {
                let commit =
                    crate::drift_labels::label(&self.shared, commit, desired, observed).await;
                let opened = drift_opened(&commit);
                let parked = parked_alerts(record, &commit, now);
                self.commit(commit).await?;
                self.alert(record, &opened, now, None);
                self.send_all(&parked);
                self.shared.stats.drift(opened.len());
                self.count_latencies(&opened, now, None);
                if flushed {
                    self.ticks.unflushed_ticks = 0;
                    self.ticks.last_flush = now;
                } else {
                    self.ticks.unflushed_ticks += 1;
                }
                self.failures = 0;
                Ok(Next::Interval)
            }
            Decision::Act {
                before,
                plan,
                job,
                after,
                drift,
            } => {
                let before =
                    crate::drift_labels::label(&self.shared, before, desired, observed).await;
                let opened = drift_opened(&before);
                let parked = parked_alerts(record, &before, now);
                let opens_pass = before.iter().any(|c| {
                    matches!(
                        c,
                        Command::JobProgressed {
                            opens_pass: true,
                            ..
                        }
                    )
                });
                self.commit(before).await?;
                if opens_pass {
                    self.creates.opened_pass();
                }
                self.ticks.unflushed_ticks = 0;
                self.ticks.last_flush = now;
                self.alert(record, &opened, now, None);
                self.count_latencies(&opened, now, None);
                self.send_all(&parked);
                self.shared.stats.drift(drift.len());
                let history_mine = self.history_is_mine().await?;
                if look == Look::Ids && !history_mine {
                    // Another actor's pass landed between the tick's read
                    // and this intent: its creates are found only by tag.
                    // Nothing was sent yet; look at the whole scope.
                    self.stop_pass(job, plan.requests.len()).await;
                    return Ok(Next::Soon);
                }
                let mut bindings = bindings_of(record);
                for (l, c) in &plan.adoptions {
                    if let Some(old) = bindings.cloud_id(l).filter(|old| *old != c) {
                        self.creates.let_go(old, bound_region(record, l, old));
                    }
                    bindings.bind(*l, c.clone());
                }
                let pass = Pass { job, history_mine };
                self.execute(record, pass, &plan.requests, &mut bindings)
                    .await?;
                self.commit(after).await?;
                let healed_at = self.shared.clock.now_ms();
                self.alert(record, &opened, now, Some(healed_at));
                self.count_latencies(&opened, now, Some(healed_at));
                // Drift recorded by an earlier pass (enforcement was off):
                // healed now.
                for e in drift.iter().filter_map(|d| record.drift.get(d)) {
                    self.shared
                        .alerts
                        .send(&Alert::healed(&record.alias, e, healed_at));
                    self.shared
                        .stats
                        .drift_healed(&e.detected_by, e.detected_at, healed_at);
                }
                self.failures = 0;
                Ok(Next::Soon)
            }
        }
    }

    /// Whether a user's command changed `record` in the log since this
    /// tick read it (an observation can take seconds on a slow cloud).
    async fn commanded_meanwhile(&self, record: &ProcessRecord) -> Result<bool, TickError> {
        let fid = self.fid;
        let fresh = self
            .shared
            .node
            .read(self.group, Consistency::Stale, |s| s.process(&fid).cloned())
            .await
            .map_err(TickError::ReadLog)?;
        Ok(fresh.is_none_or(|fresh| commanded_between(record, &fresh)))
    }

    /// Sends `alerts` to the alert sinks.
    fn send_all(&self, alerts: &[Alert]) {
        for alert in alerts {
            self.shared.alerts.send(alert);
        }
    }

    /// After a quiet look: if an event asked for it, look once more after
    /// [`EVENT_RECHECK`], and after a second quiet look drop the suspicion
    /// (its `SuspicionCleared` joins `commit`). Drift found settles it by
    /// itself (`DriftOpened` by event).
    fn settle_suspicion(&mut self, record: &ProcessRecord, commit: &mut Vec<Command>) -> Next {
        if record.suspected.is_none() {
            self.rechecked = false;
            self.after_event = false;
            return Next::Interval;
        }
        if !self.rechecked {
            self.rechecked = true;
            return Next::After(EVENT_RECHECK);
        }
        self.rechecked = false;
        self.after_event = false;
        commit.push(Command::SuspicionCleared { fid: self.fid });
        Next::Interval
    }

    /// Whether every pass ever opened on the process was this actor's
    /// ([`CreateLedger::history_is_mine`]), read after the pass's intent
    /// committed (so every earlier entry is applied here).
    async fn history_is_mine(&self) -> Result<bool, TickError> {
        let fid = self.fid;
        let passes = self
            .shared
            .node
            .read(self.group, Consistency::Stale, |s| {
                s.process(&fid).and_then(|p| p.passes)
            })
            .await
            .map_err(TickError::ReadLog)?;
        Ok(self.creates.history_is_mine(passes))
    }

    /// One look-up per kind and region before those of the pass's creates
    /// of kinds without client tokens that need one (`needs_look_up`:
    /// [`CreateLedger::needs_look_up`]), where there are two or more (one
    /// create looks for itself at the same cost). A look-up that fails is
    /// only logged: each create then looks for itself.
    async fn look_up_owned(
        &self,
        record: &ProcessRecord,
        requests: &[CloudRequest],
        history_mine: bool,
    ) -> BTreeMap<canon_model::Region, Arc<OwnedLookups>> {
        let mut by_region: BTreeMap<canon_model::Region, Vec<CloudRequest>> = BTreeMap::new();
        for r in requests.iter().filter(|r| {
            owner_to_find(&r.action).is_some()
                && self.creates.needs_look_up(history_mine, &r.target)
        }) {
            by_region
                .entry(r.region.clone())
                .or_default()
                .push(r.clone());
        }
        let mut out = BTreeMap::new();
        for (region, creates) in by_region.into_iter().filter(|(_, c)| c.len() > 1) {
            let scope = Scope {
                account: record.account.clone(),
                region: region.clone(),
            };
            let turn = self.shared.fair.turn(&scope).await;
            let found = self
                .shared
                .observer
                .cloud()
                .look_up_owned(&scope, &creates)
                .await;
            drop(turn);
            match found {
                Ok(found) if !found.is_empty() => {
                    out.insert(region, Arc::new(found));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(fid = %self.fid, %scope, error = %e, "look-up before creates failed; each create looks for itself");
                }
            }
        }
        out
    }

    /// Executes `requests` in order for the pass's job, recording bindings
    /// as resources appear and disappear.
    async fn execute(
        &mut self,
        record: &ProcessRecord,
        pass: Pass,
        requests: &[CloudRequest],
        bindings: &mut Bindings,
    ) -> Result<(), TickError> {
        let Pass { job, history_mine } = pass;
        let fid = self.fid;
        let ctx = ExecContext::new(
            record.account.clone(),
            format!("{fid}.{job}"),
            self.shared.config.node_id,
            self.fence.term(),
        );
        let looked_up = self.look_up_owned(record, requests, history_mine).await;
        for (i, request) in requests.iter().enumerate() {
            // Act only while still leader in our term, and only on a fence
            // young enough that no other leader can have been elected since.
            if !self.fence.leads() {
                return Err(TickError::NotLeader("lost leadership before executing"));
            }
            self.refresh_lease_if_due(job).await?;
            let resolved = request.resolve(|l| bindings.cloud_id(l).map(str::to_string))?;
            let scope = Scope {
                account: record.account.clone(),
                region: resolved.region.clone(),
            };
            let turn = self.shared.fair.turn(&scope).await;
            if !self.fence.leads() {
                return Err(TickError::NotLeader(
                    "lost leadership while waiting for a turn",
                ));
            }
            self.fresh_after = Instant::now();
            let mut ctx = context_for(&ctx, &resolved, bindings.cloud_id(&request.target));
            ctx.looked_up = looked_up.get(&resolved.region).cloned();
            let tokenless_create = owner_to_find(&resolved.action).is_some();
            ctx.never_sent =
                tokenless_create && !self.creates.needs_look_up(history_mine, &request.target);
            let first = tokenless_create && self.creates.sending(request.target);
            let result = self.shared.observer.cloud().execute(&resolved, &ctx).await;
            if tokenless_create {
                self.creates.answered(&request.target, first, &result);
            }
            if resolved.action.creates().is_some() {
                self.creates.made(&resolved.region, &result);
            }
            drop(turn);
            self.fresh_after = Instant::now();
            let acted_on = bindings.cloud_id(&request.target).map(str::to_string);
            let called =
                |outcome: String, created: Option<&String>, ids: &[String]| Command::CloudCalled {
                    fid,
                    job,
                    request: request.request_type().to_string(),
                    resource: request.target,
                    cloud_id: created.cloned().or_else(|| acted_on.clone()),
                    region: resolved.region.to_string(),
                    outcome,
                    aws_request_ids: ids.to_vec(),
                };
            match result {
                Ok(outcome) => {
                    let mut writes = Vec::new();
                    let mut binds = None;
                    if let (Some(kind), Some(id)) =
                        (resolved.action.creates(), outcome.cloud_id.as_ref())
                    {
                        if let Some(old) = bindings.cloud_id(&request.target).filter(|o| *o != id) {
                            let region = bound_region(record, &request.target, old);
                            self.creates.let_go(old, region);
                        }
                        binds = Some(id.clone());
                        bindings.bind(request.target, id.clone());
                        writes.push(Command::BindingSet {
                            resource: request.target,
                            kind,
                            adopted: outcome.already_done,
                            cloud_id: id.clone(),
                            region: Some(resolved.region.clone()),
                        });
                    }
                    if let Some(gone) = resolved.action.deletes().and_then(|r| r.id()) {
                        self.creates.deleted(gone);
                        if bindings.cloud_id(&request.target) == Some(gone) {
                            bindings.unbind(&request.target);
                            writes.push(Command::BindingCleared {
                                resource: request.target,
                            });
                        }
                    }
                    let done = if outcome.already_done {
                        "ok (already done)"
                    } else {
                        "ok"
                    };
                    writes.push(called(
                        done.into(),
                        outcome.cloud_id.as_ref(),
                        &outcome.request_ids,
                    ));
                    self.shared.stats.executed();
                    self.commit_together(writes).await?;
                    if let Some(id) = binds {
                        self.creates.bound(&id);
                    }
                }
                Err(e) if e.class == ErrorClass::AlreadyDone => {
                    // Answered: its pass's intent named it, so its record
                    // says how it ended.
                    let done = format!("already done: {}", e.code);
                    self.commit(vec![called(done, None, &e.request_ids)])
                        .await?;
                }
                Err(e) if e.class == ErrorClass::Retryable => {
                    let unsent = requests.len() - i - usize::from(e.may_have_taken_effect());
                    self.stop_pass(job, unsent).await;
                    return Err(TickError::Retryable {
                        request_type: request.request_type().to_string(),
                        source: e,
                    });
                }
                Err(e) => {
                    let message = format!(
                        "{} failed: {}: {}",
                        request.request_type(),
                        e.code,
                        e.message
                    );
                    tracing::warn!(%fid, job, %message, "terminal failure; waiting for an update");
                    let fail = Command::JobFinished {
                        fid,
                        job,
                        status: canon_model::JobStatus::Failed,
                        message: message.clone(),
                    };
                    let failed = called(
                        format!("failed: {}: {}", e.code, e.message),
                        None,
                        &e.request_ids,
                    );
                    self.commit(vec![failed, fail]).await?;
                    return Err(TickError::Terminal { message });
                }
            }
        }
        Ok(())
    }

    /// Renews the fence with a fenced write of progress that changes
    /// nothing (`job`'s), when its lease has run out.
    async fn refresh_lease_if_due(&mut self, job: u64) -> Result<(), TickError> {
        if !self.fence.lease_expired() {
            return Ok(());
        }
        let refresh = Command::JobProgressed {
            fid: self.fid,
            job,
            ticks: 0,
            message: None,
            opens_pass: false,
            planned: Vec::new(),
        };
        self.commit(vec![refresh]).await
    }

    /// Commits `commands` in order, each fenced to the actor's term.
    /// Commits `commands` in one round of the log (a call's binding and
    /// its record: the binding cannot apply after the record).
    async fn commit_together(&mut self, commands: Vec<Command>) -> Result<(), TickError> {
        let now = self.shared.clock.now_ms();
        self.fence
            .write_in_order(&self.shared.node, self.group, now, commands)
            .await
    }

    async fn commit(&mut self, commands: Vec<Command>) -> Result<(), TickError> {
        for command in commands {
            let now = self.shared.clock.now_ms();
            self.fence
                .write(&self.shared.node, self.group, now, command)
                .await?;
        }
        Ok(())
    }

    /// Adds each `DriftOpened` of `opened`, found at `found`, to the
    /// detection latencies, or (with `healed_at`) to the heal latencies.
    fn count_latencies(
        &self,
        opened: &[Command],
        found: UnixMillis,
        healed_at: Option<UnixMillis>,
    ) {
        let stats = &self.shared.stats;
        for c in opened {
            if let Command::DriftOpened { detected_by, .. } = c {
                match healed_at {
                    None => stats.drift_found(detected_by, found),
                    Some(healed) => stats.drift_healed(detected_by, found, healed),
                }
            }
        }
    }

    /// Sends `drift.opened` (or, with `healed_at`, `drift.healed`) for
    /// each `DriftOpened` of `opened`.
    fn alert(
        &self,
        record: &ProcessRecord,
        opened: &[Command],
        detected_at: UnixMillis,
        healed_at: Option<UnixMillis>,
    ) {
        for c in opened {
            if let Command::DriftOpened {
                fid,
                drift,
                resource,
                kind,
                cloud_id,
                property,
                declared,
                observed,
                violates,
                ..
            } = c
            {
                self.shared.alerts.send(&Alert {
                    event: if healed_at.is_some() {
                        "drift.healed"
                    } else {
                        "drift.opened"
                    },
                    fid: *fid,
                    alias: record.alias.clone(),
                    drift: *drift,
                    resource: *resource,
                    kind: *kind,
                    cloud_id: cloud_id.clone(),
                    property: property.clone(),
                    declared: declared.clone(),
                    observed: observed.clone(),
                    detected_at,
                    healed_at,
                    violates: violates.clone(),
                });
            }
        }
    }
}

/// One pass being carried out: its job, and whether every pass on the
/// process was this actor's ([`CreateLedger::history_is_mine`]), read
/// after its intent committed.
#[derive(Debug, Clone, Copy)]
struct Pass {
    job: u64,
    history_mine: bool,
}

/// The region of `record`'s binding of `resource`, if it binds `cloud_id`
/// there and knows the region.
fn bound_region<'r>(
    record: &'r ProcessRecord,
    resource: &LogicalId,
    cloud_id: &str,
) -> Option<&'r canon_model::Region> {
    record
        .bindings
        .get(resource)
        .filter(|b| b.cloud_id == cloud_id)
        .and_then(|b| b.region.as_ref())
}

/// Whether `record`'s tick may look by id ([`CreateLedger::ids_to_look_at`]
/// says whether it can): not while an import adopts (it chooses among what
/// is not its own yet) or a release lets go (it looks for what carries its
/// tag); both look at the whole scope.
fn may_look_by_id(record: &ProcessRecord) -> bool {
    record.state != ProcessState::Releasing && !adopting(record)
}

/// Whether `fresh` carries a user's command `old` did not: a property,
/// an update, a kill or release, a new command job, a rotation request.
/// What the actor itself or an event writes (drift, bindings, suspicion)
/// does not count: the decision already accounts for it.
fn commanded_between(old: &ProcessRecord, fresh: &ProcessRecord) -> bool {
    old.properties != fresh.properties
        || old.generation != fresh.generation
        || old.state != fresh.state
        || old.busy_job() != fresh.busy_job()
        || old.rotations != fresh.rotations
        || old.tick_interval_ms != fresh.tick_interval_ms
}

/// `rollout.parked` for each `RolloutFailed` of `commands` that makes its
/// member's failures reach `PARK_AFTER` (its fleet stops rolling).
fn parked_alerts(record: &ProcessRecord, commands: &[Command], now: UnixMillis) -> Vec<Alert> {
    commands
        .iter()
        .filter_map(|c| {
            let Command::RolloutFailed {
                fid,
                resource,
                cloud_id,
                name,
            } = c
            else {
                return None;
            };
            let before = record.rollout_failures.get(resource);
            if before.is_some_and(|f| f.cloud_id == *cloud_id) {
                return None;
            }
            let after = RolloutFailure {
                count: before.map_or(0, |f| f.count) + 1,
                last_at: now,
                cloud_id: cloud_id.clone(),
                name: name.clone(),
            };
            (after.count == PARK_AFTER).then(|| Alert {
                event: "rollout.parked",
                fid: *fid,
                alias: record.alias.clone(),
                drift: 0,
                resource: *resource,
                kind: ResourceKind::Instance,
                cloud_id: Some(cloud_id.clone()),
                property: "rollout".into(),
                declared: Some("replacements pass their checks".into()),
                observed: Some(after.parked_message()),
                detected_at: now,
                healed_at: None,
                violates: Vec::new(),
            })
        })
        .collect()
}

/// The `DriftOpened` commands among `commands`.
fn drift_opened(commands: &[Command]) -> Vec<Command> {
    commands
        .iter()
        .filter(|c| matches!(c, Command::DriftOpened { .. }))
        .cloned()
        .collect()
}

/// The context `request` is executed in, from the job's `base`: a create
/// of a resource still bound to `bound` (a replacement: its old instance,
/// kept by a surge or about to go) is made under a job id that names the
/// old resource too. Client tokens derive from the job and the logical id,
/// so without it a second create of the same resource in one job (a
/// member rotated, or replaced as impaired, while its RUN job still runs)
/// would send the first create's token, and EC2 would answer with the
/// first instance instead of launching one: the same replacement again on
/// every pass. A job re-run after a crash still sends the same token: the
/// binding moves only once the create's result is committed.
fn context_for(
    base: &ExecContext,
    request: &canon_model::Request,
    bound: Option<&str>,
) -> ExecContext {
    match (request.action.creates(), bound) {
        (Some(_), Some(old)) => ExecContext {
            job_id: format!("{}.after.{old}", base.job_id),
            ..base.clone()
        },
        _ => base.clone(),
    }
}

/// Where and by which ids a process a cloud event poked (or the heal that
/// followed) may be looked at alone: it is settled (no job in progress, nothing being imported, no
/// rotation asked for), everything it declares is bound, and all of it is
/// in one region. Its own resources are then all its plan needs. Otherwise
/// the whole scope is observed: a create whose binding was never recorded
/// must be adopted by its ownership tag, not made twice.
fn looked_at_alone(
    record: &ProcessRecord,
    desired: &DesiredState,
) -> Option<(Scope, BTreeSet<String>)> {
    if record.busy_job().is_some() || adopting(record) || !record.rotations.is_empty() {
        return None;
    }
    if !desired
        .resources
        .keys()
        .all(|l| record.bindings.contains_key(l))
    {
        return None;
    }
    let mut regions = record.regions(desired).into_iter();
    let region = regions.next()?;
    let one_region = regions.next().is_none()
        && record
            .bindings
            .values()
            .all(|b| b.region.as_ref() == Some(&region));
    if !one_region {
        return None;
    }
    let ids = record
        .bindings
        .values()
        .map(|b| b.cloud_id.clone())
        .collect();
    let scope = Scope {
        account: record.account.clone(),
        region,
    };
    Some((scope, ids))
}

#[cfg(test)]
mod tests {
    use canon_model::{LogicalId, ProcessState};

    use super::*;
    use crate::reconcile::tests::{fid, record};

    #[test]
    fn a_second_create_of_a_resource_in_one_job_sends_its_own_client_token() {
        use canon_cloud::idempotency::client_token;
        use canon_model::{Action, CloudRef, Region, Request, Tags};
        let base = ExecContext::new("087820496137", "f.1", 1, 1);
        let launch = Request {
            target: LogicalId::new(fid(), "web.instances[0]"),
            part: None,
            region: Region::new("us-west-2"),
            action: Action::RunInstances {
                image_id: "ami-0123456789abcdef0".into(),
                instance_type: "t3.micro".into(),
                subnet: CloudRef::Id("subnet-1".into()),
                security_groups: Default::default(),
                key_name: None,
                user_data: None,
                tags: Tags::new(),
            },
        };
        let token =
            |bound: Option<&str>| client_token(&context_for(&base, &launch, bound).job_id, &launch);
        // The first launch: the job's token, as before.
        assert_eq!(token(None), client_token(&base.job_id, &launch));
        // Its replacement in the same job: another token, the same on a
        // re-run (the old instance is still bound until the result commits).
        assert_ne!(token(Some("i-1")), token(None));
        assert_eq!(token(Some("i-1")), token(Some("i-1")));
        assert_ne!(token(Some("i-1")), token(Some("i-2")));
        // What creates nothing keeps the job's context.
        let terminate = Request {
            action: Action::TerminateInstances {
                instance: CloudRef::Id("i-1".into()),
            },
            ..launch.clone()
        };
        assert_eq!(context_for(&base, &terminate, Some("i-1")), base);
    }

    #[test]
    fn the_failure_that_parks_a_fleet_is_alerted_once() {
        let member = LogicalId::new(fid(), "web.instances[0]");
        let failed = |cloud_id: &str| {
            vec![Command::RolloutFailed {
                fid: fid(),
                resource: member,
                cloud_id: cloud_id.into(),
                name: "web.instances[0]".into(),
            }]
        };
        let mut p = record(ProcessState::Running, vec![]);
        // The first failure parks nothing.
        assert!(parked_alerts(&p, &failed("i-1"), 5).is_empty());
        p.rollout_failures.insert(
            member,
            RolloutFailure {
                count: PARK_AFTER - 1,
                last_at: 1,
                cloud_id: "i-2".into(),
                name: "web.instances[0]".into(),
            },
        );
        // The same failure again (a retried pass) counts once.
        assert!(parked_alerts(&p, &failed("i-2"), 5).is_empty());
        let alerts = parked_alerts(&p, &failed("i-3"), 5);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].event, "rollout.parked");
        assert!(
            alerts[0]
                .observed
                .as_deref()
                .is_some_and(|m| m.contains("web.instances[0]") && m.contains("canon fleet rotate")),
            "{:?}",
            alerts[0]
        );
    }

    #[test]
    fn a_property_set_while_observing_is_a_command_but_drift_is_not() {
        let old = record(ProcessState::Running, vec![]);
        let mut fresh = old.clone();
        fresh.suspected = Some(7);
        fresh.updated_at += 1;
        assert!(
            !commanded_between(&old, &fresh),
            "suspicion is not a command"
        );
        let mut off = old.clone();
        off.properties.enforcement = false;
        assert!(commanded_between(&old, &off), "enforcement off is");
        let mut updated = old.clone();
        updated.generation += 1;
        assert!(commanded_between(&old, &updated), "an update is");
        let mut killing = old.clone();
        killing.state = ProcessState::Killing;
        assert!(commanded_between(&old, &killing), "a kill is");
    }
}
