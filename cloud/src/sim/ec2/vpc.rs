//! Simulated VPCs: a create also makes the VPC's main route table,
//! default security group and default network ACL (deleted with it), DNS attributes obey EC2's
//! support-before-hostnames rule, and a delete waits for every subnet,
//! gateway (egress-only ones too), route table, network ACL, group,
//! live peering connection and endpoint of the VPC to go first.

use std::collections::BTreeMap;

use canon_model::{
    Action, CloudRef, Ipv4Cidr, ObservedSpec, Peer, ResourceKind, Rule, Spec, Tags, Tenancy,
    VpcAttribute, VpcSpec,
};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::route_table::Rtb;
use super::security_group::Sg;
use super::tags::check_tags;
use crate::error::misrouted;
use crate::refs::id;
use crate::sim::region::{changed, err, new_id, not_found, Applied, Call, Meta, RegionState};
use crate::{CloudError, Outcome};

/// A stored VPC.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Vpc {
    pub meta: Meta,
    pub cidr: Ipv4Cidr,
    pub tenancy: Tenancy,
    pub dns_support: bool,
    pub dns_hostnames: bool,
    pub dhcp: String,
    pub main_rtb: String,
    pub default_sg: String,
}

impl Vpc {
    /// The VPC as a describe shows it: on the account's default DHCP set
    /// (`default_dhcp`, or none at all) it names no set.
    pub fn spec(&self, default_dhcp: &str) -> ObservedSpec {
        Spec::Vpc(VpcSpec {
            cidr_block: self.cidr,
            instance_tenancy: self.tenancy,
            enable_dns_support: self.dns_support,
            enable_dns_hostnames: self.dns_hostnames,
            dhcp_options: (self.dhcp != default_dhcp && self.dhcp != "default")
                .then(|| self.dhcp.clone()),
            tags: self.meta.tags.clone(),
        })
    }
}

impl RegionState {
    /// The VPC `v`, or EC2's not-found error.
    pub(crate) fn vpc(&self, v: &str) -> Result<&Vpc, CloudError> {
        self.vpcs
            .get(v)
            .ok_or_else(|| not_found(ResourceKind::Vpc, v))
    }
}

/// Applies one VPC action.
pub(crate) fn apply<R: Rng + ?Sized>(
    region: &mut RegionState,
    action: &Action,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    match action {
        Action::CreateVpc {
            cidr_block,
            instance_tenancy,
            tags,
        } => create(region, *cidr_block, *instance_tenancy, tags, call),
        Action::ModifyVpcAttribute {
            vpc,
            attribute,
            value,
        } => modify_attribute(region, vpc, *attribute, *value),
        Action::DeleteVpc { vpc } => delete(region, vpc),
        _ => Err(misrouted(action)),
    }
}

fn create<R: Rng + ?Sized>(
    region: &mut RegionState,
    cidr_block: Ipv4Cidr,
    instance_tenancy: Tenancy,
    tags: &Tags,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    check_tags(tags)?;
    if !(16..=28).contains(&cidr_block.prefix()) {
        return Err(err(
            "InvalidVpc.Range",
            format!("The CIDR '{cidr_block}' is invalid."),
        ));
    }
    let visible_at = call.timing.visible_at;
    let rid = new_id(call.rng, "vpc");
    let main_rtb = new_id(call.rng, "rtb");
    let default_sg = new_id(call.rng, "sg");
    region.rtbs.insert(
        main_rtb.clone(),
        Rtb {
            meta: Meta {
                tags: Tags::new(),
                visible_at,
            },
            vpc: rid.clone(),
            main: true,
            routes: BTreeMap::new(),
            assoc: BTreeMap::new(),
            endpoint_routes: BTreeMap::new(),
        },
    );
    region.sgs.insert(
        default_sg.clone(),
        Sg {
            meta: Meta {
                tags: Tags::new(),
                visible_at,
            },
            vpc: rid.clone(),
            name: "default".into(),
            description: "default VPC security group".into(),
            ingress: [Rule::new(
                canon_model::Protocol::All,
                -1,
                -1,
                Peer::Group(default_sg.clone()),
            )]
            .into_iter()
            .collect(),
            egress: [Rule::allow_all_egress()].into_iter().collect(),
            default: true,
        },
    );
    region.make_default_acl(&rid, visible_at, call.rng);
    region.vpcs.insert(
        rid.clone(),
        Vpc {
            meta: Meta::new(tags, visible_at),
            cidr: cidr_block,
            tenancy: instance_tenancy,
            dns_support: true,
            dns_hostnames: false,
            dhcp: region.default_dhcp.clone(),
            main_rtb,
            default_sg,
        },
    );
    Ok(Applied::mutated(Outcome::created(&rid, "vpc"), Some(rid)))
}

fn modify_attribute(
    region: &mut RegionState,
    vpc: &CloudRef,
    attribute: VpcAttribute,
    value: bool,
) -> Result<Applied, CloudError> {
    let v = id(vpc)?.to_string();
    let x = region.vpc(&v)?;
    if attribute == VpcAttribute::EnableDnsHostnames && value && !x.dns_support {
        return Err(err(
            "InvalidParameterValue",
            "enableDnsHostnames requires enableDnsSupport",
        ));
    }
    if attribute == VpcAttribute::EnableDnsSupport && !value && x.dns_hostnames {
        return Err(err(
            "InvalidParameterValue",
            "enableDnsSupport cannot be disabled while enableDnsHostnames is enabled",
        ));
    }
    if let Some(x) = region.vpcs.get_mut(&v) {
        match attribute {
            VpcAttribute::EnableDnsSupport => x.dns_support = value,
            VpcAttribute::EnableDnsHostnames => x.dns_hostnames = value,
        }
    }
    Ok(Applied::mutated(
        changed(format!("set {attribute:?} of {v} to {value}")),
        Some(v),
    ))
}

fn delete(region: &mut RegionState, vpc: &CloudRef) -> Result<Applied, CloudError> {
    let v = id(vpc)?.to_string();
    let x = region.vpc(&v)?.clone();
    let blocking = region.subnets.values().any(|s| s.vpc == v)
        || region
            .igws
            .values()
            .any(|i| i.vpc.as_deref() == Some(v.as_str()))
        || region.rtbs.values().any(|r| r.vpc == v && !r.main)
        || region.acls.values().any(|a| a.vpc == v && !a.default)
        || region.eigws.values().any(|g| g.vpc == v)
        || region.pcxs.values().any(|p| p.live() && p.joins(&v))
        || region.vpces.values().any(|e| e.vpc == v)
        || region.sgs.values().any(|g| g.vpc == v && !g.default);
    if blocking {
        return Err(err(
            "DependencyViolation",
            format!("The vpc '{v}' has dependencies and cannot be deleted."),
        ));
    }
    region.rtbs.remove(&x.main_rtb);
    region.sgs.remove(&x.default_sg);
    region.acls.retain(|_, a| a.vpc != v);
    region.vpcs.remove(&v);
    Ok(Applied::mutated(changed(format!("deleted {v}")), Some(v)))
}
