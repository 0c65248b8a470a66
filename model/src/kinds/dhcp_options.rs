//! DHCP options sets: immutable in EC2 except for their tags, so any change
//! replaces the set.

use serde_json::{json, Value};

use super::{Changes, Params};
use crate::draft::{Draft, Going, STEP_CREATE, STEP_DELETE};
use crate::{Action, DhcpOptionsSpec, Mutability, Resource, Tags};

/// The properties of a DHCP options set and how each may change.
pub(super) const PROPERTIES: &[(&str, Mutability)] = &[
    ("domainName", Mutability::Replace),
    ("domainNameServers", Mutability::Replace),
    ("ntpServers", Mutability::Replace),
    ("tags", Mutability::Mutable),
];

pub(super) fn params(action: &Action, p: &mut Params) {
    match action {
        Action::CreateDhcpOptions {
            domain_name,
            domain_name_servers,
            ntp_servers,
            tags,
        } => {
            let mut conf = Vec::new();
            if let Some(d) = domain_name {
                conf.push(json!({"Key": "domain-name", "Values": [d]}));
            }
            if !domain_name_servers.is_empty() {
                conf.push(json!({"Key": "domain-name-servers", "Values": domain_name_servers}));
            }
            if !ntp_servers.is_empty() {
                conf.push(json!({"Key": "ntp-servers", "Values": ntp_servers}));
            }
            p.put("DhcpConfigurations", Value::Array(conf));
            p.put_tags(tags);
        }
        Action::DeleteDhcpOptions { dhcp_options } => {
            p.put("DhcpOptionsId", dhcp_options.to_json())
        }
        // Another kind's action: `Request::params` sends it there.
        _ => {}
    }
}

pub(super) fn create(draft: &mut Draft<'_>, d: &Resource, s: &DhcpOptionsSpec, tags: Tags) {
    let action = Action::CreateDhcpOptions {
        domain_name: s.domain_name.clone(),
        domain_name_servers: s.domain_name_servers.clone(),
        ntp_servers: s.ntp_servers.clone(),
        tags,
    };
    draft.apply(d, STEP_CREATE, None, action);
}

pub(super) fn delete(draft: &mut Draft<'_>, g: &Going<'_>) {
    let action = Action::DeleteDhcpOptions {
        dhcp_options: g.me.clone(),
    };
    draft.delete(g, STEP_DELETE, None, action);
}

pub(super) fn needs_replacement(w: &DhcpOptionsSpec, h: &DhcpOptionsSpec) -> bool {
    w.domain_name != h.domain_name
        || w.domain_name_servers != h.domain_name_servers
        || w.ntp_servers != h.ntp_servers
}

pub(super) fn replace_differences(w: &DhcpOptionsSpec, h: &DhcpOptionsSpec, out: &mut Changes) {
    out.compare(
        "domainName",
        format!("{:?}", w.domain_name),
        format!("{:?}", h.domain_name),
    );
    out.compare(
        "domainNameServers",
        w.domain_name_servers.join(","),
        h.domain_name_servers.join(","),
    );
    out.compare(
        "ntpServers",
        w.ntp_servers.join(","),
        h.ntp_servers.join(","),
    );
}
