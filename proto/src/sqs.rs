//! The bodies of SQS messages (`canon.sqs.v1`): an encoded `SqsRequest`
//! on the intake queue, an encoded `SignedReply` on a reply queue, each as
//! standard base64 with padding (SQS bodies are text). The client that
//! sends and the node that reads share these, so the format is written
//! once.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use prost::Message;

/// The largest body SQS takes (256 KiB; a queue may be configured
/// lower). A client refuses to send a longer one rather than have SQS
/// refuse it.
pub const MAX_BODY: usize = 256 * 1024;

/// The message group of commands that name no alias (policy, accounts,
/// users, members).
pub const NO_ALIAS_GROUP: &str = "canon.meta";

/// The message group of a command on a FIFO intake queue: the alias it is
/// about, else [`NO_ALIAS_GROUP`]. Commands about one process stay in
/// order; others run beside them.
pub fn message_group(cmd: &crate::canon::api::v1::Command) -> &str {
    use crate::canon::api::v1::command::Action as A;
    let alias = match &cmd.action {
        Some(A::Run(r)) => r.alias.as_str(),
        Some(A::Update(u)) => &u.alias,
        Some(A::Kill(k)) => &k.alias,
        Some(A::Suspend(s)) => &s.alias,
        Some(A::Resume(r)) => &r.alias,
        Some(A::Release(r)) => &r.alias,
        Some(A::SetProperty(p)) => &p.alias,
        Some(A::RotateFleet(r)) => &r.alias,
        _ => "",
    };
    if alias.is_empty() {
        NO_ALIAS_GROUP
    } else {
        alias
    }
}

/// Whether the queue at `url` is a FIFO queue (its name ends in `.fifo`):
/// then every message needs a group and a deduplication id.
pub fn is_fifo(url: &str) -> bool {
    url.trim_end_matches('/').ends_with(".fifo")
}

/// A body that is not one of Canon's messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body is not base64: {0}")]
    Base64(String),
    #[error("the body does not decode as {what}: {reason}")]
    Decode { what: &'static str, reason: String },
}

/// `message` as an SQS body.
pub fn encode_body(message: &impl Message) -> String {
    STANDARD.encode(message.encode_to_vec())
}

/// The message of type `M` an SQS body holds; `what` names it in errors.
pub fn decode_body<M: Message + Default>(body: &str, what: &'static str) -> Result<M, BodyError> {
    let bytes = STANDARD
        .decode(body.trim())
        .map_err(|e| BodyError::Base64(e.to_string()))?;
    M::decode(bytes.as_slice()).map_err(|e| BodyError::Decode {
        what,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canon::api::v1 as api;
    use crate::canon::sqs::v1 as sqs;

    #[test]
    fn a_request_survives_the_body_and_junk_is_an_error() {
        let request = sqs::SqsRequest {
            request: Some(sqs::sqs_request::Request::Command(api::SignedEnvelope {
                command: vec![1, 2, 3],
                user: "alice".into(),
                ..Default::default()
            })),
        };
        let body = encode_body(&request);
        assert!(body.is_ascii());
        assert_eq!(
            decode_body::<sqs::SqsRequest>(&body, "a request"),
            Ok(request)
        );
        assert!(matches!(
            decode_body::<sqs::SqsRequest>("not base64!", "a request"),
            Err(BodyError::Base64(_))
        ));
        // Valid base64 of bytes that are no protobuf message.
        assert!(matches!(
            decode_body::<sqs::SqsRequest>(&STANDARD.encode([0xff, 0xff, 0xff]), "a request"),
            Err(BodyError::Decode { .. })
        ));
    }
}
