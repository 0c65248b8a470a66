//! EC2 instances (`Canon.AWS.EC2.Instance`): lowering, which checks the
//! image id and that every security group is in the subnet's VPC, and
//! encoding (a decoded `maxAge` under a minute is refused, as the
//! standard library refuses it).

use canon_model::{FleetMember, HealthCheck, InstanceSpec, Spec};
use canon_proto::canon::composition::v1 as pb;

use super::encoding::{tags_from_proto, tags_to_proto};
use super::lowering::{region_of_vpc, resource_id, Lowered, Lowering};
use crate::value::Value;

/// The stdlib resource type this file lowers.
pub(super) const NAME: &str = "Instance";

/// The shortest `maxAge` (seconds), as `Instance.new` checks it.
const MIN_MAX_AGE_SECS: u64 = 60;

/// The instance type when none is given.
const DEFAULT_INSTANCE_TYPE: &str = "t2.micro";

pub(super) fn lower(l: &mut Lowering<'_, '_>) -> Lowered {
    let subnet = l.field("subnet");
    let image_id = l.field("imageId").as_str().unwrap_or("").to_string();
    if !image_id.starts_with("ami-") {
        l.error(format!("Invalid Instance: imageId must be an AMI id like ami-0abcdef1234567890, not {image_id:?}"));
    }
    let groups = l.field("securityGroups");
    let subnet_vpc = subnet.field("vpc").unwrap_or(Value::None);
    for g in groups.as_list().unwrap_or(&[]) {
        if resource_id(&g.field("vpc").unwrap_or(Value::None)) != resource_id(&subnet_vpc) {
            let group = l.path_of(g).unwrap_or_default();
            let subnet = l.path_of(&subnet).unwrap_or_default();
            l.error(format!(
                "Invalid Instance: security group {group} is not in the VPC of its subnet {subnet}"
            ));
        }
    }
    // `T2-micro` → `t2.micro`
    let instance_type = match l.field("instanceType") {
        Value::Ctor(c) => c.name.to_lowercase().replacen('-', ".", 1),
        _ => DEFAULT_INSTANCE_TYPE.into(),
    };
    let fleet = fleet_member(&l.field("fleet"));
    if fleet
        .as_ref()
        .is_some_and(|m| m.health_check == (HealthCheck::Tcp { port: 0 }))
    {
        l.error(
            "Invalid Instance: a fleet's healthCheck Tcp port must be from 1 to 65535".to_string(),
        );
    }
    let spec = InstanceSpec {
        image_id,
        instance_type,
        subnet: l.path_of(&subnet)?,
        key_name: l.field("keyName").as_str().map(String::from),
        user_data: l.field("userData").as_str().map(String::from),
        security_groups: l.paths_of(&groups),
        tags: l.tags(),
        max_age_secs: seconds(&l.field("maxAge")),
        fleet,
        source_dest_check: l.field("sourceDestCheck").as_bool().unwrap_or(true),
    };
    Some((region_of_vpc(&subnet_vpc), Spec::Instance(spec)))
}

pub(super) fn to_proto(s: &InstanceSpec<String>) -> pb::Instance {
    pb::Instance {
        image_id: s.image_id.clone(),
        instance_type: s.instance_type.clone(),
        subnet: s.subnet.clone(),
        key_name: s.key_name.clone(),
        user_data: s.user_data.clone(),
        security_groups: s.security_groups.iter().cloned().collect(),
        tags: tags_to_proto(&s.tags),
        max_age_seconds: s.max_age_secs,
        fleet: s.fleet.as_ref().map(|m| pb::FleetMember {
            fleet: m.fleet.clone(),
            index: m.index,
            count: m.count,
            max_surge: m.max_surge,
            max_unavailable: m.max_unavailable,
            ec2_status_check: m.health_check == HealthCheck::Ec2Status,
            health_grace_seconds: m.health_grace_secs,
            tcp_port: match m.health_check {
                HealthCheck::Tcp { port } => Some(u32::from(port)),
                HealthCheck::Ec2Status | HealthCheck::None => None,
            },
        }),
        // Only when off, so what declares none encodes as before.
        source_dest_check: (!s.source_dest_check).then_some(false),
    }
}

/// A fleet member's record (`EC2.FleetMember`) as the model's, if the
/// instance has one. The standard library checked its numbers.
fn fleet_member(v: &Value<'_>) -> Option<FleetMember> {
    let int = |name: &str| {
        v.field(name)
            .and_then(|f| f.as_int())
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0)
    };
    let fleet = v.field("fleet")?.as_str()?.to_string();
    let health_grace_secs = v
        .field("healthGrace")
        .and_then(|g| seconds(&g))
        .unwrap_or(0);
    let health_check = match v.field("healthCheck") {
        Some(Value::Ctor(c)) if c.name == "NoCheck" => HealthCheck::None,
        // Out of range reads as port 0, which `lower` refuses (a raw
        // `EC2.FleetMember` skips `Fleet.new`'s check).
        Some(Value::Ctor(c)) if c.name == "Tcp" => HealthCheck::Tcp {
            port: c
                .payload
                .as_ref()
                .and_then(|p| p.as_int())
                .and_then(|n| u16::try_from(n).ok())
                .unwrap_or(0),
        },
        _ => HealthCheck::Ec2Status,
    };
    Some(FleetMember {
        fleet,
        index: int("index"),
        count: int("count"),
        max_surge: int("maxSurge"),
        max_unavailable: int("maxUnavailable"),
        health_check,
        health_grace_secs,
    })
}

/// The whole seconds of a duration field (`"6h"`), if it holds one.
fn seconds(v: &Value<'_>) -> Option<u64> {
    let d = canon_model::parse_duration(v.as_str()?).ok()?;
    Some(d.as_secs())
}

pub(super) fn from_proto(s: pb::Instance) -> Result<InstanceSpec<String>, String> {
    if s.max_age_seconds.is_some_and(|a| a < MIN_MAX_AGE_SECS) {
        return Err(format!(
            "maxAge must be at least {MIN_MAX_AGE_SECS} seconds, not {:?}",
            s.max_age_seconds
        ));
    }
    Ok(InstanceSpec {
        image_id: s.image_id,
        instance_type: s.instance_type,
        subnet: s.subnet,
        key_name: s.key_name,
        user_data: s.user_data,
        security_groups: s.security_groups.into_iter().collect(),
        tags: tags_from_proto(s.tags),
        max_age_secs: s.max_age_seconds,
        fleet: s.fleet.map(member_from_proto).transpose()?,
        source_dest_check: s.source_dest_check.unwrap_or(true),
    })
}

/// A decoded fleet member, refused if its numbers could never roll
/// (no surge and no unavailability, or a place outside the fleet).
fn member_from_proto(m: pb::FleetMember) -> Result<FleetMember, String> {
    if m.count == 0 || m.index >= m.count || m.max_surge.saturating_add(m.max_unavailable) == 0 {
        return Err(format!(
            "fleet {}: member {} of {} with maxSurge {} and maxUnavailable {} cannot roll",
            m.fleet, m.index, m.count, m.max_surge, m.max_unavailable
        ));
    }
    let health_check = match (m.tcp_port, m.ec2_status_check) {
        (Some(p), false) => HealthCheck::Tcp {
            port: u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| {
                format!("fleet {}: tcp health-check port {p} is not a port", m.fleet)
            })?,
        },
        (Some(p), true) => {
            return Err(format!(
                "fleet {}: both EC2's status checks and tcp port {p} as health check",
                m.fleet
            ))
        }
        (None, true) => HealthCheck::Ec2Status,
        (None, false) => HealthCheck::None,
    };
    Ok(FleetMember {
        fleet: m.fleet,
        index: m.index,
        count: m.count,
        max_surge: m.max_surge,
        max_unavailable: m.max_unavailable,
        health_check,
        health_grace_secs: m.health_grace_seconds,
    })
}
