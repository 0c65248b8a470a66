//! An SQS queue as the intake uses it: receive, delete, keep a message
//! invisible, read the redrive policy, and send (a reply, to any queue).
//! A thin wrapper over aws-sdk-sqs, so that the poller reads as the steps
//! it takes and every SDK error becomes one [`QueueError`] naming the call
//! and the queue.

use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use aws_sdk_sqs::Client;

/// An SQS call that failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("SQS {call} on {queue}: {reason}")]
pub struct QueueError {
    pub call: &'static str,
    pub queue: String,
    pub reason: String,
}

/// One message taken off the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// SQS's id of the message: the same on every delivery of it.
    pub message_id: String,
    /// The handle of this delivery (delete and visibility calls take it).
    pub receipt: String,
    pub body: String,
    /// How many times SQS has delivered it, this time included.
    pub receive_count: u32,
}

/// One queue, through one SDK client.
#[derive(Debug, Clone)]
pub struct Queue {
    client: Client,
    url: String,
}

/// Whole seconds, as SQS takes them (at most 12 hours, its limit).
fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs().min(12 * 3600)).unwrap_or(12 * 3600)
}

impl Queue {
    pub fn new(client: Client, url: impl Into<String>) -> Queue {
        Queue {
            client,
            url: url.into(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The SDK client (replies go out through it).
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn error(&self, call: &'static str, e: impl std::error::Error) -> QueueError {
        QueueError {
            call,
            queue: self.url.clone(),
            reason: DisplayErrorContext(e).to_string(),
        }
    }

    /// Up to `max` messages (1-10), waiting up to `wait` for the first
    /// (a long poll), each kept invisible to other receivers for
    /// `visibility`.
    pub async fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Received>, QueueError> {
        let max = i32::try_from(max.clamp(1, 10)).unwrap_or(10);
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max)
            .wait_time_seconds(seconds(wait))
            .visibility_timeout(seconds(visibility))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| self.error("ReceiveMessage", e))?;
        Ok(out
            .messages()
            .iter()
            .filter_map(|m| {
                let count = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1);
                Some(Received {
                    message_id: m.message_id()?.to_string(),
                    receipt: m.receipt_handle()?.to_string(),
                    body: m.body().unwrap_or_default().to_string(),
                    receive_count: count,
                })
            })
            .collect())
    }

    /// Deletes the message delivered with `receipt`.
    pub async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| self.error("DeleteMessage", e))?;
        Ok(())
    }

    /// Keeps the message delivered with `receipt` invisible for `d` from
    /// now (zero: visible again at once).
    pub async fn hide_for(&self, receipt: &str, d: Duration) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds(d))
            .send()
            .await
            .map_err(|e| self.error("ChangeMessageVisibility", e))?;
        Ok(())
    }

    /// The queue's maxReceiveCount, if it has a redrive policy (a
    /// dead-letter queue).
    pub async fn max_receive_count(&self) -> Result<Option<u32>, QueueError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(|e| self.error("GetQueueAttributes", e))?;
        let policy = out
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy));
        Ok(policy.and_then(|p| max_receive_count(p)))
    }
}

/// `maxReceiveCount` of a redrive policy (JSON; SQS writes the number as
/// a number, some tools as a string).
fn max_receive_count(policy: &str) -> Option<u32> {
    let v: serde_json::Value = serde_json::from_str(policy).ok()?;
    match v.get("maxReceiveCount")? {
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Sends `body` to the queue at `url`; on a FIFO queue with message group
/// `group` and deduplication id `dedup`. The new message's id.
pub async fn send(
    client: &Client,
    url: &str,
    body: String,
    group: &str,
    dedup: &str,
) -> Result<String, QueueError> {
    let mut call = client.send_message().queue_url(url).message_body(body);
    if canon_proto::sqs::is_fifo(url) {
        call = call.message_group_id(group).message_deduplication_id(dedup);
    }
    let out = call.send().await.map_err(|e| QueueError {
        call: "SendMessage",
        queue: url.to_string(),
        reason: DisplayErrorContext(e).to_string(),
    })?;
    Ok(out.message_id().unwrap_or_default().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_redrive_limit_reads_as_sqs_and_tools_write_it() {
        let arn = "arn:aws:sqs:us-east-1:123456789012:dlq";
        let n = format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":5}}"#);
        assert_eq!(max_receive_count(&n), Some(5));
        let s = format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":"3"}}"#);
        assert_eq!(max_receive_count(&s), Some(3));
        assert_eq!(max_receive_count("{}"), None);
        assert_eq!(max_receive_count("junk"), None);
    }
}
