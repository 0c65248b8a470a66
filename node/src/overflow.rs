//! What is too large for an SQS message travels by S3, through the
//! cluster's overflow bucket (`canond --overflow-bucket BUCKET`).
//!
//! Compositions come in this way: a `run` or `update` carries a
//! signed reference (address, SHA-256, size) in place of the composition,
//! and the node fetches the object, takes it only if its bytes hash to
//! what the user signed, and carries the command on as if the composition
//! had come inline. The Raft log holds the composition itself, so replicas
//! and replays never reach S3.
//!
//! Only the configured bucket is read (a signed command cannot make the
//! node fetch anything else). A signed size over
//! [`COMPOSITION_BYTES_MAX`] is refused before S3 is asked, and no more
//! than the signed size is ever read, whatever the object says of itself.
//!
//! Replies go out this way: one too large for a message (the status of a
//! large process) is stored as an encoded `SqsReply` under its SHA-256,
//! and the signed reply that goes on the queue names it and its hash.

use aws_config::BehaviorVersion;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use canon_proto::canon::api::v1 as pb;
use canon_proto::canon::sqs::v1 as sqs;
use canon_proto::sqs::{parse_s3_uri, stored_reply_key};
use sha2::{Digest, Sha256};
use tonic::Status;

/// The largest composition taken from S3. A compiled composition of 10,000
/// resources is about 2 MiB; this leaves room and bounds what one command
/// can make a node hold.
pub const COMPOSITION_BYTES_MAX: u64 = 32 * 1024 * 1024;

/// The bucket the node reads compositions from and stores replies in.
#[derive(Debug, Clone)]
pub struct OverflowBucket {
    pub bucket: String,
    pub client: aws_sdk_s3::Client,
}

impl OverflowBucket {
    /// `bucket` through the standard AWS configuration; with
    /// `AWS_ENDPOINT_URL` (an emulator such as moto) by path-style
    /// addresses, which emulators serve.
    pub async fn from_env(bucket: &str) -> OverflowBucket {
        let shared = aws_config::defaults(BehaviorVersion::latest()).load().await;
        let config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(shared.endpoint_url().is_some())
            .build();
        OverflowBucket {
            bucket: bucket.to_string(),
            client: aws_sdk_s3::Client::from_conf(config),
        }
    }

    /// The composition `reference` names, checked against its hash.
    /// A refusal the user must mend is `InvalidArgument` (the message is
    /// answered and deleted); S3 out of reach is `Unavailable` (the
    /// message comes back).
    pub async fn fetch(
        &self,
        reference: &pb::CompositionRef,
    ) -> Result<pb::CompiledComposition, Status> {
        let (bucket, key) = parse_s3_uri(&reference.uri).map_err(Status::invalid_argument)?;
        if bucket != self.bucket {
            return Err(Status::invalid_argument(format!(
                "the composition is in bucket {bucket:?}; this cluster reads compositions only \
                 from {:?} (overflow_bucket in client.toml)",
                self.bucket
            )));
        }
        let size = signed_size(reference)?;
        let object = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| fetch_failed(&reference.uri, e))?;
        if let Some(length) = object.content_length() {
            if u64::try_from(length).ok() != Some(size) {
                return Err(Status::invalid_argument(format!(
                    "{} is {length} bytes, not the {size} the command signed: refused",
                    reference.uri
                )));
            }
        }
        // Read no more than was signed, whatever the object says of itself.
        let mut body = object.body;
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or_default());
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| Status::unavailable(format!("reading {} from S3: {e}", reference.uri)))?
        {
            if (bytes.len() + chunk.len()) as u64 > size {
                return Err(Status::invalid_argument(format!(
                    "{} is longer than the {size} bytes the command signed: refused",
                    reference.uri
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        checked(reference, bytes)
    }

    /// Stores `reply` (an encoded `SqsReply`) under its hash; what the
    /// signed reply on the queue says in its place.
    pub async fn store_reply(&self, reply: Vec<u8>) -> Result<sqs::StoredReply, String> {
        let sha256 = hex::encode(Sha256::digest(&reply));
        let key = stored_reply_key(&sha256);
        let uri = format!("s3://{}/{key}", self.bucket);
        let size_bytes = reply.len() as u64;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/x-protobuf")
            .body(aws_sdk_s3::primitives::ByteStream::from(reply))
            .send()
            .await
            .map_err(|e| format!("storing {uri}: {}", DisplayErrorContext(e)))?;
        Ok(sqs::StoredReply {
            uri,
            sha256,
            size_bytes,
        })
    }
}

/// `bytes` as the composition `reference` signed for, if they hash to it.
/// The size the command signed for its composition, if it is one a
/// composition may be: checked before any call to S3.
fn signed_size(reference: &pb::CompositionRef) -> Result<u64, Status> {
    match reference.size_bytes {
        0 => Err(Status::invalid_argument(format!(
            "the reference to {} signs no size: refused",
            reference.uri
        ))),
        n if n > COMPOSITION_BYTES_MAX => Err(Status::invalid_argument(format!(
            "{} is {n} bytes, over the {COMPOSITION_BYTES_MAX} a composition may be",
            reference.uri
        ))),
        n => Ok(n),
    }
}

fn checked(
    reference: &pb::CompositionRef,
    bytes: Vec<u8>,
) -> Result<pb::CompiledComposition, Status> {
    let sha256 = hex::encode(Sha256::digest(&bytes));
    if !sha256.eq_ignore_ascii_case(reference.sha256.trim()) {
        return Err(Status::invalid_argument(format!(
            "{} hashes to SHA-256 {sha256}, not the {} the command signed: refused",
            reference.uri, reference.sha256
        )));
    }
    Ok(pb::CompiledComposition {
        bytes,
        source_hash: reference.source_hash.clone(),
    })
}

/// An S3 failure as the door answers it: a missing object or a refusal
/// the user must mend; anything else may pass.
fn fetch_failed<E>(uri: &str, e: aws_sdk_s3::error::SdkError<E>) -> Status
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = e.code().map(str::to_string);
    let text = DisplayErrorContext(&e).to_string();
    match code.as_deref() {
        Some("NoSuchKey" | "NoSuchBucket" | "AccessDenied") => Status::invalid_argument(format!(
            "the composition at {uri} cannot be read: {}",
            code.unwrap_or_default()
        )),
        _ => Status::unavailable(format!("reading {uri} from S3: {text}")),
    }
}

/// Puts the composition a `run` or `update` names by reference in its
/// place, fetched from `bucket`; other commands pass unchanged. A
/// reference to a node with no bucket is refused.
pub async fn bring_composition(
    bucket: Option<&OverflowBucket>,
    action: &mut pb::command::Action,
) -> Result<(), Status> {
    use pb::command::Action as A;
    let (inline, by_ref) = match action {
        A::Run(r) => (&mut r.composition, &mut r.composition_ref),
        A::Update(u) => (&mut u.composition, &mut u.composition_ref),
        _ => return Ok(()),
    };
    let Some(reference) = by_ref.take() else {
        return Ok(());
    };
    if inline.is_some() {
        return Err(Status::invalid_argument(
            "the command carries a composition both inline and by S3 reference",
        ));
    }
    let bucket = bucket.ok_or_else(|| {
        Status::failed_precondition(format!(
            "the composition is at {}, but this cluster reads no compositions from S3 (start \
             canond with --overflow-bucket)",
            reference.uri
        ))
    })?;
    *inline = Some(bucket.fetch(&reference).await?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(bytes: &[u8]) -> pb::CompositionRef {
        pb::CompositionRef {
            uri: "s3://b/canon/compositions/x.pb".into(),
            sha256: hex::encode(Sha256::digest(bytes)),
            source_hash: "src".into(),
            size_bytes: bytes.len() as u64,
        }
    }

    #[test]
    fn a_size_over_the_cap_or_none_is_refused_before_s3_is_asked() {
        let mut r = reference(b"c");
        assert_eq!(signed_size(&r).unwrap(), 1);
        r.size_bytes = COMPOSITION_BYTES_MAX + 1;
        let e = signed_size(&r).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("over the"), "{e}");
        r.size_bytes = 0;
        assert!(signed_size(&r).unwrap_err().message().contains("no size"));
    }

    #[test]
    fn only_the_bytes_that_were_signed_are_taken() {
        let r = reference(b"the composition");
        let c = checked(&r, b"the composition".to_vec()).unwrap();
        assert_eq!(c.bytes, b"the composition");
        assert_eq!(c.source_hash, "src");
        let e = checked(&r, b"another composition".to_vec()).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("not the"), "{}", e.message());
    }

    #[tokio::test]
    async fn a_reference_to_a_node_without_a_bucket_is_refused_and_others_pass() {
        let mut run = pb::command::Action::Run(pb::Run {
            composition_ref: Some(reference(b"x")),
            ..Default::default()
        });
        let e = bring_composition(None, &mut run).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::FailedPrecondition);
        assert!(e.message().contains("--overflow-bucket"), "{}", e.message());

        let mut both = pb::command::Action::Update(pb::Update {
            composition: Some(pb::CompiledComposition::default()),
            composition_ref: Some(reference(b"x")),
            ..Default::default()
        });
        let e = bring_composition(None, &mut both).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);

        let inline = pb::command::Action::Run(pb::Run {
            composition: Some(pb::CompiledComposition::default()),
            ..Default::default()
        });
        let mut same = inline.clone();
        bring_composition(None, &mut same).await.unwrap();
        assert_eq!(same, inline);
    }
}
