//! The node's admin HTTP port (`canond --metrics-listen`): an axum router
//! that serves Prometheus `/metrics` and `/healthz`. It is the one HTTP
//! surface a node has apart from gRPC, so whatever else is served over
//! plain HTTP (the web console) hangs off [`admin_router`] too.
//!
//! `/healthz` answers from this node alone, never asking the cluster: a
//! node without quorum is still up, and says so. A node one of whose Raft
//! groups stopped on a fatal error (its storage failed: a full disk) is not
//! (503, naming the group and the error): it keeps running but no longer
//! serves that group, and only a failing probe lets a supervisor see it.
//!
//! With the console on a node that has TLS material, the port serves HTTPS
//! with the node's certificate ([`serve_https`]): a browser may present a
//! client certificate of the client CA, which then names the console's
//! reader. The same port still answers plain HTTP, but only `/metrics` and
//! `/healthz` (what it served before, to the same scrapers and probes,
//! unchanged); every other path over plain HTTP is redirected to `https://`.

use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use canon_raft::NodeId;
use canon_tls::server::Conn;
use canon_tls::{NodeTls, PeerIdentity};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

/// What the admin routes read.
#[derive(Clone)]
pub struct AdminState {
    pub node: NodeId,
    /// The node's metrics ([`crate::metrics::registry`]).
    pub metrics: Arc<Registry>,
    /// Raised once this node finds it was removed from the cluster.
    pub removed: watch::Receiver<bool>,
    /// This node's Raft groups that stopped on a fatal error, each with
    /// the error ([`stopped_groups`] in a node).
    pub stopped: Arc<dyn Fn() -> Vec<String> + Send + Sync>,
}

/// The groups of `node` that stopped on a fatal error, each as
/// `group N: error`, from their Raft metrics.
pub fn stopped_groups(node: &canon_raft::RaftNode) -> Vec<String> {
    node.groups()
        .into_iter()
        .filter_map(|g| {
            let metrics = node.metrics(g).ok()?;
            let state = metrics.borrow().running_state.clone();
            state.err().map(|e| format!("group {g}: {e}"))
        })
        .collect()
}

/// The admin port's routes.
pub fn admin_router(state: AdminState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(state)
}

async fn metrics(State(state): State<AdminState>) -> Response {
    match crate::metrics::render(&state.metrics) {
        Ok(page) => ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], page).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot render the metrics: {e}\n"),
        )
            .into_response(),
    }
}

/// 200 while the node serves; 503 once it was removed from the cluster
/// (it refuses clients then, and `canond` is about to exit), or while one
/// of its Raft groups is stopped on a fatal error.
async fn healthz(State(state): State<AdminState>) -> (StatusCode, String) {
    if *state.removed.borrow() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("node {} was removed from the cluster\n", state.node),
        );
    }
    let stopped = (state.stopped)();
    if !stopped.is_empty() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "node {} has stopped Raft groups (restart it once the cause is fixed): {}\n",
                state.node,
                stopped.join("; ")
            ),
        );
    }
    (StatusCode::OK, format!("ok: node {}\n", state.node))
}

/// Serves `router` on `listener` until the task is aborted.
pub fn serve(listener: TcpListener, router: Router) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "the admin HTTP port stopped");
        }
    })
}

/// The paths a plain-HTTP connection reaches on an HTTPS admin port: what
/// scrapers and probes ask for, which carry no one's data.
const PLAIN_PATHS: [&str; 2] = ["/metrics", "/healthz"];

/// Who an admin-port request's connection is from, when the port serves
/// HTTPS ([`serve_https`]); in the request's extensions as
/// `ConnectInfo<AdminConn>`.
#[derive(Debug, Clone)]
pub struct AdminConn {
    /// Encrypted (a plain HTTP client otherwise).
    pub tls: bool,
    /// The client certificate's holder, verified against the client CA
    /// ([`PeerIdentity::Plain`]: none presented).
    pub peer: Arc<PeerIdentity>,
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, HttpsListener>>
    for AdminConn
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, HttpsListener>) -> Self {
        let conn = stream.io();
        AdminConn {
            tls: conn.is_tls(),
            peer: conn.info().peer.clone(),
        }
    }
}

/// The admin port's connections, TLS or plain ([`canon_tls::server::incoming_https`]).
pub struct HttpsListener {
    conns: ReceiverStream<Result<Conn, std::io::Error>>,
    local: std::net::SocketAddr,
}

impl axum::serve::Listener for HttpsListener {
    type Io = Conn;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Conn, std::net::SocketAddr) {
        loop {
            match self.conns.next().await {
                Some(Ok(conn)) => {
                    let remote = conn.info().remote.unwrap_or(self.local);
                    return (conn, remote);
                }
                // The accepting task logs its own failures and sends none.
                Some(Err(e)) => tracing::warn!(error = %e, "admin port: a connection failed"),
                // The accepting task is gone: serve what is open, take no more.
                None => std::future::pending::<()>().await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        Ok(self.local)
    }
}

/// Over plain HTTP on an HTTPS port: [`PLAIN_PATHS`] pass; anything else
/// is redirected to the same path over `https://` (the Host the client
/// asked for), so a console visit is never served in the clear.
async fn plain_http_guard(
    ConnectInfo(conn): ConnectInfo<AdminConn>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if conn.tls || PLAIN_PATHS.contains(&path) {
        return next.run(request).await;
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && !h.contains(['/', '\\', ' ', '@']));
    let Some(host) = host else {
        return (
            StatusCode::BAD_REQUEST,
            "this port serves HTTPS: use https://\n",
        )
            .into_response();
    };
    let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
    Redirect::permanent(&format!("https://{host}{target}")).into_response()
}

/// Serves `router` on `listener` with `tls` until the task is aborted:
/// HTTPS, and plain HTTP for [`PLAIN_PATHS`] only (see the module's doc).
pub fn serve_https(
    listener: TcpListener,
    router: Router,
    tls: Arc<NodeTls>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let local = listener.local_addr()?;
    let listener = HttpsListener {
        conns: canon_tls::server::incoming_https(listener, tls),
        local,
    };
    let app = router
        .layer(axum::middleware::from_fn(plain_http_guard))
        .into_make_service_with_connect_info::<AdminConn>();
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the admin HTTPS port stopped");
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One request over a real socket; the status line and body.
    async fn get(addr: std::net::SocketAddr, path: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn healthz_and_metrics_answer_and_other_paths_are_not_found() {
        let api = crate::metrics::ApiMetrics::default();
        api.call("status");
        let mut registry = Registry::default();
        api.register(&mut registry);
        let (set_removed, removed) = watch::channel(false);
        let stopped = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let read = stopped.clone();
        let state = AdminState {
            node: 7,
            metrics: Arc::new(registry),
            removed,
            stopped: Arc::new(move || read.lock().unwrap().clone()),
        };
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = serve(l, admin_router(state));
        let health = get(addr, "/healthz").await;
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");
        assert!(health.ends_with("ok: node 7\n"), "{health}");
        let page = get(addr, "/metrics").await;
        assert!(page.starts_with("HTTP/1.1 200"), "{page}");
        assert!(page.contains("text/plain; version=0.0.4"), "{page}");
        assert!(
            page.contains("canon_api_calls_total{action=\"status\"} 1"),
            "{page}"
        );
        assert!(get(addr, "/nothing").await.starts_with("HTTP/1.1 404"));
        // A group stopped on a fatal error (its storage failed): unhealthy,
        // naming it.
        stopped
            .lock()
            .unwrap()
            .push("group 3: storage error: No space left on device".into());
        let sick = get(addr, "/healthz").await;
        assert!(sick.starts_with("HTTP/1.1 503"), "{sick}");
        assert!(
            sick.contains("group 3: storage error: No space left"),
            "{sick}"
        );
        stopped.lock().unwrap().clear();
        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
        set_removed.send(true).unwrap();
        let gone = get(addr, "/healthz").await;
        assert!(gone.starts_with("HTTP/1.1 503"), "{gone}");
        server.abort();
    }
}
