//! The leadership watch each group publishes: who leads, in which term,
//! and whether this node may act as leader (a quorum acknowledged it
//! within the lease). What the scheduler starts and stops actors on.

use std::time::Duration;

use openraft::ServerState;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::time::Instant;

use super::Leadership;
use crate::ids::NodeId;
use crate::types::RaftMetrics;

/// Derives a leadership watch from openraft metrics, on the node's Raft
/// `runtime`; the task ends when the group's raft stops.
///
/// `is_me` holds only while this node is leader *and* a quorum acknowledged
/// it within `lease`: a leader cut off from the others (or one restarted
/// into its old term, before it learns of a newer leader) stops counting
/// itself leader at about the time the others may elect a new one. It also
/// waits out `hold`: after this node took part in a quick failover, until
/// the old leader's lease surely ended ([`super::failover`]).
pub(super) fn watch_leadership(
    me: NodeId,
    mut metrics: watch::Receiver<RaftMetrics>,
    mut hold: watch::Receiver<Option<Instant>>,
    lease: Duration,
    tick: Duration,
    runtime: &Handle,
) -> watch::Receiver<Leadership> {
    let judge = |m: &RaftMetrics| (m.state, m.current_leader, m.current_term);
    let decide = move |(state, leader, term): (ServerState, Option<NodeId>, u64),
                       last_ack: Option<Instant>,
                       held_until: Option<Instant>,
                       prev: Option<Leadership>| {
        let fresh = last_ack.is_some_and(|at| at.elapsed() < lease);
        let held = held_until.is_some_and(|until| Instant::now() < until);
        let is_me = state == ServerState::Leader && leader == Some(me) && fresh && !held;
        let since = match prev {
            Some(p) if is_me && p.is_me && p.term == term => p.since,
            _ if is_me => Some(Instant::now()),
            _ => None,
        };
        Leadership {
            leader,
            term,
            is_me,
            since,
        }
    };
    let mut seen = judge(&metrics.borrow_and_update());
    let mut ack = last_ack_of(&metrics.borrow());
    let mut held_until = *hold.borrow_and_update();
    let mut hold_open = true;
    let (tx, rx) = watch::channel(decide(seen, ack, held_until, None));
    runtime.spawn(async move {
        let mut ticker = tokio::time::interval(tick);
        loop {
            tokio::select! {
                changed = metrics.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let m = metrics.borrow_and_update();
                    seen = judge(&m);
                    ack = last_ack_of(&m);
                }
                changed = hold.changed(), if hold_open => match changed {
                    Ok(()) => held_until = *hold.borrow_and_update(),
                    // The group is going away: keep the last hold.
                    Err(_) => hold_open = false,
                },
                _ = ticker.tick() => {}
            }
            let now = decide(seen, ack, held_until, Some(*tx.borrow()));
            tx.send_if_modified(|cur| {
                let changed = *cur != now;
                *cur = now;
                changed
            });
        }
    });
    rx
}

/// When a quorum last acknowledged this node as leader, if it is one.
fn last_ack_of(m: &RaftMetrics) -> Option<Instant> {
    m.millis_since_quorum_ack
        .and_then(|ms| Instant::now().checked_sub(Duration::from_millis(ms)))
}
