//! The organisation's validation modules' calls (issue #20 §4): store one
//! (the node checks it compiles), drop one, list them, and report the live
//! processes that fail them. Changes are signed commands; the read always
//! carries a read token, and goes over gRPC (not yet over SQS).

use crate::pb;
use crate::sdk::{Client, ClientError};

use pb::command::Action;

impl Client {
    /// Stores validation module `name` (its `file` name and `text`),
    /// replacing one of that name.
    pub async fn validation_add(
        &self,
        name: &str,
        file: &str,
        text: &str,
        dry_run: bool,
    ) -> Result<pb::CommandReply, ClientError> {
        let add = pb::ValidationAdd {
            name: name.into(),
            file: file.into(),
            text: text.into(),
        };
        self.submit(Action::ValidationAdd(add), dry_run).await
    }

    /// Drops validation module `name`.
    pub async fn validation_remove(
        &self,
        name: &str,
        dry_run: bool,
    ) -> Result<pb::CommandReply, ClientError> {
        let name = pb::NameOnly { name: name.into() };
        self.submit(Action::ValidationRemove(name), dry_run).await
    }

    /// The stored modules and, with `report`, the live processes that fail
    /// them (over SQS too, as every read).
    pub async fn validations(&self, report: bool) -> Result<pb::ValidationsReply, ClientError> {
        let req = pb::ValidationsRequest { report };
        self.signed_read("Validations", &req, |mut api, req| async move {
            api.validations(req).await
        })
        .await
    }
}
