//! A peer connection that went silent is dialed afresh.
//!
//! Real TCP retransmits a lost segment with a doubling backoff: after a
//! partition or a one-way filter heals, the connections that lost packets
//! stay silent for seconds (minutes, after a long fault), while a new
//! connection works at once. The drills saw it: after a one-way filter on
//! a node was lifted, its leaders' AppendEntries kept timing out for four
//! seconds, and the node, hearing nobody, disrupted every group.
//!
//! Here a proxy between the transport and a peer emulates that: when the
//! fault starts, every connection it carries stops moving bytes, and stays
//! stopped after the fault heals (as a connection in retransmission
//! backoff does); connections made after the heal pass freely.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use canon_raft::coalesce::Coalescer;
use canon_raft::grpc::{serve, GrpcService, GrpcTransport};
use canon_raft::network::{HandleError, MessageHandler, RpcKind, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Answers every message with its payload.
struct Echo;

impl MessageHandler for Echo {
    async fn handle(
        &self,
        _kind: RpcKind,
        _group: u64,
        payload: &[u8],
    ) -> Result<Vec<u8>, HandleError> {
        Ok(payload.to_vec())
    }
}

/// A TCP proxy whose connections can be stalled for good: `stall()` stops
/// every connection open now; later ones are not affected.
struct StallingProxy {
    addr: String,
    stall_now: watch::Sender<u64>,
}

impl StallingProxy {
    async fn start(to: String) -> StallingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (stall_now, generation) = watch::channel(0u64);
        tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    return;
                };
                let Ok(outbound) = TcpStream::connect(&to).await else {
                    continue;
                };
                // A connection is stalled by any stall() after it opened.
                let born = *generation.borrow();
                let stalled = Arc::new(AtomicBool::new(false));
                let mut g = generation.clone();
                let flag = stalled.clone();
                tokio::spawn(async move {
                    while g.changed().await.is_ok() {
                        if *g.borrow() > born {
                            flag.store(true, Ordering::SeqCst);
                        }
                    }
                });
                let (ri, wi) = inbound.into_split();
                let (ro, wo) = outbound.into_split();
                tokio::spawn(pump(ri, wo, stalled.clone()));
                tokio::spawn(pump(ro, wi, stalled));
            }
        });
        StallingProxy { addr, stall_now }
    }

    fn stall(&self) {
        self.stall_now.send_modify(|g| *g += 1);
    }
}

/// Copies bytes until the connection closes or is stalled (then it holds
/// them: nothing more moves).
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    stalled: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        let n = match tokio::time::timeout(Duration::from_millis(10), from.read(&mut buf)).await {
            Err(_) => continue,
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(n)) => n,
        };
        if stalled.load(Ordering::SeqCst) {
            // Lost, as a packet dropped by a filter is.
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// An echo server behind a stalling proxy.
async fn echo_behind_proxy() -> StallingProxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap().to_string();
    let echo = Arc::new(Echo);
    // The service holds the handler weakly: keep it alive for the test.
    let service = GrpcService::new(Arc::downgrade(&echo));
    tokio::spawn(async move {
        let _keep = echo;
        let _ = serve(service, listener, std::future::pending()).await;
    });
    StallingProxy::start(server).await
}

const CALL: Duration = Duration::from_millis(100);

async fn echo(t: &GrpcTransport, addr: &str) -> bool {
    t.call(2, addr, RpcKind::Admin, 0, b"ping".to_vec(), CALL)
        .await
        .is_ok_and(|p| p == b"ping")
}

/// How long after the stall the peer answers again, calling every 20 ms
/// for at most `within`.
async fn answers_again_after(t: &GrpcTransport, addr: &str, within: Duration) -> Option<Duration> {
    let started = tokio::time::Instant::now();
    while started.elapsed() < within {
        if echo(t, addr).await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[tokio::test]
async fn a_silent_connection_is_replaced_after_the_redial_silence() {
    let proxy = echo_behind_proxy().await;
    let t =
        GrpcTransport::new(Duration::from_millis(200)).redialing_after(Duration::from_millis(300));
    assert!(
        echo(&t, &proxy.addr).await,
        "the peer answers before the fault"
    );
    proxy.stall();
    let back = answers_again_after(&t, &proxy.addr, Duration::from_secs(5)).await;
    let back = back.expect("the peer never answered again: the stalled connection was kept");
    // The first timeout after 300 ms of silence redials: well within 2 s.
    assert!(
        back < Duration::from_secs(2),
        "answered again only after {back:?}"
    );
}

#[tokio::test]
async fn without_a_redial_the_stalled_connection_stays_silent() {
    // The control: the same fault with a redial silence longer than the
    // test shows what the redial is for (a stalled connection does not
    // come back by itself).
    let proxy = echo_behind_proxy().await;
    let t =
        GrpcTransport::new(Duration::from_millis(200)).redialing_after(Duration::from_secs(3600));
    assert!(echo(&t, &proxy.addr).await);
    proxy.stall();
    let back = answers_again_after(&t, &proxy.addr, Duration::from_secs(2)).await;
    assert_eq!(back, None, "a stalled connection answered again");
}

/// One AppendEntries through `c` (a coalescer over the transport: what the
/// groups use), answered with its payload.
async fn append(c: &Coalescer, addr: &str) -> bool {
    c.call(
        2,
        addr,
        RpcKind::AppendEntries,
        1,
        b"entries".to_vec(),
        CALL,
    )
    .await
    .is_ok_and(|p| p == b"entries")
}

#[tokio::test]
async fn a_silent_append_entries_stream_is_replaced_after_the_redial_silence() {
    let proxy = echo_behind_proxy().await;
    let t =
        GrpcTransport::new(Duration::from_millis(200)).redialing_after(Duration::from_millis(300));
    let t = Arc::new(t);
    let c = Coalescer::new(t.clone());
    // Long enough for the peer's stream to open and carry the appends.
    for _ in 0..20 {
        assert!(
            append(&c, &proxy.addr).await,
            "the peer answers before the fault"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(t.streams_to(2), "the appends went as calls: no stream");
    proxy.stall();
    let started = tokio::time::Instant::now();
    let mut back = None;
    while started.elapsed() < Duration::from_secs(5) {
        if append(&c, &proxy.addr).await {
            back = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let back = back.expect("appends never went through again: the stalled stream was kept");
    assert!(
        back < Duration::from_secs(2),
        "appends went through again only after {back:?}"
    );
    // And they go on doing so, on a new stream once it is open.
    for _ in 0..20 {
        assert!(append(&c, &proxy.addr).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(t.streams_to(2), "no new stream replaced the stalled one");
}
