//! The client API over turmoil's simulated TCP: each node host serves its
//! Raft transport and the real `canon_node::api::Api` on one port, and the
//! client host reaches them through tonic channels dialled over turmoil.
//!
//! Turmoil's TCP never retransmits, so a lost segment wedges the HTTP/2
//! connection above it: every channel here bounds each call with a timeout,
//! and the workload builds fresh channels for each operation.

use std::time::Duration;

use canon_client::{Client, ClientError, Signer};
use canon_node::api::Api;
use canon_raft::turmoil_net::PORT;
use canon_raft::RaftGrpcService;
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

/// The bound on one API call from the client host.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(2500);

/// Serves a node's Raft transport and client API on turmoil TCP until the
/// host stops.
pub async fn serve_node(raft: RaftGrpcService, api: Api) -> Result<(), Box<dyn std::error::Error>> {
    let incoming = canon_raft::turmoil_net::incoming().await?;
    tonic::transport::Server::builder()
        .add_service(raft.into_server())
        .add_service(api.into_server())
        .serve_with_incoming(incoming)
        .await?;
    Ok(())
}

/// A lazily dialled channel to `host`'s API, every call bounded by
/// [`CALL_TIMEOUT`].
pub fn api_channel(host: &str) -> Channel {
    dial(format!("{host}:{PORT}"))
}

/// An SDK client of the simulated cluster signing as `signer`, with fresh
/// channels to `hosts`' APIs, tried in that order.
pub fn sdk_client(hosts: Vec<String>, signer: Signer) -> Result<Client, ClientError> {
    let channels = hosts.iter().map(|h| api_channel(h)).collect();
    Ok(Client::from_channels(hosts, channels)?
        .with_signer(signer)
        .with_audience(crate::cluster::CLUSTER_ID))
}

/// How a node's API reaches its peers' (cluster status asks every member).
pub fn peer_dialer() -> canon_node::cluster::PeerDialer {
    std::sync::Arc::new(|addr: &str| Ok(dial(addr.to_string())))
}

fn dial(addr: String) -> Channel {
    Endpoint::from_static("http://sim.invalid")
        .timeout(CALL_TIMEOUT)
        .connect_timeout(Duration::from_millis(500))
        .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
            let addr = addr.clone();
            async move {
                let s = turmoil::net::TcpStream::connect(addr).await?;
                Ok::<_, std::io::Error>(TokioIo::new(s))
            }
        }))
}
