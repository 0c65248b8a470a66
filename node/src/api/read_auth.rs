//! Who may read: the read token (user, key id, audience, time, signature in
//! gRPC metadata) that Status, History and Events carry, checked before
//! they answer. Nodes refuse reads without one unless started with signed
//! reads off (`--signed-reads false`); then an unsigned read passes and a
//! signed one is still checked. A refused token is recorded in the audit
//! chain like a refused command (`refusals`), under the policy action the
//! read needs. A read that came as a queue message (`queue_reads`) is
//! admitted by the same [`Api::admit_reader`].

use canon_raft::Principal;
use canon_trust::PolicyDocument;
use prost::Message;
use sha2::{Digest, Sha256};
use tonic::{Request, Status};

use super::authz::Asker;
use super::console_door::ConsoleReader;
use super::grpc_status::envelope_status;
use super::intake::Arrival;
use super::refusals::read_refusal;
use super::Api;
use crate::envelope::{
    EnvelopeError, Signed, SignedBy, READ_AUDIENCE, READ_KEY_ID, READ_SIGNATURE, READ_TIMESTAMP,
    READ_USER,
};
use crate::now_ms;

/// A signed read's signer, as the door found them.
#[derive(Debug, Clone)]
pub(super) struct Reader {
    pub principal: Principal,
    /// SHA-256 (hex) of the request the token signs.
    pub request_hash: String,
    pub arrival: Arrival,
}

impl Reader {
    /// The reader, for [`Api::authorise`].
    pub(super) fn asker(&self) -> Asker<'_> {
        Asker {
            principal: &self.principal,
            request_hash: &self.request_hash,
            arrival: &self.arrival,
        }
    }
}

/// A read token's parts as text, where it travels as text (gRPC metadata,
/// the console's login link); parsed in one place.
pub(super) struct TokenText<'a> {
    pub user: &'a str,
    pub key_id: &'a str,
    pub audience: &'a str,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// A read as its token signs it: the method, the process it is about
/// (empty: none) and the signed bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Asked<'a> {
    pub method: &'a str,
    pub alias: &'a str,
    pub body: &'a [u8],
}

/// The policy action a read method needs, as its refusals are recorded.
fn read_action(method: &str) -> &'static str {
    match method {
        "History" => "process.history",
        "GetPolicy" | "CanI" => "policy.get",
        "ListAccounts" => "account.list",
        "Audit" => "audit.read",
        "Validations" => "validation.list",
        // Status, Events, Console.
        _ => "process.status",
    }
}

impl Api {
    /// Checks a read's token (see [`crate::envelope`]) for `method` (about
    /// process `alias`; empty: none): who signed it, or none for an
    /// unsigned read where those pass.
    pub(super) async fn check_read<T: Message>(
        &self,
        request: &Request<T>,
        method: &str,
        alias: &str,
    ) -> Result<Option<Reader>, Status> {
        self.read_token(request, method, alias, self.signed_reads)
            .await
    }

    /// [`Api::check_read`] for reads that always need a signer (the
    /// policy's): an unsigned one is refused whatever the node's setting.
    pub(super) async fn signed_reader<T: Message>(
        &self,
        request: &Request<T>,
        method: &str,
    ) -> Result<Reader, Status> {
        self.read_token(request, method, "", true)
            .await?
            .ok_or_else(|| Status::internal("a required read token was not checked"))
    }

    /// The reader of `request`, or none for an unsigned read when no token
    /// is `required`. A refusal is recorded, then answered Unauthenticated
    /// (or as the envelope error says).
    async fn read_token<T: Message>(
        &self,
        request: &Request<T>,
        method: &str,
        alias: &str,
        required: bool,
    ) -> Result<Option<Reader>, Status> {
        let body = request.get_ref().encode_to_vec();
        if let Some(session) = request.extensions().get::<ConsoleReader>() {
            // The console's own call, for a signer it checked at login (or
            // the holder of the client certificate it was asked with).
            let mut arrival = Arrival::grpc(request);
            arrival.cert_fingerprint = session.cert_fingerprint.clone();
            return Ok(Some(Reader {
                principal: session.principal.clone(),
                request_hash: hex::encode(Sha256::digest(&body)),
                arrival,
            }));
        }
        let md = request.metadata();
        let user = md.get(READ_USER).and_then(|v| v.to_str().ok());
        let checked = match user {
            None if !required => return Ok(None),
            None => Err(Status::unauthenticated(format!(
                "{method} needs a signed read: use a client with the user's key (client.toml `key`)"
            ))),
            Some(user) => self.verify_read(md, user, method, &body).await,
        };
        let asked = Asked {
            method,
            alias,
            body: &body,
        };
        self.admit_reader(checked, user, asked, Arrival::grpc(request))
            .await
            .map(Some)
    }

    /// The reader whose token was `checked` (claimed by `user`) for the
    /// read `asked`, come by `arrival`; a refusal is recorded first, then
    /// answered.
    pub(super) async fn admit_reader(
        &self,
        checked: Result<Principal, Status>,
        user: Option<&str>,
        Asked {
            method,
            alias,
            body,
        }: Asked<'_>,
        arrival: Arrival,
    ) -> Result<Reader, Status> {
        let request_hash = hex::encode(Sha256::digest(body));
        match checked {
            Ok(principal) => {
                self.flag(&principal, method);
                Ok(Reader {
                    principal,
                    request_hash,
                    arrival,
                })
            }
            Err(status) => {
                self.metrics.refused();
                let refusal = read_refusal(
                    user,
                    read_action(method),
                    Some(alias).filter(|a| !a.is_empty()),
                    status.message().to_string(),
                    request_hash,
                    &arrival,
                );
                self.record_refusal(refusal).await;
                Err(status)
            }
        }
    }

    /// The principal whose token `md` carries for `method` over `body`.
    async fn verify_read(
        &self,
        md: &tonic::metadata::MetadataMap,
        user: &str,
        method: &str,
        body: &[u8],
    ) -> Result<Principal, Status> {
        let text = |key: &str| md.get(key).and_then(|v| v.to_str().ok());
        let token = TokenText {
            user,
            key_id: text(READ_KEY_ID).unwrap_or_default(),
            audience: text(READ_AUDIENCE).unwrap_or_default(),
            timestamp: text(READ_TIMESTAMP),
            signature: text(READ_SIGNATURE),
        };
        self.verify_token_text(&token, method, body).await
    }

    /// The principal who signed `token` (as text: gRPC metadata, a console
    /// link) for `method` over `body`.
    pub(super) async fn verify_token_text(
        &self,
        token: &TokenText<'_>,
        method: &str,
        body: &[u8],
    ) -> Result<Principal, Status> {
        let timestamp: u64 = token
            .timestamp
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| Status::unauthenticated("the read token has no valid timestamp"))?;
        let signature = token
            .signature
            .and_then(|h| hex::decode(h).ok())
            .ok_or_else(|| Status::unauthenticated("the read token has no valid signature"))?;
        let signed = Signed {
            by: SignedBy {
                user: token.user,
                key_id: token.key_id,
                audience: token.audience,
                timestamp_ms: timestamp,
            },
            signature: &signature,
        };
        self.read_principal(signed, method, body)
            .await
            .map_err(envelope_status)
    }

    /// Who signed a read token for `method` over `body` (the signed
    /// bytes), checked against the users' keys.
    pub(super) async fn read_principal(
        &self,
        signed: Signed<'_>,
        method: &str,
        body: &[u8],
    ) -> Result<Principal, EnvelopeError> {
        let verify = |policy: &PolicyDocument| {
            self.verifier
                .verify_read(signed, method, body, policy, now_ms())
        };
        self.with_policy_keys(verify).await
    }
}
