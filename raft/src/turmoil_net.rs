//! gRPC over turmoil's simulated TCP, for running real nodes inside a
//! deterministic simulation: the Raft transport's client side (one lazily
//! connected channel per peer, every call bounded by a timeout — turmoil's
//! TCP never retransmits) and a server that accepts turmoil connections.
//! Used by this crate's simulation test and by `sim-tests`.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::grpc::{send_batch, BatchEnd, GrpcService};
use crate::network::{BatchItem, MessageHandler, RpcKind, Transport, TransportError};
use crate::{GroupId, NodeId};
use canon_proto::canon::raft::v1::raft_transport_client::RaftTransportClient;
use canon_proto::canon::raft::v1::RaftMessage;
use futures::future::BoxFuture;
use futures::FutureExt;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;
use tonic::transport::{Channel, Endpoint, Uri};

/// The port every simulated node serves on.
pub const PORT: u16 = 7000;

/// The Raft transport over turmoil TCP.
///
/// Turmoil's TCP never retransmits: a message lost to a partition leaves
/// the HTTP/2 connection on top of it wedged for good. So a call that
/// times out or fails to connect drops the peer's channel, and the next
/// call dials afresh.
#[derive(Default)]
pub struct TurmoilTransport {
    peers: std::sync::Arc<Mutex<BTreeMap<NodeId, Channel>>>,
}

impl TurmoilTransport {
    fn channel(&self, target: NodeId, addr: &str) -> Channel {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        peers
            .entry(target)
            .or_insert_with(|| {
                let addr = addr.to_string();
                Endpoint::from_static("http://sim.invalid").connect_with_connector_lazy(
                    tower::service_fn(move |_: Uri| {
                        let addr = addr.clone();
                        async move {
                            let s = turmoil::net::TcpStream::connect(addr).await?;
                            Ok::<_, std::io::Error>(TokioIo::new(s))
                        }
                    }),
                )
            })
            .clone()
    }
}

impl TurmoilTransport {
    /// Drops `target`'s channel (a call timed out: the connection may be
    /// wedged), so that the next call dials afresh.
    fn forgetter(&self, target: NodeId) -> impl FnOnce() + Send + 'static {
        let peers = self.peers.clone();
        move || {
            peers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&target);
        }
    }
}

impl Transport for TurmoilTransport {
    fn call_batch(
        &self,
        target: NodeId,
        addr: &str,
        items: Vec<BatchItem>,
    ) -> BoxFuture<'static, ()> {
        let client = RaftTransportClient::new(self.channel(target, addr));
        let addr = addr.to_string();
        let forget = self.forgetter(target);
        async move {
            if let BatchEnd::Failed(TransportError::Timeout { .. }) =
                send_batch(client, target, &addr, items).await
            {
                forget();
            }
        }
        .boxed()
    }

    fn call(
        &self,
        target: NodeId,
        addr: &str,
        kind: RpcKind,
        group: GroupId,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>> {
        let mut client = RaftTransportClient::new(self.channel(target, addr));
        let addr = addr.to_string();
        let forget = self.forgetter(target);
        async move {
            let req = tonic::Request::new(RaftMessage { group, payload });
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
                Err(_) => {
                    forget();
                    Err(TransportError::Timeout {
                        target,
                        after: timeout,
                    })
                }
                Ok(Ok(r)) => Ok(r.into_inner().payload),
                Ok(Err(s))
                    if matches!(s.code(), tonic::Code::Unavailable | tonic::Code::NotFound) =>
                {
                    Err(TransportError::Unreachable {
                        target,
                        addr,
                        reason: s.message().to_string(),
                    })
                }
                Ok(Err(s)) => Err(TransportError::Failed {
                    target,
                    reason: s.to_string(),
                }),
            }
        }
        .boxed()
    }
}

/// A turmoil TCP stream, as tonic's server wants it.
pub struct SimStream(turmoil::net::TcpStream);

impl Connected for SimStream {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for SimStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// The connections accepted on this host's [`PORT`], for tonic's
/// `serve_with_incoming` — so a host can serve other services (the client
/// API in whole-cluster simulations) beside Raft's on the same port.
pub async fn incoming() -> std::io::Result<impl futures::Stream<Item = std::io::Result<SimStream>>>
{
    let listener = turmoil::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, PORT)).await?;
    Ok(futures::stream::unfold(listener, |l| async move {
        let conn = l.accept().await.map(|(s, _): (_, SocketAddr)| SimStream(s));
        Some((conn, l))
    }))
}

/// Serves a node's Raft service on turmoil TCP until the host stops.
pub async fn serve<H: MessageHandler>(
    service: GrpcService<H>,
) -> Result<(), Box<dyn std::error::Error>> {
    let incoming = incoming().await?;
    tonic::transport::Server::builder()
        .add_service(service.into_server())
        .serve_with_incoming(incoming)
        .await?;
    Ok(())
}
