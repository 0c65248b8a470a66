//! Who may read: the read token (user, time, signature in gRPC metadata)
//! that Status, History and Events may carry, checked before they answer.
//! A node run with signed reads refuses reads without one; otherwise an
//! unsigned read passes and a signed one is still checked.

use prost::Message;
use tonic::{Request, Status};

use super::grpc_status::envelope_status;
use super::Api;
use crate::envelope::{READ_SIGNATURE, READ_TIMESTAMP, READ_USER};
use crate::now_ms;

impl Api {
    /// Checks a read's token (see [`crate::envelope`]) for `method`.
    pub(super) fn check_read<T: Message>(
        &self,
        request: &Request<T>,
        method: &str,
    ) -> Result<(), Status> {
        let md = request.metadata();
        let text = |key: &str| md.get(key).and_then(|v| v.to_str().ok());
        let Some(user) = text(READ_USER) else {
            if self.signed_reads {
                self.metrics.refused();
                return Err(Status::unauthenticated(
                    "this cluster requires signed reads: use a client with the user's key",
                ));
            }
            return Ok(());
        };
        let timestamp: u64 = text(READ_TIMESTAMP)
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| Status::unauthenticated("the read token has no valid timestamp"))?;
        let signature = text(READ_SIGNATURE)
            .and_then(|h| hex::decode(h).ok())
            .ok_or_else(|| Status::unauthenticated("the read token has no valid signature"))?;
        self.verifier
            .verify_read(
                user,
                timestamp,
                method,
                &request.get_ref().encode_to_vec(),
                &signature,
                now_ms(),
            )
            .map_err(|e| {
                self.metrics.refused();
                envelope_status(e)
            })
    }
}
