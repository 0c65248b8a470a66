//! Quick failover: a follower must not sit out a lease for a leader that
//! is gone.
//!
//! openraft 0.9 makes a follower that knew a live leader honour its lease
//! (`election_max` after the last heartbeat): it refuses every vote until
//! then, and campaigns only an election timeout later. A leader killed
//! outright is thus replaced after about `election_max + (election_min +
//! election_max) / 2`. The lease is what keeps a live leader from being
//! deposed by a follower that merely stopped hearing it; it cannot be
//! configured apart from `election_max`, and openraft has no call to drop
//! it except a node's own election. So this module decides, with a quorum,
//! that the leader is gone, and then has that quorum drop the lease at once:
//!
//! 1. **Suspect.** Every `heartbeat / 2` a follower looks for groups whose
//!    leader has sent nothing (no AppendEntries or snapshot chunk) for
//!    `1.5 × heartbeat`.
//!    It then probes that leader's node (one [`AdminRequest::Ping`]).
//!    Only an *unreachable* answer counts — the connection is refused or
//!    the node says it stopped, as when its process died: a kill -9 closes
//!    its sockets and its port refuses at once. A probe that times out (a
//!    silent partition) proves nothing, and the group keeps the lease.
//! 2. **Ask.** The follower asks the group's other voters (not the leader)
//!    whether they, too, see the leader gone ([`AdminRequest::LeaderGone`]):
//!    each answers from its own silence (a heartbeat's worth) and its own
//!    probe, with its last log index. Unless the asker and the voters that agree make a
//!    majority, nothing happens: a follower cut off from a live leader on
//!    its own never acts, and its peers keep honouring the lease.
//! 3. **Abandon.** Only the agreeing voter with the longest log (lowest id
//!    on a tie) goes on, so that one candidate runs. It asks the others
//!    that agreed to abandon the lease ([`AdminRequest::Abandon`]): each
//!    (still silent) starts an election of its own in the next term, which
//!    is what drops the lease in openraft, and for a lease refuses the
//!    votes of any candidate but the one that asked. Once a majority
//!    (itself included) has abandoned, the candidate starts two elections
//!    back to back: the first moves it to the abandoners' term, the second
//!    past it, where their (uncommitted) votes grant it at once.
//!
//! Raft's own vote rules keep the log safe whatever this module does: it
//! only starts elections. What it must also keep is the leadership lease
//! that gates actors ([`super::lease`]): a leader counts itself leader
//! while a quorum acknowledged it within `election_max`. Had the leader
//! only looked gone, a quorum acknowledged it at the latest when the last
//! of that quorum abandoned, so its lease ends by then plus `election_max`
//! (plus one tick of its watch). Hence every node that abandons holds its
//! own leadership back until `election_max + heartbeat` after abandoning
//! (the candidate counts from when all its abandoners had acknowledged),
//! and refuses other candidates' votes for as long: whoever leads next
//! starts acting only after the old leader surely stopped. Writes do not
//! wait for that hold; actors do.
//!
//! Where the transport cannot tell a dead node from a slow one (a turmoil
//! partition, a lost packet), probes time out and groups fail over on
//! openraft's own timers, as before.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use openraft::ServerState;
use tokio::sync::watch;
use tokio::time::Instant;

use super::wire::{AdminRequest, Done, WireError};
use super::{Group, NodeInner, RaftNode};
use crate::codec;
use crate::ids::{GroupId, NodeId};
use crate::network::{RpcKind, TransportError};
use crate::types::RaftMetrics;

/// What one group keeps for quick failover.
pub(super) struct GroupFailover {
    /// When the last AppendEntries arrived (from any leader).
    last_heard: Mutex<Instant>,
    /// When this node last ran step 2 for the group (one run per
    /// heartbeat).
    last_attempt: Mutex<Option<Instant>>,
    /// The lease this node last abandoned.
    abandoned: Mutex<Option<Abandoned>>,
    /// Until when this node must not count itself leader (read by
    /// [`super::lease`]).
    hold: watch::Sender<Option<Instant>>,
}

/// A lease this node abandoned.
#[derive(Debug, Clone, Copy)]
struct Abandoned {
    /// The only candidate granted votes until `until`.
    candidate: NodeId,
    until: Instant,
}

impl GroupFailover {
    /// A group's record, and the hold its leadership watch must respect.
    pub(super) fn new() -> (GroupFailover, watch::Receiver<Option<Instant>>) {
        let (hold, held) = watch::channel(None);
        let record = GroupFailover {
            last_heard: Mutex::new(Instant::now()),
            last_attempt: Mutex::new(None),
            abandoned: Mutex::new(None),
            hold,
        };
        (record, held)
    }

    /// An AppendEntries arrived.
    pub(super) fn heard(&self) {
        *lock(&self.last_heard) = Instant::now();
    }

    pub(super) fn silent_for(&self) -> Duration {
        lock(&self.last_heard).elapsed()
    }

    /// Whether a vote for `candidate` must wait: this node abandoned a
    /// lease for another candidate less than a lease ago.
    pub(super) fn defers_vote_for(&self, candidate: NodeId) -> bool {
        lock(&self.abandoned).is_some_and(|a| a.candidate != candidate && Instant::now() < a.until)
    }

    /// Records an abandoned lease at `at`: votes go to `candidate` only,
    /// and this node's leadership is held back, until `at + debt`.
    fn abandoned(&self, candidate: NodeId, at: Instant, debt: Duration) {
        let until = at + debt;
        *lock(&self.abandoned) = Some(Abandoned { candidate, until });
        self.hold.send_if_modified(|h| {
            let later = h.is_none_or(|old| old < until);
            if later {
                *h = Some(until);
            }
            later
        });
    }

    /// Whether step 2 may run now (at most once per `every`).
    fn may_attempt(&self, every: Duration) -> bool {
        let mut last = lock(&self.last_attempt);
        if last.is_some_and(|at| at.elapsed() < every) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }
}

/// A poisoned lock only means a panic elsewhere; the value is still good.
/// A mutex's guard, poisoned or not (the node's watches keep plain
/// timestamps: a panic elsewhere leaves nothing half-written).
pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A group's leader as a follower knows it: the leader's id, its term, and
/// the voters (with addresses) of a settled membership.
struct Followed {
    group: GroupId,
    leader: NodeId,
    term: u64,
    voters: BTreeMap<NodeId, String>,
    last_log_index: u64,
}

/// What `m` says of the leader this node follows, if it follows one it
/// has voted for in a settled (not joint) membership that counts it a voter.
fn followed(me: NodeId, group: GroupId, m: &RaftMetrics) -> Option<Followed> {
    if m.state != ServerState::Follower || !m.vote.is_committed() {
        return None;
    }
    let leader = m.vote.leader_id().voted_for()?;
    let membership = m.membership_config.membership();
    if leader == me || membership.get_joint_config().len() != 1 {
        return None;
    }
    let voters: BTreeMap<NodeId, String> = membership
        .voter_ids()
        .map(|id| {
            let addr = membership.get_node(&id).map(|n| n.addr.clone());
            (id, addr.unwrap_or_default())
        })
        .collect();
    if !voters.contains_key(&me) || !voters.contains_key(&leader) {
        return None;
    }
    Some(Followed {
        group,
        leader,
        term: m.vote.leader_id().get_term(),
        voters,
        last_log_index: m.last_log_index.unwrap_or(0),
    })
}

impl RaftNode {
    /// Starts the node's failover watch (module docs); it ends when the
    /// node stops.
    pub(super) fn spawn_failover_watch(&self) {
        self.spawn_group_watch(|node| async move { node.inner.failover_tick().await });
    }
}

impl NodeInner {
    /// How long a follower's silence makes it probe its leader.
    fn silence(&self) -> Duration {
        self.settings.heartbeat + self.settings.heartbeat / 2
    }

    /// How long an asked node must have heard nothing from the leader to
    /// agree it is gone: shorter than [`NodeInner::silence`], so that a
    /// peer whose watch has not come round yet still agrees (its probe is
    /// the evidence that counts).
    fn silence_to_agree(&self) -> Duration {
        self.settings.heartbeat
    }

    /// How long an abandoned lease holds this node's leadership back and
    /// its votes for others (module docs).
    fn lease_debt(&self) -> Duration {
        self.settings.election_max + self.settings.heartbeat
    }

    /// Steps 1 to 3 for every group whose leader went silent.
    async fn failover_tick(&self) {
        let mut suspects: BTreeMap<NodeId, Vec<Followed>> = BTreeMap::new();
        for (g, group) in &self.groups {
            if group.failover.silent_for() < self.silence() {
                continue;
            }
            let f = followed(self.id, *g, &group.raft.metrics().borrow());
            if let Some(f) = f {
                suspects.entry(f.leader).or_default().push(f);
            }
        }
        let runs = suspects.into_values().map(|groups| async move {
            let Some(first) = groups.first() else { return };
            let addr = first.voters.get(&first.leader).cloned().unwrap_or_default();
            if !self
                .probe_finds_gone(first.leader, &addr, first.group)
                .await
            {
                return;
            }
            let attempts = groups.into_iter().filter_map(|f| {
                let g = self.groups.get(&f.group)?;
                g.failover
                    .may_attempt(self.settings.heartbeat)
                    .then(|| self.try_failover(g, f))
            });
            futures::future::join_all(attempts).await;
        });
        futures::future::join_all(runs).await;
    }

    /// Whether node `leader` is unreachable (refused, or says it stopped);
    /// a timeout is no evidence either way.
    async fn probe_finds_gone(&self, leader: NodeId, addr: &str, group: GroupId) -> bool {
        let Ok(payload) = codec::encode(&AdminRequest::Ping) else {
            return false;
        };
        let answer = self
            .transport
            .call(
                leader,
                addr,
                RpcKind::Admin,
                group,
                payload,
                self.settings.heartbeat,
            )
            .await;
        matches!(answer, Err(TransportError::Unreachable { .. }))
    }

    /// Steps 2 and 3 for one group (module docs).
    async fn try_failover(&self, g: &Group, f: Followed) {
        let majority = f.voters.len() / 2 + 1;
        let others: Vec<(NodeId, String)> = f
            .voters
            .iter()
            .filter(|(id, _)| **id != self.id && **id != f.leader)
            .map(|(id, addr)| (*id, addr.clone()))
            .collect();
        let ask = AdminRequest::LeaderGone {
            leader: f.leader,
            term: f.term,
        };
        let answers = futures::future::join_all(
            others
                .iter()
                .map(|(id, addr)| self.ask_peer(*id, addr, f.group, &ask)),
        )
        .await;
        let mut agreed = Vec::new();
        for ((id, addr), answer) in others.iter().zip(answers) {
            if let Ok(Done::LeaderGone {
                gone: true,
                last_log_index,
            }) = answer
            {
                agreed.push((*id, addr.clone(), last_log_index));
            }
        }
        if agreed.len() + 1 < majority {
            tracing::debug!(
                group = f.group,
                leader = f.leader,
                agreed = agreed.len(),
                "leader looks gone to this node only; keeping its lease"
            );
            return;
        }
        let better = |(id, _, index): &(NodeId, String, u64)| {
            *index > f.last_log_index || (*index == f.last_log_index && *id < self.id)
        };
        if agreed.iter().any(better) {
            // The voter with the longest log runs; it asks us to abandon.
            return;
        }
        let abandon = AdminRequest::Abandon {
            leader: f.leader,
            term: f.term,
            candidate: self.id,
        };
        let acks = futures::future::join_all(
            agreed
                .iter()
                .map(|(id, addr, _)| self.ask_peer(*id, addr, f.group, &abandon)),
        )
        .await;
        let abandoned: BTreeSet<NodeId> = agreed
            .iter()
            .zip(acks)
            .filter(|(_, ack)| matches!(ack, Ok(Done::Admin)))
            .map(|((id, _, _), _)| *id)
            .collect();
        if abandoned.len() + 1 < majority {
            return;
        }
        // Still following the same leader in the same term, still silent?
        let now = followed(self.id, f.group, &g.raft.metrics().borrow());
        if g.failover.silent_for() < self.silence()
            || now.is_none_or(|n| n.leader != f.leader || n.term != f.term)
        {
            return;
        }
        tracing::info!(
            group = f.group,
            leader = f.leader,
            term = f.term,
            with = ?abandoned,
            "a quorum sees the leader gone: electing without waiting out its lease"
        );
        // Twice: the first election moves to the abandoners' term, the
        // second past it. Both are queued before the hold is counted, so
        // the old leader's acknowledgements from here are older.
        for _ in 0..2 {
            if let Err(e) = g.raft.trigger().elect().await {
                tracing::warn!(group = f.group, error = %e, "election trigger failed");
                return;
            }
        }
        g.failover
            .abandoned(self.id, Instant::now(), self.lease_debt());
    }

    /// Sends `req` for `group` to peer `id` and decodes its answer.
    pub(super) async fn ask_peer(
        &self,
        id: NodeId,
        addr: &str,
        group: GroupId,
        req: &AdminRequest,
    ) -> Result<Done, String> {
        let payload = codec::encode(req).map_err(|e| e.to_string())?;
        let answer = self
            .transport
            .call(
                id,
                addr,
                RpcKind::Admin,
                group,
                payload,
                self.settings.heartbeat * 3,
            )
            .await
            .map_err(|e| e.to_string())?;
        let done: Result<Done, WireError> = codec::decode(&answer).map_err(|e| e.to_string())?;
        done.map_err(|e| e.to_string())
    }

    /// Step 2 on an asked node: is `leader` gone for it too?
    pub(super) async fn answer_leader_gone(
        &self,
        g: &Group,
        group: GroupId,
        leader: NodeId,
    ) -> Done {
        let (last_log_index, addr) = {
            let m = g.raft.metrics();
            let m = m.borrow();
            let addr = m
                .membership_config
                .membership()
                .get_node(&leader)
                .map(|n| n.addr.clone());
            (m.last_log_index.unwrap_or(0), addr)
        };
        let gone = match addr {
            Some(addr) if g.failover.silent_for() >= self.silence_to_agree() => {
                self.probe_finds_gone(leader, &addr, group).await
            }
            _ => false,
        };
        Done::LeaderGone {
            gone,
            last_log_index,
        }
    }

    /// Step 3 on an asked node: abandon `leader`'s lease (of `term`) in
    /// favour of `candidate`, if this node still follows it and still
    /// hears nothing from it.
    pub(super) async fn answer_abandon(
        &self,
        g: &Group,
        group: GroupId,
        leader: NodeId,
        term: u64,
        candidate: NodeId,
    ) -> Result<Done, WireError> {
        if g.failover.silent_for() < self.silence_to_agree() {
            return Err(WireError::Busy("the leader is not silent here".into()));
        }
        let vote = g.raft.metrics().borrow().vote;
        let follows = vote.is_committed()
            && vote.leader_id().voted_for() == Some(leader)
            && vote.leader_id().get_term() == term;
        if follows {
            g.raft
                .trigger()
                .elect()
                .await
                .map_err(|e| WireError::Fatal(e.to_string()))?;
        } else if vote.is_committed() || vote.leader_id().get_term() <= term {
            // Following another leader, or not past the asked term.
            return Err(WireError::Busy(format!(
                "not following node {leader} in term {term} here (vote {vote})"
            )));
        }
        // Queued before the answer leaves: the candidate counts its hold
        // from a time after this.
        tracing::info!(
            group,
            leader,
            term,
            candidate,
            "abandoning a gone leader's lease"
        );
        g.failover
            .abandoned(candidate, Instant::now(), self.lease_debt());
        Ok(Done::Admin)
    }
}
