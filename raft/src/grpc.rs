//! The gRPC transport: one tonic service per node carrying every group's
//! messages, and a client that keeps one lazily connected channel per peer,
//! shared by all groups. The client is one call path for every network:
//! what differs is only how a channel connects ([`Dial`]: real TCP here,
//! turmoil's simulated TCP in [`crate::turmoil_net`]). Several groups' AppendEntries to one peer travel
//! as one `AppendEntriesBatch` call (gathered by [`crate::coalesce`]) whose
//! answers stream back one by one as the receiver's groups complete them;
//! once a peer's long-lived AppendEntries stream is open
//! ([`append_stream`]), the batches travel on it instead.

mod append_stream;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use canon_proto::canon::raft::v1::raft_transport_client::RaftTransportClient;
use canon_proto::canon::raft::v1::raft_transport_server::{RaftTransport, RaftTransportServer};
use canon_proto::canon::raft::v1::{
    AppendEntriesBatchRequest, AppendEntriesBatchResponse, BatchedRequest, BatchedResponse,
    RaftMessage,
};
use tokio::sync::watch;

use append_stream::{Answers, OnTimeout, Session, StreamSlot};
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::FutureExt;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::StreamExt;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Response, Status};

use crate::ids::{GroupId, NodeId};
use crate::network::{
    call_each, BatchItem, HandleError, MessageHandler, RpcKind, Transport, TransportError,
};

/// Largest message accepted or sent (big append batches, snapshot chunks).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// How long the receiver works on a batched message that names no timeout.
const DEFAULT_BATCHED_TIMEOUT: Duration = Duration::from_secs(10);
/// Most answers in one message of a batch's answer stream.
const MAX_ANSWERS_PER_MESSAGE: usize = 256;

/// How [`GrpcTransport`] reaches a peer: what carries its channel's bytes.
/// Everything above the connection (the calls, their timeouts, batching,
/// how failures are classified) is the same for every dialer.
pub trait Dial: std::fmt::Debug + Send + Sync + 'static {
    /// How long a peer's channel may answer nothing before a call that
    /// times out on it drops it, so that the next call dials afresh.
    ///
    /// Real TCP retransmits a lost segment, but each retry waits twice as
    /// long as the last: a connection that lost packets for a few seconds
    /// (a partition, a peer's inbound filter) stays silent for seconds
    /// after the network heals, and after a minute of loss for up to two
    /// minutes, while a new connection would work at once. Turmoil's TCP
    /// never retransmits (a lost message wedges the connection for good):
    /// zero, any timeout redials.
    fn redial_silence(&self) -> Duration;

    /// A channel to `addr` that connects on first use.
    fn channel(&self, addr: &str) -> Result<Channel, String>;
}

/// Real TCP to `http://addr` (or, with TLS settings, `https://addr`):
/// TCP_NODELAY, HTTP/2 keep-alives, connection attempts that give up
/// after `connect_timeout`, and a new connection once a channel has been
/// silent for `redial_silence` ([`Dial::redial_silence`]).
#[derive(Debug, Clone)]
pub struct TcpDial {
    connect_timeout: Duration,
    redial_silence: Duration,
    tls: Option<ClientTlsConfig>,
}

/// [`TcpDial`]'s redial silence unless the node sets its own (it uses its
/// shortest election timeout: a connection silent that long is one a
/// follower would already be campaigning over).
pub const DEFAULT_REDIAL_SILENCE: Duration = Duration::from_secs(1);

impl Dial for TcpDial {
    fn redial_silence(&self) -> Duration {
        self.redial_silence
    }

    fn channel(&self, addr: &str) -> Result<Channel, String> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
            .map_err(|e| format!("bad address: {e}"))?;
        if let Some(tls) = &self.tls {
            endpoint = endpoint
                .tls_config(tls.clone())
                .map_err(|e| format!("TLS settings for {addr}: {e}"))?;
        }
        Ok(endpoint
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .connect_lazy())
    }
}

/// A peer's channel: the address it was dialed at, its client, and when
/// it last answered.
#[derive(Debug)]
struct PeerChannel {
    addr: String,
    client: RaftTransportClient<Channel>,
    heard: Arc<Heard>,
    /// The channel's AppendEntries stream.
    stream: Arc<StreamSlot>,
}

/// When a channel last delivered an answer (or was dialed, before any),
/// as nanoseconds after it was dialed: every answer writes it, so it is an
/// atomic rather than a lock.
#[derive(Debug)]
struct Heard {
    dialed: tokio::time::Instant,
    answered_ns: AtomicU64,
}

impl Heard {
    fn now() -> Arc<Heard> {
        Arc::new(Heard {
            dialed: tokio::time::Instant::now(),
            answered_ns: AtomicU64::new(0),
        })
    }

    fn since_dialed_ns(&self) -> u64 {
        // 2^64 ns is 584 years: a channel does not live that long.
        u64::try_from(self.dialed.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn answered(&self) {
        self.answered_ns
            .fetch_max(self.since_dialed_ns(), Ordering::Relaxed);
    }

    fn silent_for(&self) -> Duration {
        let answered = self.answered_ns.load(Ordering::Relaxed);
        Duration::from_nanos(self.since_dialed_ns().saturating_sub(answered))
    }
}

type Peers = Arc<Mutex<HashMap<NodeId, PeerChannel>>>;

/// A peer's client, when its channel last answered, and its open
/// AppendEntries stream (if wanted and open).
type PeerClient = (
    RaftTransportClient<Channel>,
    Arc<Heard>,
    Option<Arc<Session>>,
);

/// gRPC client side of [`Transport`]: one lazily connected channel per
/// peer, shared by all groups, over real TCP ([`TcpDial`]) or another
/// dialer (turmoil's simulated TCP in [`crate::turmoil_net`]).
#[derive(Debug)]
pub struct GrpcTransport<D = TcpDial> {
    dial: D,
    peers: Peers,
    /// Where channels are dialed (their connection tasks run there); the
    /// runtime of whoever calls first when `None`.
    runtime: Option<tokio::runtime::Handle>,
}

impl GrpcTransport<TcpDial> {
    /// A transport over TCP whose connection attempts give up after
    /// `connect_timeout`.
    pub fn new(connect_timeout: Duration) -> Self {
        GrpcTransport::with_dial(TcpDial {
            connect_timeout,
            redial_silence: DEFAULT_REDIAL_SILENCE,
            tls: None,
        })
    }

    /// A transport over TCP with TLS (`tls`: this node's certificate and
    /// the CA its peers' certificates must chain to).
    pub fn with_tls(connect_timeout: Duration, tls: ClientTlsConfig) -> Self {
        GrpcTransport::with_dial(TcpDial {
            connect_timeout,
            redial_silence: DEFAULT_REDIAL_SILENCE,
            tls: Some(tls),
        })
    }

    /// This transport, dialing a peer afresh once its channel has answered
    /// nothing for `silence` and a call on it times out.
    pub fn redialing_after(mut self, silence: Duration) -> Self {
        self.dial.redial_silence = silence;
        self
    }
}

impl<D: Dial + Default> Default for GrpcTransport<D> {
    fn default() -> Self {
        GrpcTransport::with_dial(D::default())
    }
}

impl<D: Dial> GrpcTransport<D> {
    /// A transport reaching its peers through `dial`.
    pub fn with_dial(dial: D) -> Self {
        GrpcTransport {
            dial,
            peers: Arc::new(Mutex::new(HashMap::new())),
            runtime: None,
        }
    }

    /// This transport, running every peer channel's tasks (connecting,
    /// sending, reading answers) on `runtime` whichever runtime calls: a
    /// node's Raft runtime ([`crate::threads`]), so that a busy
    /// application does not hold up heartbeats.
    pub fn on_runtime(mut self, runtime: tokio::runtime::Handle) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// The client of `target`'s channel (dialed at `addr`), when that
    /// channel last answered and, when `stream` asks for it, the channel's
    /// open AppendEntries stream (one starts opening if there is none).
    fn client(
        &self,
        target: NodeId,
        addr: &str,
        stream: bool,
    ) -> Result<PeerClient, TransportError> {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = peers.get(&target) {
            if p.addr == addr {
                let session = stream.then(|| self.session_of(target, p)).flatten();
                return Ok((p.client.clone(), p.heard.clone(), session));
            }
        }
        // A channel spawns its tasks where it is made.
        let _on_runtime = self.runtime.as_ref().map(tokio::runtime::Handle::enter);
        let channel = self
            .dial
            .channel(addr)
            .map_err(|reason| TransportError::Unreachable {
                target,
                addr: addr.to_string(),
                reason,
            })?;
        let client = RaftTransportClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let p = PeerChannel {
            addr: addr.to_string(),
            client: client.clone(),
            heard: Heard::now(),
            stream: StreamSlot::new(target, addr),
        };
        let session = stream.then(|| self.session_of(target, &p)).flatten();
        let heard = p.heard.clone();
        peers.insert(target, p);
        Ok((client, heard, session))
    }

    /// Whether AppendEntries to `target` travel on an open stream now
    /// (rather than as calls of their own): for tests and diagnostics.
    pub fn streams_to(&self, target: NodeId) -> bool {
        let peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers.get(&target).is_some_and(|p| p.stream.is_open())
    }

    /// `p`'s open AppendEntries stream, if it has one (see
    /// [`StreamSlot::session`]).
    fn session_of(&self, target: NodeId, p: &PeerChannel) -> Option<Arc<Session>> {
        let on_timeout = || self.on_timeout(target, p.heard.clone());
        p.stream
            .session(&p.client, &p.heard, on_timeout, self.runtime.as_ref())
    }

    /// What to run when a call to `target` on the channel that `heard`
    /// tracks timed out: drops that channel (not a newer one) if it has
    /// been silent for the dialer's [`Dial::redial_silence`]. Holds the
    /// peers weakly: a stream's reader keeps it, and must not keep the
    /// transport's channels alive.
    fn on_timeout(&self, target: NodeId, heard: Arc<Heard>) -> OnTimeout {
        let peers = Arc::downgrade(&self.peers);
        let silence = self.dial.redial_silence();
        Arc::new(move || {
            let silent = heard.silent_for();
            if silent < silence {
                return;
            }
            let Some(peers) = peers.upgrade() else {
                return;
            };
            let mut peers = peers.lock().unwrap_or_else(|e| e.into_inner());
            if peers
                .get(&target)
                .is_some_and(|p| Arc::ptr_eq(&p.heard, &heard))
            {
                // Dropped outside the lock: dropping a channel's stream
                // answers what waits on it.
                let dropped = peers.remove(&target);
                drop(peers);
                drop(dropped);
                if !silence.is_zero() {
                    tracing::info!(
                        peer = target,
                        silent_ms = silent.as_millis() as u64,
                        "redialing a peer whose connection answers nothing"
                    );
                }
            }
        })
    }
}

impl<D: Dial> Transport for GrpcTransport<D> {
    fn call(
        &self,
        target: NodeId,
        addr: &str,
        kind: RpcKind,
        group: GroupId,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>> {
        let client = self.client(target, addr, false);
        let addr = addr.to_string();
        let on_timeout = client
            .as_ref()
            .ok()
            .map(|(_, heard, _)| self.on_timeout(target, heard.clone()));
        async move {
            let (mut client, heard, _) = client?;
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
            let answer = match tokio::time::timeout(timeout, call).await {
                Err(_) => Err(TransportError::Timeout {
                    target,
                    after: timeout,
                }),
                Ok(Ok(resp)) => {
                    heard.answered();
                    Ok(resp.into_inner().payload)
                }
                Ok(Err(status)) => Err(classify(target, &addr, timeout, status)),
            };
            if let (Err(TransportError::Timeout { .. }), Some(forget)) = (&answer, on_timeout) {
                forget();
            }
            answer
        }
        .boxed()
    }

    fn call_batch(
        &self,
        target: NodeId,
        addr: &str,
        items: Vec<BatchItem>,
    ) -> BoxFuture<'static, ()> {
        let (client, heard, session) = match self.client(target, addr, true) {
            Ok(c) => c,
            Err(e) => {
                for i in items {
                    let _ = i.reply.send(Err(e.clone()));
                }
                return futures::future::ready(()).boxed();
            }
        };
        // On the peer's stream when it is open; otherwise as a call.
        let items = match session {
            Some(session) => match session.send(items) {
                Ok(()) => return futures::future::ready(()).boxed(),
                Err(items) => items,
            },
            None => items,
        };
        if let [_] = items.as_slice() {
            return call_each(self, target, addr, items);
        }
        let addr = addr.to_string();
        let on_timeout = self.on_timeout(target, heard.clone());
        async move {
            let end = send_batch(client, target, &addr, items, &heard).await;
            if let BatchEnd::Failed(TransportError::Timeout { .. }) = end {
                on_timeout();
            }
        }
        .boxed()
    }
}

/// How a batch call ended, for transports that act on it.
enum BatchEnd {
    /// Every item got its own answer.
    Answered,
    /// The call as a whole failed; items still waiting got this error.
    Failed(TransportError),
}

/// Sends `items` as one AppendEntriesBatch on `client` and answers each
/// item as soon as its answer arrives; items left without one when the
/// call ends get the call's error. The call is bounded by the longest item
/// timeout (each caller applies its own, shorter one).
async fn send_batch(
    mut client: RaftTransportClient<Channel>,
    target: NodeId,
    addr: &str,
    items: Vec<BatchItem>,
    heard: &Heard,
) -> BatchEnd {
    let limit = items.iter().map(|i| i.timeout).max().unwrap_or_default();
    let mut waiting = Vec::with_capacity(items.len());
    let mut requests = Vec::with_capacity(items.len());
    for i in items {
        requests.push(BatchedRequest {
            group: i.group,
            payload: i.payload,
            timeout_ms: timeout_ms(i.timeout),
            id: 0,
        });
        waiting.push(Some((i.reply, i.timeout)));
    }
    let mut req = Request::new(AppendEntriesBatchRequest { requests });
    req.set_timeout(limit);
    let call = async {
        let mut answers = client.append_entries_batch(req).await?.into_inner();
        while let Some(chunk) = answers.message().await? {
            heard.answered();
            for r in chunk.responses {
                let slot = usize::try_from(r.index)
                    .ok()
                    .and_then(|i| waiting.get_mut(i))
                    .and_then(Option::take);
                if let Some((reply, timeout)) = slot {
                    let answer = match r.code {
                        0 => Ok(r.payload),
                        code => Err(classify(
                            target,
                            addr,
                            timeout,
                            Status::new(Code::from(code as i32), r.message),
                        )),
                    };
                    // The caller may have given up; nothing to tell then.
                    let _ = reply.send(answer);
                }
            }
        }
        Ok::<(), Status>(())
    };
    let failure = match tokio::time::timeout(limit, call).await {
        Err(_) => TransportError::Timeout {
            target,
            after: limit,
        },
        Ok(Err(status)) => classify(target, addr, limit, status),
        Ok(Ok(())) => TransportError::Failed {
            target,
            reason: "the batch's answers ended without this message's".to_string(),
        },
    };
    let mut unanswered = false;
    for (reply, _) in waiting.into_iter().flatten() {
        unanswered = true;
        let _ = reply.send(Err(failure.clone()));
    }
    if unanswered {
        BatchEnd::Failed(failure)
    } else {
        BatchEnd::Answered
    }
}

/// `timeout` as a message's `timeout_ms` (at least 1: 0 means the
/// receiver's default).
fn timeout_ms(timeout: Duration) -> u32 {
    u32::try_from(timeout.as_millis())
        .unwrap_or(u32::MAX)
        .max(1)
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

/// The server side: hands each message to the node's group (through
/// [`MessageHandler`]). Holds the node weakly so that a running server never
/// keeps a stopped node's database open.
pub struct GrpcService<H> {
    node: Weak<H>,
    /// Whether it serves AppendEntriesStream (tests turn it off to play a
    /// peer of an older version).
    serves_stream: bool,
    /// Turns true when the server shuts down: its long-lived streams end
    /// then (a graceful shutdown waits for every open stream).
    closing: Arc<watch::Sender<bool>>,
}

impl<H> Clone for GrpcService<H> {
    fn clone(&self) -> Self {
        GrpcService {
            node: self.node.clone(),
            serves_stream: self.serves_stream,
            closing: self.closing.clone(),
        }
    }
}

impl<H> std::fmt::Debug for GrpcService<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcService")
            .field("node_alive", &(self.node.strong_count() > 0))
            .finish()
    }
}

impl<H: MessageHandler> GrpcService<H> {
    /// A service delivering to `node` while it lives.
    pub fn new(node: Weak<H>) -> Self {
        GrpcService {
            node,
            serves_stream: true,
            closing: Arc::new(watch::channel(false).0),
        }
    }

    /// This service answering AppendEntriesStream as a version without it
    /// does (UNIMPLEMENTED).
    #[cfg(test)]
    pub(crate) fn like_an_older_version(mut self) -> Self {
        self.serves_stream = false;
        self
    }

    /// Ends the service's open AppendEntries streams, now and as they are
    /// opened: call it when the server starts shutting down, or its
    /// graceful shutdown waits on them (as [`serve`] does).
    pub fn close_streams(&self) {
        self.closing.send_replace(true);
    }

    /// `shutdown`, then [`Self::close_streams`]: the future to hand a
    /// server's graceful shutdown, so that open streams do not hold it.
    pub fn closing_on(
        &self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let closing = self.closing.clone();
        async move {
            shutdown.await;
            closing.send_replace(true);
        }
    }

    /// The tonic service to add to a server.
    pub fn into_server(self) -> RaftTransportServer<GrpcService<H>> {
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
            Err(e) => Err(status_of(e)),
        }
    }
}

fn status_of(e: HandleError) -> Status {
    match e {
        HandleError::UnknownGroup(_) => Status::not_found(e.to_string()),
        HandleError::Stopped | HandleError::Lost => Status::unavailable(e.to_string()),
        HandleError::BadPayload(_) => Status::invalid_argument(e.to_string()),
        HandleError::Refused(_) => Status::failed_precondition(e.to_string()),
    }
}

/// Handles one message of a batch, bounded by its own timeout.
async fn answer_batched<H: MessageHandler>(
    node: Arc<H>,
    index: u32,
    r: BatchedRequest,
) -> BatchedResponse {
    let limit = match r.timeout_ms {
        0 => DEFAULT_BATCHED_TIMEOUT,
        ms => Duration::from_millis(u64::from(ms)),
    };
    let handled = tokio::time::timeout(
        limit,
        node.handle(RpcKind::AppendEntries, r.group, &r.payload),
    )
    .await;
    let (code, payload, message) = match handled {
        Ok(Ok(payload)) => (Code::Ok, payload, String::new()),
        Ok(Err(e)) => {
            let s = status_of(e);
            (s.code(), Vec::new(), s.message().to_string())
        }
        Err(_) => (
            Code::DeadlineExceeded,
            Vec::new(),
            format!("no answer within {limit:?}"),
        ),
    };
    BatchedResponse {
        index,
        code: code as u32,
        payload,
        message,
        id: r.id,
    }
}

/// The answers of a batch, as they complete.
type AnswerStream =
    Pin<Box<dyn futures::Stream<Item = Result<AppendEntriesBatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl<H: MessageHandler> RaftTransport for GrpcService<H> {
    async fn append_entries(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        self.dispatch(RpcKind::AppendEntries, req).await
    }

    type AppendEntriesBatchStream = AnswerStream;

    async fn append_entries_batch(
        &self,
        req: Request<AppendEntriesBatchRequest>,
    ) -> Result<Response<AnswerStream>, Status> {
        let node = self
            .node
            .upgrade()
            .ok_or_else(|| Status::unavailable("node stopped"))?;
        // Every message is handled at once; answers go out as they are
        // ready (those ready together in one message).
        let pending: FuturesUnordered<_> = (0u32..)
            .zip(req.into_inner().requests)
            .map(|(index, r)| answer_batched(node.clone(), index, r))
            .collect();
        let answers = futures::StreamExt::map(
            futures::StreamExt::ready_chunks(pending, MAX_ANSWERS_PER_MESSAGE),
            |responses| Ok(AppendEntriesBatchResponse { responses }),
        );
        Ok(Response::new(Box::pin(answers)))
    }

    type AppendEntriesStreamStream = AnswerStream;

    async fn append_entries_stream(
        &self,
        req: Request<tonic::Streaming<AppendEntriesBatchRequest>>,
    ) -> Result<Response<AnswerStream>, Status> {
        if !self.serves_stream {
            return Err(Status::unimplemented("AppendEntriesStream"));
        }
        if self.node.strong_count() == 0 {
            return Err(Status::unavailable("node stopped"));
        }
        let answers = Answers::new(
            self.node.clone(),
            req.into_inner(),
            self.closing.subscribe(),
        );
        Ok(Response::new(Box::pin(answers)))
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
pub async fn serve<H: MessageHandler>(
    service: GrpcService<H>,
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
    let shutdown = service.closing_on(shutdown);
    tonic::transport::Server::builder()
        .add_service(service.into_server())
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
