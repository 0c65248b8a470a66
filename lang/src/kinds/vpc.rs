//! VPCs (`Canon.AWS.EC2.Vpc`): lowering and encoding.

use canon_model::{Spec, Tenancy, VpcSpec};
use canon_proto::canon::composition::v1 as pb;

use super::encoding::{cidr_from_proto, tags_from_proto, tags_to_proto};
use super::lowering::{region_of, Lowered, Lowering};
use crate::value::Value;

/// The stdlib resource type this file lowers.
pub(super) const NAME: &str = "Vpc";

pub(super) fn lower(l: &mut Lowering<'_, '_>) -> Lowered {
    let cidr_block = l.cidr_block()?;
    let dhcp_options = match l.field("dhcpOptions") {
        Value::None => None,
        d => l.path_of(&d),
    };
    let instance_tenancy = match l.field("instanceTenancy") {
        Value::Ctor(c) if c.name == "DedicatedTenancy" => Tenancy::Dedicated,
        _ => Tenancy::Default,
    };
    let spec = VpcSpec {
        cidr_block,
        instance_tenancy,
        enable_dns_support: l.field("enableDnsSupport").as_bool().unwrap_or(true),
        enable_dns_hostnames: l.field("enableDnsHostnames").as_bool().unwrap_or(false),
        ipv6: l.field("ipv6").as_bool().unwrap_or(false),
        ipv6_cidr_block: None,
        dhcp_options,
        tags: l.tags(),
    };
    Some((region_of(&l.field("region")), Spec::Vpc(spec)))
}

pub(super) fn to_proto(s: &VpcSpec<String>) -> pb::Vpc {
    pb::Vpc {
        cidr_block: s.cidr_block.to_string(),
        instance_tenancy: match s.instance_tenancy {
            Tenancy::Default => pb::Tenancy::Default as i32,
            Tenancy::Dedicated => pb::Tenancy::Dedicated as i32,
        },
        enable_dns_support: s.enable_dns_support,
        enable_dns_hostnames: s.enable_dns_hostnames,
        dhcp_options: s.dhcp_options.clone(),
        tags: tags_to_proto(&s.tags),
        ipv6: s.ipv6,
    }
}

pub(super) fn from_proto(s: pb::Vpc) -> Result<VpcSpec<String>, String> {
    Ok(VpcSpec {
        cidr_block: cidr_from_proto(&s.cidr_block)?,
        instance_tenancy: match pb::Tenancy::try_from(s.instance_tenancy) {
            Ok(pb::Tenancy::Dedicated) => Tenancy::Dedicated,
            Ok(pb::Tenancy::Default) => Tenancy::Default,
            Err(_) => return Err(format!("bad tenancy {}", s.instance_tenancy)),
        },
        enable_dns_support: s.enable_dns_support,
        enable_dns_hostnames: s.enable_dns_hostnames,
        ipv6: s.ipv6,
        ipv6_cidr_block: None,
        dhcp_options: s.dhcp_options,
        tags: tags_from_proto(s.tags),
    })
}
