//! Elections that ask first (pre-vote): a node cut off from its peers
//! does not raise its term, so when it comes back it deposes nobody.
//!
//! openraft 0.9 has no pre-vote. Its election timer makes a follower that
//! has heard no leader for a while raise its term and campaign, even when
//! it is the one cut off. Its term keeps climbing while it is away; when
//! it returns, the higher term comes back in its answers to the leaders'
//! AppendEntries, and every group whose log it had kept up with elects
//! anew (drill `one-way`: four seconds after the filter was lifted, all
//! idle groups lost their leaders at once).
//!
//! So openraft's election timer is off (`enable_elect: false` in
//! [`crate::config::RaftSettings::openraft_config`]) and this module calls
//! elections instead. A voter that has heard no leader for its election
//! timeout — drawn from `[election_max, 2 × election_max − election_min)`
//! anew after each election it calls, so that the voters' leases on the
//! old leader have run out and two voters seldom ask at once — first asks
//! the group's other voters whether they would vote for it
//! ([`AdminRequest::PreVote`]). Each says yes only if it, too, has heard
//! no leader for a lease (`election_max`; a leader: unless a quorum
//! acknowledged it within one) and the asker's last log entry is at least
//! as recent as its own. With yeses from a quorum (of each half of a joint
//! configuration), the node calls an election; otherwise it asks again a
//! heartbeat later, its term unchanged. A peer of an earlier release cannot
//! decode the question and counts as a yes: it campaigns on openraft's
//! timer itself.
//!
//! Pre-vote only gates when elections start: Raft's own vote decides who
//! wins, so the log stays safe whatever is answered here. Leader balancing
//! and quick failover ([`super::failover`]) call elections directly.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use openraft::ServerState;
use rand08::Rng;
use tokio::time::Instant;

use super::failover::lock;
use super::wire::{AdminRequest, Done};
use super::{Group, NodeInner, RaftNode};
use crate::ids::{GroupId, NodeId};
use crate::types::LogId;

/// What one group keeps for its elections, under one lock: the election
/// watch reads them together.
#[derive(Debug)]
pub(super) struct GroupElection(Mutex<ElectionClock>);

#[derive(Debug)]
struct ElectionClock {
    /// How long a silence this node waits out before it asks: drawn anew
    /// after each election it calls.
    timeout: Duration,
    /// When this node last called an election in the group.
    called: Option<Instant>,
    /// When it last asked for pre-votes (at most once a heartbeat).
    asked: Option<Instant>,
    /// When the election watch last saw this node lead the group: a leader
    /// hears no AppendEntries, but knows its leadership (one just handed
    /// over or deposed is no follower that heard nobody for minutes).
    led: Option<Instant>,
}

impl GroupElection {
    pub(super) fn new(settings: &crate::RaftSettings) -> GroupElection {
        GroupElection(Mutex::new(ElectionClock {
            timeout: draw_timeout(settings),
            called: None,
            asked: None,
            led: None,
        }))
    }

    fn clock(&self) -> std::sync::MutexGuard<'_, ElectionClock> {
        lock(&self.0)
    }
}

/// An election timeout from `[election_max, 2 × election_max − election_min)`.
fn draw_timeout(settings: &crate::RaftSettings) -> Duration {
    let spread = settings.election_max.saturating_sub(settings.election_min);
    let extra = if spread.is_zero() {
        Duration::ZERO
    } else {
        // The seedable source: a simulation replays its elections exactly.
        crate::runtime::ElectionRng.gen_range(Duration::ZERO..spread)
    };
    settings.election_max + extra
}

/// A group's voters as this node sees them: each half of a joint
/// configuration, and every voter's address.
struct Voters {
    halves: Vec<BTreeSet<NodeId>>,
    addrs: Vec<(NodeId, String)>,
}

impl Voters {
    /// Whether `granted` holds a majority of every half.
    fn quorum(&self, granted: &BTreeSet<NodeId>) -> bool {
        self.halves
            .iter()
            .all(|half| half.iter().filter(|n| granted.contains(n)).count() * 2 > half.len())
    }
}

impl RaftNode {
    /// Starts the node's election watch (module docs); it ends when the
    /// node stops.
    pub(super) fn spawn_election_watch(&self) {
        self.spawn_group_watch(|node| async move {
            if node.inner.elections.load(Ordering::Acquire) {
                node.inner.election_tick().await;
            }
        });
    }

    /// Switches this node's timer-driven elections on or off (tests that
    /// must see elections from one mechanism alone turn them off).
    /// Balancing and quick failover still call elections.
    pub fn set_election_timers(&self, on: bool) {
        self.inner.elections.store(on, Ordering::Release);
    }
}

impl NodeInner {
    /// How long this node has known no leader of the group: since the last
    /// AppendEntries or snapshot chunk, or since it last led the group.
    fn leaderless_for(&self, g: &Group) -> Duration {
        let heard = g.failover.silent_for();
        let led = g.election.clock().led;
        match led {
            Some(at) => heard.min(at.elapsed()),
            None => heard,
        }
    }

    /// Asks for pre-votes in every group whose leader this node has not
    /// heard from for its election timeout.
    async fn election_tick(&self) {
        let due = self.groups.iter().filter_map(|(gid, g)| {
            let voters = self.due_for_election(g)?;
            Some(self.try_election(*gid, g, voters))
        });
        futures::future::join_all(due).await;
    }

    /// The group's voters, if this node is one of them, leads nothing
    /// there, has heard no leader for its timeout and has not asked for a
    /// heartbeat.
    fn due_for_election(&self, g: &Group) -> Option<Voters> {
        let voters = {
            let m = g.raft.metrics();
            let m = m.borrow();
            if m.state == ServerState::Leader {
                g.election.clock().led = Some(Instant::now());
                return None;
            }
            if m.state == ServerState::Learner {
                return None;
            }
            let membership = m.membership_config.membership();
            let halves = membership.get_joint_config().clone();
            let addrs: Vec<(NodeId, String)> = membership
                .voter_ids()
                .filter(|id| *id != self.id)
                .map(|id| {
                    let addr = membership.get_node(&id).map(|n| n.addr.clone());
                    (id, addr.unwrap_or_default())
                })
                .collect();
            if !halves.iter().any(|h| h.contains(&self.id)) {
                return None;
            }
            Voters { halves, addrs }
        };
        let (timeout, since_call, since_ask) = {
            let c = g.election.clock();
            let since = |at: Option<Instant>| at.map(|at| at.elapsed());
            (c.timeout, since(c.called), since(c.asked))
        };
        let due = self.leaderless_for(g) >= timeout
            && since_call.is_none_or(|d| d >= timeout)
            && since_ask.is_none_or(|d| d >= self.settings.heartbeat);
        due.then_some(voters)
    }

    /// One pre-vote round for `group`; an election if a quorum says yes
    /// and no leader was heard meanwhile.
    async fn try_election(&self, group: GroupId, g: &Group, voters: Voters) {
        let began = Instant::now();
        g.election.clock().asked = Some(began);
        let last_log = g.raft.data_metrics().borrow().last_log;
        let ask = AdminRequest::PreVote { last_log };
        // Decide on the first quorum of yeses: waiting for a peer that does
        // not answer (the gone leader) would hold every candidate for the
        // same call timeout and have them all campaign at once.
        let mut answers: FuturesUnordered<_> = voters
            .addrs
            .iter()
            .map(|(id, addr)| {
                let ask = &ask;
                async move { (*id, self.ask_peer(*id, addr, group, ask).await) }
            })
            .collect();
        let mut granted = BTreeSet::from([self.id]);
        while !voters.quorum(&granted) {
            let Some((id, answer)) = answers.next().await else {
                break;
            };
            let yes = match answer {
                Ok(Done::PreVote { granted }) => granted,
                // A peer of an earlier release cannot decode the question.
                Err(e) => e.contains("bad payload"),
                Ok(_) => false,
            };
            if yes {
                granted.insert(id);
            }
        }
        drop(answers);
        if !voters.quorum(&granted) {
            tracing::debug!(
                group,
                ?granted,
                "pre-vote: no quorum would vote; not campaigning"
            );
            return;
        }
        if self.leaderless_for(g) < began.elapsed() {
            // Another candidate won while this one asked: follow it.
            tracing::debug!(
                group,
                "pre-vote: heard a leader while asking; not campaigning"
            );
            return;
        }
        tracing::info!(
            group,
            silent_ms = self.leaderless_for(g).as_millis() as u64,
            ?granted,
            "no leader heard and a quorum would vote: calling an election"
        );
        {
            let mut c = g.election.clock();
            c.called = Some(Instant::now());
            c.timeout = draw_timeout(&self.settings);
        }
        if let Err(e) = g.raft.trigger().elect().await {
            tracing::warn!(group, error = %e, "election trigger failed");
        }
    }

    /// Answers a pre-vote for a candidate whose last log entry is
    /// `last_log` (module docs).
    pub(super) fn answer_pre_vote(&self, g: &Group, last_log: Option<LogId>) -> Done {
        let lease = self.settings.election_max;
        let leader_alive = {
            let m = g.raft.metrics();
            let m = m.borrow();
            if m.state == ServerState::Leader {
                // A leader not yet acknowledged (just elected) is alive.
                let lease_ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX);
                m.millis_since_quorum_ack.is_none_or(|ms| ms < lease_ms)
            } else {
                self.leaderless_for(g) < lease
            }
        };
        let mine = g.raft.data_metrics().borrow().last_log;
        Done::PreVote {
            granted: !leader_alive && last_log >= mine,
        }
    }
}
