//! A user and their key, signing commands and read tokens as the CLI does
//! (the payload layouts are `canon_proto::signing`'s).

use canon_node::envelope::{read_payload, signing_payload, SignedBy};
use canon_proto::canon::api::v1 as pb;
use ed25519_dalek::{Signer as _, SigningKey};
use prost::Message;

use pb::command::Action;

/// A user and their key.
pub struct Who {
    pub name: &'static str,
    pub key: SigningKey,
    /// The cluster id every signature names.
    pub audience: String,
}

impl Who {
    pub fn new(name: &'static str, seed: u8, audience: &str) -> Who {
        Who {
            name,
            key: SigningKey::from_bytes(&[seed; 32]),
            audience: audience.into(),
        }
    }

    pub fn key_id(&self) -> String {
        canon_trust::PublicKey(self.key.verifying_key().to_bytes())
            .id()
            .0
    }

    fn by<'a>(&'a self, key_id: &'a str, at: u64) -> SignedBy<'a> {
        SignedBy {
            user: self.name,
            key_id,
            audience: &self.audience,
            timestamp_ms: at,
        }
    }

    pub fn public(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    /// A fresh command (new id) around `action`.
    pub fn command(action: Action, dry_run: bool) -> pb::Command {
        pb::Command {
            command_id: uuid::Uuid::new_v4().to_string(),
            dry_run,
            reply_queue: String::new(),
            action: Some(action),
        }
    }

    /// A fresh envelope around a fresh command, signed now, valid a
    /// minute.
    pub fn envelope(&self, action: Action, dry_run: bool) -> pb::SignedEnvelope {
        self.sign(&Who::command(action, dry_run), canon_node::now_ms(), 60_000)
    }

    /// `command` in a fresh envelope signed at `at`, valid `ttl_ms`.
    pub fn sign(&self, command: &pb::Command, at: u64, ttl_ms: u64) -> pb::SignedEnvelope {
        let command = command.encode_to_vec();
        let nonce = uuid::Uuid::new_v4().as_bytes().to_vec();
        let key_id = self.key_id();
        let expires_ms = at + ttl_ms;
        let payload = signing_payload(&self.by(&key_id, at), &nonce, expires_ms, &command);
        pb::SignedEnvelope {
            command,
            user: self.name.into(),
            nonce,
            timestamp_ms: at,
            signature: self.key.sign(&payload).to_bytes().to_vec(),
            audience: self.audience.clone(),
            key_id,
            expires_ms,
        }
    }

    pub fn read<T: Message>(&self, method: &str, body: T) -> tonic::Request<T> {
        let at = canon_node::now_ms();
        let key_id = self.key_id();
        let payload = read_payload(&self.by(&key_id, at), method, &body.encode_to_vec());
        let sig = self.key.sign(&payload);
        let mut req = tonic::Request::new(body);
        let md = req.metadata_mut();
        md.insert("canon-user", self.name.parse().unwrap());
        md.insert("canon-key-id", key_id.parse().unwrap());
        md.insert("canon-audience", self.audience.parse().unwrap());
        md.insert("canon-timestamp", at.to_string().parse().unwrap());
        md.insert(
            "canon-signature",
            hex::encode(sig.to_bytes()).parse().unwrap(),
        );
        req
    }

    /// A read of `method` over SQS: the token over `body` (an encoded
    /// `SqsReadBody`), signed now.
    pub fn sqs_read(&self, method: &str, body: Vec<u8>) -> canon_proto::canon::sqs::v1::SignedRead {
        let at = canon_node::now_ms();
        let key_id = self.key_id();
        let payload = read_payload(&self.by(&key_id, at), method, &body);
        canon_proto::canon::sqs::v1::SignedRead {
            method: method.into(),
            signature: self.key.sign(&payload).to_bytes().to_vec(),
            body,
            user: self.name.into(),
            key_id,
            audience: self.audience.clone(),
            timestamp_ms: at,
        }
    }
}
