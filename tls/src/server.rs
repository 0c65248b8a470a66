//! A node's TLS. One port serves peers (the Raft transport, node-to-node
//! API calls) and clients (the CLI and SDK), so the handshake accepts a
//! certificate signed by either CA, and each connection is then told apart
//! once: a certificate that the peer CA alone verifies, naming
//! `canon://CLUSTER/node/ID`, is that node; one the client CA signed is a
//! client. Services decide what each may call ([`ConnInfo`] rides in every
//! request's extensions). Dialing peers, a node presents its own
//! certificate and trusts only the peer CA.
//!
//! The admin port (metrics, health, the web console) can be served with
//! the same certificate ([`incoming_https`]): there a client certificate is
//! optional and only the client CA's is accepted, and a connection that
//! does not open with a TLS handshake is served as plain HTTP, for the
//! server to decide what it may reach.

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
    /// The admin port's (HTTPS): a client certificate is optional and, if
    /// given, must be the client CA's.
    https: TlsAcceptor,
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

/// The admin port's TLS settings: this node's certificate; a client
/// certificate optional (browsers without one log in with a signed link)
/// and, when presented, verified against the client CA alone (a node's
/// certificate is no user's); HTTP/1.1.
fn https_config(
    chain: Vec<CertificateDer<'static>>,
    key: rustls_pki_types::PrivateKeyDer<'static>,
    client_ca: &[CertificateDer<'static>],
    files: &NodeTlsFiles,
) -> Result<ServerConfig, TlsError> {
    let users = WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots(client_ca, &files.client_ca)?),
        crate::provider(),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| TlsError::Invalid(format!("cannot verify client certificates: {e}")))?;
    let mut config = ServerConfig::builder_with_provider(crate::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Invalid(e.to_string()))?
        .with_client_cert_verifier(users)
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Invalid(format!("{}: {e}", files.key.display())))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
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
        let https = https_config(chain.clone(), key.clone_key(), &client_ca, files)?;
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
            https: TlsAcceptor::from(Arc::new(https)),
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

impl Conn {
    /// A connection served without TLS.
    fn plain(stream: TcpStream, remote: SocketAddr) -> Conn {
        Conn {
            io: Io::Plain(stream),
            info: ConnInfo {
                remote: Some(remote),
                peer: Arc::new(PeerIdentity::Plain),
            },
        }
    }

    /// Whether the connection is encrypted (on an [`incoming_https`] port a
    /// plain one is a plain HTTP client).
    pub fn is_tls(&self) -> bool {
        matches!(self.io, Io::Tls(_))
    }

    /// Who the connection is from.
    pub fn info(&self) -> &ConnInfo {
        &self.info
    }
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
    accept_each(listener, move |stream, remote| {
        let tls = tls.clone();
        async move {
            match tls {
                Some(tls) => handshake(&tls.acceptor, &tls, stream, remote).await,
                None => Some(Conn::plain(stream, remote)),
            }
        }
    })
}

/// The connections of an admin port served with this node's TLS: a
/// connection that opens with a TLS handshake gets one (a client
/// certificate optional, the client CA's if given: see
/// [`Conn::is_tls`] and [`Conn::info`]); one that opens with anything else
/// is served as plain HTTP (so that Prometheus and health probes keep
/// working unchanged; what is served over it is the server's choice). A
/// connection that sends nothing within the handshake bound is dropped.
pub fn incoming_https(
    listener: TcpListener,
    tls: Arc<NodeTls>,
) -> ReceiverStream<Result<Conn, std::io::Error>> {
    accept_each(listener, move |stream, remote| {
        let tls = tls.clone();
        async move {
            let mut first = [0u8; 1];
            match tokio::time::timeout(HANDSHAKE_WITHIN, stream.peek(&mut first)).await {
                Ok(Ok(1)) if first[0] == TLS_HANDSHAKE_RECORD => {
                    handshake(&tls.https, &tls, stream, remote).await
                }
                Ok(Ok(1)) => Some(Conn::plain(stream, remote)),
                // Closed, failed or silent: nothing to serve.
                _ => None,
            }
        }
    })
}

/// The first byte of every TLS connection (a handshake record); no HTTP
/// request starts with it.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Accepts on `listener`, turning each connection into a [`Conn`] with
/// `open` in a task of its own (so a slow client holds up no one); none:
/// refused. Accepting stops when the stream is dropped.
fn accept_each<F, Fut>(
    listener: TcpListener,
    open: F,
) -> ReceiverStream<Result<Conn, std::io::Error>>
where
    F: Fn(TcpStream, SocketAddr) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Option<Conn>> + Send + 'static,
{
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
            let (tx, opened) = (tx.clone(), open(stream, remote));
            tokio::spawn(async move {
                if let Some(conn) = opened.await {
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

/// The TLS side of a connection `acceptor` takes, its peer told apart by
/// `tls`; none (and a WARN line) when the handshake fails.
async fn handshake(
    acceptor: &TlsAcceptor,
    tls: &NodeTls,
    stream: TcpStream,
    remote: SocketAddr,
) -> Option<Conn> {
    let accept = acceptor.accept(stream).into_fallible();
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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::SystemTime;

    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{PrivateKeyDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_stream::StreamExt;

    use super::*;
    use crate::issue::{new_ca, Ca, CaKind, Issued};

    /// A node's TLS files in a temporary directory, and its two CAs.
    struct Material {
        _dir: tempfile::TempDir,
        files: NodeTlsFiles,
        peer: Ca,
        client: Ca,
    }

    fn material() -> Material {
        crate::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let peer_ca = new_ca(CaKind::Peer, 10).unwrap();
        let client_ca = new_ca(CaKind::Client, 10).unwrap();
        let peer = Ca::from_pem(&peer_ca.cert_pem, &peer_ca.key_pem, dir.path()).unwrap();
        let client = Ca::from_pem(&client_ca.cert_pem, &client_ca.key_pem, dir.path()).unwrap();
        let node = peer.node("prod", 1, &["127.0.0.1".into()], 1).unwrap();
        let files = NodeTlsFiles {
            cert: write("node.crt", &node.cert_pem),
            key: write("node.key", &node.key_pem),
            peer_ca: write("peer.crt", &peer_ca.cert_pem),
            client_ca: write("client.crt", &client_ca.cert_pem),
        };
        Material {
            _dir: dir,
            files,
            peer,
            client,
        }
    }

    /// A browser's TLS: trusts the peer CA, presents `cert` if given.
    fn browser(m: &Material, cert: Option<&Issued>) -> tokio_rustls::TlsConnector {
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&m.files.peer_ca).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(crate::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = match cert {
            Some(c) => {
                let chain = vec![CertificateDer::from_pem_slice(c.cert_pem.as_bytes()).unwrap()];
                let key = PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes()).unwrap();
                config.with_client_auth_cert(chain, key).unwrap()
            }
            None => config.with_no_client_auth(),
        };
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }

    /// Connects to `addr` with `tls` (plain without), says hello and
    /// reads the answer: the bytes read, or the error.
    async fn visit(
        addr: SocketAddr,
        tls: Option<tokio_rustls::TlsConnector>,
    ) -> Result<Vec<u8>, String> {
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        let Some(tls) = tls else {
            let mut tcp = tcp;
            tcp.write_all(b"GET / HTTP/1.1\r\n\r\n")
                .await
                .map_err(|e| e.to_string())?;
            tcp.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
            return Ok(out);
        };
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let mut s = tls.connect(name, tcp).await.map_err(|e| e.to_string())?;
        s.write_all(b"hello").await.map_err(|e| e.to_string())?;
        s.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// The connection `incoming_https` yields for one visit with `tls`
    /// (none: it was refused), and what the visitor read.
    async fn one_visit(
        conns: &mut ReceiverStream<Result<Conn, std::io::Error>>,
        addr: SocketAddr,
        tls: Option<tokio_rustls::TlsConnector>,
    ) -> (Option<Conn>, Result<Vec<u8>, String>) {
        let visitor = tokio::spawn(visit(addr, tls));
        let conn = match tokio::time::timeout(Duration::from_secs(3), conns.next()).await {
            Ok(Some(Ok(mut conn))) => {
                let mut said = [0u8; 5];
                conn.read_exact(&mut said).await.unwrap();
                conn.write_all(b"bye").await.unwrap();
                conn.shutdown().await.unwrap();
                Some(conn)
            }
            _ => None,
        };
        (conn, visitor.await.unwrap())
    }

    #[tokio::test]
    async fn the_https_port_knows_client_certificates_and_serves_plain_http_too() {
        let m = material();
        let tls = Arc::new(NodeTls::load(&m.files, "prod", 1).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut conns = incoming_https(listener, tls);

        let (conn, _) = one_visit(&mut conns, addr, None).await;
        let conn = conn.expect("plain HTTP is served");
        assert!(!conn.is_tls());
        assert_eq!(*conn.info().peer, PeerIdentity::Plain);

        let (conn, read) = one_visit(&mut conns, addr, Some(browser(&m, None))).await;
        let conn = conn.expect("a certificate is optional");
        assert!(conn.is_tls());
        assert_eq!(*conn.info().peer, PeerIdentity::Plain);
        assert_eq!(read.unwrap(), b"bye");

        let alice = m.client.client("alice", 1).unwrap();
        let (conn, read) = one_visit(&mut conns, addr, Some(browser(&m, Some(&alice)))).await;
        let conn = conn.expect("the client CA's certificate is taken");
        assert!(
            matches!(&*conn.info().peer, PeerIdentity::Client { name, .. } if name == "alice"),
            "{:?}",
            conn.info().peer
        );
        assert_eq!(read.unwrap(), b"bye");

        // Refused at the handshake: expired, not yet valid, a node's (the
        // peer CA is no user's), another client CA's.
        let day = Duration::from_secs(86_400);
        let now = SystemTime::now();
        let expired = m
            .client
            .client_valid("alice", now - 3 * day, now - day)
            .unwrap();
        let early = m
            .client
            .client_valid("alice", now + day, now + 3 * day)
            .unwrap();
        let node = m.peer.node("prod", 2, &["127.0.0.1".into()], 1).unwrap();
        let other_ca = new_ca(CaKind::Client, 1).unwrap();
        let other = Ca::from_pem(&other_ca.cert_pem, &other_ca.key_pem, Path::new("o"))
            .unwrap()
            .client("alice", 1)
            .unwrap();
        for (what, cert) in [
            ("expired", expired),
            ("not yet valid", early),
            ("a node's", node),
            ("another CA's", other),
        ] {
            let (conn, read) = one_visit(&mut conns, addr, Some(browser(&m, Some(&cert)))).await;
            assert!(conn.is_none(), "{what}: served");
            assert!(
                !matches!(&read, Ok(bytes) if bytes == b"bye"),
                "{what}: {read:?}"
            );
        }
    }
}
