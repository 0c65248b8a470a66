//! Instances: everything they are launched with is fixed except their
//! security groups, which are replaced as a whole set, and their
//! source/destination check (RunInstances cannot set it: an instance
//! declared without it is launched, then has it turned off).
//!
//! An instance declared with no security groups is launched without any,
//! and EC2 (SimCloud as well) puts it in its VPC's default group, which
//! Canon does not own or observe as a declaration. Such an instance's
//! groups are the default's and are not enforced: its observed groups
//! are never a difference (an empty set sent to
//! ModifyInstanceAttribute would be refused, as an instance must belong
//! to at least one group).

use serde_json::{json, Value};

use super::{Changes, Params};
use crate::draft::{Draft, Going, Kept, STEP_ATTRIBUTES, STEP_CREATE, STEP_DELETE, STEP_LINK};
use crate::{Action, CloudRef, InstanceSpec, Mutability, Ref, Resource, Tags};

/// The properties of an instance and how each may change.
pub(super) const PROPERTIES: &[(&str, Mutability)] = &[
    ("imageId", Mutability::Replace),
    ("instanceType", Mutability::Replace),
    ("subnet", Mutability::Replace),
    ("keyName", Mutability::Replace),
    ("userData", Mutability::Replace),
    ("securityGroups", Mutability::Mutable),
    ("sourceDestCheck", Mutability::Mutable),
    ("tags", Mutability::Mutable),
];

pub(super) fn params(action: &Action, p: &mut Params) {
    match action {
        Action::RunInstances {
            image_id,
            instance_type,
            subnet,
            security_groups,
            key_name,
            user_data,
            tags,
        } => {
            p.put("ImageId", json!(image_id));
            p.put("InstanceType", json!(instance_type));
            if let Some(k) = key_name {
                p.put("KeyName", json!(k));
            }
            p.put("MaxCount", json!(1));
            p.put("MinCount", json!(1));
            p.put(
                "SecurityGroupIds",
                Value::Array(security_groups.iter().map(CloudRef::to_json).collect()),
            );
            p.put("SubnetId", subnet.to_json());
            if let Some(u) = user_data {
                p.put("UserData", json!(u));
            }
            p.put_tags(tags);
        }
        Action::ModifyInstanceSecurityGroups {
            instance,
            security_groups,
        } => {
            p.put(
                "Groups",
                Value::Array(security_groups.iter().map(CloudRef::to_json).collect()),
            );
            p.put("InstanceId", instance.to_json());
        }
        Action::ModifyInstanceSourceDestCheck { instance, enabled } => {
            p.put("InstanceId", instance.to_json());
            p.put("SourceDestCheck", json!({ "Value": enabled }));
        }
        Action::TerminateInstances { instance } => {
            p.put("InstanceIds", Value::Array(vec![instance.to_json()]))
        }
        // Another kind's action: `Request::params` sends it there.
        _ => {}
    }
}

pub(super) fn create(draft: &mut Draft<'_>, d: &Resource, s: &InstanceSpec<Ref>, tags: Tags) {
    let action = Action::RunInstances {
        image_id: s.image_id.clone(),
        instance_type: s.instance_type.clone(),
        subnet: draft.cref(&s.subnet),
        security_groups: s.security_groups.iter().map(|g| draft.cref(g)).collect(),
        key_name: s.key_name.clone(),
        user_data: s.user_data.clone(),
        tags,
    };
    draft.apply(d, STEP_CREATE, None, action);
    if !s.source_dest_check {
        let action = Action::ModifyInstanceSourceDestCheck {
            instance: CloudRef::Pending(d.id),
            enabled: false,
        };
        draft.apply(d, STEP_ATTRIBUTES, Some("source-dest-check"), action);
    }
}

pub(super) fn update(
    draft: &mut Draft<'_>,
    k: &Kept<'_>,
    want: &InstanceSpec<Ref>,
    have: &InstanceSpec<Ref>,
) {
    if have.source_dest_check != want.source_dest_check {
        draft.drift_value(
            k,
            "sourceDestCheck",
            &want.source_dest_check,
            &have.source_dest_check,
        );
        let action = Action::ModifyInstanceSourceDestCheck {
            instance: k.me.clone(),
            enabled: want.source_dest_check,
        };
        draft.apply(k.d, STEP_ATTRIBUTES, Some("source-dest-check"), action);
    }
    if !groups_enforced(want) || have.security_groups == want.security_groups {
        return;
    }
    let declared = Some(draft.shown_all(&want.security_groups));
    let observed = Some(draft.shown_all(&have.security_groups));
    draft.drift(k, "securityGroups", declared, observed);
    let action = Action::ModifyInstanceSecurityGroups {
        instance: k.me.clone(),
        security_groups: want.security_groups.iter().map(|g| draft.cref(g)).collect(),
    };
    draft.apply(k.d, STEP_LINK, Some("groups"), action);
}

pub(super) fn delete(draft: &mut Draft<'_>, g: &Going<'_>) {
    let action = Action::TerminateInstances {
        instance: g.me.clone(),
    };
    draft.delete(g, STEP_DELETE, None, action);
}

pub(super) fn unchanged(
    draft: &Draft<'_>,
    w: &InstanceSpec<Ref>,
    h: &InstanceSpec<String>,
) -> bool {
    w.source_dest_check == h.source_dest_check
        && (!groups_enforced(w)
            || w.security_groups.len() == h.security_groups.len()
                && h.security_groups
                    .iter()
                    .all(|g| w.security_groups.contains(&draft.translate_id(g))))
}

pub(super) fn needs_replacement(
    draft: &Draft<'_>,
    w: &InstanceSpec<Ref>,
    h: &InstanceSpec<String>,
) -> bool {
    w.image_id != h.image_id
        || w.instance_type != h.instance_type
        || !draft.ref_eq(&w.subnet, &h.subnet)
        || w.key_name != h.key_name
        || w.user_data != h.user_data
}

pub(super) fn replace_differences(w: &InstanceSpec<Ref>, h: &InstanceSpec<Ref>, out: &mut Changes) {
    out.compare("imageId", w.image_id.clone(), h.image_id.clone());
    out.compare(
        "instanceType",
        w.instance_type.clone(),
        h.instance_type.clone(),
    );
    out.compare("subnet", w.subnet.to_string(), h.subnet.to_string());
    out.compare(
        "keyName",
        format!("{:?}", w.key_name),
        format!("{:?}", h.key_name),
    );
    out.compare(
        "userData",
        format!("{:?}", w.user_data),
        format!("{:?}", h.user_data),
    );
}

/// Whether the instance's declared groups are enforced: not when it
/// declares none (it is in its VPC's default group, see the module's doc).
fn groups_enforced<R>(want: &InstanceSpec<R>) -> bool {
    !want.security_groups.is_empty()
}
