//! Where the cloud events consumer reads CloudTrail records from: the SQS
//! queue EventBridge fills (on AWS, or moto), or the simulated cloud's
//! event feed (`canon dev` on SimCloud, and the simulations). One small
//! trait, so the consumer — its filter, coalescing and pokes — is written
//! once for both.

use std::sync::Arc;
use std::time::Duration;

use canon_cloud::{BoxFuture, SimCloud};

use crate::sqs::queue::{Queue, Received};

/// A source of CloudTrail records (EventBridge-wrapped JSON bodies).
pub trait EventSource: Send + Sync + 'static {
    /// What to call it in logs (the queue's URL).
    fn name(&self) -> String;

    /// Up to `max` records, waiting up to `wait` for the first; each kept
    /// from other readers for `visibility` until deleted.
    fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> BoxFuture<'_, Result<Vec<Received>, String>>;

    /// The record delivered with `receipt` is done with.
    fn delete<'a>(&'a self, receipt: &'a str) -> BoxFuture<'a, Result<(), String>>;
}

impl EventSource for Queue {
    fn name(&self) -> String {
        self.url().to_string()
    }

    fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> BoxFuture<'_, Result<Vec<Received>, String>> {
        Box::pin(async move {
            Queue::receive(self, max, wait, visibility)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn delete<'a>(&'a self, receipt: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            Queue::delete(self, receipt)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// How often the simulated feed is looked at while a receive waits.
const SIM_POLL: Duration = Duration::from_millis(20);

/// The simulated cloud's event feed ([`SimCloud::open_event_feed`]).
/// Records taken are gone: a record whose poke failed is not delivered
/// again (the feed's own faults already drop some; the tick covers them).
#[derive(Debug, Clone)]
pub struct SimFeed(Arc<SimCloud>);

impl SimFeed {
    /// Opens `sim`'s feed and reads it.
    pub fn open(sim: Arc<SimCloud>) -> SimFeed {
        sim.open_event_feed();
        SimFeed(sim)
    }
}

impl EventSource for SimFeed {
    fn name(&self) -> String {
        "the simulated cloud's event feed".to_string()
    }

    fn receive(
        &self,
        max: usize,
        wait: Duration,
        _visibility: Duration,
    ) -> BoxFuture<'_, Result<Vec<Received>, String>> {
        Box::pin(async move {
            let until = tokio::time::Instant::now() + wait;
            loop {
                let got = self.0.take_events(max);
                if !got.is_empty() || tokio::time::Instant::now() >= until {
                    return Ok(got.into_iter().map(received).collect());
                }
                tokio::time::sleep(SIM_POLL).await;
            }
        })
    }

    fn delete<'a>(&'a self, _receipt: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

/// A feed record as the consumer takes a message.
fn received(body: String) -> Received {
    Received {
        message_id: String::new(),
        receipt: String::new(),
        body,
        receive_count: 1,
    }
}
