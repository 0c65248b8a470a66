//! VPC endpoints (`Canon.AWS.EC2.VpcEndpoint`): lowering, which refuses
//! what EC2 refuses, at the call that built the endpoint and naming the
//! value (a route table, subnet or group of another VPC, two subnets of
//! one zone, a service the type does not offer, members of the other
//! type, private DNS in a VPC without DNS hostnames, a policy that is not
//! JSON, one table routing one service from two gateways), and encoding.

use std::collections::BTreeMap;

use canon_model::{endpoint_policy, EndpointService, EndpointType, Spec, VpcEndpointSpec};
use canon_proto::canon::composition::v1 as pb;

use super::encoding::{tags_from_proto, tags_to_proto};
use super::lowering::{err_at, region_of_vpc, resource_id, Lowered, Lowering, Paths};
use crate::diag::Diagnostic;
use crate::value::{ResourceVal, Value};

/// The stdlib resource type this file lowers.
pub(super) const NAME: &str = "VpcEndpoint";

/// The language's constructor of each service (`EndpointService` in
/// EC2.lw), in the model's order.
const SERVICES: [(&str, EndpointService); 16] = [
    ("S3", EndpointService::S3),
    ("DynamoDB", EndpointService::DynamoDb),
    ("Ec2", EndpointService::Ec2),
    ("Sts", EndpointService::Sts),
    ("Ssm", EndpointService::Ssm),
    ("SsmMessages", EndpointService::SsmMessages),
    ("Ec2Messages", EndpointService::Ec2Messages),
    ("Logs", EndpointService::Logs),
    ("Kms", EndpointService::Kms),
    ("SecretsManager", EndpointService::SecretsManager),
    ("EcrApi", EndpointService::EcrApi),
    ("EcrDkr", EndpointService::EcrDkr),
    ("Sqs", EndpointService::Sqs),
    ("Sns", EndpointService::Sns),
    ("Monitoring", EndpointService::Monitoring),
    ("ExecuteApi", EndpointService::ExecuteApi),
];

/// The language's name of `service` (`Sqs`).
fn lang_name(service: EndpointService) -> &'static str {
    SERVICES
        .iter()
        .find(|(_, s)| *s == service)
        .map_or("?", |(n, _)| *n)
}

fn service_of(v: &Value<'_>) -> EndpointService {
    match v {
        Value::Ctor(c) => SERVICES
            .iter()
            .find(|(n, _)| *n == c.name)
            .map_or(EndpointService::S3, |(_, s)| *s),
        _ => EndpointService::S3,
    }
}

fn type_of(v: &Value<'_>) -> EndpointType {
    match v {
        Value::Ctor(c) if c.name == "Interface" => EndpointType::Interface,
        _ => EndpointType::Gateway,
    }
}

pub(super) fn lower(l: &mut Lowering<'_, '_>) -> Lowered {
    let vpc = l.field("vpc");
    let vpc_path = l.path_of(&vpc)?;
    let service = service_of(&l.field("service"));
    let endpoint_type = type_of(&l.field("endpointType"));
    let tables = l.field("routeTables");
    let subnets = l.field("subnets");
    let groups = l.field("securityGroups");
    check_members(
        l,
        &vpc,
        &vpc_path,
        &tables,
        "route table",
        "routeTables tables",
    );
    check_members(
        l,
        &vpc,
        &vpc_path,
        &subnets,
        "subnet",
        "subnets only subnets",
    );
    check_members(
        l,
        &vpc,
        &vpc_path,
        &groups,
        "security group",
        "securityGroups only groups",
    );
    check_type(l, service, endpoint_type, &tables, &subnets, &groups);
    check_zones(l, &subnets);
    let interface = endpoint_type == EndpointType::Interface;
    let private_dns = interface && l.field("privateDns").as_bool().unwrap_or(true);
    if private_dns {
        check_vpc_dns(l, &vpc, &vpc_path);
    }
    let policy = l.field("policy").as_str().map(str::to_string);
    if let Some(text) = &policy {
        if let Err(why) = endpoint_policy::parse(text) {
            l.error(format!(
                "Invalid VpcEndpoint: its policy is not a JSON policy document ({why}); give \
                 policy a JSON object such as {{\"Statement\": [...]}}, or leave it out for \
                 EC2's full-access default"
            ));
        }
    }
    let spec = VpcEndpointSpec {
        vpc: vpc_path,
        service,
        endpoint_type,
        route_tables: l.paths_of(&tables),
        subnets: l.paths_of(&subnets),
        security_groups: l.paths_of(&groups),
        private_dns,
        policy,
        tags: l.tags(),
    };
    Some((region_of_vpc(&vpc), Spec::VpcEndpoint(spec)))
}

/// Each of `list` (route tables, subnets or groups) is of the endpoint's
/// VPC; `fix` is the field and what to give it.
fn check_members(
    l: &mut Lowering<'_, '_>,
    vpc: &Value<'_>,
    vpc_path: &str,
    list: &Value<'_>,
    noun: &str,
    fix: &str,
) {
    for t in list.as_list().unwrap_or(&[]) {
        let member_vpc = t.field("vpc").unwrap_or(Value::None);
        if resource_id(&member_vpc) == resource_id(vpc) {
            continue;
        }
        let member = l.path_of(t).unwrap_or_default();
        let other = l.path_of(&member_vpc).unwrap_or_default();
        let why = if noun == "route table" {
            "EC2 routes an endpoint only from tables of its own VPC"
        } else {
            "EC2 puts an endpoint only in subnets and groups of its own VPC"
        };
        l.error(format!(
            "Invalid VpcEndpoint: {noun} {member} is in VPC {other}, not in the endpoint's VPC \
             {vpc_path}; {why}: give {fix} of {vpc_path}, or make an endpoint in {other}"
        ));
    }
}

/// The service is offered by the type, and the members are the type's.
fn check_type(
    l: &mut Lowering<'_, '_>,
    service: EndpointService,
    t: EndpointType,
    tables: &Value<'_>,
    subnets: &Value<'_>,
    groups: &Value<'_>,
) {
    let name = lang_name(service);
    let given = |v: &Value<'_>| v.as_list().is_some_and(|l| !l.is_empty());
    if !service.offers(t) {
        let fix = match t {
            EndpointType::Gateway => {
                "only S3 and DynamoDB have gateway endpoints: make it \
                                      endpointType: Interface, with subnets and securityGroups"
            }
            EndpointType::Interface => {
                "DynamoDB is reached by a gateway endpoint here: make \
                                        it endpointType: Gateway, with routeTables"
            }
        };
        l.error(format!(
            "Invalid VpcEndpoint: service {name} has no {t} endpoint; {fix}"
        ));
    } else if t == EndpointType::Gateway && (given(subnets) || given(groups)) {
        l.error(format!(
            "Invalid VpcEndpoint: a Gateway endpoint to {name} takes routeTables, not subnets \
             or securityGroups; make it endpointType: Interface, or give routeTables"
        ));
    } else if t == EndpointType::Interface && given(tables) {
        l.error(format!(
            "Invalid VpcEndpoint: an Interface endpoint to {name} takes subnets and \
             securityGroups, not routeTables; make it endpointType: Gateway, or give subnets"
        ));
    }
}

/// At most one subnet per zone (EC2's `DuplicateSubnetsInSameZone`).
fn check_zones(l: &mut Lowering<'_, '_>, subnets: &Value<'_>) {
    let mut zones: BTreeMap<String, String> = BTreeMap::new();
    for s in subnets.as_list().unwrap_or(&[]) {
        let Some(Value::Ctor(zone)) = s.field("availabilityZone") else {
            continue;
        };
        let path = l.path_of(s).unwrap_or_default();
        let zone = zone.name.to_string();
        if let Some(first) = zones.insert(zone.clone(), path.clone()) {
            l.error(format!(
                "Invalid VpcEndpoint: subnets {first} and {path} are both in zone {zone}; EC2 \
                 puts one interface of an endpoint in each zone (DuplicateSubnetsInSameZone): \
                 give subnets at most one subnet per zone"
            ));
        }
    }
}

/// Private DNS needs the VPC's DNS support and DNS hostnames (a VPC not
/// managed here is not known, and not checked).
fn check_vpc_dns(l: &mut Lowering<'_, '_>, vpc: &Value<'_>, vpc_path: &str) {
    if matches!(vpc, Value::Resource(r) if r.external_id().is_some()) {
        return;
    }
    let flag =
        |name: &str, default: bool| vpc.field(name).and_then(|v| v.as_bool()).unwrap_or(default);
    let mut off = Vec::new();
    if !flag("enableDnsSupport", true) {
        off.push("enableDnsSupport");
    }
    if !flag("enableDnsHostnames", false) {
        off.push("enableDnsHostnames");
    }
    if !off.is_empty() {
        let off = off.join(" and ");
        l.error(format!(
            "Invalid VpcEndpoint: private DNS needs the VPC's DNS support and hostnames, but VPC \
             {vpc_path} has {off} off; set {off} = True on {vpc_path}, or privateDns = False"
        ));
    }
}

/// No route table routes one service from two gateway endpoints of its
/// VPC (EC2 answers the second `RouteAlreadyExists`).
pub(super) fn check_tables_once(resources: &[&ResourceVal<'_>], paths: &Paths) -> Vec<Diagnostic> {
    let mut routed: BTreeMap<(u64, EndpointService), String> = BTreeMap::new();
    let mut errs = Vec::new();
    for r in resources.iter().filter(|r| r.kind == NAME) {
        let field = |name: &str| r.fields.get(name).cloned().unwrap_or(Value::None);
        if type_of(&field("endpointType")) != EndpointType::Gateway {
            continue;
        }
        let service = service_of(&field("service"));
        let me = paths.get(r.id);
        for t in field("routeTables").as_list().unwrap_or(&[]) {
            let Some(table) = resource_id(t) else {
                continue;
            };
            if let Some(other) = routed.insert((table, service), me.clone()) {
                let table = paths.get(table);
                let service = lang_name(service);
                errs.push(err_at(
                    &r.origin,
                    format!(
                        "Invalid VpcEndpoint: route table {table} already routes {service} \
                         through gateway endpoint {other}; EC2 refuses a second route to the \
                         service's prefix list (RouteAlreadyExists): take {table} off one of \
                         them"
                    ),
                ));
            }
        }
    }
    errs
}

pub(super) fn to_proto(s: &VpcEndpointSpec<String>) -> pb::VpcEndpoint {
    let service = EndpointService::ALL
        .iter()
        .position(|x| *x == s.service)
        .unwrap_or(0);
    pb::VpcEndpoint {
        vpc: s.vpc.clone(),
        service: i32::try_from(service).unwrap_or(0),
        route_tables: s.route_tables.iter().cloned().collect(),
        tags: tags_to_proto(&s.tags),
        interface: s.endpoint_type == EndpointType::Interface,
        subnets: s.subnets.iter().cloned().collect(),
        security_groups: s.security_groups.iter().cloned().collect(),
        private_dns: s.private_dns,
        policy: s.policy.clone(),
    }
}

pub(super) fn from_proto(s: pb::VpcEndpoint) -> Result<VpcEndpointSpec<String>, String> {
    let service = usize::try_from(s.service)
        .ok()
        .and_then(|i| EndpointService::ALL.get(i).copied())
        .ok_or_else(|| format!("unknown endpoint service {}", s.service))?;
    Ok(VpcEndpointSpec {
        vpc: s.vpc,
        service,
        endpoint_type: if s.interface {
            EndpointType::Interface
        } else {
            EndpointType::Gateway
        },
        route_tables: s.route_tables.into_iter().collect(),
        subnets: s.subnets.into_iter().collect(),
        security_groups: s.security_groups.into_iter().collect(),
        private_dns: s.private_dns,
        policy: s.policy,
        tags: tags_from_proto(s.tags),
    })
}
