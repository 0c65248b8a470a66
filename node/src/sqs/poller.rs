//! The intake poller: while this node leads the meta group it long-polls
//! the intake queue and carries each message through the API's door
//! ([`crate::api::Api::take`], the same checks and handlers as gRPC
//! Submit; a read through [`crate::api::Api::take_read`], those of the
//! gRPC read), then replies and deletes it, or leaves it for SQS to
//! deliver again.
//!
//! - One poller per cluster: only the meta group's leader receives, so a
//!   new leader takes over within an election; a node that stops leading
//!   stops receiving (after the long poll under way, at most
//!   [`IntakeSettings::wait`]) and finishes the commands it holds.
//! - A message stays invisible to other receivers while its command is in
//!   flight (the visibility is extended every third of
//!   [`IntakeSettings::visibility`]).
//! - Deleted only when done: carried out (committed), or refused for good
//!   (malformed, forged, expired, for another cluster, unauthorised,
//!   invalid); each refusal at the door is in the audit chain
//!   (rate-limited). A transient failure (no leader, a timeout) leaves it
//!   to come back after a pause that doubles with each delivery (1 s to
//!   60 s); on the delivery that reaches the queue's `maxReceiveCount`
//!   the node logs an ERROR and counts `canon_sqs_dead_letters_total`,
//!   since SQS then moves it to the dead-letter queue.
//! - A redelivered message is checked again under the same delivery id
//!   (SQS's message id), so its nonce does not make it a replay; its
//!   command id makes the state machine answer it with the first outcome.

use std::sync::Arc;
use std::time::Duration;

use canon_model::Backoff;
use canon_proto::canon::sqs::v1 as sqs;
use canon_proto::canon::sqs::v1::sqs_request::Request;
use canon_proto::sqs::{encode_body, MAX_BODY};
use canon_raft::Leadership;
use prost::Message;
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle, JoinSet};
use tonic::Status;

use super::door::Door;
use super::message::{disposition, read_request, reply, reply_to, Disposition, ReplyKey};
use super::queue::{send, Queue, Received};
use super::IntakeQueue;
use crate::api::intake::{Answer, Arrival, Shut};

/// How the poller uses its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntakeSettings {
    /// The long poll: how long one receive waits for a first message.
    pub wait: Duration,
    /// How long a received message stays invisible to other receivers
    /// (extended while its command is in flight).
    pub visibility: Duration,
    /// Messages carried at once.
    pub max_in_flight: usize,
}

impl Default for IntakeSettings {
    fn default() -> Self {
        IntakeSettings {
            wait: Duration::from_secs(20),
            visibility: Duration::from_secs(30),
            max_in_flight: 32,
        }
    }
}

/// The pause before a message that failed transiently comes back, by
/// delivery: 1 s, 2 s, 4 s, … 60 s (SQS counts in whole seconds; its own
/// spread of deliveries stands in for jitter).
const AGAIN: Backoff = Backoff {
    base: Duration::from_secs(1),
    cap: Duration::from_secs(60),
    jitter: canon_model::Jitter::None,
};

/// The pause after a failed receive, by failures in a row.
const RECEIVE_AGAIN: Backoff = Backoff {
    base: Duration::from_millis(200),
    cap: Duration::from_secs(10),
    jitter: canon_model::Jitter::None,
};

struct Poller {
    api: Arc<dyn Door>,
    queue: Queue,
    settings: IntakeSettings,
    reply_key: ReplyKey,
}

/// Starts polling `intake` through `door` whenever `lead` (the meta
/// group's leadership) says this node leads; the task ends when the
/// leadership's sender is gone (the node stopped), or is aborted.
pub fn spawn(
    door: Arc<dyn Door>,
    lead: watch::Receiver<Leadership>,
    intake: &IntakeQueue,
) -> JoinHandle<()> {
    let poller = Arc::new(Poller {
        api: door,
        queue: intake.queue(),
        settings: intake.settings,
        reply_key: intake.reply_key.clone(),
    });
    tokio::spawn(poller.run(lead))
}

/// Ends the visibility keeper of one message when dropped.
struct Hidden(AbortHandle);

impl Drop for Hidden {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Poller {
    async fn run(self: Arc<Self>, mut lead: watch::Receiver<Leadership>) {
        loop {
            if lead.wait_for(|l| l.is_me).await.is_err() {
                return; // The node stopped.
            }
            tracing::info!(queue = %self.queue.url(), "leading the meta group: polling the intake queue");
            self.poll_while_leading(&lead).await;
            tracing::info!(queue = %self.queue.url(), "no longer leading the meta group: stopped polling");
        }
    }

    /// Receives and carries messages while this node leads; then waits
    /// for the commands under way.
    async fn poll_while_leading(self: &Arc<Self>, lead: &watch::Receiver<Leadership>) {
        let max_receives = match self.queue.max_receive_count().await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the intake queue's redrive policy");
                None
            }
        };
        let mut in_flight = JoinSet::new();
        let mut failures = 0;
        while lead.borrow().is_me {
            while in_flight.try_join_next().is_some() {}
            let room = self.settings.max_in_flight.saturating_sub(in_flight.len());
            if room == 0 {
                in_flight.join_next().await;
                continue;
            }
            let (wait, visibility) = (self.settings.wait, self.settings.visibility);
            match self.queue.receive(room.min(10), wait, visibility).await {
                Ok(messages) => {
                    failures = 0;
                    for m in messages {
                        in_flight.spawn(self.clone().carry(m, max_receives));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "receiving from the intake queue failed");
                    tokio::time::sleep(RECEIVE_AGAIN.ceiling(failures)).await;
                    failures += 1;
                }
            }
        }
        while in_flight.join_next().await.is_some() {}
    }

    /// One message: through the door, then replied to and deleted, or
    /// left for another delivery.
    async fn carry(self: Arc<Self>, m: Received, max_receives: Option<u32>) {
        let request = match read_request(&m.body) {
            Ok(request) => request,
            Err(e) => {
                tracing::warn!(message_id = %m.message_id, error = %e, "an intake message holds no command; deleted");
                self.api.metrics().queue_message("malformed");
                let reason = format!("SQS message {}: {e}", m.message_id);
                self.api.refuse_unreadable(reason, m.body.as_bytes()).await;
                self.delete(&m).await;
                return;
            }
        };
        let outcome = {
            let _hidden = self.keep_hidden(&m.receipt);
            let arrival = Arrival::sqs(&m.message_id);
            match &request {
                Request::Command(env) => self.api.take(env, &arrival).await,
                Request::Read(read) => self.api.take_read(read, &arrival).await,
            }
        };
        match disposition(&outcome) {
            Disposition::Again => self.again(&m, &outcome, max_receives).await,
            Disposition::Done => {
                self.api.metrics().queue_message("done");
                self.reply(&request, &outcome).await;
                self.delete(&m).await;
            }
        }
    }

    /// Extends the message's visibility every third of the visibility
    /// timeout until the returned guard is dropped.
    fn keep_hidden(&self, receipt: &str) -> Hidden {
        let (queue, receipt) = (self.queue.clone(), receipt.to_string());
        let visibility = self.settings.visibility;
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(visibility / 3).await;
                if let Err(e) = queue.hide_for(&receipt, visibility).await {
                    tracing::warn!(error = %e, "cannot extend an intake message's visibility");
                }
            }
        });
        Hidden(task.abort_handle())
    }

    /// A transient failure: the message comes back after a pause, or, on
    /// its last delivery, goes to the dead-letter queue (alerted).
    async fn again(&self, m: &Received, outcome: &Result<Answer, Shut>, max_receives: Option<u32>) {
        self.api.metrics().queue_message("again");
        let error = outcome
            .as_ref()
            .err()
            .map(|s| s.status.message())
            .unwrap_or_default();
        if max_receives.is_some_and(|max| m.receive_count >= max) {
            self.api.metrics().queue_dead_letter();
            tracing::error!(message_id = %m.message_id, receive_count = m.receive_count, %error,
                "an intake message failed on its last delivery: SQS moves it to the dead-letter \
                 queue; its command may not have been carried out");
        } else {
            tracing::warn!(message_id = %m.message_id, receive_count = m.receive_count, %error,
                "an intake message failed for now; it will be delivered again");
        }
        let pause = AGAIN.ceiling(m.receive_count.saturating_sub(1));
        if let Err(e) = self.queue.hide_for(&m.receipt, pause).await {
            tracing::warn!(error = %e, "cannot set an intake message's next delivery");
        }
    }

    /// Posts the outcome, signed with the cluster's reply key, to the reply
    /// queue the command names, if its signature verified (an unverified
    /// reply queue may be anyone's).
    async fn reply(&self, request: &Request, outcome: &Result<Answer, Shut>) {
        let signed = outcome.as_ref().map_or_else(|s| s.signed, |_| true);
        let Some((queue, id)) = reply_to(request).filter(|_| signed) else {
            return;
        };
        let node = self.api.node_id();
        let answer = outcome.as_ref().map_err(|s| &s.status);
        let seal = |r| encode_body(&self.reply_key.seal(self.api.audience(), &r));
        let full = reply(node, &id, answer);
        let mut body = seal(full.clone());
        if body.len() > MAX_BODY {
            body = seal(self.overflow(full, body.len()).await);
        }
        if let Err(e) = send(self.queue.client(), &queue, body, &id, &id).await {
            self.api.metrics().queue_reply_failed();
            tracing::warn!(command_id = %id, error = %e, "cannot post a reply");
        }
    }

    /// What goes on the queue in place of `full`, a reply of `bytes` as a
    /// message: a reference to it in the overflow bucket, or, without
    /// one (or if S3 refuses), the error that says it was too large.
    async fn overflow(&self, full: sqs::SqsReply, bytes: usize) -> sqs::SqsReply {
        let (node, id) = (full.node, full.request_id.clone());
        let why = match self.api.overflow() {
            Some(bucket) => match bucket.store_reply(full.encode_to_vec()).await {
                Ok(stored) => {
                    return sqs::SqsReply {
                        reply: Some(sqs::sqs_reply::Reply::Stored(stored)),
                        ..full
                    }
                }
                Err(e) => {
                    tracing::warn!(command_id = %id, error = %e, "cannot store a large reply");
                    format!("storing it in the overflow bucket failed: {e}")
                }
            },
            None => "the cluster has no overflow bucket (canond --overflow-bucket)".to_string(),
        };
        let too_long = Status::resource_exhausted(format!(
            "the reply is {bytes} bytes, over SQS's limit of {MAX_BODY}, and {why}; a command \
             was carried out (read its outcome with canon status or history), a read is too \
             large for a queue: narrow it"
        ));
        reply(node, &id, Err(&too_long))
    }

    async fn delete(&self, m: &Received) {
        if let Err(e) = self.queue.delete(&m.receipt).await {
            // It comes back, and the door answers it as the first time.
            tracing::warn!(message_id = %m.message_id, error = %e, "cannot delete an intake message");
        }
    }
}
