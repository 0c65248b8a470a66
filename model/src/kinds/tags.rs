//! Tags, which every kind has and treats alike: the ownership tag every
//! create sets, the diff that sets and unsets the others on a kept
//! resource, and the parameters of the requests that do it.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::Params;
use crate::draft::{Draft, Kept, STEP_TAGS};
use crate::{Action, LogicalId, Resource, Tags, OWNERSHIP_TAG};

/// The parameters of the tag requests (`Action::resource_kind` is `None`
/// for them, and only for them).
pub(super) fn params(action: &Action, p: &mut Params) {
    match action {
        Action::CreateTags { resource, tags } => {
            p.put("Resources", Value::Array(vec![resource.to_json()]));
            p.put("Tags", to_json(tags));
        }
        Action::DeleteTags { resource, keys } => {
            p.put("Resources", Value::Array(vec![resource.to_json()]));
            p.put(
                "Tags",
                Value::Array(keys.iter().map(|k| json!({ "Key": k })).collect()),
            );
        }
        // A kind's own action: `Request::params` sends it to the kind.
        _ => {}
    }
}

/// Tags as EC2 lists them: `[{"Key": …, "Value": …}]`.
pub(super) fn to_json(tags: &Tags) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect(),
    )
}

/// The declared tags plus the ownership tag: what a create sets.
pub(super) fn owned(d: &Resource) -> Tags {
    let mut tags = d.spec.tags().clone();
    tags.insert(OWNERSHIP_TAG.to_string(), d.id.to_string());
    tags
}

/// Sets the declared and ownership tags that differ, unsets the others
/// (except `aws:` tags, which belong to AWS and cannot be changed).
pub(super) fn update(draft: &mut Draft<'_>, k: &Kept<'_>) {
    let declared = k.d.spec.tags();
    let have = k.o.spec.tags();
    let owner_ok = have
        .get(OWNERSHIP_TAG)
        .and_then(|v| v.parse::<LogicalId>().ok())
        == Some(k.d.id);
    let same = owner_ok
        && declared.iter().all(|(k, v)| have.get(k) == Some(v))
        && have
            .keys()
            .all(|k| k == OWNERSHIP_TAG || k.starts_with("aws:") || declared.contains_key(k));
    if same {
        return;
    }
    let want = owned(k.d);
    let mut set = Tags::new();
    for (key, v) in &want {
        if have.get(key) != Some(v) {
            draft.drift(
                k,
                format!("tags.{key}"),
                Some(v.clone()),
                have.get(key).cloned(),
            );
            set.insert(key.clone(), v.clone());
        }
    }
    let mut unset = BTreeSet::new();
    for (key, v) in have {
        if !want.contains_key(key) && !key.starts_with("aws:") {
            draft.drift(k, format!("tags.{key}"), None, Some(v.clone()));
            unset.insert(key.clone());
        }
    }
    if !unset.is_empty() {
        let action = Action::DeleteTags {
            resource: k.me.clone(),
            keys: unset,
        };
        draft.apply(k.d, STEP_TAGS, Some("tags"), action);
    }
    if !set.is_empty() {
        let action = Action::CreateTags {
            resource: k.me.clone(),
            tags: set,
        };
        draft.apply(k.d, STEP_TAGS, Some("tags"), action);
    }
}
