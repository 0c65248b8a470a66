//! Cluster administration through the client API: taking a member out
//! (RemoveMember, a signed command), the whole cluster's status, and a new
//! node's join. The work itself lives in [`crate::cluster`] and
//! [`crate::removal`]; this is the API's door to it.

use canon_proto::canon::api::v1 as pb;
use tonic::Status;

use super::grpc_status::bad;
use super::intake::command_id;
use super::job_ids::derived;
use super::Api;

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
        crate::removal::remove_member(
            &self.node,
            r.node,
            self.replicas,
            derived(id, "member-removed"),
            cmd.dry_run,
        )
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
        let shards = crate::cluster::join(&self.node, r.node, &r.addr, self.replicas).await?;
        Ok(pb::JoinReply {
            message: format!("node {} joined; replicas of shards {shards:?}", r.node),
            shards,
        })
    }
}
