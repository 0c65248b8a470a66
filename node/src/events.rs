//! The event stream (`Canon.Events`): what changed, as it changes. Each
//! subscriber listens to the applied-change notices of the groups it follows
//! (raft announces which processes each applied entry touched), reads only
//! those processes from this node's replica and reports the differences
//! from what it saw before; quiet enforcement passes are not events.
//!
//! A user's subscription carries only the processes they may
//! `process.status`, decided against the policy as this node has applied
//! it when each change arrives: a permission taken away stops the events
//! that follow, without a reconnect ([`Viewer`]).
//!
//! A subscriber never slows the node: notices are consumed as they come,
//! events wait in a bounded buffer, and when the client reads too slowly
//! the overflow is dropped and counted, then announced as one `events.lost`
//! event with the next event that fits.

use std::collections::{BTreeMap, BTreeSet};

use canon_model::{Fid, JobStatus, ProcessState};
use canon_proto::canon::api::v1 as pb;
use canon_raft::state::ProcessRecord;
use canon_raft::{
    authorise, group_of_alias, shard::group_of_shard, Applied, CanonState, Consistency, GroupId,
    NodeError, Principal, RaftNode, META_GROUP,
};
use canon_trust::{AccessRequest, Action, PolicyDocument};
use tokio::sync::{broadcast, mpsc};

use crate::views::{drift_view, job_view};

/// Events a subscriber may have waiting before newer ones are dropped.
pub const BUFFER: usize = 256;

/// What a subscriber remembers of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    state: ProcessState,
    jobs: BTreeMap<u64, JobStatus>,
    drift: BTreeMap<u64, bool>,
}

fn seen(p: &ProcessRecord) -> Seen {
    Seen {
        state: p.state,
        jobs: p.jobs.iter().map(|(id, j)| (*id, j.status)).collect(),
        drift: p
            .drift
            .iter()
            .map(|(id, d)| (*id, d.healed_at.is_some()))
            .collect(),
    }
}

/// The events between `before` (None: the process is new) and `p`.
fn diff(before: Option<&Seen>, p: &ProcessRecord, now: u64) -> Vec<pb::Event> {
    let base = |kind: &str| pb::Event {
        at_ms: now,
        kind: kind.to_string(),
        alias: p.alias.clone(),
        fid: p.fid.to_string(),
        job: None,
        drift: None,
        state: String::new(),
        lost: 0,
    };
    let mut out = Vec::new();
    if before.map(|b| b.state) != Some(p.state) {
        out.push(pb::Event {
            state: p.state.to_string(),
            ..base("process.state")
        });
    }
    for (id, j) in &p.jobs {
        let old = before.and_then(|b| b.jobs.get(id));
        if old.is_none() {
            out.push(pb::Event {
                job: Some(job_view(j)),
                ..base("job.started")
            });
        }
        if j.status.is_finished() && old.is_none_or(|s| !s.is_finished()) {
            out.push(pb::Event {
                job: Some(job_view(j)),
                ..base("job.finished")
            });
        }
    }
    for (id, d) in &p.drift {
        let old = before.and_then(|b| b.drift.get(id));
        if old.is_none() {
            out.push(pb::Event {
                drift: Some(drift_view(d)),
                ..base("drift.opened")
            });
        }
        if d.healed_at.is_some() && old != Some(&true) {
            out.push(pb::Event {
                drift: Some(drift_view(d)),
                ..base("drift.healed")
            });
        }
    }
    out
}

/// What a subscriber must re-read of one group.
enum Notice {
    /// These processes changed.
    Changed(BTreeSet<Fid>),
    /// Anything may have changed (a snapshot was installed, or notices were
    /// missed).
    Everything,
}

/// Passes one group's applied-change notices on, until the node stops or
/// the subscriber goes away.
async fn forward(
    group: GroupId,
    mut rx: broadcast::Receiver<Applied>,
    out: mpsc::Sender<(GroupId, Notice)>,
) {
    loop {
        let got = tokio::select! {
            got = rx.recv() => got,
            _ = out.closed() => return,
        };
        let notice = match got {
            Ok(Applied::Processes { fids, .. }) => Notice::Changed(fids),
            Ok(Applied::Cluster { .. }) => continue,
            Ok(Applied::Reset { .. }) | Err(broadcast::error::RecvError::Lagged(_)) => {
                Notice::Everything
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if out.send((group, notice)).await.is_err() {
            return;
        }
    }
}

/// The subscriber's side of the stream: never waits for the client.
struct Outbox {
    tx: mpsc::Sender<Result<pb::Event, tonic::Status>>,
    /// Events dropped since the last `events.lost` notice went out.
    lost: u64,
}

impl Outbox {
    /// Queues `e`, or counts it lost if the client is behind. False once
    /// the client has gone.
    fn push(&mut self, e: pb::Event) -> bool {
        use mpsc::error::TrySendError;
        if self.lost > 0 {
            let notice = pb::Event {
                at_ms: crate::now_ms(),
                kind: "events.lost".to_string(),
                lost: self.lost,
                ..pb::Event::default()
            };
            match self.tx.try_send(Ok(notice)) {
                Ok(()) => self.lost = 0,
                Err(TrySendError::Full(_)) => {
                    self.lost += 1;
                    return true;
                }
                Err(TrySendError::Closed(_)) => return false,
            }
        }
        match self.tx.try_send(Ok(e)) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.lost += 1;
                true
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }
}

/// Whose events a subscription carries.
#[derive(Debug, Clone)]
pub enum Viewer {
    /// Every process's (the root key, or an unsigned read where those pass).
    Anyone,
    /// The processes this user may `process.status`.
    User(Principal),
}

/// A [`Viewer`] with the policy it is judged by, re-read when the meta
/// group's policy version moves.
struct Sight {
    viewer: Viewer,
    /// The policy version and document last read (users only).
    policy: Option<(u64, PolicyDocument)>,
}

impl Sight {
    /// Brings the policy up to this node's applied version.
    async fn refresh(&mut self, node: &RaftNode) -> Result<(), NodeError> {
        if matches!(self.viewer, Viewer::Anyone) {
            return Ok(());
        }
        let known = self.policy.as_ref().map(|(v, _)| *v);
        let fresh = node
            .read(META_GROUP, Consistency::Stale, |s| {
                let p = &s.meta.policy;
                (known != Some(p.version)).then(|| (p.version, p.document.clone()))
            })
            .await?;
        if let Some(policy) = fresh {
            self.policy = Some(policy);
        }
        Ok(())
    }

    /// Whether the viewer may see `p`.
    fn sees(&self, p: &ProcessRecord) -> bool {
        let Viewer::User(by) = &self.viewer else {
            return true;
        };
        let Some((_, doc)) = &self.policy else {
            return false;
        };
        let request = AccessRequest {
            action: Action::ProcessStatus,
            account: Some(&p.account),
            alias: Some(&p.alias),
        };
        authorise(doc, by, &request).is_ok()
    }
}

/// What the subscriber knows: each process it follows, with its group.
type Known = BTreeMap<Fid, (GroupId, Seen)>;

/// Compares `fids` (all of the group's processes if `None`) in `state`
/// with `known`; returns the events and updates `known`.
fn changes(
    state: &CanonState,
    group: GroupId,
    (alias, sight): (&str, &Sight),
    fids: Option<&BTreeSet<Fid>>,
    known: &mut Known,
    report: bool,
) -> Vec<pb::Event> {
    let now = crate::now_ms();
    let wanted = |p: &ProcessRecord| (alias.is_empty() || p.alias == alias) && sight.sees(p);
    let mut events = Vec::new();
    let mut visit = |p: &ProcessRecord, known: &mut Known| {
        if !wanted(p) {
            return;
        }
        if report {
            events.extend(diff(known.get(&p.fid).map(|(_, s)| s), p, now));
        }
        known.insert(p.fid, (group, seen(p)));
    };
    match fids {
        Some(fids) => {
            for fid in fids {
                match state.processes.get(fid) {
                    Some(p) => visit(p, known),
                    None => {
                        known.remove(fid);
                    }
                }
            }
        }
        None => {
            known.retain(|fid, (g, _)| *g != group || state.processes.contains_key(fid));
            for p in state.processes.values() {
                visit(p, known);
            }
        }
    }
    events
}

/// A subscriber that has subscribed and read the state it starts from:
/// every change applied after [`Subscription::open`] returns becomes events.
pub struct Subscription {
    node: RaftNode,
    alias: String,
    sight: Sight,
    incoming: mpsc::Receiver<(GroupId, Notice)>,
    known: Known,
}

impl Subscription {
    /// Subscribes `viewer` to the groups `alias` lives in (every shard if
    /// empty), then reads where they stand.
    pub async fn open(
        node: RaftNode,
        alias: String,
        viewer: Viewer,
    ) -> Result<Subscription, NodeError> {
        let shards = node.shard_count();
        let groups: Vec<GroupId> = if alias.is_empty() {
            (0..shards).map(group_of_shard).collect()
        } else {
            vec![group_of_alias(&alias, shards)]
        };
        // Subscribe first, then read: nothing is missed in between.
        let (notices, incoming) = mpsc::channel(64);
        for g in &groups {
            let rx = node.subscribe_applied(*g)?;
            tokio::spawn(forward(*g, rx, notices.clone()));
        }
        let mut known = Known::new();
        let mut sight = Sight {
            viewer,
            policy: None,
        };
        sight.refresh(&node).await?;
        for g in &groups {
            node.read(*g, Consistency::Stale, |s| {
                changes(s, *g, (&alias, &sight), None, &mut known, false)
            })
            .await?;
        }
        Ok(Subscription {
            node,
            alias,
            sight,
            incoming,
            known,
        })
    }

    /// Streams events into `tx` until the client hangs up or the node
    /// stops.
    pub async fn run(self, tx: mpsc::Sender<Result<pb::Event, tonic::Status>>) {
        let Subscription {
            node,
            alias,
            mut sight,
            mut incoming,
            mut known,
        } = self;
        let mut out = Outbox { tx, lost: 0 };
        loop {
            let (group, notice) = tokio::select! {
                n = incoming.recv() => match n {
                    Some(n) => n,
                    // Every group stopped: the node is stopping.
                    None => return,
                },
                _ = out.tx.closed() => return,
            };
            let fids = match &notice {
                Notice::Changed(fids) => Some(fids),
                Notice::Everything => None,
            };
            if sight.refresh(&node).await.is_err() {
                return;
            }
            let events = node
                .read(group, Consistency::Stale, |s| {
                    changes(s, group, (&alias, &sight), fids, &mut known, true)
                })
                .await;
            let Ok(events) = events else {
                return;
            };
            for e in events {
                if !out.push(e) {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u64) -> pb::Event {
        pb::Event {
            at_ms: n,
            kind: "job.started".into(),
            ..pb::Event::default()
        }
    }

    #[tokio::test]
    async fn a_slow_reader_loses_events_and_is_told_how_many() {
        let (tx, mut rx) = mpsc::channel(2);
        let mut out = Outbox { tx, lost: 0 };
        for n in 0..5 {
            assert!(out.push(event(n)), "the reader is still there");
        }
        let first: Vec<u64> = [rx.recv().await, rx.recv().await]
            .into_iter()
            .map(|e| e.unwrap().unwrap().at_ms)
            .collect();
        assert_eq!(first, [0, 1]);
        assert!(out.push(event(5)));
        let notice = rx.recv().await.unwrap().unwrap();
        assert_eq!((notice.kind.as_str(), notice.lost), ("events.lost", 3));
        assert_eq!(rx.recv().await.unwrap().unwrap().at_ms, 5);
        drop(rx);
        assert!(!out.push(event(6)), "the reader has gone");
    }
}
