//! Commands and reads over SQS, for clusters reached through a queue rather
//! than (or beside) their gRPC port: the client drops its signed command
//! (or signed read) on the cluster's intake queue and waits on the user's
//! own reply queue for the cluster's reply, which it trusts only if the cluster's reply key signed
//! it for this cluster. The message formats are `canon_proto::sqs`'s.
//!
//! A reply queue may serve several clients of one user: a client takes
//! its own reply (by command id) and leaves others' to reappear a moment
//! later; replies older than any live command, and replies that do not
//! verify, are deleted.

use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::MessageSystemAttributeName as Attr;
use canon_proto::canon::sqs::v1 as sqs;
use canon_proto::signing::reply_payload;
use canon_proto::sqs::{decode_body, encode_body, is_fifo, message_group, MAX_BODY};
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use prost::Message;

mod overflow;

use crate::pb;
use overflow::{too_large_without_bucket, Overflow};
use sqs::sqs_reply::Reply;

/// An answer an `SqsReply` can carry: each call's reply type.
pub trait FromReply: Sized {
    /// The answer in `reply`, if it is this call's.
    fn from_reply(reply: Reply) -> Option<Self>;
}

macro_rules! from_reply {
    ($($t:ty => $v:ident),* $(,)?) => {$(
        impl FromReply for $t {
            fn from_reply(reply: Reply) -> Option<Self> {
                if let Reply::$v(answer) = reply { Some(answer) } else { None }
            }
        }
    )*};
}

from_reply!(
    pb::CommandReply => Command,
    pb::RemoveMemberReply => RemoveMember,
    pb::JoinTokenReply => JoinToken,
    pb::StatusReply => Status,
    pb::HistoryReply => History,
    pb::PolicyReply => Policy,
    pb::ListAccountsReply => Accounts,
    pb::CanIReply => CanI,
    pb::AuditReply => Audit,
    pb::ValidationsReply => Validations,
);

/// Why a command over SQS got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqsError {
    /// The settings cannot work (a bad reply key).
    #[error("{0}")]
    Config(String),
    /// SQS refused or could not be reached.
    #[error("SQS queue {queue}: {reason}")]
    Unreachable { queue: String, reason: String },
    /// The command does not fit in a message.
    #[error("{0}")]
    TooLarge(String),
    /// S3 refused or could not be reached (a composition on its way).
    #[error("S3 object {uri}: {reason}")]
    Storage { uri: String, reason: String },
    /// No reply in time (the command may still be carried out).
    #[error("{0}")]
    NoReply(String),
}

/// How long a client waits for a reply by default: a command answers
/// after commit, a dry run after observing the cloud, and the message may
/// wait out an election first.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a reply that is not this client's stays hidden from it.
const OTHERS_HIDDEN: Duration = Duration::from_secs(2);

/// A reply older than this answers no command any client still waits for
/// (envelopes live at most 10 minutes).
const STALE_MS: u64 = 15 * 60 * 1000;

/// Where a client sends commands and finds replies.
#[derive(Debug, Clone)]
pub struct SqsSettings {
    /// The cluster's intake queue (URL).
    pub intake_queue: String,
    /// This user's reply queue (URL).
    pub reply_queue: String,
    /// The public half of the cluster's reply key (64 hex digits).
    pub reply_key: String,
    pub timeout: Duration,
    /// The bucket compositions too large for a message go through.
    pub overflow_bucket: Option<String>,
}

/// The SQS side of a client.
#[derive(Debug)]
pub struct SqsTransport {
    settings: SqsSettings,
    reply_key: VerifyingKey,
    reply_key_id: String,
    /// Where what is too large for a message goes, and comes from.
    overflow: Overflow,
    /// The SDK client, made on first use (loading the AWS configuration
    /// is asynchronous).
    client: tokio::sync::OnceCell<aws_sdk_sqs::Client>,
}

fn config_error(e: impl std::fmt::Display) -> SqsError {
    SqsError::Config(e.to_string())
}

impl SqsTransport {
    /// A transport with these settings, reaching SQS with the standard AWS
    /// configuration (`AWS_*` variables, profiles, `AWS_ENDPOINT_URL`).
    pub fn new(settings: SqsSettings) -> Result<SqsTransport, SqsError> {
        let bytes: [u8; 32] = hex::decode(settings.reply_key.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| config_error("reply_key is not 64 hex digits"))?;
        let reply_key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| config_error("reply_key is not an ed25519 public key"))?;
        let reply_key_id = canon_trust::PublicKey(bytes).id().0;
        let overflow = Overflow::new(settings.overflow_bucket.as_deref());
        Ok(SqsTransport {
            settings,
            reply_key,
            reply_key_id,
            overflow,
            client: tokio::sync::OnceCell::new(),
        })
    }

    /// This transport over an SDK client the caller built (tests give
    /// static credentials and an emulator's endpoint this way).
    pub fn with_client(self, client: aws_sdk_sqs::Client) -> SqsTransport {
        SqsTransport {
            client: tokio::sync::OnceCell::new_with(Some(client)),
            ..self
        }
    }

    async fn client(&self) -> &aws_sdk_sqs::Client {
        self.client
            .get_or_init(|| async {
                let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .load()
                    .await;
                aws_sdk_sqs::Client::new(&config)
            })
            .await
    }

    /// Sends `command`, signed by `sign` with this transport's reply queue
    /// named inside, and waits for the cluster's reply.
    pub(crate) async fn command(
        &self,
        audience: &str,
        mut command: pb::Command,
        sign: impl FnOnce(&pb::Command) -> pb::SignedEnvelope,
    ) -> Result<sqs::SqsReply, SqsError> {
        command.reply_queue = self.settings.reply_queue.clone();
        self.overflow.offload_if_large(&mut command).await?;
        let env = sign(&command);
        let request = sqs::sqs_request::Request::Command(env);
        let id = &command.command_id;
        self.send(request, message_group(&command), id).await?;
        self.await_reply(audience, id).await
    }

    /// Sends read `method` of `request` (encoded), signed by `sign` over
    /// its body (the request, this transport's reply queue and a fresh
    /// request id), and waits for the cluster's reply.
    pub(crate) async fn read(
        &self,
        audience: &str,
        request: Vec<u8>,
        sign: impl FnOnce(Vec<u8>) -> sqs::SignedRead,
    ) -> Result<sqs::SqsReply, SqsError> {
        let id = uuid::Uuid::new_v4().to_string();
        let body = sqs::SqsReadBody {
            request,
            reply_queue: self.settings.reply_queue.clone(),
            request_id: id.clone(),
        };
        let read = sign(body.encode_to_vec());
        // Reads need no order: each is its own group.
        self.send(sqs::sqs_request::Request::Read(read), &id, &id)
            .await?;
        self.await_reply(audience, &id).await
    }

    /// Sends `request`; on a FIFO queue in message group `group` with
    /// deduplication id `dedup`.
    async fn send(
        &self,
        request: sqs::sqs_request::Request,
        group: &str,
        dedup: &str,
    ) -> Result<(), SqsError> {
        let body = encode_body(&sqs::SqsRequest {
            request: Some(request),
        });
        if body.len() > MAX_BODY {
            return Err(SqsError::TooLarge(match self.settings.overflow_bucket {
                Some(_) => format!(
                    "the command is {} bytes as a message, over SQS's limit of {MAX_BODY}; \
                     send it over gRPC",
                    body.len()
                ),
                None => too_large_without_bucket(body.len()),
            }));
        }
        let url = &self.settings.intake_queue;
        let mut call = self.client().await.send_message().queue_url(url);
        if is_fifo(url) {
            call = call.message_group_id(group).message_deduplication_id(dedup);
        }
        call.message_body(body)
            .send()
            .await
            .map_err(|e| unreachable(url, e))?;
        Ok(())
    }

    /// Waits for the reply to command `id`, up to the timeout.
    async fn await_reply(&self, audience: &str, id: &str) -> Result<sqs::SqsReply, SqsError> {
        let url = &self.settings.reply_queue;
        let deadline = tokio::time::Instant::now() + self.settings.timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(SqsError::NoReply(format!(
                    "no reply to command {id} on {url} within {:?}: the cluster may still \
                     carry it out; check with canon status or history",
                    self.settings.timeout
                )));
            }
            let wait = left.as_secs().clamp(1, 20) as i32;
            let out = self
                .client()
                .await
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(wait)
                .visibility_timeout(OTHERS_HIDDEN.as_secs() as i32)
                .message_system_attribute_names(Attr::SentTimestamp)
                .send()
                .await
                .map_err(|e| unreachable(url, e))?;
            for m in out.messages() {
                if let Some(reply) = self.sort(audience, id, m).await {
                    return match reply.reply {
                        Some(Reply::Stored(stored)) => self.overflow.fetch_reply(&stored, id).await,
                        _ => Ok(reply),
                    };
                }
            }
        }
    }

    /// One message of the reply queue: this command's reply (taken),
    /// another's (left), or stale or unverifiable (deleted).
    async fn sort(
        &self,
        audience: &str,
        id: &str,
        m: &aws_sdk_sqs::types::Message,
    ) -> Option<sqs::SqsReply> {
        let opened = self.open(audience, m.body().unwrap_or_default());
        let sent_ms = m
            .attributes()
            .and_then(|a| a.get(&Attr::SentTimestamp))
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(0);
        let stale = crate::sign::now_ms().saturating_sub(sent_ms) > STALE_MS;
        let (mine, reply) = match opened {
            Ok(r) if r.request_id == id => (true, Some(r)),
            Ok(_) if !stale => return None,
            Ok(_) => (false, None),
            Err(e) => {
                tracing::warn!(queue = %self.settings.reply_queue, error = %e,
                    "a message of the reply queue is no reply of this cluster; deleted");
                (false, None)
            }
        };
        let receipt = m.receipt_handle().unwrap_or_default();
        let url = &self.settings.reply_queue;
        let client = self.client().await;
        if let Err(e) = client
            .delete_message()
            .queue_url(url)
            .receipt_handle(receipt)
            .send()
            .await
        {
            tracing::warn!(queue = %url, error = %DisplayErrorContext(e), "cannot delete a reply");
        }
        if mine {
            reply
        } else {
            None
        }
    }

    /// The reply a body holds, if the cluster's reply key signed it for
    /// `audience`.
    fn open(&self, audience: &str, body: &str) -> Result<sqs::SqsReply, String> {
        let signed: sqs::SignedReply =
            decode_body(body, "a signed reply").map_err(|e| e.to_string())?;
        if signed.audience != audience {
            return Err(format!("a reply from cluster {:?}", signed.audience));
        }
        if signed.key_id != self.reply_key_id {
            return Err(format!(
                "a reply signed by key {:?}, not reply_key",
                signed.key_id
            ));
        }
        let sig = Signature::from_slice(&signed.signature).map_err(|e| e.to_string())?;
        let payload = reply_payload(&signed.audience, &signed.key_id, &signed.reply);
        self.reply_key
            .verify(&payload, &sig)
            .map_err(|_| "a reply whose signature does not verify".to_string())?;
        sqs::SqsReply::decode(signed.reply.as_slice()).map_err(|e| e.to_string())
    }
}

fn unreachable(queue: &str, e: impl std::error::Error) -> SqsError {
    SqsError::Unreachable {
        queue: queue.to_string(),
        reason: DisplayErrorContext(e).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer as _, SigningKey};

    fn transport(key: &SigningKey) -> SqsTransport {
        SqsTransport::new(SqsSettings {
            intake_queue: "q".into(),
            reply_queue: "r".into(),
            reply_key: hex::encode(key.verifying_key().as_bytes()),
            timeout: REPLY_TIMEOUT,
            overflow_bucket: None,
        })
        .unwrap()
    }

    fn sealed(key: &SigningKey, audience: &str, reply: &sqs::SqsReply) -> String {
        let bytes = reply.encode_to_vec();
        let key_id = canon_trust::PublicKey(key.verifying_key().to_bytes())
            .id()
            .0;
        let sig = key.sign(&reply_payload(audience, &key_id, &bytes));
        encode_body(&sqs::SignedReply {
            reply: bytes,
            audience: audience.into(),
            key_id,
            signature: sig.to_bytes().to_vec(),
        })
    }

    #[test]
    fn only_the_clusters_reply_key_for_this_cluster_is_believed() {
        let cluster = SigningKey::from_bytes(&[1; 32]);
        let t = transport(&cluster);
        let reply = sqs::SqsReply {
            request_id: "c-1".into(),
            ..Default::default()
        };
        assert_eq!(
            t.open("prod", &sealed(&cluster, "prod", &reply)),
            Ok(reply.clone())
        );
        assert!(t
            .open("prod", &sealed(&cluster, "staging", &reply))
            .is_err());
        let mallory = SigningKey::from_bytes(&[2; 32]);
        assert!(t.open("prod", &sealed(&mallory, "prod", &reply)).is_err());
        assert!(t.open("prod", &encode_body(&reply)).is_err());
        assert!(t.open("prod", "junk").is_err());
    }

    #[test]
    fn a_reply_key_that_is_no_key_is_a_config_error() {
        assert!(SqsTransport::new(SqsSettings {
            intake_queue: "q".into(),
            reply_queue: "r".into(),
            reply_key: "xyz".into(),
            timeout: REPLY_TIMEOUT,
            overflow_bucket: None,
        })
        .is_err());
    }
}
