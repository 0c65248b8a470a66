//! Cluster administration through the client API: taking a member out
//! (RemoveMember, a signed command), the whole cluster's status, and a new
//! node's join — admitted by its certificate (TLS) or by a one-time join
//! token (CreateJoinToken, a signed command; no TLS). The work itself
//! lives in [`crate::cluster`] and [`crate::removal`]; this is the API's
//! door to it.

use canon_proto::canon::api::v1 as pb;
use canon_raft::{CommandId, Consistency, Request, Response, META_GROUP};
use canon_tls::ConnInfo;
use tonic::Status;

use super::authz::{Asker, Decided};
use super::grpc_status::{bad, node_status, rejection_status};
use super::intake::{command_id, Caller};
use super::job_ids::derived;
use super::Api;
use crate::join_tokens::{join_token_hash, join_token_ttl, NewJoinToken};

impl Api {
    /// Carries out a RemoveMember call's (already opened) command.
    pub(super) async fn handle_remove_member(
        &self,
        cmd: pb::Command,
    ) -> Result<pb::RemoveMemberReply, Status> {
        let id = command_id(&cmd)?;
        let Some(pb::command::Action::RemoveMember(r)) = cmd.action else {
            return Err(bad("the RemoveMember call carries a remove_member command"));
        };
        self.metrics.call("remove_member");
        if r.node == 0 {
            return Err(bad("node id 0 is reserved"));
        }
        let (node, replicas) = (self.node.clone(), self.replicas);
        let command = derived(id, "member-removed");
        run_to_completion("removal", async move {
            crate::removal::remove_member(&node, r.node, replicas, command, cmd.dry_run).await
        })
        .await
    }

    /// This node's view of the cluster (`local`), or every member's.
    pub(super) async fn handle_cluster_status(
        &self,
        req: pb::ClusterStatusRequest,
    ) -> Result<pb::ClusterStatusReply, Status> {
        self.metrics.call("cluster_status");
        let mut reply = if req.local {
            crate::cluster::local_view(&self.node).await?
        } else {
            crate::cluster::whole_view(&self.node, &self.peers).await?
        };
        reply.cluster_id = self.verifier.audience().to_string();
        Ok(reply)
    }

    /// Adds node `r.node` at `r.addr` to the cluster.
    pub(super) async fn handle_join(&self, r: pb::JoinRequest) -> Result<pb::JoinReply, Status> {
        self.metrics.call("join");
        tracing::info!(node = r.node, addr = %r.addr, "join asked");
        let (node, replicas) = (self.node.clone(), self.replicas);
        let (new, addr) = (r.node, r.addr.clone());
        let shards = run_to_completion("join", async move {
            crate::cluster::join(&node, new, &addr, replicas).await
        })
        .await?;
        Ok(pb::JoinReply {
            message: format!("node {} joined; replicas of shards {shards:?}", r.node),
            shards,
        })
    }

    /// Makes a one-time join token: the secret goes to the caller, its
    /// hash into the meta group's log.
    pub(super) async fn handle_create_join_token(
        &self,
        cmd: pb::Command,
        asker: Asker<'_>,
        decided: Decided,
    ) -> Result<pb::JoinTokenReply, Status> {
        let principal = asker.principal;
        let id = command_id(&cmd)?;
        let Some(pb::command::Action::CreateJoinToken(t)) = cmd.action else {
            return Err(bad(
                "the CreateJoinToken call carries a create_join_token command",
            ));
        };
        self.metrics.call("create_join_token");
        let ttl = join_token_ttl(t.ttl_ms).map_err(|e| bad(&e))?;
        let at = self.clock.now_ms();
        let token = NewJoinToken::generate(at, ttl, (t.node != 0).then_some(t.node));
        let by = Caller {
            id,
            dry_run: false,
            principal,
            request_hash: asker.request_hash,
            arrival: asker.arrival,
        };
        let door = by.door(canon_trust::Action::ClusterJoin, decided, None);
        let req = Request {
            id: CommandId(id),
            ..Request::new(at, token.issue)
                .by(principal.clone())
                .with_door(door)
        };
        self.propose_meta(req).await?;
        tracing::info!(user = %principal.user, token = %&token.hash[..12], node = t.node,
            expires_ms = token.expires_at, "join token issued");
        Ok(pb::JoinTokenReply {
            token: token.secret,
            expires_ms: token.expires_at,
            token_hash: token.hash,
        })
    }

    /// Whether the node asking to join may: with TLS, only with its own
    /// certificate; without, with a join token it spends here (or freely
    /// on a node started with --open-join). A member asking again at the
    /// same address (a restart with --join) changes nothing and needs
    /// neither.
    pub(super) async fn admit_join(
        &self,
        conn: Option<&ConnInfo>,
        r: &pb::JoinRequest,
    ) -> Result<(), Status> {
        if self.tls_cluster.is_some() {
            return crate::peer_gate::check_join(
                conn,
                self.tls_cluster.as_deref(),
                r.node,
                &r.addr,
            );
        }
        crate::cluster::check_join_request(r.node, &r.addr)?;
        match self.member_addr(r.node).await? {
            Some(at) if at == r.addr => return Ok(()),
            Some(at) => {
                return Err(Status::already_exists(format!(
                    "node {} is already a member at {at}; pick another id",
                    r.node
                )))
            }
            None => {}
        }
        if !r.token.is_empty() {
            return self.redeem_join_token(&r.token, r.node).await;
        }
        if self.open_join {
            tracing::warn!(node = r.node, addr = %r.addr,
                "join admitted without a token (--open-join)");
            return Ok(());
        }
        tracing::warn!(node = r.node, addr = %r.addr, "join refused: no join token");
        Err(Status::permission_denied(
            "join refused: this cluster runs without TLS, so a joining node presents a \
             one-time join token: make one with `canon cluster join-token` and start the node \
             with --join-token (or give the cluster mutual TLS, where a node's own certificate \
             admits it)",
        ))
    }

    /// Where member `node` is, if it is one.
    async fn member_addr(&self, node: u64) -> Result<Option<String>, Status> {
        self.node
            .read(META_GROUP, Consistency::Linearizable, |s| {
                s.meta.members.get(&node).map(|m| m.addr.clone())
            })
            .await
            .map_err(node_status)
    }

    /// Spends `token` for `node` in the meta group (the first node to
    /// present a token gets it).
    async fn redeem_join_token(&self, token: &str, node: u64) -> Result<(), Status> {
        let hash = join_token_hash(token);
        let command = canon_raft::Command::JoinTokenRedeemed {
            hash: hash.clone(),
            node,
        };
        let outcome = self
            .propose_meta(Request::new(self.clock.now_ms(), command))
            .await;
        match &outcome {
            Ok(()) => tracing::info!(node, token = %&hash[..12], "join token accepted"),
            Err(e) => tracing::warn!(node, token = %&hash[..12], reason = %e.message(),
                "join token refused"),
        }
        outcome
    }

    /// Proposes `req` to the meta group; a rejection is the call's error.
    pub(super) async fn propose_meta(&self, req: Request) -> Result<(), Status> {
        match self
            .node
            .propose(META_GROUP, req)
            .await
            .map_err(node_status)?
        {
            Response::Applied => Ok(()),
            Response::Rejected(r) => Err(rejection_status(r)),
        }
    }
}

/// Runs a membership change to its end in a task of its own, even if the
/// caller stops waiting: tonic drops a handler whose client went away, and
/// a removal or join dropped halfway (it changes every group, one at a
/// time) leaves some groups changed and others not. A caller that asks
/// again finds the change done, or waits its turn behind it.
async fn run_to_completion<T: Send + 'static>(
    what: &'static str,
    change: impl std::future::Future<Output = Result<T, Status>> + Send + 'static,
) -> Result<T, Status> {
    tokio::spawn(change)
        .await
        .map_err(|e| Status::internal(format!("the {what} stopped: {e}")))?
}
