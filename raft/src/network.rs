//! The Raft network behind a trait: [`Transport`] moves opaque, group-tagged
//! payloads between nodes; this module adapts it to openraft's
//! `RaftNetwork` for one group, encoding requests and mapping failures.
//!
//! The gRPC transport lives in [`crate::grpc`]; a simulation can plug in
//! another implementation (e.g. over turmoil) without touching the groups.
//! Snapshots are sent in chunks, one InstallSnapshot call each, each
//! bounded by the snapshot timeout, none on the whole transfer; the last
//! is installed in the background and polled ([`snapshot_send`]).
//! Every call carries a timeout, and failures are classified so openraft
//! backs off from unreachable peers instead of hammering them.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::RPCTypes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::oneshot;

use crate::codec;
use crate::entry_codec;
use crate::ids::{GroupId, NodeId};
use crate::types::{Node, Snapshot, TypeConfig, Vote};

mod snapshot_send;

pub use snapshot_send::{
    BackgroundInstalls, InstallStatus, RawChunk, SnapshotAnswer, SnapshotCall, SnapshotsSent,
};

/// The calls a node makes to its peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RpcKind {
    AppendEntries,
    Vote,
    InstallSnapshot,
    /// A command forwarded to the leader.
    Propose,
    /// A read index asked of the leader.
    ReadIndex,
    /// A membership change or election request.
    Admin,
}

/// Why a call to a peer failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// No connection (refused, no route, peer not serving the group).
    #[error("node {target} at {addr} is unreachable: {reason}")]
    Unreachable {
        target: NodeId,
        addr: String,
        reason: String,
    },
    /// No answer in time.
    #[error("call to node {target} timed out after {after:?}")]
    Timeout { target: NodeId, after: Duration },
    /// Anything else (the call may or may not have reached the peer).
    #[error("call to node {target} failed: {reason}")]
    Failed { target: NodeId, reason: String },
}

/// Why an incoming message could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error("no group {0} on this node")]
    UnknownGroup(GroupId),
    #[error("node stopped")]
    Stopped,
    #[error("bad payload: {0}")]
    BadPayload(String),
    /// Declined for now (e.g. a vote while this node's failover favours
    /// another candidate).
    #[error("refused: {0}")]
    Refused(String),
    /// A drill's link fault dropped it ([`crate::link_fault`]).
    #[error("dropped by a drill's link fault")]
    Lost,
}

/// Where a transport's server side hands each message a peer sent: the
/// node's groups (`node::NodeInner` implements it). The server depends on
/// this trait only, so the node may build its server without the server
/// knowing the node.
pub trait MessageHandler: Send + Sync + 'static {
    /// Handles one `kind` message for `group` and returns the encoded answer.
    fn handle(
        &self,
        kind: RpcKind,
        group: GroupId,
        payload: &[u8],
    ) -> impl std::future::Future<Output = Result<Vec<u8>, HandleError>> + Send;
}

/// One group's AppendEntries inside a batch to a peer
/// ([`Transport::call_batch`]).
#[derive(Debug)]
pub struct BatchItem {
    pub group: GroupId,
    pub payload: Vec<u8>,
    /// The caller's own bound on this message's answer.
    pub timeout: Duration,
    /// Where the answer goes, as soon as it is known.
    pub reply: oneshot::Sender<ItemResult>,
}

/// The answer to one [`BatchItem`].
pub type ItemResult = Result<Vec<u8>, TransportError>;

/// Moves group-tagged payloads to a peer. Implementations must bound every
/// call by `timeout` and share connections between groups.
pub trait Transport: Send + Sync + 'static {
    /// Sends `payload` for `group` to node `target` at `addr` and returns the
    /// peer's answer.
    fn call(
        &self,
        target: NodeId,
        addr: &str,
        kind: RpcKind,
        group: GroupId,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>>;

    /// Sends several groups' AppendEntries to node `target` in one round
    /// trip and answers each item through its `reply` as soon as its own
    /// answer (or failure) is known; the future ends once every item is
    /// answered. The peer handles each message on its own, bounded by the
    /// message's own timeout. By default: one [`Transport::call`] each,
    /// concurrently.
    fn call_batch(
        &self,
        target: NodeId,
        addr: &str,
        items: Vec<BatchItem>,
    ) -> BoxFuture<'static, ()> {
        call_each(self, target, addr, items)
    }
}

/// Sends each of `items` as a call of its own, concurrently, answering each
/// as soon as its call ends (what [`Transport::call_batch`] does by default).
pub fn call_each<T: Transport + ?Sized>(
    transport: &T,
    target: NodeId,
    addr: &str,
    items: Vec<BatchItem>,
) -> BoxFuture<'static, ()> {
    let calls: Vec<_> = items
        .into_iter()
        .map(|i| {
            let call = transport.call(
                target,
                addr,
                RpcKind::AppendEntries,
                i.group,
                i.payload,
                i.timeout,
            );
            let reply = i.reply;
            async move {
                // The caller may have given up; nothing to tell then.
                let _ = reply.send(call.await);
            }
        })
        .collect();
    futures::future::join_all(calls).map(|_| ()).boxed()
}

/// Builds one group's clients to its peers.
#[derive(Clone)]
pub struct NetworkFactory {
    me: NodeId,
    group: GroupId,
    transport: Arc<dyn Transport>,
    backoff: Duration,
    sent: Arc<SnapshotsSent>,
}

impl NetworkFactory {
    /// A factory for group `group` of node `me`; `backoff` is how long
    /// openraft waits before retrying an unreachable peer.
    pub fn new(
        me: NodeId,
        group: GroupId,
        transport: Arc<dyn Transport>,
        backoff: Duration,
    ) -> Self {
        NetworkFactory {
            me,
            group,
            transport,
            backoff,
            sent: Arc::default(),
        }
    }

    /// How many snapshots the group's clients started sending.
    pub fn snapshots_sent(&self) -> Arc<SnapshotsSent> {
        self.sent.clone()
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = GroupClient;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> GroupClient {
        GroupClient {
            me: self.me,
            group: self.group,
            target,
            node: node.clone(),
            transport: self.transport.clone(),
            backoff: self.backoff,
            sent: self.sent.clone(),
            legacy_snapshots: false,
        }
    }
}

/// The slowest transfer rate a peer link is allowed before an RPC times
/// out, in bytes per millisecond (10 MB/s): openraft times an
/// AppendEntries by the heartbeat interval alone, which a large entry (a
/// composition of hundreds of KiB) cannot meet on a busy link.
const LINK_BYTES_PER_MS_MIN: usize = 10 * 1024;

/// The time an RPC of `bytes` gets beyond openraft's own timeout.
fn transfer_allowance(bytes: usize) -> Duration {
    Duration::from_millis((bytes / LINK_BYTES_PER_MS_MIN) as u64)
}

/// One group's client to one peer.
pub struct GroupClient {
    me: NodeId,
    group: GroupId,
    target: NodeId,
    node: Node,
    transport: Arc<dyn Transport>,
    backoff: Duration,
    sent: Arc<SnapshotsSent>,
    /// The peer refused a [`SnapshotCall`] (a release before them): it
    /// gets openraft's plain chunks.
    legacy_snapshots: bool,
}

impl GroupClient {
    async fn rpc<Req, Resp, E>(
        &self,
        kind: RpcKind,
        action: RPCTypes,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, RPCError<NodeId, Node, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let payload = codec::encode(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        self.rpc_encoded(kind, action, payload, timeout).await
    }

    /// [`Self::rpc`] with the request already encoded.
    async fn rpc_encoded<Resp, E>(
        &self,
        kind: RpcKind,
        action: RPCTypes,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Resp, RPCError<NodeId, Node, RaftError<NodeId, E>>>
    where
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let timeout = timeout + transfer_allowance(payload.len());
        let answer = self
            .transport
            .call(
                self.target,
                &self.node.addr,
                kind,
                self.group,
                payload,
                timeout,
            )
            .await
            .map_err(|e| match e {
                TransportError::Unreachable { .. } => RPCError::Unreachable(Unreachable::new(&e)),
                TransportError::Timeout { after, .. } => RPCError::Timeout(Timeout {
                    action,
                    id: self.me,
                    target: self.target,
                    timeout: after,
                }),
                TransportError::Failed { .. } => RPCError::Network(NetworkError::new(&e)),
            })?;
        let result: Result<Resp, RaftError<NodeId, E>> =
            codec::decode(&answer).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| {
            RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.node.clone(),
                e,
            ))
        })
    }
}

impl RaftNetwork<TypeConfig> for GroupClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        // Compact, and the entries' bytes are the ones the leader's log
        // write made (entry_codec): nothing is encoded again per follower.
        let payload = entry_codec::encode_append_entries(&rpc)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        self.rpc_encoded(
            RpcKind::AppendEntries,
            RPCTypes::AppendEntries,
            payload,
            option.hard_ttl(),
        )
        .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Node, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.rpc(
            RpcKind::InstallSnapshot,
            RPCTypes::InstallSnapshot,
            &rpc,
            option.hard_ttl(),
        )
        .await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl std::future::Future<Output = openraft::error::ReplicationClosed>
            + openraft::OptionalSend
            + 'static,
        option: RPCOption,
    ) -> Result<
        openraft::raft::SnapshotResponse<NodeId>,
        openraft::error::StreamingError<TypeConfig, openraft::error::Fatal<NodeId>>,
    > {
        self.send_snapshot(vote, snapshot, cancel, option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        self.rpc(RpcKind::Vote, RPCTypes::Vote, &rpc, option.hard_ttl())
            .await
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(self.backoff))
    }
}
