//! What is too large for an SQS message travels by S3, through the
//! cluster's overflow bucket (`overflow_bucket` in client.toml):
//!
//! - a compiled composition, as the seed demo's "Uploading compiled
//!   composition to S3…" did: the client stores it under its SHA-256 and
//!   sends, in its place, a reference the envelope signs (address, hash,
//!   size); the node takes the object only if its bytes hash to what was
//!   signed;
//! - a reply (the status of a large process): the node stores it and
//!   sends a small signed reply naming it, and the client takes the
//!   object only if its bytes hash to what the cluster signed.
//!
//! So the bucket needs no more trust than the queue.

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use canon_proto::sqs::{composition_key, fits_in_message, parse_s3_uri};
use prost::Message;
use sha2::{Digest, Sha256};

use super::SqsError;
use crate::pb;
use canon_proto::canon::sqs::v1 as sqs;

/// The composition slots of a command that carries one (`run`,
/// `update`): where it goes inline, and where its reference goes.
struct Slots<'a> {
    inline: &'a mut Option<pb::CompiledComposition>,
    by_ref: &'a mut Option<pb::CompositionRef>,
}

fn slots(command: &mut pb::Command) -> Option<Slots<'_>> {
    use pb::command::Action as A;
    match command.action.as_mut()? {
        A::Run(r) => Some(Slots {
            inline: &mut r.composition,
            by_ref: &mut r.composition_ref,
        }),
        A::Update(u) => Some(Slots {
            inline: &mut u.composition,
            by_ref: &mut u.composition_ref,
        }),
        _ => None,
    }
}

/// The client's side of the overflow bucket.
#[derive(Debug)]
pub struct Overflow {
    /// Where compositions go; without one, a command too large for a
    /// message is refused. Replies are read from wherever the cluster
    /// says.
    bucket: Option<String>,
    /// Made on first use (loading the AWS configuration is asynchronous).
    client: tokio::sync::OnceCell<aws_sdk_s3::Client>,
}

impl Overflow {
    /// Uploads to `bucket` through the standard AWS configuration; with
    /// `AWS_ENDPOINT_URL` (an emulator such as moto) by path-style
    /// addresses, which emulators serve.
    pub fn new(bucket: Option<&str>) -> Overflow {
        Overflow {
            bucket: bucket.map(str::to_string),
            client: tokio::sync::OnceCell::new(),
        }
    }

    async fn client(&self) -> &aws_sdk_s3::Client {
        self.client
            .get_or_init(|| async {
                let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .load()
                    .await;
                let config = aws_sdk_s3::config::Builder::from(&shared)
                    .force_path_style(shared.endpoint_url().is_some())
                    .build();
                aws_sdk_s3::Client::from_conf(config)
            })
            .await
    }

    /// Moves the composition of `command` to S3 if the command would not
    /// fit in a message otherwise, leaving a reference in its place.
    /// Nothing to move (another verb, or one that fits) is not an error;
    /// the message's own size check still stands after.
    pub async fn offload_if_large(&self, command: &mut pb::Command) -> Result<(), SqsError> {
        let Some(bucket) = &self.bucket else {
            return Ok(());
        };
        if fits_in_message(command.encoded_len()) {
            return Ok(());
        }
        let Some(slots) = slots(command) else {
            return Ok(());
        };
        let Some(composition) = slots.inline.take() else {
            return Ok(());
        };
        match self.store(bucket, &composition).await {
            Ok(reference) => {
                *slots.by_ref = Some(reference);
                Ok(())
            }
            Err(e) => {
                *slots.inline = Some(composition);
                Err(e)
            }
        }
    }

    /// Stores `composition` under its hash; the reference to sign.
    async fn store(
        &self,
        bucket: &str,
        composition: &pb::CompiledComposition,
    ) -> Result<pb::CompositionRef, SqsError> {
        let sha256 = hex::encode(Sha256::digest(&composition.bytes));
        let key = composition_key(&sha256);
        let uri = format!("s3://{bucket}/{key}");
        tracing::info!(%uri, bytes = composition.bytes.len(), "uploading compiled composition to S3");
        self.client()
            .await
            .put_object()
            .bucket(bucket)
            .key(&key)
            .content_type("application/x-protobuf")
            .body(ByteStream::from(composition.bytes.clone()))
            .send()
            .await
            .map_err(|e| SqsError::Storage {
                uri: uri.clone(),
                reason: DisplayErrorContext(e).to_string(),
            })?;
        Ok(pb::CompositionRef {
            uri,
            sha256,
            source_hash: composition.source_hash.clone(),
            size_bytes: composition.bytes.len() as u64,
        })
    }

    /// The reply `stored` names, if its bytes hash to what the cluster
    /// signed and it answers request `id`.
    pub async fn fetch_reply(
        &self,
        stored: &sqs::StoredReply,
        id: &str,
    ) -> Result<sqs::SqsReply, SqsError> {
        let failed = |reason: String| SqsError::Storage {
            uri: stored.uri.clone(),
            reason,
        };
        let (bucket, key) = parse_s3_uri(&stored.uri).map_err(failed)?;
        let object = self
            .client()
            .await
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| failed(DisplayErrorContext(e).to_string()))?;
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| failed(e.to_string()))?
            .into_bytes();
        let sha256 = hex::encode(Sha256::digest(&bytes));
        if !sha256.eq_ignore_ascii_case(&stored.sha256) {
            return Err(failed(format!(
                "the object hashes to {sha256}, not the {} the cluster signed",
                stored.sha256
            )));
        }
        let reply = sqs::SqsReply::decode(bytes).map_err(|e| failed(e.to_string()))?;
        if reply.request_id != id {
            return Err(failed(format!(
                "the stored reply answers {:?}, not {id:?}",
                reply.request_id
            )));
        }
        Ok(reply)
    }
}

/// What a command too large for a message and with no bucket to go
/// through is told.
pub fn too_large_without_bucket(bytes: usize) -> String {
    format!(
        "the command is {bytes} bytes as a message, over SQS's limit of {}; set \
         overflow_bucket in client.toml to send its composition by S3, or send it over gRPC",
        canon_proto::sqs::MAX_BODY
    )
}
