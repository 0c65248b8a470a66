//! The process actor: one tokio task per live process on its shard's leader.
//!
//! Each tick reads the process from the log, observes through the shared
//! observer, asks [`reconcile`] what to do, and does it. Every write is
//! fenced to the leadership term the actor was started in, and every cloud
//! mutation is preceded by a committed, fenced intent and a leadership
//! check, so a deposed leader's actor stops instead of acting. The actor is
//! cancelled the moment its shard's leadership is lost.

use std::sync::Arc;
use std::time::Duration;

use canon_cloud::{ErrorClass, ExecContext, Scope};
use canon_model::{
    Bindings, DesiredState, Fid, ObservedState, ProcessState, Region, Request as CloudRequest,
    UnixMillis,
};
use canon_raft::state::ProcessRecord;
use canon_raft::{Command, Consistency, GroupId, Leadership, Rejection, Request, Response};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::alerts::Alert;
use crate::backoff::Backoff;
use crate::config::MIN_TICK_INTERVAL;
use crate::reconcile::{bindings_of, reconcile, Decision, TickState};
use crate::Shared;

/// Why an actor is woken outside its schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The process changed in the log (new state, composition or job).
    Changed,
    /// Tick now (an operator asked).
    TickNow,
}

/// What the actor does after a tick.
enum Next {
    /// Tick again after the interval.
    Interval,
    /// Tick again at once (verify what was just done).
    Soon,
    /// Retry after a backoff.
    Backoff(String),
    /// Wait for a wake.
    Sleep,
    /// Stop: the process is gone or this node no longer leads.
    Exit(&'static str),
}

/// A stop signal from a fenced write or a leadership check.
#[derive(Debug)]
enum Halt {
    /// This node no longer leads the shard in the actor's term.
    Deposed,
    /// A write was refused or the log could not be reached; re-read and retry.
    Retry(String),
}

pub(crate) struct ProcessActor {
    shared: Arc<Shared>,
    group: GroupId,
    fid: Fid,
    term: u64,
    cancel: CancellationToken,
    wake: mpsc::Receiver<Wake>,
    leadership: watch::Receiver<Leadership>,
    rng: ChaCha8Rng,
    backoff: Backoff,
    ticks: TickState,
    /// Observations must start after this (our last mutation).
    fresh_after: Instant,
    /// When the last fenced write was committed (the fence's age bounds how
    /// long the actor may act on it).
    fenced_at: Instant,
    /// This process's tick interval (its own setting, else the node's).
    tick_interval: Duration,
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
        ProcessActor {
            backoff: Backoff::new(shared.config.backoff_base, shared.config.backoff_cap),
            ticks: TickState {
                unflushed_ticks: 0,
                last_flush: now,
                flush_every: shared.config.flush_every.as_millis() as u64,
            },
            shared,
            group,
            fid,
            term,
            cancel,
            wake,
            leadership,
            rng: ChaCha8Rng::seed_from_u64(seed),
            fresh_after: Instant::now(),
            fenced_at: Instant::now(),
            tick_interval: shared_tick,
        }
    }

    /// Runs until cancelled or the process is gone.
    pub(crate) async fn run(self, first_tick_in: Duration) {
        // The supervisor stops (aborts) an actor when its node stops
        // leading; with fencing broken the actor runs detached, ignores
        // cancellation and its closed mailbox, and carries on as a deposed
        // leader would.
        if self.fencing_broken() {
            let _ = tokio::spawn(self.enforce(first_tick_in)).await;
            return;
        }
        self.enforce(first_tick_in).await
    }

    async fn enforce(mut self, first_tick_in: Duration) {
        let mut due = Some(Instant::now() + first_tick_in);
        if self.fencing_broken() {
            self.cancel = CancellationToken::new();
        }
        let mut wake_open = true;
        loop {
            let sleep_until = due.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return,
                w = self.wake.recv(), if wake_open => match w {
                    None if self.fencing_broken() => {
                        wake_open = false;
                        continue;
                    }
                    None => return,
                    Some(_) => {
                        self.backoff.reset();
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
            let next = tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                next = self.tick() => next,
            };
            due = match next {
                Next::Interval => Some(Instant::now() + self.interval()),
                Next::Soon => Some(Instant::now()),
                Next::Backoff(why) => {
                    let d = self.backoff.next_delay(&mut self.rng);
                    tracing::debug!(fid = %self.fid, ?d, %why, "backing off");
                    Some(Instant::now() + d)
                }
                Next::Sleep => None,
                Next::Exit(why) => {
                    tracing::debug!(fid = %self.fid, why, "actor exits");
                    return;
                }
            };
        }
    }

    /// The tick interval with jitter, so processes don't tick in lockstep.
    fn interval(&mut self) -> Duration {
        let base = self.tick_interval;
        let j = self.shared.config.jitter.clamp(0.0, 0.9);
        let factor = 1.0 + j * (self.rng.random::<f64>() * 2.0 - 1.0);
        base.mul_f64(factor)
    }

    /// True when the `break-fencing` sabotage is on (never in production
    /// builds: the feature is off unless a test turns it on).
    fn fencing_broken(&self) -> bool {
        #[cfg(feature = "break-fencing")]
        return self.shared.config.break_fencing;
        #[cfg(not(feature = "break-fencing"))]
        false
    }

    fn leads(&self) -> bool {
        if self.fencing_broken() {
            return true;
        }
        let l = *self.leadership.borrow();
        l.is_me && l.term == self.term
    }

    async fn tick(&mut self) -> Next {
        if !self.leads() {
            return Next::Exit("not leader in my term");
        }
        let fid = self.fid;
        let record = match self
            .shared
            .node
            .read(self.group, Consistency::Stale, |s| s.process(&fid).cloned())
            .await
        {
            Ok(Some(r)) => r,
            Ok(None) => return Next::Exit("process deleted"),
            Err(e) => return Next::Backoff(format!("reading the log: {e}")),
        };
        self.tick_interval = tick_interval_of(&record, self.shared.config.tick_interval);
        if record.state == ProcessState::Killed {
            return Next::Exit("process killed");
        }
        let desired = match (self.shared.decoder)(&record.composition, fid) {
            Ok(d) => d,
            Err(e) => {
                let msg = format!("cannot decode the process's composition: {e}");
                tracing::error!(%fid, %msg);
                if let Some(job) = record.busy_job() {
                    let _ = self
                        .commit(vec![Command::JobFinished {
                            fid,
                            job,
                            status: canon_model::JobStatus::Failed,
                            message: msg,
                        }])
                        .await;
                }
                return Next::Sleep;
            }
        };
        if record.state == ProcessState::Suspended {
            return self.settle(&record, &desired, &ObservedState::new()).await;
        }
        let observed = match self.observe(&record, &desired).await {
            Ok(o) => o,
            Err(e) => return Next::Backoff(e),
        };
        self.settle(&record, &desired, &observed).await
    }

    /// Observes every region the process declares. One region (the usual
    /// case) shares the observer's snapshot; several are merged.
    async fn observe(
        &mut self,
        record: &ProcessRecord,
        desired: &DesiredState,
    ) -> Result<Arc<ObservedState>, String> {
        let mut regions: Vec<Region> = desired
            .resources
            .values()
            .map(|r| r.region.clone())
            .collect();
        regions.sort();
        regions.dedup();
        let window = self.tick_interval;
        let not_before = self.fresh_after.max(
            Instant::now()
                .checked_sub(window)
                .unwrap_or(self.fresh_after),
        );
        let mut snapshots = Vec::with_capacity(regions.len());
        for region in regions {
            let scope = Scope {
                account: record.account.clone(),
                region,
            };
            let o = self
                .shared
                .observer
                .observe(&scope, not_before)
                .await
                .map_err(|e| format!("observing {scope}: {e}"))?;
            snapshots.push(o.state);
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
    ) -> Next {
        let now = self.shared.clock.now_ms();
        match reconcile(record, desired, observed, now, self.ticks) {
            Decision::Sleep { commit, why } => {
                tracing::debug!(fid = %self.fid, %why, "sleeping");
                match self.commit(commit).await {
                    Ok(()) => {
                        self.ticks.unflushed_ticks = 0;
                        Next::Sleep
                    }
                    Err(h) => self.halted(h),
                }
            }
            Decision::Steady { commit, flushed } => match self.commit(commit).await {
                Ok(()) => {
                    if flushed {
                        self.ticks.unflushed_ticks = 0;
                        self.ticks.last_flush = now;
                    } else {
                        self.ticks.unflushed_ticks += 1;
                    }
                    self.backoff.reset();
                    self.shared.stats.quiet_tick();
                    Next::Interval
                }
                Err(h) => self.halted(h),
            },
            Decision::Act {
                before,
                plan,
                job,
                after,
                drift,
            } => {
                let opened: Vec<Command> = before
                    .iter()
                    .filter(|c| matches!(c, Command::DriftOpened { .. }))
                    .cloned()
                    .collect();
                if let Err(h) = self.commit(before).await {
                    return self.halted(h);
                }
                self.ticks.unflushed_ticks = 0;
                self.ticks.last_flush = now;
                self.alert(record, &opened, now, None);
                self.shared.stats.drift(drift.len());
                let mut bindings = bindings_of(record);
                for (l, c) in &plan.adoptions {
                    bindings.bind(*l, c.clone());
                }
                let outcome = self
                    .execute(record, job, &plan.requests, &mut bindings)
                    .await;
                match outcome {
                    Ok(()) => {}
                    Err(next) => return next,
                }
                if let Err(h) = self.commit(after).await {
                    return self.halted(h);
                }
                let healed_at = self.shared.clock.now_ms();
                self.alert(record, &opened, now, Some(healed_at));
                self.backoff.reset();
                Next::Soon
            }
        }
    }

    /// Executes `requests` in order for `job`, recording bindings as
    /// resources appear and disappear.
    async fn execute(
        &mut self,
        record: &ProcessRecord,
        job: u64,
        requests: &[CloudRequest],
        bindings: &mut Bindings,
    ) -> Result<(), Next> {
        let fid = self.fid;
        let ctx = ExecContext::new(
            record.account.clone(),
            format!("{fid}.{job}"),
            self.shared.config.node_id,
            self.term,
        );
        for request in requests {
            // Act only while still leader in our term, and only on a fence
            // young enough that no other leader can have been elected since.
            if !self.leads() {
                return Err(Next::Exit("lost leadership before executing"));
            }
            if self.fenced_at.elapsed() > self.shared.config.fence_lease && !self.fencing_broken() {
                let refresh = Command::JobProgressed {
                    fid,
                    job,
                    ticks: 0,
                    message: None,
                };
                if let Err(h) = self.commit(vec![refresh]).await {
                    return Err(self.halted(h));
                }
            }
            let resolved = match request.resolve(|l| bindings.cloud_id(l).map(str::to_string)) {
                Ok(r) => r,
                Err(e) => return Err(Next::Backoff(format!("plan out of date: {e}"))),
            };
            let scope = Scope {
                account: record.account.clone(),
                region: resolved.region.clone(),
            };
            let turn = self.shared.fair.turn(&scope).await;
            if !self.leads() {
                return Err(Next::Exit("lost leadership while waiting for a turn"));
            }
            self.fresh_after = Instant::now();
            let result = self.shared.observer.cloud().execute(&resolved, &ctx).await;
            drop(turn);
            self.fresh_after = Instant::now();
            match result {
                Ok(outcome) => {
                    let mut writes = Vec::new();
                    if let (Some(kind), Some(id)) =
                        (resolved.action.creates(), outcome.cloud_id.as_ref())
                    {
                        bindings.bind(request.target, id.clone());
                        writes.push(Command::BindingSet {
                            resource: request.target,
                            kind,
                            cloud_id: id.clone(),
                        });
                    }
                    if let Some(gone) = resolved.action.deletes().and_then(|r| r.id()) {
                        if bindings.cloud_id(&request.target) == Some(gone) {
                            bindings.unbind(&request.target);
                            writes.push(Command::BindingCleared {
                                resource: request.target,
                            });
                        }
                    }
                    self.shared.stats.executed();
                    if let Err(h) = self.commit(writes).await {
                        return Err(self.halted(h));
                    }
                }
                Err(e) if e.class == ErrorClass::AlreadyDone => {}
                Err(e) if e.class == ErrorClass::Retryable => {
                    return Err(Next::Backoff(format!(
                        "{} failed: {e}",
                        request.request_type()
                    )));
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
                        message,
                    };
                    return Err(match self.commit(vec![fail]).await {
                        Ok(()) => Next::Sleep,
                        Err(h) => self.halted(h),
                    });
                }
            }
        }
        Ok(())
    }

    fn halted(&self, h: Halt) -> Next {
        match h {
            Halt::Deposed => Next::Exit("deposed: a fenced write was refused"),
            Halt::Retry(why) => Next::Backoff(why),
        }
    }

    /// Commits `commands` in order, each fenced to the actor's term.
    async fn commit(&mut self, commands: Vec<Command>) -> Result<(), Halt> {
        for command in commands {
            if !self.leads() {
                return Err(Halt::Deposed);
            }
            let sent = Instant::now();
            if self.fencing_broken() {
                let req = Request::new(self.shared.clock.now_ms(), command);
                if let Err(e) = self.shared.node.propose(self.group, req).await {
                    tracing::warn!(fid = %self.fid, "break-fencing: ignoring a failed write: {e}");
                }
                continue;
            }
            let req = Request::fenced(self.term, self.shared.clock.now_ms(), command);
            match self.shared.node.propose(self.group, req).await {
                Ok(Response::Applied) => self.fenced_at = sent,
                Ok(Response::Rejected(Rejection::Fenced { .. })) => return Err(Halt::Deposed),
                Ok(Response::Rejected(r)) => {
                    return Err(Halt::Retry(format!("the log refused a write: {r}")))
                }
                Err(e) => return Err(Halt::Retry(format!("writing to the log: {e}"))),
            }
        }
        Ok(())
    }

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
                });
            }
        }
    }
}
