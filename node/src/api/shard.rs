//! The API's way into the shard that owns an alias: a linearizable look-up
//! of the alias's process, and proposals answered after commit. Command
//! intake, job ids and reads all go through these, so "which group, which
//! consistency, which error" is decided once.

use canon_raft::state::ProcessRecord;
use canon_raft::{
    group_of_alias, Command, CommandId, Committed, Consistency, DoorContext, Principal, Request,
    Response,
};
use tonic::Status;

use super::grpc_status::{node_status, not_found, rejection_status};
use super::Api;

/// Who a proposal is from and what the door knew of it: both travel in
/// the request, for its audit record.
#[derive(Debug, Clone, Copy)]
pub(super) struct Signer<'a> {
    pub principal: &'a Principal,
    pub door: &'a DoorContext,
}

impl Api {
    /// Proposes `command`, sent by `by`, to `alias`'s shard; the answer
    /// comes after commit, with the log index it was committed at. The
    /// principal travels in the request.
    pub(super) async fn propose(
        &self,
        by: Signer<'_>,
        alias: &str,
        id: CommandId,
        command: Command,
    ) -> Result<Committed, Status> {
        let group = group_of_alias(alias, self.node.shard_count());
        let req = Request {
            id,
            at: self.clock.now_ms(),
            command,
            fence: None,
            principal: Some(std::sync::Arc::new(by.principal.clone())),
            door: Some(Box::new(by.door.clone())),
        };
        self.node
            .propose_committed(group, req)
            .await
            .map_err(node_status)
    }

    /// [`Api::propose`], with a rejection as an error: the log index.
    pub(super) async fn propose_applied(
        &self,
        by: Signer<'_>,
        alias: &str,
        id: CommandId,
        command: Command,
    ) -> Result<u64, Status> {
        let committed = self.propose(by, alias, id, command).await?;
        match committed.response {
            Response::Applied => Ok(committed.index),
            Response::Rejected(r) => Err(rejection_status(r)),
        }
    }

    /// The live process of `alias`, if any: a look-up in the group's alias
    /// map, what commands need.
    pub(super) async fn process(&self, alias: &str) -> Result<Option<ProcessRecord>, Status> {
        self.read_process(alias, false).await
    }

    /// The live process of `alias`, else its newest killed or released one
    /// still kept, if any: what reads and answers show. Finding a gone one
    /// scans the group's processes, so commands do not ask for it.
    pub(super) async fn process_or_gone(
        &self,
        alias: &str,
    ) -> Result<Option<ProcessRecord>, Status> {
        self.read_process(alias, true).await
    }

    async fn read_process(
        &self,
        alias: &str,
        or_gone: bool,
    ) -> Result<Option<ProcessRecord>, Status> {
        let group = group_of_alias(alias, self.node.shard_count());
        self.node
            .read(group, Consistency::Linearizable, |s| {
                s.process_by_alias(alias)
                    .or_else(|| or_gone.then(|| s.newest_gone_by_alias(alias)).flatten())
                    .cloned()
            })
            .await
            .map_err(node_status)
    }

    /// The live process of `alias`, or NotFound.
    pub(super) async fn live_process(&self, alias: &str) -> Result<ProcessRecord, Status> {
        match self.process(alias).await? {
            Some(p) if p.state.is_live() => Ok(p),
            _ => Err(not_found(alias)),
        }
    }
}
