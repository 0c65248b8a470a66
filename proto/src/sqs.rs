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

/// What a signed envelope and the SQS request around it may add to an
/// encoded command: signature, key id, nonce, times, audience, the reply
/// queue's name. Generous, so that a command judged to fit does fit.
const ENVELOPE_BYTES_MAX: usize = 4 * 1024;

/// Whether a command of `command_bytes` encoded bytes fits in one SQS
/// body once signed and written as base64 (4 characters per 3 bytes).
pub fn fits_in_message(command_bytes: usize) -> bool {
    (command_bytes + ENVELOPE_BYTES_MAX).div_ceil(3) * 4 <= MAX_BODY
}

/// The S3 key of a compiled composition whose bytes have SHA-256
/// `sha256` (hex): named by its content, so storing it twice is harmless
/// and an object never changes under a command that names it.
pub fn composition_key(sha256: &str) -> String {
    format!("canon/compositions/{sha256}.pb")
}

/// The S3 key of a reply too large for a message, by its SHA-256 (hex).
pub fn stored_reply_key(sha256: &str) -> String {
    format!("canon/replies/{sha256}.pb")
}

/// The bucket and key of `uri`, which must be `s3://BUCKET/KEY`.
pub fn parse_s3_uri(uri: &str) -> Result<(&str, &str), String> {
    let rest = uri
        .strip_prefix("s3://")
        .ok_or_else(|| format!("{uri:?} is not an s3://BUCKET/KEY address"))?;
    match rest.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok((bucket, key)),
        _ => Err(format!("{uri:?} names no bucket and key (s3://BUCKET/KEY)")),
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

    #[test]
    fn a_command_that_fits_is_judged_to_fit_and_s3_addresses_are_checked() {
        // A signed command body of the largest size judged to fit.
        let mut n = 0;
        while fits_in_message(n + 1) {
            n += 1;
        }
        let env = api::SignedEnvelope {
            command: vec![0xab; n],
            user: "a-user-with-a-rather-long-name".into(),
            key_id: "k".repeat(64),
            signature: vec![7; 64],
            audience: "cluster-0123456789abcdef".into(),
            ..Default::default()
        };
        let body = encode_body(&sqs::SqsRequest {
            request: Some(sqs::sqs_request::Request::Command(env)),
        });
        assert!(body.len() <= MAX_BODY, "{} > {MAX_BODY}", body.len());
        assert!(n > 180 * 1024, "only {n} bytes judged to fit");

        let key = composition_key("ab12");
        assert_eq!(key, "canon/compositions/ab12.pb");
        assert_eq!(parse_s3_uri("s3://b/canon/x.pb"), Ok(("b", "canon/x.pb")));
        for bad in [
            "b/x",
            "s3://",
            "s3://b",
            "s3://b/",
            "s3:///x",
            "https://b/x",
        ] {
            assert!(parse_s3_uri(bad).is_err(), "{bad}");
        }
    }
}
