//! The gRPC transport: one tonic service per node carrying every group's
//! messages, and a client that keeps one lazily connected channel per peer,
//! shared by all groups.

use std::collections::HashMap;
use std::sync::{Mutex, Weak};
use std::time::Duration;

use canon_proto::canon::raft::v1::raft_transport_client::RaftTransportClient;
use canon_proto::canon::raft::v1::raft_transport_server::{RaftTransport, RaftTransportServer};
use canon_proto::canon::raft::v1::RaftMessage;
use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::StreamExt;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Response, Status};

use crate::network::{RpcKind, Transport, TransportError};
use crate::node::{HandleError, NodeInner};
use crate::types::{GroupId, NodeId};

/// Largest message accepted or sent (big append batches, snapshot chunks).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// gRPC client side of [`Transport`].
#[derive(Debug)]
pub struct GrpcTransport {
    connect_timeout: Duration,
    peers: Mutex<HashMap<NodeId, (String, RaftTransportClient<Channel>)>>,
}

impl GrpcTransport {
    /// A transport whose connection attempts give up after `connect_timeout`.
    pub fn new(connect_timeout: Duration) -> Self {
        GrpcTransport {
            connect_timeout,
            peers: Mutex::new(HashMap::new()),
        }
    }

    fn client(
        &self,
        target: NodeId,
        addr: &str,
    ) -> Result<RaftTransportClient<Channel>, TransportError> {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((known, client)) = peers.get(&target) {
            if known == addr {
                return Ok(client.clone());
            }
        }
        let endpoint = Endpoint::from_shared(format!("http://{addr}")).map_err(|e| {
            TransportError::Unreachable {
                target,
                addr: addr.to_string(),
                reason: format!("bad address: {e}"),
            }
        })?;
        let channel = endpoint
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .connect_lazy();
        let client = RaftTransportClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        peers.insert(target, (addr.to_string(), client.clone()));
        Ok(client)
    }
}

impl Transport for GrpcTransport {
    fn call(
        &self,
        target: NodeId,
        addr: &str,
        kind: RpcKind,
        group: GroupId,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>> {
        let client = self.client(target, addr);
        let addr = addr.to_string();
        async move {
            let mut client = client?;
            let mut req = Request::new(RaftMessage { group, payload });
            req.set_timeout(timeout);
            let call = async {
                match kind {
                    RpcKind::AppendEntries => client.append_entries(req).await,
                    RpcKind::Vote => client.vote(req).await,
                    RpcKind::InstallSnapshot => client.install_snapshot(req).await,
                    RpcKind::Propose => client.propose(req).await,
                    RpcKind::ReadIndex => client.read_index(req).await,
                    RpcKind::Admin => client.admin(req).await,
                }
            };
            match tokio::time::timeout(timeout, call).await {
                Err(_) => Err(TransportError::Timeout {
                    target,
                    after: timeout,
                }),
                Ok(Ok(resp)) => Ok(resp.into_inner().payload),
                Ok(Err(status)) => Err(classify(target, &addr, timeout, status)),
            }
        }
        .boxed()
    }
}

fn classify(target: NodeId, addr: &str, timeout: Duration, status: Status) -> TransportError {
    match status.code() {
        // Not connected, or the peer does not (yet) serve this group.
        Code::Unavailable | Code::NotFound => TransportError::Unreachable {
            target,
            addr: addr.to_string(),
            reason: status.message().to_string(),
        },
        Code::DeadlineExceeded | Code::Cancelled => TransportError::Timeout {
            target,
            after: timeout,
        },
        _ => TransportError::Failed {
            target,
            reason: format!("{}: {}", status.code(), status.message()),
        },
    }
}

/// The server side: hands each message to the node's group. Holds the node
/// weakly so that a running server never keeps a stopped node's database
/// open.
#[derive(Debug, Clone)]
pub struct GrpcService {
    node: Weak<NodeInner>,
}

impl GrpcService {
    pub(crate) fn new(node: Weak<NodeInner>) -> Self {
        GrpcService { node }
    }

    /// The tonic service to add to a server.
    pub fn into_server(self) -> RaftTransportServer<GrpcService> {
        RaftTransportServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    async fn dispatch(
        &self,
        kind: RpcKind,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let node = self
            .node
            .upgrade()
            .ok_or_else(|| Status::unavailable("node stopped"))?;
        let msg = req.into_inner();
        match node.handle(kind, msg.group, &msg.payload).await {
            Ok(payload) => Ok(Response::new(RaftMessage {
                group: msg.group,
                payload,
            })),
            Err(e @ HandleError::UnknownGroup(_)) => Err(Status::not_found(e.to_string())),
            Err(e @ HandleError::Stopped) => Err(Status::unavailable(e.to_string())),
            Err(e @ HandleError::BadPayload(_)) => Err(Status::invalid_argument(e.to_string())),
        }
    }
}

#[tonic::async_trait]
impl RaftTransport for GrpcService {
    async fn append_entries(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        self.dispatch(RpcKind::AppendEntries, req).await
    }
    async fn vote(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        self.dispatch(RpcKind::Vote, req).await
    }
    async fn install_snapshot(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        self.dispatch(RpcKind::InstallSnapshot, req).await
    }
    async fn propose(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        self.dispatch(RpcKind::Propose, req).await
    }
    async fn read_index(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        self.dispatch(RpcKind::ReadIndex, req).await
    }
    async fn admin(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        self.dispatch(RpcKind::Admin, req).await
    }
}

/// Serves `service` on `listener` until `shutdown` completes (TCP_NODELAY on
/// every accepted connection: Raft messages are small and latency-bound).
pub async fn serve(
    service: GrpcService,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let incoming = TcpListenerStream::new(listener).map(|conn| {
        if let Ok(stream) = &conn {
            // Best effort: a socket without NODELAY is slower, not wrong.
            let _ = stream.set_nodelay(true);
        }
        conn
    });
    tonic::transport::Server::builder()
        .add_service(service.into_server())
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
