//! Command intake over SQS (`canond --intake-queue URL`): commands come as
//! messages of a queue in the conductor's account instead of, or beside,
//! gRPC calls, each through the same door as gRPC Submit.
//!
//! - [`queue`]: the SQS calls the intake makes (a wrapper over
//!   aws-sdk-sqs);
//! - [`message`]: what a message body says (`canon_proto::sqs`: base64 of
//!   an `SqsRequest`), the reply, and the rule that decides whether a
//!   message is done or worth another delivery;
//! - [`poller`]: the meta-group leader's loop that receives, carries,
//!   replies and deletes; [`door`]: what it needs of its node.
//!
//! What is too large for a message goes through [`crate::overflow`].

pub mod door;
pub mod message;
pub mod poller;
pub mod queue;

pub use door::Door;
pub use message::ReplyKey;
pub use poller::{spawn, IntakeSettings};
pub use queue::{Queue, QueueError};

use aws_config::{BehaviorVersion, Region};

/// The intake queue a node polls: its URL, the SQS client that reaches it,
/// how it is polled, and the key replies are signed with.
#[derive(Debug, Clone)]
pub struct IntakeQueue {
    pub url: String,
    pub client: aws_sdk_sqs::Client,
    pub settings: IntakeSettings,
    pub reply_key: ReplyKey,
    /// Clients come only this way (`--no-client-port`): the node's gRPC
    /// port serves its peers only. Needs mutual TLS, which tells them
    /// apart.
    pub only: bool,
}

impl IntakeQueue {
    /// The queue at `url` through the standard AWS configuration
    /// (credential chain, `AWS_*` variables, `AWS_ENDPOINT_URL` for an
    /// emulator such as moto); the region, if none is configured, from an
    /// SQS URL that names one (`https://sqs.REGION.amazonaws.com/...`).
    pub async fn from_env(url: &str, reply_key: ReplyKey) -> Result<IntakeQueue, String> {
        Ok(IntakeQueue {
            url: url.to_string(),
            client: client_for(url, "intake queue").await?,
            settings: IntakeSettings::default(),
            reply_key,
            only: false,
        })
    }

    /// The queue, for the poller.
    pub fn queue(&self) -> Queue {
        Queue::new(self.client.clone(), self.url.clone())
    }
}

/// The standard AWS configuration (credential chain, `AWS_*` variables),
/// pointed at `AWS_ENDPOINT_URL` if set (an emulator such as moto).
async fn standard_config() -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Ok(e) = std::env::var("AWS_ENDPOINT_URL") {
        loader = loader.endpoint_url(e);
    }
    loader.load().await
}

/// An SQS client for the queue at `url` (`what` names it in errors)
/// through the standard AWS configuration (credential chain, `AWS_*`
/// variables, `AWS_ENDPOINT_URL` for an emulator such as moto); the
/// region, if none is configured, from an SQS URL that names one.
pub async fn client_for(url: &str, what: &str) -> Result<aws_sdk_sqs::Client, String> {
    let mut config = standard_config().await;
    if config.region().is_none() {
        let region = region_of(url)
            .ok_or_else(|| format!("no AWS region for the {what} {url}: set AWS_REGION"))?;
        config = config.into_builder().region(Region::new(region)).build();
    }
    Ok(aws_sdk_sqs::Client::new(&config))
}

/// An SQS client in `region`, acting as `role` (its ARN and external id:
/// STS AssumeRole under the session name `session`, the credentials cached
/// and refreshed by the SDK), or with the standard AWS configuration's
/// credentials without one.
pub async fn client_as(
    region: &str,
    role: Option<(&str, Option<&str>)>,
    session: &str,
) -> aws_sdk_sqs::Client {
    let base = standard_config().await;
    let region = Region::new(region.to_string());
    let mut builder = aws_sdk_sqs::config::Builder::from(&base).region(region.clone());
    if let Some((arn, external_id)) = role {
        let mut provider = aws_config::sts::AssumeRoleProvider::builder(arn)
            .session_name(session)
            .region(region);
        if let Some(id) = external_id {
            provider = provider.external_id(id);
        }
        builder = builder.credentials_provider(provider.configure(&base).build().await);
    }
    aws_sdk_sqs::Client::from_conf(builder.build())
}

/// The region an SQS URL names (`https://sqs.us-east-1.amazonaws.com/…`).
fn region_of(url: &str) -> Option<String> {
    let host = url.split("://").nth(1)?.split('/').next()?;
    let mut parts = host.split('.');
    match (parts.next(), parts.next()) {
        (Some("sqs"), Some(region)) if !region.is_empty() && region != "amazonaws" => {
            Some(region.to_string())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_comes_from_an_aws_queue_url_only() {
        let url = "https://sqs.eu-west-1.amazonaws.com/123456789012/canon.fifo";
        assert_eq!(region_of(url).as_deref(), Some("eu-west-1"));
        assert_eq!(region_of("http://127.0.0.1:5000/123456789012/q"), None);
        assert_eq!(region_of("https://sqs.amazonaws.com/1/q"), None);
    }
}
