//! Tags, on any resource: set (overwriting) and unset by key.

use canon_model::{Action, Request};

use super::{id, not_mine, RefCloud};

pub(super) fn execute(cloud: &mut RefCloud, req: &Request) -> Result<Option<String>, String> {
    match &req.action {
        Action::CreateTags { resource, tags } => {
            cloud.update(&id(resource)?, |r| {
                r.spec.tags_mut().extend(tags.clone());
                Ok(())
            })?;
        }
        Action::DeleteTags { resource, keys } => {
            cloud.update(&id(resource)?, |r| {
                for k in keys {
                    r.spec.tags_mut().remove(k);
                }
                Ok(())
            })?;
        }
        _ => return Err(not_mine("tag", req)),
    }
    Ok(None)
}
