//! A node's TLS. One port serves peers (the Raft transport, node-to-node
//! API calls) and clients (the CLI and SDK), so the handshake accepts a
//! certificate signed by either CA, and each connection is then told apart
//! once: a certificate that the peer CA alone verifies, naming
//! `canon://CLUSTER/node/ID`, is that node; one the client CA signed is a
//! client. Services decide what each may call ([`ConnInfo`] rides in every
//! request's extensions). Dialing peers, a node presents its own
//! certificate and trusts only the peer CA.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::files::{read_certs, read_key, read_text};
use crate::identity::{fingerprint, CertInfo, PeerIdentity};
use crate::TlsError;

/// Bound on one TLS handshake: a client that stalls is dropped.
const HANDSHAKE_WITHIN: Duration = Duration::from_secs(10);
/// Connections accepted but not yet served, at most.
const BACKLOG: usize = 64;

/// Where a node's TLS material is (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTlsFiles {
    /// This node's certificate (signed by the peer CA; names
    /// `canon://CLUSTER/node/ID` and the hosts it is reached at).
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CA of node certificates: the only one peers are trusted by.
    pub peer_ca: PathBuf,
    /// The CA of client certificates.
    pub client_ca: PathBuf,
}

/// A node's TLS, loaded and checked.
pub struct NodeTls {
    acceptor: TlsAcceptor,
    /// Verifies against the peer CA alone: tells nodes from clients.
    peers: Arc<dyn ClientCertVerifier>,
    dial: ClientTlsConfig,
    /// The cluster this node's certificate names.
    pub cluster: String,
}

impl std::fmt::Debug for NodeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeTls")
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

fn roots(
    certs: &[CertificateDer<'static>],
    path: &std::path::Path,
) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for c in certs {
        store.add(c.clone()).map_err(|e| TlsError::Read {
            path: path.display().to_string(),
            reason: format!("not a usable CA certificate: {e}"),
        })?;
    }
    Ok(store)
}

fn verifier(store: RootCertStore) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    WebPkiClientVerifier::builder_with_provider(Arc::new(store), crate::provider())
        .build()
        .map_err(|e| TlsError::Invalid(format!("cannot verify client certificates: {e}")))
}

impl NodeTls {
    /// Loads `files` for node `node` of `cluster`, and checks that the
    /// node's certificate is the peer CA's and names this very node.
    pub fn load(files: &NodeTlsFiles, cluster: &str, node: u64) -> Result<NodeTls, TlsError> {
        let chain = read_certs(&files.cert)?;
        let key = read_key(&files.key)?;
        let peer_ca = read_certs(&files.peer_ca)?;
        let client_ca = read_certs(&files.client_ca)?;
        let peers = verifier(roots(&peer_ca, &files.peer_ca)?)?;
        let mut both = roots(&peer_ca, &files.peer_ca)?;
        both.roots
            .extend(roots(&client_ca, &files.client_ca)?.roots);
        let shown = files.cert.display();
        let (leaf, rest) = chain
            .split_first()
            .ok_or_else(|| TlsError::Invalid(format!("{shown} holds no certificate")))?;
        peers
            .verify_client_cert(leaf, rest, UnixTime::now())
            .map_err(|e| {
                TlsError::Invalid(format!(
                    "{shown} is not a node certificate of the peer CA {}: {}",
                    files.peer_ca.display(),
                    crate::explain::rustls_reason(&e)
                ))
            })?;
        let info = CertInfo::from_der(leaf)?;
        if info.node() != Some((cluster.to_string(), node)) {
            return Err(TlsError::Invalid(format!(
                "{shown} names {}, not node {node} of cluster {cluster:?} ({}); make this node's \
                 certificate with `canon cert create-node {node} HOST… --cluster {cluster}`",
                info.uris.first().map_or("no node", String::as_str),
                crate::identity::node_uri(cluster, node),
            )));
        }
        let mut server = ServerConfig::builder_with_provider(crate::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Invalid(e.to_string()))?
            .with_client_cert_verifier(verifier(both)?)
            .with_single_cert(chain.clone(), key)
            .map_err(|e| TlsError::Invalid(format!("{}: {e}", files.key.display())))?;
        server.alpn_protocols = vec![b"h2".to_vec()];
        let dial = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read_text(&files.peer_ca)?))
            .identity(Identity::from_pem(
                read_text(&files.cert)?,
                read_text(&files.key)?,
            ));
        Ok(NodeTls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            peers,
            dial,
            cluster: cluster.to_string(),
        })
    }

    /// How this node dials its peers: its own certificate, the peer CA.
    pub fn dial_config(&self) -> ClientTlsConfig {
        self.dial.clone()
    }

    /// Who presented `certs` (already verified by the handshake against
    /// the peer or the client CA).
    pub fn classify(&self, certs: &[CertificateDer<'_>]) -> PeerIdentity {
        let Some((leaf, rest)) = certs.split_first() else {
            return PeerIdentity::Plain;
        };
        let print = fingerprint(leaf);
        let info = CertInfo::from_der(leaf).ok();
        let subject = info
            .as_ref()
            .map_or_else(String::new, |i| i.subject.clone());
        let by_peer_ca = self
            .peers
            .verify_client_cert(leaf, rest, UnixTime::now())
            .is_ok();
        if !by_peer_ca {
            return PeerIdentity::Client {
                name: subject,
                fingerprint: print,
            };
        }
        match info.and_then(|i| i.node()) {
            Some((cluster, id)) => PeerIdentity::Node {
                cluster,
                id,
                fingerprint: print,
            },
            None => PeerIdentity::Unnamed {
                subject,
                fingerprint: print,
            },
        }
    }
}

/// Who a request's connection is from; in every request's extensions when
/// the server serves [`incoming`].
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub remote: Option<SocketAddr>,
    pub peer: Arc<PeerIdentity>,
}

impl ConnInfo {
    /// The connection of `request`, if it came through [`incoming`].
    pub fn of<T>(request: &tonic::Request<T>) -> Option<&ConnInfo> {
        request.extensions().get::<ConnInfo>()
    }

    /// The remote address, or `unknown`, for log lines.
    pub fn remote_text(&self) -> String {
        self.remote
            .map_or_else(|| "unknown".to_string(), |a| a.to_string())
    }
}

enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// One accepted connection, TLS or not, and who it is from.
pub struct Conn {
    io: Io,
    info: ConnInfo,
}

impl Connected for Conn {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The connections `listener` accepts, with TLS if `tls` is given
/// (handshakes run concurrently; a failed one is a WARN line naming the
/// remote address and what was wrong, and the connection is dropped).
/// Accepting stops when the stream is dropped.
pub fn incoming(
    listener: TcpListener,
    tls: Option<Arc<NodeTls>>,
) -> ReceiverStream<Result<Conn, std::io::Error>> {
    let (tx, rx) = mpsc::channel(BACKLOG);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = tx.closed() => break,
                a = listener.accept() => a,
            };
            let (stream, remote) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: wait, go on.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Best effort: a socket without NODELAY is slower, not wrong.
            let _ = stream.set_nodelay(true);
            let Some(tls) = tls.clone() else {
                let conn = Conn {
                    io: Io::Plain(stream),
                    info: ConnInfo {
                        remote: Some(remote),
                        peer: Arc::new(PeerIdentity::Plain),
                    },
                };
                if tx.send(Ok(conn)).await.is_err() {
                    break;
                }
                continue;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                if let Some(conn) = handshake(&tls, stream, remote).await {
                    // The server stopped meanwhile: nothing to serve.
                    let _ = tx.send(Ok(conn)).await;
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// Closes a refused connection gently: our side first, then whatever the
/// client still sends is read and dropped for a moment. Closing a socket
/// with unread input resets it, and a reset can overtake the alert that
/// tells the client why (with TLS 1.3 a client learns of a refused
/// certificate only after it has sent its first request).
async fn linger(mut tcp: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Best effort throughout: the connection is being dropped anyway.
    let _ = tcp.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(LINGER, async {
        while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// How long a refused connection is drained before it is dropped.
const LINGER: Duration = Duration::from_secs(2);

async fn handshake(tls: &NodeTls, stream: TcpStream, remote: SocketAddr) -> Option<Conn> {
    let accept = tls.acceptor.accept(stream).into_fallible();
    let stream = match tokio::time::timeout(HANDSHAKE_WITHIN, accept).await {
        Ok(Ok(s)) => s,
        Ok(Err((e, tcp))) => {
            tracing::warn!(
                peer = %remote,
                reason = %crate::explain::server_handshake(&e),
                "TLS handshake from {remote} failed; connection refused"
            );
            tokio::spawn(linger(tcp));
            return None;
        }
        Err(_) => {
            tracing::warn!(peer = %remote, "TLS handshake from {remote} did not finish within {HANDSHAKE_WITHIN:?}; connection dropped");
            return None;
        }
    };
    let peer = stream
        .get_ref()
        .1
        .peer_certificates()
        .map_or(PeerIdentity::Plain, |c| tls.classify(c));
    Some(Conn {
        io: Io::Tls(Box::new(stream)),
        info: ConnInfo {
            remote: Some(remote),
            peer: Arc::new(peer),
        },
    })
}
