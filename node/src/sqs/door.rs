//! What the poller needs of its node, as a trait: the API's door
//! ([`Api::take`], [`Api::take_read`]), the record of an unreadable message, the counters, the
//! node's id and the cluster's. The node passes its [`Api`]; tests of the queue
//! mechanics (redelivery, the dead-letter queue) pass a door that fails on
//! purpose, which no healthy cluster does on demand.

use std::future::Future;
use std::pin::Pin;

use canon_proto::canon::api::v1 as pb;
use canon_proto::canon::sqs::v1 as sqs;
use canon_trust::audit::Channel;

use crate::api::intake::{Answer, Arrival, Shut};
use crate::api::Api;
use crate::metrics::ApiMetrics;

/// A boxed future borrowing from its door.
pub type DoorFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The node behind the poller.
pub trait Door: Send + Sync + 'static {
    /// Carries a command envelope through the door (see [`Api::take`]).
    fn take<'a>(
        &'a self,
        env: &'a pb::SignedEnvelope,
        arrival: &'a Arrival,
    ) -> DoorFuture<'a, Result<Answer, Shut>>;

    /// Answers a signed read (see [`Api::take_read`]).
    fn take_read<'a>(
        &'a self,
        read: &'a sqs::SignedRead,
        arrival: &'a Arrival,
    ) -> DoorFuture<'a, Result<Answer, Shut>>;

    /// Records a message that holds no command (see
    /// [`Api::refuse_unreadable`]).
    fn refuse_unreadable<'a>(&'a self, reason: String, body: &'a [u8]) -> DoorFuture<'a, ()>;

    /// The node's counters.
    fn metrics(&self) -> &ApiMetrics;

    /// The node's id (replies name it).
    fn node_id(&self) -> u64;

    /// The cluster's id (replies are signed for it).
    fn audience(&self) -> &str;

    /// Where replies too large for a message go, if anywhere.
    fn overflow(&self) -> Option<&crate::overflow::OverflowBucket> {
        None
    }
}

impl Door for Api {
    fn take<'a>(
        &'a self,
        env: &'a pb::SignedEnvelope,
        arrival: &'a Arrival,
    ) -> DoorFuture<'a, Result<Answer, Shut>> {
        Box::pin(Api::take(self, env, arrival))
    }

    fn take_read<'a>(
        &'a self,
        read: &'a sqs::SignedRead,
        arrival: &'a Arrival,
    ) -> DoorFuture<'a, Result<Answer, Shut>> {
        Box::pin(Api::take_read(self, read, arrival))
    }

    fn refuse_unreadable<'a>(&'a self, reason: String, body: &'a [u8]) -> DoorFuture<'a, ()> {
        let arrival = Arrival {
            channel: Channel::Sqs,
            ..Arrival::default()
        };
        Box::pin(async move { Api::refuse_unreadable(self, &arrival, reason, body).await })
    }

    fn metrics(&self) -> &ApiMetrics {
        &self.metrics
    }

    fn node_id(&self) -> u64 {
        self.node.id()
    }

    fn audience(&self) -> &str {
        self.verifier.audience()
    }

    fn overflow(&self) -> Option<&crate::overflow::OverflowBucket> {
        self.overflow.as_ref()
    }
}
