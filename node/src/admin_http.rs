//! The node's admin HTTP port (`canond --metrics-listen`): an axum router
//! that serves Prometheus `/metrics` and `/healthz`. It is the one HTTP
//! surface a node has apart from gRPC, so whatever else is served over
//! plain HTTP (the web console) hangs off [`admin_router`] too.
//!
//! `/healthz` answers from this node alone, never asking the cluster: a
//! node without quorum is still up, and says so.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use canon_raft::NodeId;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// What the admin routes read.
#[derive(Clone)]
pub struct AdminState {
    pub node: NodeId,
    /// The node's metrics ([`crate::metrics::registry`]).
    pub metrics: Arc<Registry>,
    /// Raised once this node finds it was removed from the cluster.
    pub removed: watch::Receiver<bool>,
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
/// (it refuses clients then, and `canond` is about to exit).
async fn healthz(State(state): State<AdminState>) -> (StatusCode, String) {
    if *state.removed.borrow() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("node {} was removed from the cluster\n", state.node),
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
        let state = AdminState {
            node: 7,
            metrics: Arc::new(registry),
            removed,
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
        set_removed.send(true).unwrap();
        let gone = get(addr, "/healthz").await;
        assert!(gone.starts_with("HTTP/1.1 503"), "{gone}");
        server.abort();
    }
}
