//! VPCs: their range and tenancy are fixed; DNS attributes, the DHCP
//! options association and the Amazon-provided IPv6 `/56` change in place.
//!
//! The `/56` is EC2's choice: the declaration says only whether the VPC
//! has one (`ipv6`); the block is observed, and its subnets' `/64`s are
//! numbered inside it (`kinds/subnet.rs`). Taking it away waits for the
//! plan's deletes, so that the subnets have given back their `/64`s
//! first, as EC2 requires.

use serde_json::{json, Value};

use super::{Changes, Params};
use crate::draft::{
    Draft, Going, Kept, Phase, STEP_ATTRIBUTES, STEP_CREATE, STEP_DELETE, STEP_DETACH,
};
use crate::{
    Action, CloudRef, Mutability, Ref, Request, Resource, ResourceKind, Tags, VpcAttribute,
    VpcSpec, IPV6_ASSOCIATION,
};

/// The properties of a VPC and how each may change.
pub(super) const PROPERTIES: &[(&str, Mutability)] = &[
    ("cidrBlock", Mutability::Replace),
    ("instanceTenancy", Mutability::Replace),
    ("enableDnsSupport", Mutability::Mutable),
    ("enableDnsHostnames", Mutability::Mutable),
    ("dhcpOptions", Mutability::Mutable),
    // AssociateVpcCidrBlock / DisassociateVpcCidrBlock (Amazon-provided).
    ("ipv6", Mutability::Mutable),
    ("tags", Mutability::Mutable),
];

pub(super) fn params(action: &Action, p: &mut Params) {
    match action {
        Action::CreateVpc {
            cidr_block,
            instance_tenancy,
            amazon_provided_ipv6_cidr_block,
            tags,
        } => {
            if *amazon_provided_ipv6_cidr_block {
                p.put("AmazonProvidedIpv6CidrBlock", json!(true));
            }
            p.put("CidrBlock", json!(cidr_block.to_string()));
            p.put("InstanceTenancy", json!(instance_tenancy.as_str()));
            p.put_tags(tags);
        }
        Action::ModifyVpcAttribute {
            vpc,
            attribute,
            value,
        } => {
            let name = match attribute {
                VpcAttribute::EnableDnsSupport => "EnableDnsSupport",
                VpcAttribute::EnableDnsHostnames => "EnableDnsHostnames",
            };
            p.put(name, json!({ "Value": value }));
            p.put("VpcId", vpc.to_json());
        }
        Action::AssociateDhcpOptions { vpc, dhcp_options } => {
            p.put(
                "DhcpOptionsId",
                dhcp_options
                    .as_ref()
                    .map(CloudRef::to_json)
                    .unwrap_or_else(|| Value::String("default".into())),
            );
            p.put("VpcId", vpc.to_json());
        }
        Action::AssociateVpcCidrBlock { vpc } => {
            p.put("AmazonProvidedIpv6CidrBlock", json!(true));
            p.put("VpcId", vpc.to_json());
        }
        Action::DisassociateVpcCidrBlock { association_id } => {
            p.put("AssociationId", json!(association_id));
        }
        Action::DeleteVpc { vpc } => p.put("VpcId", vpc.to_json()),
        // Another kind's action: `Request::params` sends it there.
        _ => {}
    }
}

pub(super) fn create(draft: &mut Draft<'_>, d: &Resource, s: &VpcSpec<Ref>, tags: Tags) {
    let me = CloudRef::Pending(d.id);
    let action = Action::CreateVpc {
        cidr_block: s.cidr_block,
        instance_tenancy: s.instance_tenancy,
        amazon_provided_ipv6_cidr_block: s.ipv6,
        tags,
    };
    draft.apply(d, STEP_CREATE, None, action);
    // A new VPC has DNS support on and DNS hostnames off.
    dns(
        draft,
        d,
        &me,
        (true, false),
        (s.enable_dns_support, s.enable_dns_hostnames),
    );
    if let Some(dopt) = &s.dhcp_options {
        let dhcp_options = Some(draft.cref(dopt));
        let action = Action::AssociateDhcpOptions {
            vpc: me,
            dhcp_options,
        };
        draft.apply(d, STEP_ATTRIBUTES, Some("dhcp"), action);
    }
}

pub(super) fn update(
    draft: &mut Draft<'_>,
    k: &Kept<'_>,
    want: &VpcSpec<Ref>,
    have: &VpcSpec<Ref>,
    raw: &VpcSpec<String>,
) {
    let d = k.d;
    if have.enable_dns_support != want.enable_dns_support {
        draft.drift_value(
            k,
            "enableDnsSupport",
            &want.enable_dns_support,
            &have.enable_dns_support,
        );
    }
    if have.enable_dns_hostnames != want.enable_dns_hostnames {
        draft.drift_value(
            k,
            "enableDnsHostnames",
            &want.enable_dns_hostnames,
            &have.enable_dns_hostnames,
        );
    }
    dns(
        draft,
        d,
        &k.me,
        (have.enable_dns_support, have.enable_dns_hostnames),
        (want.enable_dns_support, want.enable_dns_hostnames),
    );
    if have.ipv6 != want.ipv6 {
        ipv6(draft, k, want.ipv6, have.ipv6);
    }
    if let (None, Some(old)) = (&want.dhcp_options, raw.dhcp_options.as_deref()) {
        // Unmanaged, but a set this plan deletes cannot stay in use: fall
        // back to the region's default.
        if draft.doomed_ids.contains(old) {
            let action = Action::AssociateDhcpOptions {
                vpc: k.me.clone(),
                dhcp_options: None,
            };
            draft.apply(d, STEP_ATTRIBUTES, Some("dhcp"), action);
        }
    }
    if let Some(dopt) = &want.dhcp_options {
        if have.dhcp_options.as_ref() != Some(dopt) {
            let declared = Some(draft.shown(dopt));
            let observed = have.dhcp_options.as_ref().map(|d| draft.shown(d));
            draft.drift(k, "dhcpOptions", declared, observed);
            let dhcp_options = Some(draft.cref(dopt));
            let action = Action::AssociateDhcpOptions {
                vpc: k.me.clone(),
                dhcp_options,
            };
            draft.apply(d, STEP_ATTRIBUTES, Some("dhcp"), action);
        }
    }
}

/// Gives the kept VPC `k` an Amazon-provided `/56`, or takes its block
/// away. The take-away goes with the plan's deletes (after the VPC's
/// subnets have let go of their `/64`s in the applies).
fn ipv6(draft: &mut Draft<'_>, k: &Kept<'_>, want: bool, have: bool) {
    draft.drift_value(k, "ipv6", &want, &have);
    if want {
        let action = Action::AssociateVpcCidrBlock { vpc: k.me.clone() };
        draft.apply(k.d, STEP_ATTRIBUTES, Some("ipv6"), action);
        return;
    }
    if let Some(association_id) = k.o.association_ids.get(IPV6_ASSOCIATION) {
        let request = Request {
            target: k.d.id,
            part: Some("ipv6".into()),
            region: k.d.region.clone(),
            action: Action::DisassociateVpcCidrBlock {
                association_id: association_id.clone(),
            },
        };
        draft.push(Phase::Delete, ResourceKind::Vpc, STEP_DETACH, request);
    }
}

/// Changes DNS attributes from `have` to `want` (support, hostnames), in
/// the order EC2 accepts: hostnames need support.
fn dns(
    draft: &mut Draft<'_>,
    d: &Resource,
    vpc: &CloudRef,
    have: (bool, bool),
    want: (bool, bool),
) {
    let support = (have.0 != want.0).then_some((VpcAttribute::EnableDnsSupport, want.0));
    let hostnames = (have.1 != want.1).then_some((VpcAttribute::EnableDnsHostnames, want.1));
    let order = if want.0 {
        [support, hostnames]
    } else {
        [hostnames, support]
    };
    for (attribute, value) in order.into_iter().flatten() {
        let action = Action::ModifyVpcAttribute {
            vpc: vpc.clone(),
            attribute,
            value,
        };
        draft.apply(d, STEP_ATTRIBUTES, Some("attributes"), action);
    }
}

pub(super) fn delete(draft: &mut Draft<'_>, g: &Going<'_>) {
    let action = Action::DeleteVpc { vpc: g.me.clone() };
    draft.delete(g, STEP_DELETE, None, action);
}

pub(super) fn unchanged(draft: &Draft<'_>, w: &VpcSpec<Ref>, h: &VpcSpec<String>) -> bool {
    let dhcp_ok = match (&w.dhcp_options, &h.dhcp_options) {
        (Some(w), Some(h)) => draft.ref_eq(w, h),
        (Some(_), None) => false,
        (None, Some(h)) => !draft.doomed_ids.contains(h.as_str()),
        (None, None) => true,
    };
    dhcp_ok
        && w.enable_dns_support == h.enable_dns_support
        && w.enable_dns_hostnames == h.enable_dns_hostnames
        && w.ipv6 == h.ipv6
}

pub(super) fn needs_replacement(w: &VpcSpec<Ref>, h: &VpcSpec<String>) -> bool {
    w.cidr_block != h.cidr_block || w.instance_tenancy != h.instance_tenancy
}

pub(super) fn replace_differences(w: &VpcSpec<Ref>, h: &VpcSpec<Ref>, out: &mut Changes) {
    out.compare(
        "cidrBlock",
        w.cidr_block.to_string(),
        h.cidr_block.to_string(),
    );
    out.compare(
        "instanceTenancy",
        w.instance_tenancy.as_str().into(),
        h.instance_tenancy.as_str().into(),
    );
}
