//! Who may read: the read token (user, key id, audience, time, signature in
//! gRPC metadata) that Status, History and Events carry, checked before
//! they answer. Nodes refuse reads without one unless started with signed
//! reads off (`--signed-reads false`); then an unsigned read passes and a
//! signed one is still checked.

use canon_raft::Principal;
use canon_trust::PolicyDocument;
use prost::Message;
use tonic::{Request, Status};

use super::grpc_status::envelope_status;
use super::Api;
use crate::envelope::{
    Signed, SignedBy, READ_AUDIENCE, READ_KEY_ID, READ_SIGNATURE, READ_TIMESTAMP, READ_USER,
};
use crate::now_ms;

impl Api {
    /// Checks a read's token (see [`crate::envelope`]) for `method`: the
    /// principal who signed it, or none for an unsigned read where those
    /// pass.
    pub(super) async fn check_read<T: Message>(
        &self,
        request: &Request<T>,
        method: &str,
    ) -> Result<Option<Principal>, Status> {
        let md = request.metadata();
        let text = |key: &str| md.get(key).and_then(|v| v.to_str().ok());
        let Some(user) = text(READ_USER) else {
            if self.signed_reads {
                self.metrics.refused();
                return Err(Status::unauthenticated(
                    "this cluster requires signed reads: use a client with the user's key (client.toml `key`)",
                ));
            }
            return Ok(None);
        };
        let timestamp: u64 = text(READ_TIMESTAMP)
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| Status::unauthenticated("the read token has no valid timestamp"))?;
        let signature = text(READ_SIGNATURE)
            .and_then(|h| hex::decode(h).ok())
            .ok_or_else(|| Status::unauthenticated("the read token has no valid signature"))?;
        let signed = Signed {
            by: SignedBy {
                user,
                key_id: text(READ_KEY_ID).unwrap_or_default(),
                audience: text(READ_AUDIENCE).unwrap_or_default(),
                timestamp_ms: timestamp,
            },
            signature: &signature,
        };
        let body = request.get_ref().encode_to_vec();
        let verify = |policy: &PolicyDocument| {
            self.verifier
                .verify_read(signed, method, &body, policy, now_ms())
        };
        let principal = self.with_policy_keys(verify).await.map_err(|e| {
            self.metrics.refused();
            envelope_status(e)
        })?;
        self.flag(&principal, method);
        Ok(Some(principal))
    }

    /// [`Api::check_read`] for reads that always need a signer (the
    /// policy's): an unsigned one is refused whatever the node's setting.
    pub(super) async fn signed_reader<T: Message>(
        &self,
        request: &Request<T>,
        method: &str,
    ) -> Result<Principal, Status> {
        self.check_read(request, method).await?.ok_or_else(|| {
            self.metrics.refused();
            Status::unauthenticated(format!(
                "{method} needs a signed read: use a client with the user's key"
            ))
        })
    }
}
