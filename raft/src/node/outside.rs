//! Proposing and finding a group's leader from outside any node (a client
//! or a tool holding just a transport and the nodes' addresses).

use std::time::Duration;

use tokio::time::Instant;

use super::routing::RETRY_INTERVAL;
use super::wire::{unexpected, Done, WireError};
use super::NodeError;
use crate::codec;
use crate::command::{Request, Response};
use crate::ids::{GroupId, NodeId};
use crate::network::{RpcKind, Transport};

/// Proposes `req` to `group` from outside the cluster (a client, or a
/// process without a node): sends it to `nodes` in turn, following leader
/// hints, until it is applied or `limit` passes. Each call is bounded by
/// `call_timeout`. Retrying is safe: the command id makes it apply once.
pub async fn propose_via(
    transport: &dyn Transport,
    nodes: &[(NodeId, String)],
    group: GroupId,
    req: &Request,
    call_timeout: Duration,
    limit: Duration,
) -> Result<Response, NodeError> {
    let started = Instant::now();
    let payload = crate::entry_codec::encode_request(req)?;
    let mut target: Option<(NodeId, String)> = None;
    let mut next = 0usize;
    let mut last_fatal: Option<String> = None;
    loop {
        let (id, addr) = match target.take() {
            Some(t) => t,
            None => {
                let Some(t) = nodes.get(next % nodes.len().max(1)).cloned() else {
                    return Err(NodeError::NoLeader {
                        group,
                        after: limit,
                    });
                };
                next += 1;
                t
            }
        };
        let answer = transport
            .call(
                id,
                &addr,
                RpcKind::Propose,
                group,
                payload.clone(),
                call_timeout,
            )
            .await;
        let mut wait = true;
        match answer.map(|bytes| codec::decode::<Result<Done, WireError>>(&bytes)) {
            Ok(Ok(Ok(done))) => {
                return done
                    .committed()
                    .map(|c| c.response)
                    .map_err(|other| unexpected(group, &other))
            }
            // A node's fatal error (e.g. it is shutting down) may not be the
            // cluster's: try the others, and report it if nothing works.
            Ok(Ok(Err(WireError::Fatal(reason)))) => last_fatal = Some(reason),
            Ok(Ok(Err(WireError::NotLeader { leader: Some(l) }))) if l.0 != id => {
                target = Some(l);
                wait = false;
            }
            Ok(Ok(Err(e))) => tracing::debug!(group, node = id, error = %e, "retrying elsewhere"),
            Ok(Err(e)) => return Err(e.into()),
            Err(e) => tracing::debug!(group, node = id, error = %e, "retrying elsewhere"),
        }
        if started.elapsed() >= limit {
            return Err(match last_fatal {
                Some(reason) => NodeError::Raft { group, reason },
                None => NodeError::NoLeader {
                    group,
                    after: limit,
                },
            });
        }
        if wait {
            tokio::time::sleep(RETRY_INTERVAL).await;
        }
    }
}

/// The leader of `group` as the cluster sees it, asked from outside: each
/// node in turn gets a read-index call; the leader answers it, a follower
/// names its leader. `None` if nobody knows one.
pub async fn find_leader(
    transport: &dyn Transport,
    nodes: &[(NodeId, String)],
    group: GroupId,
    call_timeout: Duration,
) -> Option<NodeId> {
    let payload = codec::encode(&()).ok()?;
    for (id, addr) in nodes {
        let Ok(bytes) = transport
            .call(
                *id,
                addr,
                RpcKind::ReadIndex,
                group,
                payload.clone(),
                call_timeout,
            )
            .await
        else {
            continue;
        };
        match codec::decode::<Result<Done, WireError>>(&bytes) {
            Ok(Ok(Done::ReadIndex(_))) => return Some(*id),
            Ok(Err(WireError::NotLeader {
                leader: Some((l, _)),
            })) => return Some(l),
            _ => {}
        }
    }
    None
}
