//! Small helpers for reading resolved requests.

use canon_model::CloudRef;

use crate::error::{CloudError, UNRESOLVED};

/// The cloud id of a resolved reference; a pending one is a terminal error.
pub fn id(r: &CloudRef) -> Result<&str, CloudError> {
    match r {
        CloudRef::Id(id) => Ok(id),
        CloudRef::Pending(l) => Err(CloudError::terminal(
            UNRESOLVED,
            format!("request refers to {l}, which has not been created"),
        )),
    }
}
