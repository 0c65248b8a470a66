//! The web console's way through the read door. A console visit starts
//! with a read token for the method `Console` (what `canon console --open`
//! signs into the URL it prints): checked here like any read token, then
//! the console keeps the signer in a session of its own. Every read the
//! console then makes goes through the same gRPC handlers as the CLI's,
//! carrying a [`ConsoleReader`] in the request's extensions — a Rust value
//! the network cannot put there — so the same policy decides what the
//! console shows.

use canon_proto::canon::api::v1 as pb;
use canon_raft::Principal;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Request, Status};

use super::Api;
use crate::envelope::{READ_AUDIENCE, READ_KEY_ID, READ_SIGNATURE, READ_TIMESTAMP, READ_USER};

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
        let mut md = MetadataMap::new();
        for (key, value) in [
            (READ_USER, &token.user),
            (READ_KEY_ID, &token.key_id),
            (READ_AUDIENCE, &token.audience),
            (READ_TIMESTAMP, &token.timestamp),
            (READ_SIGNATURE, &token.signature),
        ] {
            let value = MetadataValue::try_from(value.as_str()).map_err(|_| {
                Status::unauthenticated(format!("the login token's {key} is not text"))
            })?;
            md.insert(key, value);
        }
        // The body a login token signs: an empty request.
        let request = Request::from_parts(md, Default::default(), pb::EventsRequest::default());
        let reader = self.signed_reader(&request, CONSOLE_METHOD).await?;
        Ok(ConsoleReader(reader.principal))
    }
}
