//! gRPC over turmoil's simulated TCP, for running real nodes inside a
//! deterministic simulation: a dialer under the gRPC transport's one call
//! path ([`TurmoilTransport`]), and a server that accepts turmoil
//! connections. Used by this crate's simulation test and by `sim-tests`.

use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::grpc::{Dial, GrpcService, GrpcTransport};
use crate::network::MessageHandler;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;
use tonic::transport::{Channel, Endpoint, Uri};

/// The port every simulated node serves on.
pub const PORT: u16 = 7000;

/// Dials peers over turmoil's simulated TCP.
///
/// Turmoil's TCP never retransmits: a message lost to a partition leaves
/// the HTTP/2 connection on top of it wedged for good. So a call that
/// times out drops the peer's channel, and the next call dials afresh.
#[derive(Debug, Default, Clone, Copy)]
pub struct TurmoilDial;

impl Dial for TurmoilDial {
    fn redial_silence(&self) -> Duration {
        Duration::ZERO
    }

    fn channel(&self, addr: &str) -> Result<Channel, String> {
        let addr = addr.to_string();
        Ok(
            Endpoint::from_static("http://sim.invalid").connect_with_connector_lazy(
                tower::service_fn(move |_: Uri| {
                    let addr = addr.clone();
                    async move {
                        let s = turmoil::net::TcpStream::connect(addr).await?;
                        Ok::<_, std::io::Error>(TokioIo::new(s))
                    }
                }),
            ),
        )
    }
}

/// The Raft transport over turmoil TCP: the gRPC transport's call path,
/// dialing with [`TurmoilDial`].
pub type TurmoilTransport = GrpcTransport<TurmoilDial>;

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
