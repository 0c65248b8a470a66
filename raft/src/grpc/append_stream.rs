//! One long-lived AppendEntries stream per peer, both ends.
//!
//! Sent as calls of their own, every batch of AppendEntries (see
//! [`crate::coalesce`]) cost a gRPC call: an HTTP/2 stream opened and
//! closed, headers and trailers both ways, and a task on each side. Profiled
//! with 64 writers on one group, that call machinery was about a fifth of
//! all CPU. On the stream, a batch is one data frame each way.
//!
//! The client side ([`StreamSlot`], one per peer channel) opens the stream
//! in the background the first time it is wanted; until it is open, and for
//! good with a peer that does not know the call (an older version answers
//! UNIMPLEMENTED), batches go as `AppendEntriesBatch` calls as before. Each
//! message on the stream carries an id, and its answer carries it back; a
//! sweep answers messages whose caller's timeout passed (and tells the
//! transport, which redials a silent peer), and when the stream breaks every
//! message still waiting gets the error. A stream is replaced after
//! [`STREAM_MAX_AGE`], so that the receiver's per-call checks (the peer
//! gate's membership check) are made again.
//!
//! The server side ([`Answers`]) handles each message of each frame at once,
//! bounded by its own timeout, and sends the answers ready together as one
//! frame. It ends when the sender closes its side and every answer is out,
//! when the node stops, when the server shuts down (a stream would otherwise
//! hold a graceful shutdown open), or after twice [`STREAM_MAX_AGE`].

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use canon_proto::canon::raft::v1::raft_transport_client::RaftTransportClient;
use canon_proto::canon::raft::v1::{
    AppendEntriesBatchRequest, AppendEntriesBatchResponse, BatchedRequest, BatchedResponse,
};
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, Stream, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::Channel;
use tonic::{Code, Request, Status, Streaming};

use super::{answer_batched, classify, timeout_ms, Heard};
use crate::ids::NodeId;
use crate::network::{BatchItem, ItemResult, MessageHandler, TransportError};

/// How long a stream is used before a new one replaces it (so the peer's
/// per-call checks run again); the receiver ends one at twice this.
pub const STREAM_MAX_AGE: Duration = Duration::from_secs(60);
/// How long to wait for a peer to accept a new stream.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long after a failed attempt to open a stream the next one is made
/// (batches go as calls of their own meanwhile).
const REOPEN_AFTER: Duration = Duration::from_millis(500);
/// How often messages whose caller's timeout passed are looked for.
const SWEEP_EVERY: Duration = Duration::from_millis(50);
/// Most answers in one frame.
const MAX_ANSWERS_PER_FRAME: usize = 256;

const _: () = assert!(SWEEP_EVERY.as_millis() * 10 <= STREAM_MAX_AGE.as_millis());

/// What a peer channel's AppendEntries stream is doing.
enum SlotState {
    /// None open; may open one from `not_before`.
    Idle { not_before: Option<Instant> },
    /// Being opened.
    Opening,
    /// Open since `since`.
    Open {
        session: Arc<Session>,
        since: Instant,
    },
    /// The peer does not know the call: batches go as calls of their own.
    Unsupported,
}

/// A peer channel's AppendEntries stream (module docs). Dropping it (the
/// channel is dropped to redial) ends the stream and fails what waits on it.
pub struct StreamSlot {
    state: Mutex<SlotState>,
    target: NodeId,
    addr: String,
}

impl std::fmt::Debug for StreamSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSlot")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// Called when a message on the stream went unanswered past its caller's
/// timeout (the transport may redial a silent peer).
pub type OnTimeout = Arc<dyn Fn() + Send + Sync>;

impl StreamSlot {
    pub fn new(target: NodeId, addr: &str) -> Arc<StreamSlot> {
        Arc::new(StreamSlot {
            state: Mutex::new(SlotState::Idle { not_before: None }),
            target,
            addr: addr.to_string(),
        })
    }

    /// The open stream, if there is one; otherwise starts opening one on
    /// `runtime` (unless the peer does not support it, or the last attempt
    /// failed a moment ago) and answers `None`.
    pub fn session(
        self: &Arc<Self>,
        client: &RaftTransportClient<Channel>,
        heard: &Arc<Heard>,
        on_timeout: impl FnOnce() -> OnTimeout,
        runtime: Option<&tokio::runtime::Handle>,
    ) -> Option<Arc<Session>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match &*state {
            SlotState::Open { session, since } if now.duration_since(*since) < STREAM_MAX_AGE => {
                return Some(session.clone());
            }
            // Old: its answers still come in, while a new one opens.
            SlotState::Open { .. } => {}
            SlotState::Opening | SlotState::Unsupported => return None,
            SlotState::Idle { not_before } if not_before.is_some_and(|t| now < t) => return None,
            SlotState::Idle { .. } => {}
        }
        // Without a runtime no stream can be read: calls it is.
        let runtime = runtime
            .cloned()
            .or_else(|| tokio::runtime::Handle::try_current().ok())?;
        let opened = open(
            Arc::downgrade(self),
            client.clone(),
            heard.clone(),
            on_timeout(),
        );
        let old = std::mem::replace(&mut *state, SlotState::Opening);
        drop(state);
        drop(runtime.spawn(opened));
        // The old stream takes no more messages; it ends once its answers
        // are in (its reader sees the end and fails nothing).
        if let SlotState::Open { session, .. } = old {
            session.close_sending();
        }
        None
    }

    /// Whether a stream is open.
    pub fn is_open(&self) -> bool {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        matches!(&*state, SlotState::Open { .. })
    }

    fn set(&self, new: SlotState) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = new;
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if let SlotState::Open { session, .. } = state {
            session.fail_all(|_| TransportError::Unreachable {
                target: self.target,
                addr: self.addr.clone(),
                reason: "the connection was dropped to dial the peer afresh".to_string(),
            });
        }
    }
}

/// Opens the stream, records it in `slot` and reads its answers until it
/// ends (or the slot is dropped).
async fn open(
    slot: Weak<StreamSlot>,
    mut client: RaftTransportClient<Channel>,
    heard: Arc<Heard>,
    on_timeout: OnTimeout,
) {
    let (frames, outbound) = mpsc::unbounded_channel();
    let call = client.append_entries_stream(Request::new(UnboundedReceiverStream::new(outbound)));
    let answers = match tokio::time::timeout(OPEN_TIMEOUT, call).await {
        Ok(Ok(answers)) => answers.into_inner(),
        Ok(Err(status)) if status.code() == Code::Unimplemented => {
            if let Some(slot) = slot.upgrade() {
                tracing::info!(
                    peer = slot.target,
                    "peer has no AppendEntries stream (older version): sending batches as calls"
                );
                slot.set(SlotState::Unsupported);
            }
            return;
        }
        Ok(Err(_)) | Err(_) => {
            if let Some(slot) = slot.upgrade() {
                slot.set(SlotState::Idle {
                    not_before: Some(Instant::now() + REOPEN_AFTER),
                });
            }
            return;
        }
    };
    // The stream holds the connection from now on.
    drop(client);
    let Some(session) = slot.upgrade().map(|slot| {
        let session = Arc::new(Session::new(slot.target, slot.addr.clone(), frames));
        slot.set(SlotState::Open {
            session: session.clone(),
            since: Instant::now(),
        });
        session
    }) else {
        return;
    };
    let ended = read_answers(answers, &session, &heard, &on_timeout, &slot).await;
    let (target, addr) = (session.target, session.addr.clone());
    session.fail_all(|timeout| match &ended {
        Ok(()) => TransportError::Failed {
            target,
            reason: "the peer ended the AppendEntries stream".to_string(),
        },
        Err(status) => classify(target, &addr, timeout, status.clone()),
    });
    if let Some(slot) = slot.upgrade() {
        let mut state = slot.state.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(&*state, SlotState::Open { session: s, .. } if Arc::ptr_eq(s, &session)) {
            *state = SlotState::Idle { not_before: None };
        }
    }
}

/// Delivers the stream's answers until it ends, the slot is dropped, or the
/// stream is closed for sending and nothing waits on it any more; answers
/// messages whose caller's timeout passed. The sweep that looks for those
/// runs every [`SWEEP_EVERY`] while messages wait, and rests while none do
/// (the next message sent wakes it), so an idle stream costs no wake-ups.
async fn read_answers(
    mut answers: Streaming<AppendEntriesBatchResponse>,
    session: &Session,
    heard: &Heard,
    on_timeout: &OnTimeout,
    slot: &Weak<StreamSlot>,
) -> Result<(), Status> {
    let sweep = tokio::time::sleep(SWEEP_EVERY);
    tokio::pin!(sweep);
    let mut sweeping = true;
    loop {
        tokio::select! {
            frame = answers.message() => match frame? {
                Some(frame) => {
                    heard.answered();
                    session.deliver(frame.responses);
                }
                None => return Ok(()),
            },
            () = &mut sweep, if sweeping => {
                if slot.strong_count() == 0 || session.drained() {
                    return Ok(());
                }
                if session.expire(Instant::now()) {
                    on_timeout();
                }
                sweeping = !session.rest_sweep_if_idle();
                sweep.as_mut().reset(Instant::now() + SWEEP_EVERY);
            }
            () = session.wake_sweep.notified() => {
                if slot.strong_count() == 0 || session.drained() {
                    return Ok(());
                }
                if !sweeping {
                    sweeping = true;
                    sweep.as_mut().reset(Instant::now() + SWEEP_EVERY);
                }
            }
        }
    }
}

/// A message on the stream waiting for its answer.
struct Waiting {
    reply: tokio::sync::oneshot::Sender<ItemResult>,
    timeout: Duration,
    deadline: Instant,
}

/// The messages in flight on one stream, and its sending side.
struct InFlight {
    next_id: u64,
    waiting: HashMap<u64, Waiting>,
    /// The sending side; `None` once no more messages may be sent (the
    /// stream broke, or a newer one replaced it).
    frames: Option<mpsc::UnboundedSender<AppendEntriesBatchRequest>>,
    /// The reader's sweep rests (nothing waited at its last run): the next
    /// message sent wakes it.
    sweep_resting: bool,
}

/// An open stream's sending side and what waits on it.
pub struct Session {
    target: NodeId,
    addr: String,
    in_flight: Mutex<InFlight>,
    /// Wakes the reader: its sweep has something to watch again, or the
    /// stream was closed for sending.
    wake_sweep: tokio::sync::Notify,
}

impl Session {
    fn new(
        target: NodeId,
        addr: String,
        frames: mpsc::UnboundedSender<AppendEntriesBatchRequest>,
    ) -> Session {
        Session {
            target,
            addr,
            in_flight: Mutex::new(InFlight {
                next_id: 1,
                waiting: HashMap::new(),
                frames: Some(frames),
                sweep_resting: false,
            }),
            wake_sweep: tokio::sync::Notify::new(),
        }
    }

    /// Sends `items` as one frame, each to be answered through its reply;
    /// gives them back if the stream takes no more.
    pub fn send(&self, items: Vec<BatchItem>) -> Result<(), Vec<BatchItem>> {
        let mut f = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if f.frames.is_none() {
            return Err(items);
        }
        let now = Instant::now();
        let mut requests = Vec::with_capacity(items.len());
        for i in items {
            let id = f.next_id;
            f.next_id += 1;
            requests.push(BatchedRequest {
                group: i.group,
                payload: i.payload,
                timeout_ms: timeout_ms(i.timeout),
                id,
            });
            f.waiting.insert(
                id,
                Waiting {
                    reply: i.reply,
                    timeout: i.timeout,
                    deadline: now + i.timeout,
                },
            );
        }
        let sent = match &f.frames {
            Some(frames) => frames
                .send(AppendEntriesBatchRequest { requests })
                .map_err(|mpsc::error::SendError(frame)| frame.requests),
            None => Err(requests),
        };
        let Err(requests) = sent else {
            if std::mem::take(&mut f.sweep_resting) {
                self.wake_sweep.notify_one();
            }
            return Ok(());
        };
        // The stream's reading side is gone: hand everything back.
        f.frames = None;
        Err(requests
            .into_iter()
            .filter_map(|r| {
                f.waiting.remove(&r.id).map(|w| BatchItem {
                    group: r.group,
                    payload: r.payload,
                    timeout: w.timeout,
                    reply: w.reply,
                })
            })
            .collect())
    }

    /// Answers each message answered in `responses`.
    fn deliver(&self, responses: Vec<BatchedResponse>) {
        let mut f = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        for r in responses {
            let Some(w) = f.waiting.remove(&r.id) else {
                continue;
            };
            let answer = match r.code {
                0 => Ok(r.payload),
                code => Err(classify(
                    self.target,
                    &self.addr,
                    w.timeout,
                    Status::new(Code::from(code as i32), r.message),
                )),
            };
            // The caller may have given up; nothing to tell then.
            let _ = w.reply.send(answer);
        }
    }

    /// Answers the messages whose deadline passed by `now` with a timeout;
    /// whether there were any.
    fn expire(&self, now: Instant) -> bool {
        let mut f = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        let late: Vec<u64> = f
            .waiting
            .iter()
            .filter(|(_, w)| w.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in &late {
            if let Some(w) = f.waiting.remove(id) {
                let _ = w.reply.send(Err(TransportError::Timeout {
                    target: self.target,
                    after: w.timeout,
                }));
            }
        }
        !late.is_empty()
    }

    /// Takes no more messages, and closes the sending side (the peer ends
    /// the stream once it has answered what it got).
    fn close_sending(&self) {
        self.in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .frames = None;
        self.wake_sweep.notify_one();
    }

    /// Closed for sending, and nothing waits.
    fn drained(&self) -> bool {
        let f = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        f.frames.is_none() && f.waiting.is_empty()
    }

    /// Whether nothing waits; if so the sweep rests until a message is
    /// sent (which wakes it).
    fn rest_sweep_if_idle(&self) -> bool {
        let mut f = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        f.sweep_resting = f.waiting.is_empty();
        f.sweep_resting
    }

    /// Takes no more messages and answers everything waiting with the
    /// error `error` makes of its timeout.
    fn fail_all(&self, error: impl Fn(Duration) -> TransportError) {
        let waiting = {
            let mut f = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            f.frames = None;
            std::mem::take(&mut f.waiting)
        };
        self.wake_sweep.notify_one();
        for (_, w) in waiting {
            let _ = w.reply.send(Err(error(w.timeout)));
        }
    }
}

/// The answering side of one stream: a [`Stream`] of answer frames that
/// reads the request frames as it is polled (module docs).
pub struct Answers<H> {
    node: Weak<H>,
    inbound: Streaming<AppendEntriesBatchRequest>,
    inbound_done: bool,
    pending: FuturesUnordered<BoxFuture<'static, BatchedResponse>>,
    closing_seen: futures::future::Fuse<BoxFuture<'static, ()>>,
    age_limit: Pin<Box<tokio::time::Sleep>>,
    /// The stream has ended (an error or its end was returned).
    ended: bool,
}

impl<H: MessageHandler> Answers<H> {
    /// Answers `inbound` with `node` while it lives, until `closing` turns
    /// true.
    pub fn new(
        node: Weak<H>,
        inbound: Streaming<AppendEntriesBatchRequest>,
        closing: watch::Receiver<bool>,
    ) -> Self {
        let mut watch = closing;
        Answers {
            node,
            inbound,
            inbound_done: false,
            pending: FuturesUnordered::new(),
            closing_seen: async move {
                // An error: the server is gone; stop as well.
                let _ = watch.wait_for(|closing| *closing).await;
            }
            .boxed()
            .fuse(),
            age_limit: Box::pin(tokio::time::sleep(STREAM_MAX_AGE * 2)),
            ended: false,
        }
    }

    /// Starts answering each request of `frame`; an error when the node
    /// has stopped.
    fn take(&mut self, frame: AppendEntriesBatchRequest) -> Result<(), Status> {
        let node = self
            .node
            .upgrade()
            .ok_or_else(|| Status::unavailable("node stopped"))?;
        for r in frame.requests {
            self.pending
                .push(answer_batched(node.clone(), 0, r).boxed());
        }
        Ok(())
    }
}

impl<H: MessageHandler> Stream for Answers<H> {
    type Item = Result<AppendEntriesBatchResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let polled = this.poll_answers(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            this.ended = true;
        }
        polled
    }
}

impl<H: MessageHandler> Answers<H> {
    fn poll_answers(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<AppendEntriesBatchResponse, Status>>> {
        let this = self;
        if this.ended {
            return Poll::Ready(None);
        }
        // `wait_for` sees a value already true at its first poll.
        if this.closing_seen.poll_unpin(cx).is_ready() {
            return Poll::Ready(Some(Err(Status::unavailable("the node is shutting down"))));
        }
        if this.age_limit.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Status::resource_exhausted(
                "AppendEntries stream past its age limit: open a new one",
            ))));
        }
        while !this.inbound_done {
            match this.inbound.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Err(status) = this.take(frame) {
                        return Poll::Ready(Some(Err(status)));
                    }
                }
                Poll::Ready(Some(Err(status))) => return Poll::Ready(Some(Err(status))),
                Poll::Ready(None) => this.inbound_done = true,
                Poll::Pending => break,
            }
        }
        let mut responses = Vec::new();
        while responses.len() < MAX_ANSWERS_PER_FRAME {
            match this.pending.poll_next_unpin(cx) {
                Poll::Ready(Some(r)) => responses.push(r),
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
        if !responses.is_empty() {
            return Poll::Ready(Some(Ok(AppendEntriesBatchResponse { responses })));
        }
        if this.inbound_done && this.pending.is_empty() {
            return Poll::Ready(None);
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::{serve, GrpcService, GrpcTransport};
    use crate::network::{HandleError, RpcKind, Transport};
    use tokio::net::TcpListener;
    use tokio::sync::oneshot;

    /// Answers every message with its payload; group 2 only after 5 s.
    struct Echo;

    impl MessageHandler for Echo {
        async fn handle(
            &self,
            _kind: RpcKind,
            group: u64,
            payload: &[u8],
        ) -> Result<Vec<u8>, HandleError> {
            if group == 2 {
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            Ok(payload.to_vec())
        }
    }

    struct Server {
        addr: String,
        stop: Option<oneshot::Sender<()>>,
        served: tokio::task::JoinHandle<()>,
        _echo: Arc<Echo>,
    }

    async fn server(older: bool) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let echo = Arc::new(Echo);
        let mut service = GrpcService::new(Arc::downgrade(&echo));
        if older {
            service = service.like_an_older_version();
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            let _ = serve(service, listener, async {
                let _ = stopped.await;
            })
            .await;
        });
        Server {
            addr,
            stop: Some(stop),
            served,
            _echo: echo,
        }
    }

    const PEER: NodeId = 2;

    /// Sends one batch of `groups` (payload: the group's number) and waits
    /// for every answer.
    async fn batch(
        t: &GrpcTransport,
        addr: &str,
        groups: &[u64],
        timeout: Duration,
    ) -> Vec<ItemResult> {
        let mut answers = Vec::new();
        let items = groups
            .iter()
            .map(|&g| {
                let (reply, answer) = oneshot::channel();
                answers.push(answer);
                BatchItem {
                    group: g,
                    payload: g.to_be_bytes().to_vec(),
                    timeout,
                    reply,
                }
            })
            .collect();
        t.call_batch(PEER, addr, items).await;
        let mut out = Vec::new();
        for a in answers {
            out.push(a.await.expect("every message is answered"));
        }
        out
    }

    fn state(t: &GrpcTransport) -> &'static str {
        let peers = t.peers.lock().unwrap();
        let Some(p) = peers.get(&PEER) else {
            return "no channel";
        };
        let s = p.stream.state.lock().unwrap();
        match &*s {
            SlotState::Idle { .. } => "idle",
            SlotState::Opening => "opening",
            SlotState::Open { .. } => "open",
            SlotState::Unsupported => "unsupported",
        }
    }

    fn session(t: &GrpcTransport) -> Option<Arc<Session>> {
        let peers = t.peers.lock().unwrap();
        let s = peers.get(&PEER)?.stream.state.lock().unwrap();
        match &*s {
            SlotState::Open { session, .. } => Some(session.clone()),
            _ => None,
        }
    }

    /// Waits (up to 5 s) for the peer's stream to be in `want`.
    async fn until_state(t: &GrpcTransport, want: &str) {
        for _ in 0..500 {
            if state(t) == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the stream never became {want}: {}", state(t));
    }

    fn ok(answers: &[ItemResult], groups: &[u64]) {
        assert_eq!(answers.len(), groups.len());
        for (a, g) in answers.iter().zip(groups) {
            assert_eq!(a.as_ref().unwrap(), &g.to_be_bytes().to_vec(), "group {g}");
        }
    }

    const T: Duration = Duration::from_secs(2);

    #[tokio::test]
    async fn batches_travel_on_the_peer_stream_once_it_is_open() {
        let s = server(false).await;
        let t = GrpcTransport::new(Duration::from_millis(500));
        // The first goes as a call while the stream opens.
        ok(&batch(&t, &s.addr, &[1, 3], T).await, &[1, 3]);
        until_state(&t, "open").await;
        let first = session(&t).unwrap();
        let (tr, addr) = (&t, &s.addr);
        let sends: Vec<_> = (0..20u64)
            .map(|i| async move { batch(tr, addr, &[1, 3 + i, 100 + i], T).await })
            .collect();
        for (i, answers) in (0..20u64).zip(futures::future::join_all(sends).await) {
            ok(&answers, &[1, 3 + i, 100 + i]);
        }
        // A lone message goes on the stream too.
        ok(&batch(&t, &s.addr, &[7], T).await, &[7]);
        let f = first.in_flight.lock().unwrap();
        assert_eq!(
            f.next_id,
            1 + 20 * 3 + 1,
            "every message went on the one stream"
        );
        assert!(f.waiting.is_empty());
    }

    #[tokio::test]
    async fn on_the_stream_each_message_keeps_its_own_timeout() {
        let s = server(false).await;
        let t = GrpcTransport::new(Duration::from_millis(500));
        ok(&batch(&t, &s.addr, &[1], T).await, &[1]);
        until_state(&t, "open").await;
        // Idle, the sweep rests (tests/redial.rs: a message to a silent
        // peer wakes it).
        tokio::time::sleep(SWEEP_EVERY * 3).await;
        let rests = session(&t).unwrap().in_flight.lock().unwrap().sweep_resting;
        assert!(rests, "an idle stream's sweep rests");
        let timeout = Duration::from_millis(300);
        let started = tokio::time::Instant::now();
        let mut items = Vec::new();
        let (slow_reply, slow) = oneshot::channel();
        let (fast_reply, fast) = oneshot::channel();
        for (g, reply) in [(2u64, slow_reply), (1, fast_reply)] {
            items.push(BatchItem {
                group: g,
                payload: vec![g as u8],
                timeout,
                reply,
            });
        }
        t.call_batch(PEER, &s.addr, items).await;
        assert_eq!(fast.await.unwrap().unwrap(), vec![1]);
        assert!(
            started.elapsed() < timeout,
            "the fast answer waited for the slow one"
        );
        let slow = slow.await.unwrap();
        assert!(
            matches!(slow, Err(TransportError::Timeout { .. })),
            "{slow:?}"
        );
        assert!(started.elapsed() < timeout + Duration::from_millis(500));
        // The stream goes on.
        ok(&batch(&t, &s.addr, &[4, 5], T).await, &[4, 5]);
        assert_eq!(state(&t), "open");
    }

    #[tokio::test]
    async fn a_peer_of_an_older_version_gets_batches_as_calls() {
        let s = server(true).await;
        let t = GrpcTransport::new(Duration::from_millis(500));
        ok(&batch(&t, &s.addr, &[1, 3], T).await, &[1, 3]);
        until_state(&t, "unsupported").await;
        ok(&batch(&t, &s.addr, &[1, 3, 4], T).await, &[1, 3, 4]);
        ok(&batch(&t, &s.addr, &[5], T).await, &[5]);
        assert_eq!(state(&t), "unsupported");
    }

    #[tokio::test]
    async fn shutting_down_ends_the_streams_a_server_serves() {
        let mut s = server(false).await;
        let t = GrpcTransport::new(Duration::from_millis(500));
        ok(&batch(&t, &s.addr, &[1], T).await, &[1]);
        until_state(&t, "open").await;
        s.stop.take().unwrap().send(()).unwrap();
        // A graceful shutdown would wait for the open stream forever.
        tokio::time::timeout(Duration::from_secs(2), &mut s.served)
            .await
            .expect("the server stopped despite a peer's open stream")
            .unwrap();
        until_state(&t, "idle").await;
    }

    #[tokio::test]
    async fn an_old_stream_is_replaced_and_drains() {
        let s = server(false).await;
        let t = GrpcTransport::new(Duration::from_millis(500));
        ok(&batch(&t, &s.addr, &[1], T).await, &[1]);
        until_state(&t, "open").await;
        let old = session(&t).unwrap();
        // Age it, with a message still in flight on it.
        let (reply, slow) = oneshot::channel();
        old.send(vec![BatchItem {
            group: 2,
            payload: vec![2],
            timeout: Duration::from_millis(400),
            reply,
        }])
        .unwrap();
        {
            let peers = t.peers.lock().unwrap();
            let mut state = peers[&PEER].stream.state.lock().unwrap();
            if let SlotState::Open { since, .. } = &mut *state {
                *since -= STREAM_MAX_AGE;
            }
        }
        // Goes as a call while the new stream opens; the old one takes no more.
        ok(&batch(&t, &s.addr, &[3], T).await, &[3]);
        until_state(&t, "open").await;
        let new = session(&t).unwrap();
        assert!(!Arc::ptr_eq(&old, &new));
        ok(&batch(&t, &s.addr, &[4], T).await, &[4]);
        assert!(old.send(Vec::new()).is_err(), "the old stream took more");
        // What was in flight on the old one still gets its own answer.
        let slow = slow.await.unwrap();
        assert!(
            matches!(slow, Err(TransportError::Timeout { .. })),
            "{slow:?}"
        );
        tokio::time::sleep(SWEEP_EVERY * 3).await;
        assert!(old.drained());
        assert!(old.in_flight.lock().unwrap().frames.is_none());
    }
}
