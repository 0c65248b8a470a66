//! Coalescing of AppendEntries across groups: one round trip per peer for
//! what many groups send it at the same moment.
//!
//! Every group of a node replicates to the same peers, and the groups move
//! in step (one flush completes many groups' appends at once, so their
//! commits, and the AppendEntries announcing them, come together). Sent one
//! by one, each is a gRPC call of its own — its HTTP/2 stream, headers,
//! trailers and task wake-ups on both sides — and with many groups and small
//! entries those calls were the largest CPU cost per commit.
//!
//! [`Coalescer`] wraps a [`Transport`]: AppendEntries calls go into a queue
//! per peer, whose sender task takes everything waiting and sends it as one
//! [`Transport::call_batch`] (a lone message goes as an ordinary call). The
//! sender never waits for an earlier batch to finish, so no message waits
//! behind another batch; within a batch the peer handles each message
//! concurrently, bounds it by its own timeout and streams each answer back
//! as soon as it is ready, so no group's answer waits for another's. Each
//! caller keeps its own timeout and gets its own answer or error, as with a
//! direct call. Large messages (a follower catching up) and every other
//! kind of call go straight to the wrapped transport.
//!
//! Gathering has a price: the message waits for the sender task to run and
//! for its scheduler passes. When one group alone writes (one client), no
//! other message ever joins it, and that wait is on every AppendEntries of
//! every write. So a message that finds nothing else in flight to its peer,
//! after [`LONE_BEFORE_DIRECT`] messages to it in a row that went alone,
//! is sent at once by its caller (`PeerTraffic::goes_direct`); a batch of
//! several makes the peer's messages gather again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::{mpsc, oneshot};

use crate::ids::{GroupId, NodeId};
use crate::network::{BatchItem, ItemResult, RpcKind, Transport, TransportError};

/// Messages larger than this are sent on their own (their call overhead is
/// small beside them, and they would hold up the batch's transfer).
pub const MAX_BATCHED_MESSAGE_BYTES: usize = 64 * 1024;
/// Most messages in one batch.
const MAX_BATCH_MESSAGES: usize = 256;
/// Rough bound on the bytes of one batch.
const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// Most scheduler passes a sender waits for more messages before sending.
const MAX_GATHER_PASSES: usize = 8;

/// Lone messages to a peer in a row (sent directly or in a batch of one)
/// after which a message that finds nothing in flight goes directly.
pub const LONE_BEFORE_DIRECT: u32 = 4;

/// One peer's queue.
struct PeerQueue {
    addr: String,
    tx: mpsc::UnboundedSender<BatchItem>,
    traffic: Arc<PeerTraffic>,
}

/// What a peer's messages have been like lately, shared by the callers
/// and the peer's sender task.
#[derive(Debug, Default)]
struct PeerTraffic {
    /// AppendEntries to the peer handed out (queued or sent) and not yet
    /// answered.
    in_flight: AtomicUsize,
    /// Messages in a row that went alone (0 after a batch of several).
    lone_in_a_row: AtomicU32,
}

impl PeerTraffic {
    /// Counts one message in flight until the guard is dropped.
    fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// Notes that `messages` went out together.
    fn sent(&self, messages: usize) {
        if messages > 1 {
            self.lone_in_a_row.store(0, Ordering::Release);
        } else {
            // Saturating: `fetch_update` only fails when the closure says
            // so, and this one never does.
            let _ = self
                .lone_in_a_row
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    Some(n.saturating_add(1))
                });
        }
    }

    /// Whether a new message should skip the queue (module docs).
    fn goes_direct(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
            && self.lone_in_a_row.load(Ordering::Acquire) >= LONE_BEFORE_DIRECT
    }
}

/// One message to a peer in flight ([`PeerTraffic::start`]).
struct InFlight(Arc<PeerTraffic>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A [`Transport`] that coalesces AppendEntries per peer (module docs).
pub struct Coalescer {
    inner: Arc<dyn Transport>,
    peers: Mutex<HashMap<NodeId, PeerQueue>>,
}

/// How a message goes to its peer.
enum Route {
    /// Straight away, by its caller.
    Direct(InFlight, Vec<u8>),
    /// Queued for the peer's sender task, which answers here.
    Queued(InFlight, oneshot::Receiver<ItemResult>),
    /// As an ordinary call of the wrapped transport: no sender task can
    /// be started (no runtime).
    Unqueued(Vec<u8>),
}

/// The message a [`Route`] is chosen for.
struct Message {
    group: GroupId,
    payload: Vec<u8>,
    timeout: Duration,
}

impl Coalescer {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Transport>) -> Self {
        Coalescer {
            inner,
            peers: Mutex::new(HashMap::new()),
        }
    }

    /// Sends `m` to `target` directly ([`PeerTraffic::goes_direct`]) or
    /// queues it, starting the peer's sender task if there is none (or the
    /// last one stopped, e.g. with the runtime it ran on).
    fn route(&self, target: NodeId, addr: &str, m: Message) -> Route {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let m = match peers.get(&target) {
            Some(p) if p.addr == addr => {
                if p.traffic.goes_direct() {
                    p.traffic.sent(1);
                    return Route::Direct(p.traffic.start(), m.payload);
                }
                match p.queue(m) {
                    Ok(route) => return route,
                    Err(m) => m,
                }
            }
            _ => m,
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Route::Unqueued(m.payload);
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let traffic = Arc::new(PeerTraffic::default());
        runtime.spawn(send_loop(
            self.inner.clone(),
            target,
            addr.to_string(),
            rx,
            traffic.clone(),
        ));
        let p = PeerQueue {
            addr: addr.to_string(),
            tx,
            traffic,
        };
        let route = p.queue(m).unwrap_or_else(|m| Route::Unqueued(m.payload));
        peers.insert(target, p);
        route
    }
}

impl PeerQueue {
    /// Queues `m` for the sender task; gives it back if the task is gone.
    fn queue(&self, m: Message) -> Result<Route, Message> {
        let (reply, answer) = oneshot::channel();
        let in_flight = self.traffic.start();
        let item = BatchItem {
            group: m.group,
            payload: m.payload,
            timeout: m.timeout,
            reply,
        };
        match self.tx.send(item) {
            Ok(()) => Ok(Route::Queued(in_flight, answer)),
            Err(mpsc::error::SendError(i)) => Err(Message {
                group: i.group,
                payload: i.payload,
                timeout: i.timeout,
            }),
        }
    }
}

impl Transport for Coalescer {
    fn call(
        &self,
        target: NodeId,
        addr: &str,
        kind: RpcKind,
        group: GroupId,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>> {
        if kind != RpcKind::AppendEntries || payload.len() > MAX_BATCHED_MESSAGE_BYTES {
            return self.inner.call(target, addr, kind, group, payload, timeout);
        }
        let m = Message {
            group,
            payload,
            timeout,
        };
        let answer = match self.route(target, addr, m) {
            Route::Unqueued(payload) => {
                return self.inner.call(target, addr, kind, group, payload, timeout)
            }
            Route::Direct(in_flight, payload) => {
                let call = self.inner.call(target, addr, kind, group, payload, timeout);
                return async move {
                    let _in_flight = in_flight;
                    call.await
                }
                .boxed();
            }
            Route::Queued(in_flight, answer) => (in_flight, answer),
        };
        async move {
            let (_in_flight, answer) = answer;
            match tokio::time::timeout(timeout, answer).await {
                Err(_) => Err(TransportError::Timeout {
                    target,
                    after: timeout,
                }),
                Ok(Err(_)) => Err(TransportError::Failed {
                    target,
                    reason: "the batch sender stopped before an answer came".to_string(),
                }),
                Ok(Ok(answer)) => answer,
            }
        }
        .boxed()
    }

    fn call_batch(
        &self,
        target: NodeId,
        addr: &str,
        items: Vec<BatchItem>,
    ) -> BoxFuture<'static, ()> {
        self.inner.call_batch(target, addr, items)
    }
}

/// A peer's sender task: takes everything queued, sends it as one call
/// (without waiting for it), repeats. Ends when the coalescer lets go of
/// the queue.
async fn send_loop(
    inner: Arc<dyn Transport>,
    target: NodeId,
    addr: String,
    mut rx: mpsc::UnboundedReceiver<BatchItem>,
    traffic: Arc<PeerTraffic>,
) {
    while let Some(first) = rx.recv().await {
        // Groups woken together (by one flush, one commit, one batch of
        // answers) queue their messages within the same few scheduler
        // passes: yield (each pass also lets the runtime poll for I/O that
        // wakes more groups) for as long as each pass brings more. Measured
        // with 64 writers over 16 shards: one pass 0.121 ms of CPU per
        // commit, up to 8 passes 0.106 ms and +20% commits/s.
        let mut queued = rx.len();
        for _ in 0..MAX_GATHER_PASSES {
            tokio::task::yield_now().await;
            let now = rx.len();
            if now == queued {
                break;
            }
            queued = now;
        }
        let mut bytes = first.payload.len();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH_MESSAGES && bytes < MAX_BATCH_BYTES {
            let Ok(i) = rx.try_recv() else { break };
            bytes += i.payload.len();
            batch.push(i);
        }
        traffic.sent(batch.len());
        // A caller that gave up needs no message sent.
        batch.retain(|i| !i.reply.is_closed());
        if batch.len() > 1 {
            tokio::spawn(inner.call_batch(target, &addr, batch));
        } else if let Some(i) = batch.pop() {
            let call = inner.call(
                target,
                &addr,
                RpcKind::AppendEntries,
                i.group,
                i.payload,
                i.timeout,
            );
            tokio::spawn(async move {
                // The caller may have given up; nothing to tell then.
                let _ = i.reply.send(call.await);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::call_each;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Answers AppendEntries with the payload back, after `delay` for group
    /// 2; counts calls and batches.
    #[derive(Default)]
    struct Echo {
        calls: AtomicUsize,
        batches: AtomicUsize,
        batched_items: AtomicUsize,
    }

    impl Transport for Echo {
        fn call(
            &self,
            target: NodeId,
            _addr: &str,
            _kind: RpcKind,
            group: GroupId,
            payload: Vec<u8>,
            _timeout: Duration,
        ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if group == 2 {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
                if group == 3 {
                    return Err(TransportError::Unreachable {
                        target,
                        addr: "x".into(),
                        reason: "group 3 not served".into(),
                    });
                }
                Ok(payload)
            }
            .boxed()
        }

        fn call_batch(
            &self,
            target: NodeId,
            addr: &str,
            items: Vec<BatchItem>,
        ) -> BoxFuture<'static, ()> {
            self.batches.fetch_add(1, Ordering::SeqCst);
            self.batched_items.fetch_add(items.len(), Ordering::SeqCst);
            call_each(self, target, addr, items)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn messages_sent_together_share_one_batch_with_their_own_answers() {
        let echo = Arc::new(Echo::default());
        let c = Coalescer::new(echo.clone());
        let t = Duration::from_millis(100);
        let calls: Vec<_> = (10..26u64)
            .map(|g| c.call(2, "a", RpcKind::AppendEntries, g, vec![g as u8], t))
            .collect();
        let answers = futures::future::join_all(calls).await;
        for (g, a) in (10..26u64).zip(answers) {
            assert_eq!(a.unwrap(), vec![g as u8]);
        }
        assert_eq!(echo.batches.load(Ordering::SeqCst), 1);
        assert_eq!(echo.batched_items.load(Ordering::SeqCst), 16);
    }

    #[tokio::test(start_paused = true)]
    async fn each_message_keeps_its_own_timeout_and_error() {
        let echo = Arc::new(Echo::default());
        let c = Coalescer::new(echo.clone());
        let t = Duration::from_millis(100);
        let started = tokio::time::Instant::now();
        let slow = c.call(2, "a", RpcKind::AppendEntries, 2, vec![2], t);
        let fast = c.call(2, "a", RpcKind::AppendEntries, 1, vec![1], t);
        let gone = c.call(2, "a", RpcKind::AppendEntries, 3, vec![3], t);
        let (slow, fast, gone) = tokio::join!(slow, fast, gone);
        assert!(
            matches!(slow, Err(TransportError::Timeout { after, .. }) if after == t),
            "{slow:?}"
        );
        assert!(
            matches!(gone, Err(TransportError::Unreachable { .. })),
            "{gone:?}"
        );
        assert_eq!(fast.unwrap(), vec![1]);
        // Nobody waited past their own timeout for the slow group.
        assert!(started.elapsed() <= t + Duration::from_millis(1));
        assert_eq!(echo.batches.load(Ordering::SeqCst), 1);
    }

    /// Sends `n` lone messages to peer 2, one after another.
    async fn lone_messages(c: &Coalescer, n: u32) {
        let t = Duration::from_millis(100);
        for i in 0..n {
            let answer = c.call(2, "a", RpcKind::AppendEntries, 1, vec![i as u8], t);
            assert_eq!(answer.await.unwrap(), vec![i as u8]);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_writers_messages_go_out_without_waiting_for_the_sender_task() {
        let echo = Arc::new(Echo::default());
        let c = Coalescer::new(echo.clone());
        lone_messages(&c, LONE_BEFORE_DIRECT).await;
        let sent = echo.calls.load(Ordering::SeqCst);
        // Not polled yet: only a direct send has reached the transport.
        let answer = c.call(
            2,
            "a",
            RpcKind::AppendEntries,
            1,
            vec![9],
            Duration::from_millis(100),
        );
        assert_eq!(echo.calls.load(Ordering::SeqCst), sent + 1);
        assert_eq!(answer.await.unwrap(), vec![9]);
        assert_eq!(echo.batches.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn messages_gather_again_once_several_come_together() {
        let echo = Arc::new(Echo::default());
        let c = Coalescer::new(echo.clone());
        lone_messages(&c, LONE_BEFORE_DIRECT).await;
        let t = Duration::from_millis(100);
        // The first goes directly, the 15 that find it in flight together.
        let calls: Vec<_> = (10..26u64)
            .map(|g| c.call(2, "a", RpcKind::AppendEntries, g, vec![g as u8], t))
            .collect();
        for (g, a) in (10..26u64).zip(futures::future::join_all(calls).await) {
            assert_eq!(a.unwrap(), vec![g as u8]);
        }
        assert_eq!(echo.batches.load(Ordering::SeqCst), 1);
        assert_eq!(echo.batched_items.load(Ordering::SeqCst), 15);
        // And the next lone message waits for the sender task again.
        let sent = echo.calls.load(Ordering::SeqCst);
        let answer = c.call(2, "a", RpcKind::AppendEntries, 1, vec![7], t);
        assert_eq!(echo.calls.load(Ordering::SeqCst), sent);
        assert_eq!(answer.await.unwrap(), vec![7]);
    }

    #[tokio::test(start_paused = true)]
    async fn other_calls_and_large_messages_go_straight_through() {
        let echo = Arc::new(Echo::default());
        let c = Coalescer::new(echo.clone());
        let t = Duration::from_millis(100);
        let big = vec![7u8; MAX_BATCHED_MESSAGE_BYTES + 1];
        let a = c.call(2, "a", RpcKind::AppendEntries, 1, big.clone(), t);
        let b = c.call(2, "a", RpcKind::Vote, 1, vec![1], t);
        let d = c.call(2, "a", RpcKind::AppendEntries, 4, big.clone(), t);
        let (a, b, d) = tokio::join!(a, b, d);
        assert_eq!(a.unwrap(), big);
        assert_eq!(b.unwrap(), vec![1]);
        assert_eq!(d.unwrap(), big);
        assert_eq!(echo.batches.load(Ordering::SeqCst), 0);
        assert_eq!(echo.calls.load(Ordering::SeqCst), 3);
    }
}
