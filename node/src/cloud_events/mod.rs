//! Event-driven drift (`canond --events-queue URL`): the fast path beside
//! the tick. An EventBridge rule sends CloudTrail's record of each
//! mutating EC2 call to an SQS queue (`deploy/aws/events.yaml`); the
//! meta-group leader reads it, finds the process that owns each resource a
//! call names (by its bindings), and proposes a `DriftSuspected` for it in
//! its shard. That wakes the process's actor on its shard leader, which
//! observes afresh and heals at once instead of at its next tick (and
//! looks once more 2 s later if EC2's reads had not caught up).
//!
//! - Canon's own calls are dropped: made under its role session name
//!   ([`cloudtrail::OWN_SESSION_NAME`]) or by one of the ARNs given with
//!   `--events-own-arn`. So are failed calls, reads, and calls on nothing
//!   Canon owns.
//! - Pokes are coalesced: a batch is read, then, after
//!   [`COALESCE`], whatever else has arrived; each process is poked once
//!   per batch (with the earliest event's time), and at most once per
//!   [`POKE_SPACING`]: a poke that comes sooner is held until then, not
//!   dropped (a change right after a heal must not wait for the tick).
//! - Owners are looked up in each shard group's index of bound cloud ids
//!   (kept by the state machine as bindings change), so a batch costs the
//!   ids it names, however many resources Canon manages.
//! - A message is deleted once its pokes are committed (or it needs none);
//!   one whose poke failed comes back after its visibility timeout.
//! - The tick stays the safety net: event delivery is best effort.
//! - Beside the node's own queue, each account in the trust policy may
//!   name one per region (`canon account add … --events-queue`), read the
//!   same way ([`accounts`]).

pub mod accounts;
pub mod cloudtrail;
pub mod source;
mod spacing;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use canon_cloud::SimCloud;

use canon_model::{Fid, UnixMillis};
use canon_raft::shard::group_of_shard;
use canon_raft::{CanonState, Command, Consistency, GroupId, Leadership, RaftNode, Request};
use canon_scheduler::SharedClock;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::sqs::queue::{Queue, Received};
use cloudtrail::ApiCall;
use source::{EventSource, SimFeed};
use spacing::Spacing;

/// How long a batch waits for the events that arrive right after it.
pub const COALESCE: Duration = Duration::from_millis(150);

/// A process is poked at most this often.
pub const POKE_SPACING: Duration = Duration::from_secs(1);

/// The long poll of one receive.
const WAIT: Duration = Duration::from_secs(20);

/// How long a received message stays invisible while its pokes commit.
const VISIBILITY: Duration = Duration::from_secs(30);

/// The pause after a failed receive.
const RECEIVE_AGAIN: Duration = Duration::from_secs(2);

/// The queue the node reads cloud events from, and who the conductor is.
#[derive(Debug, Clone)]
pub struct EventsQueue {
    pub url: String,
    pub client: aws_sdk_sqs::Client,
    /// ARNs whose calls are the conductor's own (beside its role session).
    pub own: Vec<String>,
}

impl EventsQueue {
    /// The queue at `url` through the standard AWS configuration.
    pub async fn from_env(url: &str, own: Vec<String>) -> Result<EventsQueue, String> {
        Ok(EventsQueue {
            url: url.to_string(),
            client: crate::sqs::client_for(url, "events queue").await?,
            own,
        })
    }
}

/// Where a node reads cloud events from.
#[derive(Debug, Clone)]
pub enum EventsFrom {
    /// The SQS queue an EventBridge rule fills (`--events-queue`).
    Queue(EventsQueue),
    /// The simulated cloud's event feed (`canon dev --sim-events`, the
    /// simulations): Canon's own calls come under its role session name.
    Sim(Arc<SimCloud>),
}

/// Starts reading `events` whenever `lead` (the meta group's leadership)
/// says this node leads; ends when the node stops. Each poke is proposed
/// at `clock`'s time: the node's clock (the API's), so that the log keeps
/// one timeline; a simulation's clock in simulations.
pub fn spawn(
    node: RaftNode,
    lead: watch::Receiver<Leadership>,
    events: &EventsFrom,
    clock: SharedClock,
) -> JoinHandle<()> {
    let (source, own): (Box<dyn EventSource>, Vec<String>) = match events {
        EventsFrom::Queue(q) => (
            Box::new(Queue::new(q.client.clone(), q.url.clone())),
            q.own.clone(),
        ),
        EventsFrom::Sim(sim) => (Box::new(SimFeed::open(sim.clone())), Vec::new()),
    };
    let consumer = Consumer {
        node,
        source,
        own,
        spacing: Spacing::default(),
        clock,
    };
    tokio::spawn(consumer.run(lead))
}

/// One process an event batch pokes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Poke {
    group: GroupId,
    fid: Fid,
    /// The earliest event's time.
    at: UnixMillis,
    /// Who made that call.
    by: Option<String>,
}

struct Consumer {
    node: RaftNode,
    source: Box<dyn EventSource>,
    own: Vec<String>,
    /// When each process was last poked, and the pokes held back.
    spacing: Spacing,
    /// The time each poke is proposed at.
    clock: SharedClock,
}

impl Consumer {
    async fn run(mut self, mut lead: watch::Receiver<Leadership>) {
        loop {
            if lead.wait_for(|l| l.is_me).await.is_err() {
                return; // The node stopped.
            }
            tracing::info!(from = %self.source.name(), "leading the meta group: reading cloud events");
            while lead.borrow().is_me {
                self.one_batch().await;
            }
            tracing::info!(from = %self.source.name(), "no longer leading the meta group: stopped reading cloud events");
        }
    }

    /// Receives a batch (and what follows it within [`COALESCE`]), pokes
    /// the processes it names, deletes what is done.
    async fn one_batch(&mut self) {
        let mut batch = match self.source.receive(10, self.wait(), VISIBILITY).await {
            Ok(b) if b.is_empty() => {
                self.poke(std::iter::empty()).await;
                return;
            }
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "receiving cloud events failed");
                tokio::time::sleep(RECEIVE_AGAIN).await;
                return;
            }
        };
        tokio::time::sleep(COALESCE).await;
        if let Ok(more) = self.source.receive(10, Duration::ZERO, VISIBILITY).await {
            batch.extend(more);
        }
        let calls: Vec<(Received, Option<ApiCall>)> = batch
            .into_iter()
            .map(|m| {
                let call = self.worth_a_look(&m);
                (m, call)
            })
            .collect();
        let ids: BTreeSet<&str> = calls
            .iter()
            .filter_map(|(_, c)| c.as_ref())
            .flat_map(|c| c.ids.iter().map(String::as_str))
            .collect();
        let owners = match self.owners(&ids).await {
            Ok(o) => o,
            Err(e) => {
                // Left for their next delivery.
                tracing::warn!(error = %e, "cannot read which processes own the resources events name");
                return;
            }
        };
        let pokes = pokes_of(&calls, &owners);
        let failed = self.poke(pokes.values()).await;
        for (m, call) in &calls {
            let mine = call
                .as_ref()
                .map_or(BTreeSet::new(), |c| fids_of(c, &owners));
            if mine.iter().any(|f| failed.contains(f)) {
                continue; // Comes back after its visibility timeout.
            }
            if let Err(e) = self.source.delete(&m.receipt).await {
                tracing::warn!(error = %e, "cannot delete a cloud event");
            }
        }
    }

    /// The call a message reports, if it may have drifted something.
    fn worth_a_look(&self, m: &Received) -> Option<ApiCall> {
        match ApiCall::parse(&m.body) {
            Ok(call) if call.may_drift() && !call.is_own(&self.own) => Some(call),
            Ok(call) => {
                tracing::debug!(event = %call.name, "cloud event needs no look (own, failed or a read)");
                None
            }
            Err(e) => {
                tracing::warn!(message = %m.message_id, error = %e, "not a CloudTrail event: dropped");
                None
            }
        }
    }

    /// Which live process binds each of `ids`: a look-up per id in each
    /// shard group's index of bound cloud ids ([`CanonState::owners_of`]),
    /// so a batch costs the ids it names, not the bindings there are.
    async fn owners(
        &self,
        ids: &BTreeSet<&str>,
    ) -> Result<BTreeMap<String, (GroupId, Fid)>, canon_raft::NodeError> {
        let mut out = BTreeMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        for group in (0..self.node.shard_count()).map(group_of_shard) {
            let found = self
                .node
                .read(group, Consistency::Stale, |s| owners_in(s, ids))
                .await?;
            out.extend(found.into_iter().map(|(id, fid)| (id, (group, fid))));
        }
        Ok(out)
    }

    /// How long a receive may wait: the long poll, or less when a held
    /// poke falls due sooner (in whole seconds, as SQS waits).
    fn wait(&self) -> Duration {
        self.spacing.next_due().map_or(WAIT, |due| {
            let left = due.saturating_duration_since(Instant::now());
            Duration::from_secs(left.as_secs() + u64::from(left.subsec_nanos() > 0)).min(WAIT)
        })
    }

    /// Proposes each poke of `pokes` not made within [`POKE_SPACING`] (the
    /// others are held until then) and each held poke now due; returns
    /// the processes whose poke of this batch failed (their messages come
    /// back). A held poke that fails is held again: its message is gone.
    async fn poke(&mut self, pokes: impl Iterator<Item = &Poke>) -> BTreeSet<Fid> {
        let mut failed = BTreeSet::new();
        let now = Instant::now();
        let batch: Vec<Poke> = pokes.cloned().collect();
        let fresh: BTreeSet<Fid> = batch.iter().map(|p| p.fid).collect();
        for p in self.spacing.admit(batch, now) {
            let command = Command::DriftSuspected {
                fid: p.fid,
                event_at: p.at,
                by: p.by.clone(),
            };
            match self
                .node
                .propose(p.group, Request::new(self.clock.now_ms(), command))
                .await
            {
                Ok(_) => {
                    tracing::info!(fid = %p.fid, event_at = p.at, "cloud event: the process looks now");
                    self.spacing.poked(p.fid, now);
                }
                Err(e) => {
                    tracing::warn!(fid = %p.fid, error = %e, "cannot poke the process a cloud event names");
                    if fresh.contains(&p.fid) {
                        failed.insert(p.fid);
                    } else {
                        self.spacing.retry(p);
                    }
                }
            }
        }
        failed
    }
}

/// The live process of one shard group's state that binds each of `ids`
/// (the first, should two claim one).
fn owners_in(state: &CanonState, ids: &BTreeSet<&str>) -> Vec<(String, Fid)> {
    ids.iter()
        .filter_map(|id| {
            let fid = state.owners_of(id).into_iter().next()?;
            Some((id.to_string(), fid))
        })
        .collect()
}

/// The processes `call` names.
fn fids_of(call: &ApiCall, owners: &BTreeMap<String, (GroupId, Fid)>) -> BTreeSet<Fid> {
    call.ids
        .iter()
        .filter_map(|id| owners.get(id).map(|(_, f)| *f))
        .collect()
}

/// One poke per process the calls name, with the earliest call's time.
fn pokes_of(
    calls: &[(Received, Option<ApiCall>)],
    owners: &BTreeMap<String, (GroupId, Fid)>,
) -> BTreeMap<Fid, Poke> {
    let mut pokes: BTreeMap<Fid, Poke> = BTreeMap::new();
    for call in calls.iter().filter_map(|(_, c)| c.as_ref()) {
        for id in &call.ids {
            let Some((group, fid)) = owners.get(id) else {
                continue;
            };
            let poke = Poke {
                group: *group,
                fid: *fid,
                at: call.at,
                by: call.caller.clone(),
            };
            pokes
                .entry(*fid)
                .and_modify(|p| {
                    if poke.at < p.at {
                        *p = poke.clone();
                    }
                })
                .or_insert(poke);
        }
    }
    pokes
}
