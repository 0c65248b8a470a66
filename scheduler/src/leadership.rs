//! Shard leadership → actors.
//!
//! One task per shard watches that shard's leadership. When this node
//! becomes leader in some term, a supervisor for that term starts: it reads
//! the shard's live processes, starts an actor for each, then follows the
//! shard's applied-change notices (`RaftNode::subscribe_applied`), re-reads
//! only the processes an entry touched, and wakes the actors whose process
//! changed (state, composition, tick interval or command job), and those
//! whose resources a new shared observation shows changed
//! ([`crate::observer::ObservedNews`]). When the term changes, the
//! supervisor's cancellation token fires and every actor of the shard stops
//! at once — not at its next tick. A lapse of the leader's lease within its
//! term (late acknowledgements on a loaded machine) only pauses the actors:
//! each waits until the node leads in its term again (`Fence::until_leads`).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use canon_model::{Fid, ProcessProperties, ProcessState};
use canon_raft::state::ProcessRecord;
use canon_raft::{Applied, Consistency, GroupId, Leadership, NodeError, META_GROUP};
use rand::{Rng, SeedableRng};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::actor::{tick_interval_of, ProcessActor, Wake};
use crate::led_here::{bound_ids, BoundIds};
use crate::observer::{ObservedNews, SharedObserver};
use crate::{SchedulerParts, SchedulerStats, Shared};

/// After an applied-change notice the supervisor waits this long to gather
/// the burst of notices that usually follows.
const DEBOUNCE: Duration = Duration::from_millis(20);

/// How long a supervisor that could not read its shard waits before it
/// reads it again.
const SHARD_READ_RETRY: Duration = Duration::from_secs(1);

/// The scheduler of one node.
pub struct Scheduler {
    shared: Arc<Shared>,
    cancel: CancellationToken,
    tasks: JoinSet<()>,
}

impl Scheduler {
    /// Starts watching every shard of `parts.node`.
    pub fn start(parts: SchedulerParts) -> Scheduler {
        let stats = Arc::new(SchedulerStats::default());
        let shared = Arc::new(Shared {
            observer: SharedObserver::new(parts.cloud, stats.clone()),
            fair: crate::fairshare::FairShare::new(parts.config.mutations_per_scope),
            node: parts.node,
            config: parts.config.validated(),
            decoder: parts.decoder,
            labeller: parts.labeller,
            clock: parts.clock,
            alerts: parts.alerts,
            stats,
        });
        let cancel = CancellationToken::new();
        let mut tasks = JoinSet::new();
        for group in shared.node.groups() {
            if group == META_GROUP {
                continue;
            }
            tasks.spawn(watch_shard(shared.clone(), group, cancel.child_token()));
        }
        Scheduler {
            shared,
            cancel,
            tasks,
        }
    }

    pub fn stats(&self) -> Arc<SchedulerStats> {
        self.shared.stats.clone()
    }

    /// Stops every actor and watcher and waits for them.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Follows one shard's leadership for the node's lifetime.
async fn watch_shard(shared: Arc<Shared>, group: GroupId, cancel: CancellationToken) {
    let mut rx = match shared.node.leadership(group) {
        Ok(rx) => rx,
        Err(e) => {
            tracing::error!(group, error = %e, "cannot watch shard leadership");
            return;
        }
    };
    let mut current: Option<(u64, CancellationToken)> = None;
    let mut supervisors = JoinSet::new();
    loop {
        let l = *rx.borrow_and_update();
        // Same term: keep the supervisor even while the lease lapses (a
        // loaded machine's late acknowledgements: `is_me` false, then true
        // again, in one term). Its actors wait it out (`Fence::until_leads`)
        // and act on nothing meanwhile; restarting every actor of the shard
        // at each lapse would only add load. A leader never loses its term
        // but to a newer one, which stops them.
        let keep = matches!(&current, Some((term, _)) if *term == l.term);
        if !keep {
            if let Some((term, token)) = current.take() {
                tracing::info!(group, term, "lost shard leadership; stopping its actors");
                token.cancel();
            }
            if l.is_me {
                tracing::info!(group, term = l.term, "leading shard; starting its actors");
                let token = cancel.child_token();
                supervisors.spawn(supervise(shared.clone(), group, l.term, token.clone()));
                current = Some((l.term, token));
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            changed = rx.changed() => if changed.is_err() { break },
            Some(_) = supervisors.join_next(), if !supervisors.is_empty() => {}
        }
    }
    if let Some((_, token)) = current {
        token.cancel();
    }
    while supervisors.join_next().await.is_some() {}
}

/// What wakes an actor: a change in these means the process changed
/// outside the actor (a command arrived) — not the actor's own bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Summary {
    state: ProcessState,
    generation: u64,
    busy_job: Option<u64>,
    /// The process's tick interval (its own, else the node's).
    tick: Duration,
    /// Enforcement and lock: turning enforcement on heals at once.
    properties: ProcessProperties,
    /// A cloud event named one of its resources: look at once.
    suspected: Option<canon_model::UnixMillis>,
}

impl Summary {
    /// Whether `new` is news to an actor that knew `self`. The actor's own
    /// bookkeeping is not: a suspicion dropped (its `SuspicionCleared`, or
    /// the `DriftOpened` its look found) or its busy job finished (its
    /// `JobFinished`; a command that ends a job early changes the state or
    /// the generation too). Waking it for those would cost a pass, and a
    /// fresh look, for nothing: the actor chose its next tick already.
    fn is_news(&self, new: &Summary) -> bool {
        let own_bookkeeping = Summary {
            suspected: new.suspected.or(self.suspected),
            busy_job: new.busy_job.or(self.busy_job),
            ..*new
        } == *self;
        self != new && !own_bookkeeping
    }
}

struct ActorHandle {
    summary: Summary,
    wake: mpsc::Sender<Wake>,
}

/// What the supervisor must re-read before it waits again.
#[derive(Default)]
struct Pending {
    /// Everything (the first pass, a snapshot install, missed notices).
    everything: bool,
    /// Processes touched by applied entries.
    fids: BTreeSet<Fid>,
    /// The notice channel is gone (the node is stopping).
    closed: bool,
}

impl Pending {
    fn add(&mut self, notice: Result<Applied, broadcast::error::RecvError>) {
        match notice {
            Ok(Applied::Processes { fids, .. }) => self.fids.extend(fids),
            Ok(Applied::Cluster { .. }) => {}
            Ok(Applied::Reset { .. }) | Err(broadcast::error::RecvError::Lagged(_)) => {
                self.everything = true
            }
            Err(broadcast::error::RecvError::Closed) => self.closed = true,
        }
    }

    fn is_empty(&self) -> bool {
        !self.everything && self.fids.is_empty()
    }
}

/// The actors of one shard in one term.
struct ShardActors {
    shared: Arc<Shared>,
    group: GroupId,
    term: u64,
    cancel: CancellationToken,
    leadership: watch::Receiver<Leadership>,
    rng: rand_chacha::ChaCha8Rng,
    actors: HashMap<Fid, ActorHandle>,
    tasks: JoinSet<()>,
}

impl ShardActors {
    /// Re-reads what `pending` names and starts, wakes or forgets actors.
    /// `first_pass`: the term's first read, whose enforcement ticks are
    /// spread over one interval.
    async fn refresh(&mut self, pending: Pending, first_pass: bool) -> Result<(), NodeError> {
        let interval = self.shared.config.tick_interval;
        let summary = move |p: &ProcessRecord| Summary {
            state: p.state,
            generation: p.generation,
            busy_job: p.busy_job(),
            tick: tick_interval_of(p, interval),
            properties: p.properties,
            suspected: p.suspected,
        };
        // Each live process's summary, and the ids it has bound (what
        // this node's observations keep for it besides what it owns).
        let read_one = move |p: &ProcessRecord| {
            let bound = bound_ids(p.bindings.values().map(|b| b.cloud_id.as_str()));
            (summary(p), bound)
        };
        let read: Vec<(Fid, Option<(Summary, BoundIds)>)> = if pending.everything {
            let all = self
                .shared
                .node
                .read(self.group, Consistency::Stale, move |s| {
                    s.processes
                        .values()
                        .map(|p| (p.fid, Some(read_one(p))))
                        .collect::<Vec<_>>()
                })
                .await?;
            let listed: HashSet<Fid> = all.iter().map(|(fid, _)| *fid).collect();
            self.actors.retain(|fid, _| listed.contains(fid));
            all
        } else {
            let fids = pending.fids;
            self.shared
                .node
                .read(self.group, Consistency::Stale, move |s| {
                    fids.iter()
                        .map(|fid| (*fid, s.process(fid).map(read_one)))
                        .collect::<Vec<_>>()
                })
                .await?
        };
        for (fid, read) in read {
            let Some((summary, bound)) = read.filter(|(s, _)| s.state.is_live()) else {
                // Deleted, Killed or Released: dropping the handle closes
                // the mailbox.
                self.actors.remove(&fid);
                continue;
            };
            match self.actors.get_mut(&fid) {
                Some(h) => {
                    let news = h.summary.is_news(&summary);
                    h.summary = summary;
                    if news {
                        // A full mailbox already holds a wake that is not
                        // an observation's (`wake_observed` leaves it the
                        // last place): dropping this one is fine.
                        let _ = h.wake.try_send(Wake::Changed);
                    }
                }
                None => self.start(fid, summary, first_pass),
            }
            self.shared.observer.led_here().set_bound(fid, bound);
        }
        Ok(())
    }

    /// Wakes the actors of the processes `news` names, if they are here.
    /// An observation's wake never takes a mailbox's last place, which is
    /// kept for a change in the log (an actor may ignore an observation's
    /// wake; it must not miss a command's).
    fn wake_observed(&self, news: &ObservedNews) {
        for fid in news.fids.iter() {
            if let Some(h) = self.actors.get(fid) {
                if h.wake.capacity() > 1 && h.wake.try_send(Wake::Observed(news.started)).is_ok() {
                    self.shared.stats.observed_wake();
                }
            }
        }
    }

    fn start(&mut self, fid: Fid, summary: Summary, first_pass: bool) {
        let (tx, rx) = mpsc::channel(4);
        let actor = ProcessActor::new(
            self.shared.clone(),
            self.group,
            fid,
            self.term,
            self.cancel.child_token(),
            rx,
            self.leadership.clone(),
        );
        // Work waiting on a command starts at once; enforcement of existing
        // processes spreads over one interval so a new leader's ten thousand
        // actors don't tick together.
        let first = if summary.busy_job.is_some()
            || summary.state == ProcessState::Killing
            || !first_pass
        {
            Duration::ZERO
        } else {
            summary.tick.mul_f64(self.rng.random::<f64>())
        };
        self.shared.stats.actor_started();
        self.tasks.spawn(actor.run(first));
        self.actors.insert(fid, ActorHandle { summary, wake: tx });
    }
}

/// Runs the actors of one shard for one leadership term.
///
/// It reads every process of the shard once, then follows the shard's
/// applied-change notices: only the processes a committed entry touched are
/// re-read (a snapshot install, or falling behind the notice channel, means
/// re-reading everything).
async fn supervise(shared: Arc<Shared>, group: GroupId, term: u64, cancel: CancellationToken) {
    // Subscribe before the first read, so nothing applied after it is missed.
    let mut observed = shared.observer.news();
    let mut observed_open = true;
    let (mut applied, leadership) = match (
        shared.node.subscribe_applied(group),
        shared.node.leadership(group),
    ) {
        (Ok(a), Ok(l)) => (a, l),
        _ => return,
    };
    let mut actors = ShardActors {
        rng: rand_chacha::ChaCha8Rng::seed_from_u64(shared.config.seed ^ group ^ term),
        shared,
        group,
        term,
        cancel: cancel.clone(),
        leadership,
        actors: HashMap::new(),
        tasks: JoinSet::new(),
    };
    let mut pending = Pending {
        everything: true,
        ..Pending::default()
    };
    let mut first_pass = true;
    loop {
        if !pending.is_empty() {
            if let Err(e) = actors
                .refresh(std::mem::take(&mut pending), first_pass)
                .await
            {
                // Not the end of the shard's enforcement: nothing would
                // start another supervisor while this node leads the term.
                // What this read would have named is lost: read it all.
                tracing::warn!(group, error = %e, "cannot read shard; reading it again shortly");
                pending.everything = true;
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(SHARD_READ_RETRY) => continue,
                }
            }
            first_pass = false;
        }
        // Wait for the next change, then gather the burst that follows it.
        tokio::select! {
            _ = cancel.cancelled() => break,
            notice = applied.recv() => pending.add(notice),
            news = observed.recv(), if observed_open => {
                match news {
                    Ok(news) => actors.wake_observed(&news),
                    // Missed announcements: those actors find the changes
                    // at their next tick.
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => observed_open = false,
                }
                continue;
            }
        }
        tokio::time::sleep(DEBOUNCE).await;
        loop {
            match applied.try_recv() {
                Ok(n) => pending.add(Ok(n)),
                Err(broadcast::error::TryRecvError::Empty) => break,
                Err(broadcast::error::TryRecvError::Lagged(n)) => {
                    pending.add(Err(broadcast::error::RecvError::Lagged(n)))
                }
                Err(broadcast::error::TryRecvError::Closed) => {
                    pending.add(Err(broadcast::error::RecvError::Closed));
                    break;
                }
            }
        }
        if pending.closed {
            break;
        }
        // Reap finished actors without blocking.
        while actors.tasks.try_join_next().is_some() {}
    }
    cancel.cancel();
    while actors.tasks.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(suspected: Option<canon_model::UnixMillis>) -> Summary {
        Summary {
            state: ProcessState::Running,
            generation: 1,
            busy_job: None,
            tick: Duration::from_secs(30),
            properties: ProcessProperties::default(),
            suspected,
        }
    }

    #[test]
    fn a_suspicion_wakes_the_actor_and_its_dropping_does_not() {
        let quiet = summary(None);
        let poked = summary(Some(5));
        assert!(quiet.is_news(&poked), "an event's poke");
        assert!(poked.is_news(&summary(Some(9))), "a later event's poke");
        assert!(!poked.is_news(&quiet), "the actor's own settling");
        assert!(!quiet.is_news(&quiet));
        // Dropped beside a change that is news: still news.
        let updated = Summary {
            generation: 2,
            ..quiet
        };
        assert!(poked.is_news(&updated), "an update");
    }

    #[test]
    fn a_job_started_wakes_the_actor_and_its_finishing_does_not() {
        let idle = summary(None);
        let busy = Summary {
            busy_job: Some(3),
            ..idle
        };
        assert!(idle.is_news(&busy), "a RUN or UPDATE job proposed");
        assert!(!busy.is_news(&idle), "the actor's own JobFinished");
        let next = Summary {
            busy_job: Some(4),
            ..idle
        };
        assert!(busy.is_news(&next), "another job in its place");
        let killed = Summary {
            state: ProcessState::Killing,
            ..idle
        };
        assert!(busy.is_news(&killed), "a kill that ended the job");
        let finished_and_dropped = Summary {
            suspected: None,
            ..idle
        };
        let poked_busy = Summary {
            suspected: Some(5),
            ..busy
        };
        assert!(
            !poked_busy.is_news(&finished_and_dropped),
            "both the actor's"
        );
    }
}
