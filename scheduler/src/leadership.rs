//! Shard leadership → actors.
//!
//! One task per shard watches that shard's leadership. When this node
//! becomes leader in some term, a supervisor for that term starts: it reads
//! the shard's live processes, starts an actor for each, and on every
//! applied change wakes the actors whose process changed (state, composition
//! or command job). When leadership is lost or the term changes, the
//! supervisor's cancellation token fires and every actor of the shard stops
//! at once — not at its next tick.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use canon_model::{Fid, ProcessState};
use canon_raft::{Consistency, GroupId, META_GROUP};
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::actor::{tick_interval_of, ProcessActor, Wake};
use crate::observer::SharedObserver;
use crate::{SchedulerParts, SchedulerStats, Shared};

/// Re-reading the shard after an applied change waits this long to batch
/// bursts of commits.
const DEBOUNCE: Duration = Duration::from_millis(20);

/// The scheduler of one node.
pub struct Scheduler {
    shared: Arc<Shared>,
    cancel: CancellationToken,
    tasks: JoinSet<()>,
}

impl Scheduler {
    /// Starts watching every shard of `parts.node`.
    pub fn start(parts: SchedulerParts) -> Scheduler {
        let shared = Arc::new(Shared {
            observer: SharedObserver::new(parts.cloud),
            fair: crate::fairshare::FairShare::new(parts.config.mutations_per_scope),
            node: parts.node,
            config: parts.config.validated(),
            decoder: parts.decoder,
            clock: parts.clock,
            alerts: parts.alerts,
            stats: Arc::new(SchedulerStats::default()),
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
        let keep = matches!(&current, Some((term, _)) if l.is_me && *term == l.term);
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
}

struct ActorHandle {
    summary: Summary,
    wake: mpsc::Sender<Wake>,
}

/// Runs the actors of one shard for one leadership term.
async fn supervise(shared: Arc<Shared>, group: GroupId, term: u64, cancel: CancellationToken) {
    let (mut metrics, leadership) =
        match (shared.node.metrics(group), shared.node.leadership(group)) {
            (Ok(m), Ok(l)) => (m, l),
            _ => return,
        };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(shared.config.seed ^ group ^ term);
    let mut actors: HashMap<Fid, ActorHandle> = HashMap::new();
    let mut tasks = JoinSet::new();
    let interval = shared.config.tick_interval;
    let mut first_pass = true;
    loop {
        let summaries = shared
            .node
            .read(group, Consistency::Stale, |s| {
                s.processes
                    .values()
                    .map(|p| {
                        (
                            p.fid,
                            Summary {
                                state: p.state,
                                generation: p.generation,
                                busy_job: p.busy_job(),
                                tick: tick_interval_of(p, interval),
                            },
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .await;
        let summaries = match summaries {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(group, error = %e, "cannot read shard; stopping supervisor");
                break;
            }
        };
        let mut seen = std::collections::HashSet::new();
        for (fid, summary) in summaries {
            seen.insert(fid);
            if summary.state == ProcessState::Killed {
                actors.remove(&fid);
                continue;
            }
            match actors.get_mut(&fid) {
                Some(h) if h.summary == summary => {}
                Some(h) => {
                    h.summary = summary;
                    // A full mailbox already holds a wake; dropping this one is fine.
                    let _ = h.wake.try_send(Wake::Changed);
                }
                None => {
                    let (tx, rx) = mpsc::channel(4);
                    let actor = ProcessActor::new(
                        shared.clone(),
                        group,
                        fid,
                        term,
                        cancel.child_token(),
                        rx,
                        leadership.clone(),
                    );
                    // Work waiting on a command starts at once; enforcement
                    // of existing processes spreads over one interval so a
                    // new leader's ten thousand actors don't tick together.
                    let first = if summary.busy_job.is_some()
                        || summary.state == ProcessState::Killing
                        || !first_pass
                    {
                        Duration::ZERO
                    } else {
                        summary.tick.mul_f64(rng.random::<f64>())
                    };
                    shared.stats.actor_started();
                    tasks.spawn(actor.run(first));
                    actors.insert(fid, ActorHandle { summary, wake: tx });
                }
            }
        }
        actors.retain(|fid, _| seen.contains(fid));
        first_pass = false;
        tokio::select! {
            _ = cancel.cancelled() => break,
            changed = metrics.changed() => if changed.is_err() { break },
        }
        tokio::time::sleep(DEBOUNCE).await;
        // Reap finished actors without blocking.
        while tasks.try_join_next().is_some() {}
    }
    cancel.cancel();
    while tasks.join_next().await.is_some() {}
}
