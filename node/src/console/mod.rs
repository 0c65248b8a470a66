//! The web console: a read-only page served on the node's admin port
//! (`canond --console`, on in `canon dev`), with JSON endpoints and one
//! server-sent-events stream of jobs, process states and drift.
//!
//! It holds no data of its own: every answer comes from the client API's
//! own handlers (Status, History, ClusterStatus, Events) called in
//! process, so the console shows exactly what the CLI would, to the same
//! people. When the node requires signed reads, a visit starts at
//! `/login?…` with a read token `canon console --open` signs for the
//! method `Console`; the signer's session cookie then carries every read
//! (see `sessions` and `api::console_door`), and the policy decides what
//! each one sees. Over HTTPS (`canond --console-tls`, on by default with
//! TLS), a browser may present a client certificate of the client CA
//! instead: each request then reads as the user the certificate names
//! (`api::console_door`), no session needed; without one, the signed link
//! works as over HTTP. The page is embedded in the binary (`page.html`): no
//! build step, no external asset.
//!
//! Routes: `/` (the page), `/login`, `/api/processes` (every row, or
//! `?page_size=N&page_token=T` for one page in alias order and the next
//! page's token, as `canon status` pages),
//! `/api/processes/{alias}`, `/api/processes/{alias}/graph.svg|graph.json`,
//! `/api/cluster`, `/api/events` (SSE; a connection starts with a
//! `snapshot`: the first page of processes; event ids are the stream's position, one
//! Raft applied index per group, so a reconnect with `Last-Event-ID`
//! resumes with the events it missed, or a fresh snapshot after a gap;
//! keep-alives every 15 s).

mod json;
mod sessions;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use canon_graph::{to_json, to_svg, Graph};
use canon_proto::canon::api::v1 as pb;
use canon_proto::canon::api::v1::canon_server::Canon as _;
use canon_tls::PeerIdentity;
use serde_json::Value;
use tokio_stream::{self as stream, Stream, StreamExt};
use tonic::{Code, Request};

use crate::admin_http::AdminConn;
use crate::api::console_door::{ConsoleReader, LoginToken};
use crate::api::Api;
pub use sessions::{Sessions, SESSION_TTL};

/// The session cookie's name.
const COOKIE: &str = "canon_console";

/// The page, embedded.
const PAGE: &str = include_str!("page.html");

/// What the console reads through.
#[derive(Clone)]
pub struct ConsoleState {
    pub api: Api,
    pub sessions: Arc<Sessions>,
}

/// The console's routes, to merge into the admin router.
pub fn console_router(state: ConsoleState) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/login", get(login))
        .route("/api/processes", get(processes))
        .route("/api/processes/{alias}", get(process))
        .route("/api/processes/{alias}/graph.svg", get(graph_svg))
        .route("/api/processes/{alias}/graph.json", get(graph_json))
        .route("/api/cluster", get(cluster))
        .route("/api/events", get(events))
        .with_state(state)
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// A failed read, as the page shows it: the API's own message, with the
/// HTTP status its gRPC code means.
struct Failure(tonic::Status);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let code = match self.0.code() {
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::InvalidArgument => StatusCode::BAD_REQUEST,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = serde_json::json!({ "error": self.0.message() });
        (code, axum::Json(body)).into_response()
    }
}

impl From<tonic::Status> for Failure {
    fn from(s: tonic::Status) -> Self {
        Failure(s)
    }
}

/// `/login?user=…&key_id=…&audience=…&timestamp=…&signature=…`: checks the
/// token, opens a session, and sends the browser to the page.
async fn login(State(s): State<ConsoleState>, Query(token): Query<LoginToken>) -> Response {
    match s.api.console_login(&token).await {
        Ok(reader) => {
            let user = reader.user().to_string();
            let id = s.sessions.open(reader);
            tracing::info!(user, "console session opened");
            let cookie = format!(
                "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
                SESSION_TTL.as_secs()
            );
            ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
        }
        Err(status) => Failure(status).into_response(),
    }
}

/// The session's signer named by the request's cookie, if any.
fn session(s: &ConsoleState, headers: &HeaderMap) -> Option<ConsoleReader> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .find_map(|id| s.sessions.reader(id))
}

/// Who a console request reads as: over HTTPS with a client certificate,
/// its holder (a user of the policy, or the request is refused); else the
/// session's signer named by the cookie; else no one (an unsigned read).
struct Visitor(Option<ConsoleReader>);

impl FromRequestParts<ConsoleState> for Visitor {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, s: &ConsoleState) -> Result<Self, Failure> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<AdminConn>>()
            .map(|c| c.0.peer.clone());
        match peer.as_deref() {
            Some(PeerIdentity::Client { name, fingerprint }) => {
                let reader = s.api.console_cert_reader(name, fingerprint).await?;
                Ok(Visitor(Some(reader)))
            }
            // Only where the client CA is the peer CA too.
            Some(other @ (PeerIdentity::Node { .. } | PeerIdentity::Unnamed { .. })) => {
                Err(Failure(tonic::Status::permission_denied(format!(
                    "{} names no user: use a client certificate (canon cert create-client)",
                    other.describe()
                ))))
            }
            Some(PeerIdentity::Plain) | None => Ok(Visitor(session(s, &parts.headers))),
        }
    }
}

/// A read request as the API's handlers take it, carrying the session's
/// signer (none: an unsigned read, which passes only where those do).
fn read<T>(message: T, reader: &Option<ConsoleReader>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(r) = reader {
        request.extensions_mut().insert(r.clone());
    }
    request
}

/// The rows the page asks for at once, and the rows a `snapshot` event
/// carries: a first screen, not the estate (at 100k processes every row
/// would be tens of megabytes on each visit).
const PAGE_SIZE_DEFAULT: u32 = 100;

/// `/api/processes`'s query: with `page_size`, one page (in alias order)
/// and the token of the next; without, every row as one array (what the
/// console's first clients and small estates' scripts read).
#[derive(Debug, Default, serde::Deserialize)]
struct PageQuery {
    page_size: Option<u32>,
    #[serde(default)]
    page_token: String,
}

async fn processes(
    State(s): State<ConsoleState>,
    Visitor(reader): Visitor,
    Query(q): Query<PageQuery>,
) -> Result<axum::Json<Value>, Failure> {
    match q.page_size {
        Some(size) => Ok(axum::Json(
            process_page(&s.api, &reader, size, q.page_token).await?,
        )),
        None => Ok(axum::Json(Value::Array(
            process_rows(&s.api, &reader).await?,
        ))),
    }
}

/// Every live process's row (open drift counted by the node).
async fn process_rows(api: &Api, reader: &Option<ConsoleReader>) -> Result<Vec<Value>, Failure> {
    let status = api
        .status(read(pb::StatusRequest::default(), reader))
        .await?
        .into_inner();
    Ok(status.processes.iter().map(json::summary).collect())
}

/// One page of rows, as `canon status` pages them: `{"processes": [...],
/// "next_page_token": "…" or null after the last page}`. A size of 0 is
/// refused; above the API's maximum it is the maximum.
async fn process_page(
    api: &Api,
    reader: &Option<ConsoleReader>,
    page_size: u32,
    page_token: String,
) -> Result<Value, Failure> {
    if page_size == 0 {
        return Err(Failure(tonic::Status::invalid_argument(
            "page_size must be at least 1 (leave it out for every process at once)",
        )));
    }
    let request = pb::StatusRequest {
        page_size,
        page_token,
        ..Default::default()
    };
    let status = api.status(read(request, reader)).await?.into_inner();
    let rows: Vec<Value> = status.processes.iter().map(json::summary).collect();
    let next = (!status.next_page_token.is_empty()).then_some(status.next_page_token);
    Ok(serde_json::json!({ "processes": rows, "next_page_token": next }))
}

/// One process's Status and History replies.
async fn replies(
    api: &Api,
    reader: &Option<ConsoleReader>,
    alias: &str,
) -> Result<(pb::StatusReply, pb::HistoryReply), Failure> {
    let status = pb::StatusRequest {
        alias: alias.to_string(),
        all: true,
        ..Default::default()
    };
    let status = api.status(read(status, reader)).await?.into_inner();
    let history = pb::HistoryRequest {
        alias: alias.to_string(),
        ..Default::default()
    };
    let history = api.history(read(history, reader)).await?.into_inner();
    Ok((status, history))
}

async fn process(
    State(s): State<ConsoleState>,
    Path(alias): Path<String>,
    Visitor(reader): Visitor,
) -> Result<axum::Json<Value>, Failure> {
    let (status, history) = replies(&s.api, &reader, &alias).await?;
    Ok(axum::Json(json::process(&status, &history)))
}

/// The process drawn with what the cloud shows laid over it.
async fn graph_of(
    s: &ConsoleState,
    alias: &str,
    reader: &Option<ConsoleReader>,
) -> Result<Graph, Failure> {
    let (status, history) = replies(&s.api, reader, alias).await?;
    Graph::from_replies(&status, &history)
        .map_err(|e| Failure(tonic::Status::internal(format!("{alias}: {e}"))))
}

async fn graph_svg(
    State(s): State<ConsoleState>,
    Path(alias): Path<String>,
    Visitor(reader): Visitor,
) -> Result<Response, Failure> {
    let graph = graph_of(&s, &alias, &reader).await?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], to_svg(&graph)).into_response())
}

async fn graph_json(
    State(s): State<ConsoleState>,
    Path(alias): Path<String>,
    Visitor(reader): Visitor,
) -> Result<axum::Json<Value>, Failure> {
    Ok(axum::Json(to_json(&graph_of(&s, &alias, &reader).await?)))
}

async fn cluster(
    State(s): State<ConsoleState>,
    Visitor(reader): Visitor,
) -> Result<axum::Json<Value>, Failure> {
    let reply = s
        .api
        .cluster_status(read(pb::ClusterStatusRequest::default(), &reader))
        .await?
        .into_inner();
    Ok(axum::Json(json::cluster(&reply)))
}

/// The SSE stream: each event the API's Events stream yields for this
/// reader, named by its kind, its id the stream's position (one Raft
/// applied index per group). A new connection starts with a `snapshot`
/// (the first page of process rows); a reconnect (the browser sends `Last-Event-ID`)
/// resumes after its position with the events it missed, or, when the
/// node no longer holds them (or the reader fell behind), with a fresh
/// `snapshot`.
async fn events(
    State(s): State<ConsoleState>,
    Visitor(reader): Visitor,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, Failure> {
    // A position this node cannot read (another build's, a hand-made
    // header) is a fresh start, not an error the page could not show.
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| crate::events::Cursor::parse(v).is_ok())
        .unwrap_or_default()
        .to_string();
    let resumed = !after.is_empty();
    // Subscribe first, then read the snapshot: nothing falls in between.
    let request = pb::EventsRequest {
        alias: String::new(),
        after,
    };
    let live = s.api.events(read(request, &reader)).await?.into_inner();
    let first = match resumed {
        true => None,
        false => Some(Ok(snapshot(&s.api, &reader, None).await?)),
    };
    let api = s.api.clone();
    let live = live.then(move |item| {
        let (api, reader) = (api.clone(), reader.clone());
        async move { Ok::<_, Infallible>(sse_event(&api, &reader, item).await) }
    });
    let stream = stream::iter(first).chain(live);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The first page of process rows (as `/api/processes?page_size=100`
/// gives it), as a `snapshot` event (with the stream's position when it
/// replaces events the reader missed). The rest is a page read away.
async fn snapshot(
    api: &Api,
    reader: &Option<ConsoleReader>,
    cursor: Option<&str>,
) -> Result<SseEvent, Failure> {
    let page = process_page(api, reader, PAGE_SIZE_DEFAULT, String::new()).await?;
    let event = SseEvent::default().event("snapshot").data(page.to_string());
    Ok(match cursor.filter(|c| !c.is_empty()) {
        Some(c) => event.id(c),
        None => event,
    })
}

/// One item of the API's stream as the page receives it: a gap or a loss
/// becomes a fresh snapshot.
async fn sse_event(
    api: &Api,
    reader: &Option<ConsoleReader>,
    item: Result<pb::Event, tonic::Status>,
) -> SseEvent {
    let failed = |status: tonic::Status| {
        SseEvent::default()
            .event("error")
            .data(serde_json::json!({ "error": status.message() }).to_string())
    };
    match item {
        Ok(e) if e.kind == "events.gap" || e.kind == "events.lost" => {
            match snapshot(api, reader, Some(&e.cursor)).await {
                Ok(event) => event,
                Err(Failure(status)) => failed(status),
            }
        }
        Ok(e) => {
            let event = SseEvent::default()
                .event(e.kind.clone())
                .data(json::event(&e).to_string());
            match e.cursor.is_empty() {
                true => event,
                false => event.id(e.cursor),
            }
        }
        Err(status) => failed(status),
    }
}
