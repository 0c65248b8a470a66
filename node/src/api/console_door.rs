//! The web console's way through the read door. A console visit starts
//! with a read token for the method `Console` (what `canon console --open`
//! signs into the URL it prints): checked here like any read token, then
//! the console keeps the signer in a session of its own. Every read the
//! console then makes goes through the same gRPC handlers as the CLI's,
//! carrying a [`ConsoleReader`] in the request's extensions — a Rust value
//! the network cannot put there — so the same policy decides what the
//! console shows.
//!
//! Over HTTPS a browser may instead present a client certificate of the
//! client CA (`canon cert create-client USER`): the certificate names a
//! user of the policy, and [`Api::console_cert_reader`] makes that user
//! the reader of the request, decided by the same policy from there on.

use canon_raft::Principal;
use canon_trust::audit::Channel;
use tonic::Status;

use super::intake::Arrival;
use super::read_auth::{Asked, TokenText};
use super::Api;

/// The method a console login token signs (over an empty body).
pub const CONSOLE_METHOD: &str = "Console";

/// A console session's signer (or the holder of the request's client
/// certificate), put into a read's extensions by the console; none when
/// the node lets unsigned reads through and no one logged in.
#[derive(Debug, Clone)]
pub struct ConsoleReader {
    pub(crate) principal: Principal,
    /// The SHA-256 (hex) of the client certificate the reader came with,
    /// for the audit record of a refused read.
    pub(crate) cert_fingerprint: Option<String>,
}

impl ConsoleReader {
    /// Who the session belongs to.
    pub fn user(&self) -> &str {
        &self.principal.user
    }
}

/// A login token's parts, as the console's URL carries them.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct LoginToken {
    pub user: String,
    pub key_id: String,
    pub audience: String,
    pub timestamp: String,
    pub signature: String,
}

impl Api {
    /// Checks a console login token; its signer. A refusal is recorded
    /// in the audit chain like any refused read.
    pub async fn console_login(&self, token: &LoginToken) -> Result<ConsoleReader, Status> {
        let text = TokenText {
            user: &token.user,
            key_id: &token.key_id,
            audience: &token.audience,
            timestamp: Some(token.timestamp.as_str()),
            signature: Some(token.signature.as_str()),
        };
        // The body a login token signs: nothing.
        let asked = Asked {
            method: CONSOLE_METHOD,
            alias: "",
            body: &[],
        };
        let checked = self.verify_token_text(&text, CONSOLE_METHOD, &[]).await;
        // Over HTTP, with no client certificate: recorded as a gRPC read is.
        let arrival = Arrival {
            channel: Channel::Grpc,
            cert_fingerprint: None,
            delivery: None,
        };
        let reader = self
            .admit_reader(checked, Some(&token.user), asked, arrival)
            .await?;
        Ok(ConsoleReader {
            principal: reader.principal,
            cert_fingerprint: None,
        })
    }

    /// The reader a verified client certificate names: `user` (its common
    /// name, as `canon cert create-client USER` writes it), who must be a
    /// user of the policy; `fingerprint` is the certificate's. A user the
    /// policy does not know is refused (PermissionDenied: the certificate
    /// is good, its holder has no rights) and recorded like a refused read.
    ///
    /// The reader reads as the user: the principal carries one of the
    /// user's keys in the policy, since the policy decides by key as well
    /// as by name (a user whose keys are all removed reads nothing). Never
    /// root: the root key signs, no certificate stands for it.
    pub async fn console_cert_reader(
        &self,
        user: &str,
        fingerprint: &str,
    ) -> Result<ConsoleReader, Status> {
        let arrival = Arrival {
            channel: Channel::Grpc,
            cert_fingerprint: Some(fingerprint.to_string()),
            delivery: None,
        };
        let asked = Asked {
            method: CONSOLE_METHOD,
            alias: "",
            body: &[],
        };
        let found = self.cert_principal(user).await;
        let reader = self.admit_reader(found, Some(user), asked, arrival).await?;
        Ok(ConsoleReader {
            principal: reader.principal,
            cert_fingerprint: Some(fingerprint.to_string()),
        })
    }

    /// `user` of the policy as a principal (one of their keys), read as
    /// this node has the policy, then, if it does not know them, as of
    /// every acknowledged change.
    async fn cert_principal(&self, user: &str) -> Result<Principal, Status> {
        let key_of = |policy: &canon_trust::PolicyDocument| {
            policy
                .user(user)
                .map(|u| u.keys.first().map(|k| k.id().0.clone()))
        };
        let mut found = key_of(&self.policy(false).await?.document);
        if found.is_none() {
            found = key_of(&self.policy(true).await?.document);
        }
        match found {
            Some(Some(key_id)) => Ok(Principal {
                user: user.to_string(),
                key_id,
                root: false,
            }),
            Some(None) => Err(Status::permission_denied(format!(
                "the client certificate names {user:?}, who has no key in the policy now \
                 (a user reads by their keys; see canon policy get)"
            ))),
            None => Err(Status::permission_denied(format!(
                "the client certificate names {user:?}, who is not a user in the policy: \
                 add them (canon user add {user} --key KEY) or use another certificate"
            ))),
        }
    }
}
