//! The web console's way through the read door. A console visit starts
//! with a read token for the method `Console` (what `canon console --open`
//! signs into the URL it prints): checked here like any read token, then
//! the console keeps the signer in a session of its own. Every read the
//! console then makes goes through the same gRPC handlers as the CLI's,
//! carrying a [`ConsoleReader`] in the request's extensions — a Rust value
//! the network cannot put there — so the same policy decides what the
//! console shows.

use canon_raft::Principal;
use canon_trust::audit::Channel;
use tonic::Status;

use super::intake::Arrival;
use super::read_auth::{Asked, TokenText};
use super::Api;

/// The method a console login token signs (over an empty body).
pub const CONSOLE_METHOD: &str = "Console";

/// A console session's signer, put into a read's extensions by the
/// console; none when the node lets unsigned reads through and no one
/// logged in.
#[derive(Debug, Clone)]
pub struct ConsoleReader(pub(crate) Principal);

impl ConsoleReader {
    /// Who the session belongs to.
    pub fn user(&self) -> &str {
        &self.0.user
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
        Ok(ConsoleReader(reader.principal))
    }
}
