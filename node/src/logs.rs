//! What of the libraries' logging reaches an operator, for every binary of
//! Canon that prints logs (`canond`, `canon dev`).
//!
//! ERROR means something an operator must act on. openraft 0.9 logs every
//! failed call to a peer at ERROR: a peer that is restarting, or not
//! started yet, is enough, so starting or stopping a healthy cluster one
//! node after another printed a screenful. [`without_peer_call_errors`]
//! drops those events and nothing else: openraft logs each failed
//! replication at WARN as well, and a peer that stays unreachable shows in
//! `canon cluster status` and in the leader's replication metrics.

use tracing::{Level, Metadata};
use tracing_subscriber::filter::{filter_fn, FilterFn};

/// A global filter (add it to a subscriber with `.with(..)`) that drops
/// openraft's ERROR events about a call to a peer that failed or timed out.
pub fn without_peer_call_errors() -> FilterFn<fn(&Metadata<'_>) -> bool> {
    filter_fn(keeps as fn(&Metadata<'_>) -> bool)
}

/// False for openraft's peer-call ERROR events, told apart by their fields:
/// replication's `RPCError` (field `err`, beside a WARN with the same
/// error), and the vote, vote-timeout and read-leadership failures of its
/// core (fields `error` and `target`, the peer).
fn keeps(meta: &Metadata<'_>) -> bool {
    if *meta.level() != Level::ERROR || !meta.is_event() {
        return true;
    }
    let has = |name: &str| meta.fields().field(name).is_some();
    let peer_call = match meta.target() {
        "openraft::replication" => has("err"),
        "openraft::core::raft_core" => has("error") && has("target"),
        _ => false,
    };
    !peer_call
}
