//! A drill's fault on one node's Raft links: each message it sends to or
//! receives from a peer is delayed, or lost. The kernels we drill on have
//! no `netem`, so `canon drill run --fault delay-peers|loss-peers` acts
//! here, in the transport, on a node started with the drill switch (canond
//! `--drill-faults`); without it nothing here is built into the node.
//!
//! A lost message looks to its sender as it would on a real network: no
//! answer within the call's timeout. Delay applies to both directions of
//! the node's links, so a message to a peer and the peer's answer to it
//! are each delayed once.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use rand08::Rng;
use serde::{Deserialize, Serialize};

use crate::ids::{GroupId, NodeId};
use crate::network::{BatchItem, RpcKind, Transport, TransportError};

/// The most a drill may delay one message: longer is a partition, which
/// other faults drill.
pub const DELAY_MS_MAX: u64 = 10_000;

/// How long a lost incoming message is held before its handler gives up
/// on it; its sender stopped waiting long before (every call is bounded
/// well below this).
const LOST_INBOUND_HOLD: Duration = Duration::from_secs(30);

/// What happens to each message on the node's links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkFault {
    /// Every message waits this long...
    #[serde(default)]
    pub delay_ms: u64,
    /// ...plus up to this much more, drawn for each message.
    #[serde(default)]
    pub jitter_ms: u64,
    /// The share of messages lost, in percent (0–100).
    #[serde(default)]
    pub loss_percent: u8,
}

impl LinkFault {
    /// The fault, if it is one a drill may set.
    pub fn validated(self) -> Result<LinkFault, String> {
        if self.loss_percent > 100 {
            return Err(format!(
                "loss_percent is {}: a share of messages, 0 to 100",
                self.loss_percent
            ));
        }
        if self.delay_ms.saturating_add(self.jitter_ms) > DELAY_MS_MAX {
            return Err(format!(
                "delay_ms + jitter_ms is {} ms: at most {DELAY_MS_MAX} ms (longer is a partition)",
                self.delay_ms.saturating_add(self.jitter_ms)
            ));
        }
        Ok(self)
    }

    /// What happens to the next message.
    fn draw(&self) -> Fate {
        let mut rng = rand08::thread_rng();
        if self.loss_percent > 0 && rng.gen_range(0..100u8) < self.loss_percent {
            return Fate::Lost;
        }
        let jitter = match self.jitter_ms {
            0 => 0,
            j => rng.gen_range(0..=j),
        };
        Fate::Delayed(Duration::from_millis(self.delay_ms + jitter))
    }
}

impl std::fmt::Display for LinkFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "delay {} ms (+ up to {} ms), loss {}% of Raft messages to and from peers",
            self.delay_ms, self.jitter_ms, self.loss_percent
        )
    }
}

/// What befalls one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Delayed(Duration),
    Lost,
}

/// The switch a drill turns: shared by the node's transport (messages it
/// sends) and its handler (messages it receives). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct LinkFaults(Arc<RwLock<Option<LinkFault>>>);

impl LinkFaults {
    /// Sets (`Some`) or clears (`None`) the fault.
    pub fn set(&self, fault: Option<LinkFault>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = fault;
    }

    /// The fault now, if any.
    pub fn current(&self) -> Option<LinkFault> {
        *self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    fn draw(&self) -> Option<Fate> {
        self.current().map(|f| f.draw())
    }

    /// What an incoming message waits for: `Err` if it is lost (after
    /// holding it past any sender's patience).
    pub async fn inbound(&self) -> Result<(), Lost> {
        match self.draw() {
            None => Ok(()),
            Some(Fate::Delayed(d)) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
            Some(Fate::Lost) => {
                tokio::time::sleep(LOST_INBOUND_HOLD).await;
                Err(Lost)
            }
        }
    }
}

/// A message the link fault dropped.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("message dropped by a drill's link fault")]
pub struct Lost;

/// A transport whose messages suffer the node's link fault before the
/// inner transport sends them.
pub struct FaultyTransport {
    inner: Arc<dyn Transport>,
    faults: LinkFaults,
}

impl FaultyTransport {
    pub fn new(inner: Arc<dyn Transport>, faults: LinkFaults) -> FaultyTransport {
        FaultyTransport { inner, faults }
    }
}

impl Transport for FaultyTransport {
    fn call(
        &self,
        target: NodeId,
        addr: &str,
        kind: RpcKind,
        group: GroupId,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>> {
        let fate = self.faults.draw();
        let call = self.inner.call(target, addr, kind, group, payload, timeout);
        async move {
            match fate {
                None => call.await,
                Some(Fate::Delayed(d)) => {
                    // The delay counts against the caller's timeout, as
                    // time on the wire does.
                    let left = timeout.saturating_sub(d);
                    tokio::time::sleep(d.min(timeout)).await;
                    if left.is_zero() {
                        return Err(TransportError::Timeout {
                            target,
                            after: timeout,
                        });
                    }
                    call.await
                }
                Some(Fate::Lost) => {
                    tokio::time::sleep(timeout).await;
                    Err(TransportError::Timeout {
                        target,
                        after: timeout,
                    })
                }
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
        // One batch is one message on the wire: one fate for all of it.
        let fate = self.faults.draw();
        let inner = self.inner.clone();
        let addr = addr.to_string();
        async move {
            match fate {
                None => inner.call_batch(target, &addr, items).await,
                Some(Fate::Delayed(d)) => {
                    tokio::time::sleep(d).await;
                    inner.call_batch(target, &addr, items).await
                }
                Some(Fate::Lost) => {
                    let after = items.iter().map(|i| i.timeout).max().unwrap_or_default();
                    tokio::time::sleep(after).await;
                    for i in items {
                        let lost = TransportError::Timeout {
                            target,
                            after: i.timeout,
                        };
                        // The caller may have given up; nothing to tell then.
                        let _ = i.reply.send(Err(lost));
                    }
                }
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drill_may_set_only_a_sensible_fault() {
        let ok = LinkFault {
            delay_ms: 200,
            jitter_ms: 50,
            loss_percent: 20,
        };
        assert_eq!(ok.validated(), Ok(ok));
        let lossy = LinkFault {
            loss_percent: 101,
            ..ok
        };
        assert!(lossy.validated().unwrap_err().contains("0 to 100"));
        let slow = LinkFault {
            delay_ms: DELAY_MS_MAX,
            jitter_ms: 1,
            ..ok
        };
        assert!(slow.validated().unwrap_err().contains("partition"));
        let parsed: Result<LinkFault, _> = serde_json::from_str(r#"{"delay_ms": 5, "lost": 3}"#);
        assert!(parsed.is_err(), "an unknown field is refused");
    }

    #[test]
    fn loss_drops_about_its_share_and_delay_stays_in_its_range() {
        let f = LinkFault {
            delay_ms: 10,
            jitter_ms: 5,
            loss_percent: 30,
        };
        let fates: Vec<Fate> = (0..10_000).map(|_| f.draw()).collect();
        let lost = fates.iter().filter(|f| **f == Fate::Lost).count();
        assert!((2_500..3_500).contains(&lost), "{lost} of 10000 lost");
        for fate in fates {
            if let Fate::Delayed(d) = fate {
                assert!((10..=15).contains(&d.as_millis()), "{d:?}");
            }
        }
        let none = LinkFault {
            delay_ms: 0,
            jitter_ms: 0,
            loss_percent: 0,
        };
        assert!((0..100).all(|_| none.draw() == Fate::Delayed(Duration::ZERO)));
    }

    /// Answers every call at once with its payload.
    struct Echo;

    impl Transport for Echo {
        fn call(
            &self,
            _: NodeId,
            _: &str,
            _: RpcKind,
            _: GroupId,
            payload: Vec<u8>,
            _: Duration,
        ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>> {
            async move { Ok(payload) }.boxed()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_transport_delays_or_loses_calls_while_the_fault_is_set() {
        let faults = LinkFaults::default();
        let t = FaultyTransport::new(Arc::new(Echo), faults.clone());
        let timeout = Duration::from_secs(1);
        let call = || t.call(2, "n2", RpcKind::Vote, 1, vec![7], timeout);
        let started = tokio::time::Instant::now();
        assert_eq!(call().await.unwrap(), vec![7]);
        assert_eq!(started.elapsed(), Duration::ZERO, "no fault, no delay");

        faults.set(Some(LinkFault {
            delay_ms: 300,
            jitter_ms: 0,
            loss_percent: 0,
        }));
        let started = tokio::time::Instant::now();
        assert_eq!(call().await.unwrap(), vec![7]);
        assert_eq!(started.elapsed(), Duration::from_millis(300));

        faults.set(Some(LinkFault {
            delay_ms: 0,
            jitter_ms: 0,
            loss_percent: 100,
        }));
        let started = tokio::time::Instant::now();
        let lost = call().await.unwrap_err();
        assert!(
            matches!(lost, TransportError::Timeout { target: 2, .. }),
            "{lost}"
        );
        assert_eq!(started.elapsed(), timeout, "a lost call times out");
        assert!(
            faults.inbound().await.is_err(),
            "and so does a received one"
        );

        faults.set(None);
        assert_eq!(call().await.unwrap(), vec![7]);
        assert!(faults.inbound().await.is_ok());
    }
}
