//! Reading resolved requests: both clouds refuse a request that still
//! refers to a resource not created yet, with the same terminal error.

use canon_model::{CloudRef, Request};

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

/// Refuses a request with any reference still pending.
pub fn check_resolved(request: &Request) -> Result<(), CloudError> {
    match request.resolve(|_| None) {
        Ok(_) => Ok(()),
        Err(u) => Err(CloudError::terminal(UNRESOLVED, u.to_string())),
    }
}
