//! What an intake message says and what the node does with it: the body
//! read as an `SqsRequest` (`canon_proto::sqs`), the door's outcome
//! turned into an `SqsReply` signed with the cluster's reply key, and the
//! one rule that decides whether a message is done (delete it) or worth
//! another delivery (leave it).

use canon_proto::canon::api::v1 as pb;
use canon_proto::canon::sqs::v1 as sqs;
use canon_proto::signing::reply_payload;
use canon_proto::sqs::{decode_body, BodyError};
use ed25519_dalek::{Signer as _, SigningKey};
use prost::Message;
use tonic::{Code, Status};

use crate::api::intake::{Answer, Shut};

/// What a message body holds: a command envelope or a signed read.
pub fn read_request(body: &str) -> Result<sqs::sqs_request::Request, BodyError> {
    let request: sqs::SqsRequest = decode_body(body, "an SqsRequest")?;
    request.request.ok_or_else(|| BodyError::Decode {
        what: "an SqsRequest",
        reason: "it holds no request (a newer client?)".into(),
    })
}

/// Where the answer to `request` goes and the id it answers: the reply
/// queue and command id (or request id) it names, if it names a queue.
/// Believe it only once the signature verified.
pub fn reply_to(request: &sqs::sqs_request::Request) -> Option<(String, String)> {
    let (queue, id) = match request {
        sqs::sqs_request::Request::Command(env) => {
            let cmd = pb::Command::decode(env.command.as_slice()).ok()?;
            (cmd.reply_queue, cmd.command_id)
        }
        sqs::sqs_request::Request::Read(read) => {
            let body = sqs::SqsReadBody::decode(read.body.as_slice()).ok()?;
            (body.reply_queue, body.request_id)
        }
    };
    (!queue.is_empty()).then_some((queue, id))
}

/// What to do with a message once the door answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Carried out, or refused for good: reply and delete it.
    Done,
    /// A failure another try may not meet (no leader, a timeout): leave it
    /// for SQS to deliver again.
    Again,
}

/// Failures that may pass on another delivery: the cluster could not
/// serve now. Everything else (refused, invalid, not found, conflicting)
/// would be answered the same way again.
pub fn disposition(outcome: &Result<Answer, Shut>) -> Disposition {
    match outcome {
        Err(shut) if transient(shut.status.code()) => Disposition::Again,
        _ => Disposition::Done,
    }
}

fn transient(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::Cancelled
            | Code::ResourceExhausted
            | Code::Unknown
    )
}

/// The reply to command `request_id` from node `node`.
pub fn reply(node: u64, request_id: &str, outcome: Result<&Answer, &Status>) -> sqs::SqsReply {
    let mut r = sqs::SqsReply {
        request_id: request_id.to_string(),
        node,
        ..Default::default()
    };
    match outcome {
        Ok(answer) => r.reply = Some(as_reply(answer.clone())),
        Err(s) => {
            r.code = s.code() as i32;
            r.error = s.message().to_string();
        }
    }
    r
}

/// An answer as the reply's oneof.
fn as_reply(answer: Answer) -> sqs::sqs_reply::Reply {
    use sqs::sqs_reply::Reply as R;
    match answer {
        Answer::Command(c) => R::Command(c),
        Answer::RemoveMember(m) => R::RemoveMember(m),
        Answer::JoinToken(t) => R::JoinToken(t),
        Answer::Status(s) => R::Status(s),
        Answer::History(h) => R::History(h),
        Answer::Policy(p) => R::Policy(p),
        Answer::Accounts(a) => R::Accounts(a),
        Answer::CanI(c) => R::CanI(c),
        Answer::Audit(a) => R::Audit(a),
        Answer::Validations(v) => R::Validations(v),
    }
}

/// The key a cluster signs its replies with (every node that may poll
/// holds it; clients verify with its public half, `reply_key` in their
/// `client.toml`), and its id.
#[derive(Clone)]
pub struct ReplyKey {
    key: SigningKey,
    id: String,
}

impl std::fmt::Debug for ReplyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplyKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl ReplyKey {
    pub fn new(key: SigningKey) -> ReplyKey {
        let id = canon_trust::PublicKey(key.verifying_key().to_bytes())
            .id()
            .0;
        ReplyKey { key, id }
    }

    /// The key's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The public key, hex (what clients configure).
    pub fn public_hex(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    /// `reply`, signed for cluster `audience`.
    pub fn seal(&self, audience: &str, reply: &sqs::SqsReply) -> sqs::SignedReply {
        let bytes = reply.encode_to_vec();
        let signature = self.key.sign(&reply_payload(audience, &self.id, &bytes));
        sqs::SignedReply {
            reply: bytes,
            audience: audience.to_string(),
            key_id: self.id.clone(),
            signature: signature.to_bytes().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use canon_proto::sqs::encode_body;

    #[test]
    fn only_a_cluster_that_cannot_serve_now_earns_another_delivery() {
        let shut = |status: Status| {
            Err(Shut {
                status,
                signed: true,
            })
        };
        assert_eq!(
            disposition(&shut(Status::unavailable("no leader"))),
            Disposition::Again
        );
        assert_eq!(
            disposition(&shut(Status::deadline_exceeded("slow"))),
            Disposition::Again
        );
        for refused in [
            Status::unauthenticated("forged"),
            Status::failed_precondition("expired"),
            Status::permission_denied("no"),
            Status::invalid_argument("bad alias"),
            Status::not_found("gone"),
            Status::already_exists("taken"),
        ] {
            assert_eq!(disposition(&shut(refused)), Disposition::Done);
        }
        let ok = Ok(Answer::Command(pb::CommandReply::default()));
        assert_eq!(disposition(&ok), Disposition::Done);
    }

    #[test]
    fn a_body_without_a_request_is_malformed() {
        let empty = encode_body(&sqs::SqsRequest { request: None });
        assert!(read_request(&empty).is_err());
        assert!(read_request("%%%").is_err());
        let env = pb::SignedEnvelope {
            user: "alice".into(),
            ..Default::default()
        };
        let body = encode_body(&sqs::SqsRequest {
            request: Some(sqs::sqs_request::Request::Command(env.clone())),
        });
        assert_eq!(
            read_request(&body),
            Ok(sqs::sqs_request::Request::Command(env))
        );
    }

    #[test]
    fn a_sealed_reply_verifies_for_its_cluster_only() {
        use ed25519_dalek::Verifier as _;
        let key = ReplyKey::new(SigningKey::from_bytes(&[4; 32]));
        let sealed = key.seal("prod", &reply(1, "c-1", Err(&Status::not_found("gone"))));
        let public = key.key.verifying_key();
        let sig = ed25519_dalek::Signature::from_slice(&sealed.signature).unwrap();
        let payload = |audience| reply_payload(audience, key.id(), &sealed.reply);
        assert!(public.verify(&payload("prod"), &sig).is_ok());
        assert!(public.verify(&payload("staging"), &sig).is_err());
        assert!(!format!("{key:?}").contains(&hex::encode(key.key.to_bytes())));
    }

    #[test]
    fn a_refusal_replies_with_its_grpc_code() {
        let denied = Status::permission_denied("user bob may not process.run");
        let r = reply(2, "c-1", Err(&denied));
        assert_eq!(r.code, Code::PermissionDenied as i32);
        assert!(r.error.contains("bob"));
        assert_eq!(r.reply, None);
        let ok = reply(2, "c-1", Ok(&Answer::Command(pb::CommandReply::default())));
        assert_eq!(ok.code, 0);
        assert!(ok.reply.is_some());
    }
}
