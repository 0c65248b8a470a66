//! Simulated VPCs: a create also makes the VPC's main route table,
//! default security group and default network ACL (deleted with it), DNS attributes obey EC2's
//! support-before-hostnames rule, and a delete waits for every subnet,
//! gateway (egress-only ones too), route table, network ACL, group,
//! live peering connection and endpoint of the VPC to go first.
//!
//! An Amazon-provided IPv6 block is a random `/56` of `2600:1f00::/24`
//! (one per VPC, none shared in the region), associated with the create
//! or later, and taken away only once no subnet holds a `/64` of it.

use std::collections::BTreeMap;

use canon_model::{
    Action, CloudRef, Ipv4Cidr, Ipv6Cidr, ObservedSpec, Peer, ResourceKind, Rule, Spec, Tags,
    Tenancy, VpcAttribute, VpcSpec, IPV6_ASSOCIATION,
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
    /// The Amazon-provided `/56`, if the VPC has one.
    #[serde(default)]
    pub ipv6: Option<Ipv6Block>,
}

/// An associated IPv6 block (a VPC's `/56`, a subnet's `/64`) and the id
/// of its association.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Ipv6Block {
    pub block: Ipv6Cidr,
    pub association: String,
}

/// The association ids a VPC or subnet with `ipv6` shows.
pub(crate) fn ipv6_association_ids(ipv6: Option<&Ipv6Block>) -> BTreeMap<String, String> {
    ipv6.map(|b| (IPV6_ASSOCIATION.to_string(), b.association.clone()))
        .into_iter()
        .collect()
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
            ipv6: self.ipv6.is_some(),
            ipv6_cidr_block: self.ipv6.as_ref().map(|b| b.block),
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
            amazon_provided_ipv6_cidr_block,
            tags,
        } => {
            let visible_at = call.timing.visible_at;
            let applied = create(
                region,
                *cidr_block,
                *instance_tenancy,
                tags,
                call.rng,
                visible_at,
            )?;
            if *amazon_provided_ipv6_cidr_block {
                if let Some(v) = &applied.resource {
                    associate_ipv6(region, v, call.rng)?;
                }
            }
            Ok(applied)
        }
        Action::AssociateVpcCidrBlock { vpc } => {
            let v = id(vpc)?.to_string();
            let block = associate_ipv6(region, &v, call.rng)?;
            Ok(Applied::mutated(
                changed(format!("associated {block} with {v}")),
                Some(v),
            ))
        }
        Action::DisassociateVpcCidrBlock { association_id } => {
            disassociate_ipv6(region, association_id)
        }
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
    rng: &mut R,
    visible_at: u64,
) -> Result<Applied, CloudError> {
    check_tags(tags)?;
    if !(16..=28).contains(&cidr_block.prefix()) {
        return Err(err(
            "InvalidVpc.Range",
            format!("The CIDR '{cidr_block}' is invalid."),
        ));
    }
    let rid = new_id(rng, "vpc");
    let main_rtb = new_id(rng, "rtb");
    let default_sg = new_id(rng, "sg");
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
    region.make_default_acl(&rid, visible_at, rng);
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
            ipv6: None,
        },
    );
    Ok(Applied::mutated(Outcome::created(&rid, "vpc"), Some(rid)))
}

/// Gives the VPC `v` a fresh Amazon-provided `/56` (EC2 allows one).
fn associate_ipv6<R: Rng + ?Sized>(
    region: &mut RegionState,
    v: &str,
    rng: &mut R,
) -> Result<Ipv6Cidr, CloudError> {
    if region.vpc(v)?.ipv6.is_some() {
        return Err(err(
            "CidrLimitExceeded",
            format!("This network '{v}' has met its maximum number of allowed CIDRs: 1"),
        ));
    }
    let taken: Vec<Ipv6Cidr> = region
        .vpcs
        .values()
        .filter_map(|x| x.ipv6.as_ref().map(|b| b.block))
        .collect();
    let block = loop {
        let n: u32 = rng.random();
        let addr = (0x2600_1f00u128 << 96) | (u128::from(n & 0xff_ffff) << 72);
        let Ok(block) = Ipv6Cidr::new(std::net::Ipv6Addr::from(addr), 56) else {
            continue;
        };
        if !taken.contains(&block) {
            break block;
        }
    };
    let association = new_id(rng, "vpc-cidr-assoc");
    if let Some(x) = region.vpcs.get_mut(v) {
        x.ipv6 = Some(Ipv6Block { block, association });
    }
    Ok(block)
}

/// Takes a VPC's `/56` away by its association id, once no subnet of the
/// VPC holds a `/64` of it.
fn disassociate_ipv6(
    region: &mut RegionState,
    association_id: &str,
) -> Result<Applied, CloudError> {
    let holder = region.vpcs.iter().find(|(_, x)| {
        x.ipv6
            .as_ref()
            .is_some_and(|b| b.association == association_id)
    });
    let Some((v, _)) = holder else {
        return Err(err(
            "InvalidVpcCidrBlockAssociationID.NotFound",
            format!("The vpc CIDR block association ID '{association_id}' does not exist"),
        ));
    };
    let v = v.clone();
    if region
        .subnets
        .values()
        .any(|s| s.vpc == v && s.ipv6.is_some())
    {
        return Err(err(
            "DependencyViolation",
            format!("The IPv6 CIDR block of '{v}' is in use by one of its subnets."),
        ));
    }
    if let Some(x) = region.vpcs.get_mut(&v) {
        x.ipv6 = None;
    }
    Ok(Applied::mutated(
        changed(format!("disassociated {association_id} from {v}")),
        Some(v),
    ))
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
