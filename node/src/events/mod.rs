//! The event stream (`Canon.Events`): what changed, as it changes. The
//! node's [`journal`] turns each applied entry into events (a new process
//! state, a job started or finished, drift opened or healed: [`diff`]) and
//! numbers them by the entry's Raft index; a subscription follows the
//! journal from now, or resumes after a [`Cursor`] it was given (the
//! position every event carries), replaying what it missed while the
//! journal still holds it. When it does not, the stream starts with an
//! `events.gap` event: re-read the state, the events after it follow.
//!
//! A user's subscription carries only the processes they may
//! `process.status`, decided against the policy as this node has applied
//! it when each event is sent: a permission taken away stops the events
//! that follow, without a reconnect ([`Viewer`]).
//!
//! A subscriber never slows the node: events wait in a bounded buffer, and
//! when the client reads too slowly the overflow is dropped and counted,
//! then announced as one `events.lost` event with the next event that
//! fits.

mod diff;
mod journal;

use std::collections::BTreeSet;
use std::sync::Arc;

use canon_proto::canon::api::v1 as pb;
use canon_raft::{
    authorise, group_of_alias, shard::group_of_shard, Consistency, GroupId, NodeError, Principal,
    RaftNode, META_GROUP,
};
use canon_trust::{AccessRequest, Action, PolicyDocument};
use tokio::sync::{broadcast, mpsc};

pub use journal::{Cursor, Entry, EventJournal, JOURNAL_EVENTS};

/// Events a subscriber may have waiting before newer ones are dropped.
pub const BUFFER: usize = 256;

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

    /// Whether the viewer may see the process `alias` in `account`.
    fn sees(&self, account: &str, alias: &str) -> bool {
        let Viewer::User(by) = &self.viewer else {
            return true;
        };
        let Some((_, doc)) = &self.policy else {
            return false;
        };
        let request = AccessRequest {
            action: Action::ProcessStatus,
            account: Some(account),
            alias: Some(alias),
        };
        authorise(doc, by, &request).is_ok()
    }
}

/// A subscriber that has subscribed and knows where it starts: every
/// event after its position becomes a message.
pub struct Subscription {
    node: RaftNode,
    alias: String,
    sight: Sight,
    groups: BTreeSet<GroupId>,
    /// A position was asked for and the journal no longer reaches it.
    gap: bool,
    replay: Vec<Arc<Entry>>,
    live: broadcast::Receiver<Arc<Entry>>,
    position: Cursor,
}

impl Subscription {
    /// Subscribes `viewer` to the groups `alias` lives in (every shard if
    /// empty), from `after` if the journal still reaches it, else from
    /// now.
    pub async fn open(
        node: RaftNode,
        journal: &Arc<EventJournal>,
        alias: String,
        viewer: Viewer,
        after: Option<Cursor>,
    ) -> Result<Subscription, NodeError> {
        journal.start(&node);
        let shards = node.shard_count();
        let groups: BTreeSet<GroupId> = if alias.is_empty() {
            (0..shards).map(group_of_shard).collect()
        } else {
            BTreeSet::from([group_of_alias(&alias, shards)])
        };
        let mut sight = Sight {
            viewer,
            policy: None,
        };
        sight.refresh(&node).await?;
        let follow = journal.follow(&groups, after.as_ref());
        Ok(Subscription {
            node,
            alias,
            sight,
            groups,
            gap: after.is_some() && !follow.resumed,
            replay: follow.replay,
            live: follow.live,
            position: follow.position,
        })
    }

    /// The `events.gap` message a resumed stream starts with when the
    /// journal no longer reached its position.
    fn gap_event(&self) -> pb::Event {
        pb::Event {
            at_ms: crate::now_ms(),
            kind: "events.gap".to_string(),
            cursor: self.position.to_string(),
            ..pb::Event::default()
        }
    }

    /// The message for `e`, if this subscriber is to see it (its process,
    /// and allowed by the policy as applied now); moves the position past
    /// it either way.
    async fn message(&mut self, e: &Entry) -> Result<Option<pb::Event>, NodeError> {
        if !self.groups.contains(&e.group) || !self.position.precedes(e) {
            return Ok(None);
        }
        self.position.deliver(e);
        let event = &e.noted.event;
        if !self.alias.is_empty() && event.alias != self.alias {
            return Ok(None);
        }
        self.sight.refresh(&self.node).await?;
        if !self.sight.sees(&e.noted.account, &event.alias) {
            return Ok(None);
        }
        Ok(Some(pb::Event {
            cursor: self.position.to_string(),
            ..event.clone()
        }))
    }

    /// Streams events into `tx` until the client hangs up or the node
    /// stops.
    pub async fn run(mut self, tx: mpsc::Sender<Result<pb::Event, tonic::Status>>) {
        let mut out = Outbox { tx, lost: 0 };
        if self.gap && !out.push(self.gap_event()) {
            return;
        }
        for e in std::mem::take(&mut self.replay) {
            if !self.send(&mut out, &e).await {
                return;
            }
        }
        loop {
            let got = tokio::select! {
                got = self.live.recv() => got,
                _ = out.tx.closed() => return,
            };
            let e = match got {
                Ok(e) => e,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    // Fell behind the journal: those are lost to this
                    // stream (announced with the next event that fits).
                    out.lost += n;
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if !self.send(&mut out, &e).await {
                return;
            }
        }
    }

    /// Sends `e` if this subscriber is to see it. False once the client
    /// has gone or the node stops.
    async fn send(&mut self, out: &mut Outbox, e: &Entry) -> bool {
        match self.message(e).await {
            Ok(Some(m)) => out.push(m),
            Ok(None) => true,
            Err(_) => false,
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
