//! Resources a composition names by their cloud id, for two purposes:
//!
//! - `importId` (every resource type): the existing resource
//!   `canon run --import` adopts for this declaration (`canon_model::import`);
//! - `Kind.external(id, …)` (the standard library's natives): a resource
//!   Canon does not manage, usable wherever a reference of its kind is
//!   expected. It is not lowered to a resource: a reference to it is
//!   written in the compiled composition as its id behind
//!   [`EXTERNAL_PREFIX`], which no path can start with (paths are names,
//!   dots and indices), and instantiated as `Ref::External`.
//!
//! Both ids are checked against their kind's prefix (`vpc-…`) when the
//! composition is compiled, with a diagnostic at the code that named it.

use canon_model::{Fid, LogicalId, Ref, ResourceKind};

use super::lowering::Lowering;
use super::type_name;
use crate::value::Value;

/// The field of every resource type naming the resource to import.
pub(crate) const IMPORT_ID_FIELD: &str = "importId";

/// How a reference to an external resource starts in a compiled
/// composition.
pub(crate) const EXTERNAL_PREFIX: &str = "external:";

/// The kind whose standard-library resource type is named `name` (`Vpc`).
pub(crate) fn kind_named(name: &str) -> Option<ResourceKind> {
    ResourceKind::ALL
        .into_iter()
        .find(|k| type_name(*k) == name)
}

/// Why `id` cannot name a resource of `kind`, if it cannot.
pub(crate) fn id_problem(kind: ResourceKind, id: &str) -> Option<String> {
    (!kind.is_cloud_id(id)).then(|| {
        format!(
            "{id:?} is not a {} id (it must look like \"{}-0abc123\")",
            type_name(kind),
            kind.id_prefix()
        )
    })
}

/// A reference to external resource `id`, as a compiled composition
/// writes it.
pub(crate) fn external_path(id: &str) -> String {
    format!("{EXTERNAL_PREFIX}{id}")
}

/// The reference a compiled composition's `path` stands for in process
/// `fid`.
pub(crate) fn reference(fid: Fid, path: &str) -> Ref {
    match path.strip_prefix(EXTERNAL_PREFIX) {
        Some(id) => Ref::External(id.to_string()),
        None => Ref::Managed(LogicalId::new(fid, path)),
    }
}

/// The resource's `importId`, checked against its kind.
pub(super) fn import_id(l: &mut Lowering<'_, '_>) -> Option<String> {
    let id = match l.field(IMPORT_ID_FIELD) {
        Value::Str(s) => s.to_string(),
        _ => return None,
    };
    let kind = kind_named(l.kind())?;
    if let Some(problem) = id_problem(kind, &id) {
        l.error(format!("Invalid {}: importId {problem}", l.kind()));
        return None;
    }
    Some(id)
}
