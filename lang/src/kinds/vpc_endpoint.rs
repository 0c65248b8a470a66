//! Gateway VPC endpoints (`Canon.AWS.EC2.VpcEndpoint`): lowering, which
//! refuses what EC2 refuses (a route table of another VPC), and encoding.

use canon_model::{EndpointService, Spec, VpcEndpointSpec};
use canon_proto::canon::composition::v1 as pb;

use super::encoding::{tags_from_proto, tags_to_proto};
use super::lowering::{region_of_vpc, resource_id, Lowered, Lowering};
use crate::value::Value;

/// The stdlib resource type this file lowers.
pub(super) const NAME: &str = "VpcEndpoint";

pub(super) fn lower(l: &mut Lowering<'_, '_>) -> Lowered {
    let vpc = l.field("vpc");
    let vpc_path = l.path_of(&vpc)?;
    let service = match l.field("service") {
        Value::Ctor(c) if c.name == "DynamoDB" => EndpointService::DynamoDb,
        _ => EndpointService::S3,
    };
    let tables = l.field("routeTables");
    for t in tables.as_list().unwrap_or(&[]) {
        let table_vpc = t.field("vpc").unwrap_or(Value::None);
        if resource_id(&table_vpc) != resource_id(&vpc) {
            let table = l.path_of(t).unwrap_or_default();
            let other = l.path_of(&table_vpc).unwrap_or_default();
            l.error(format!(
                "Invalid VpcEndpoint: route table {table} is in VPC {other}, not in the \
                 endpoint's VPC {vpc_path}; EC2 routes an endpoint only from tables of its \
                 own VPC: give routeTables tables of {vpc_path}, or make an endpoint in {other}"
            ));
        }
    }
    let spec = VpcEndpointSpec {
        vpc: vpc_path,
        service,
        route_tables: l.paths_of(&tables),
        tags: l.tags(),
    };
    Some((region_of_vpc(&vpc), Spec::VpcEndpoint(spec)))
}

pub(super) fn to_proto(s: &VpcEndpointSpec<String>) -> pb::VpcEndpoint {
    let service = match s.service {
        EndpointService::S3 => pb::EndpointService::S3,
        EndpointService::DynamoDb => pb::EndpointService::Dynamodb,
    };
    pb::VpcEndpoint {
        vpc: s.vpc.clone(),
        service: service as i32,
        route_tables: s.route_tables.iter().cloned().collect(),
        tags: tags_to_proto(&s.tags),
    }
}

pub(super) fn from_proto(s: pb::VpcEndpoint) -> Result<VpcEndpointSpec<String>, String> {
    let service = match pb::EndpointService::try_from(s.service) {
        Ok(pb::EndpointService::S3) => EndpointService::S3,
        Ok(pb::EndpointService::Dynamodb) => EndpointService::DynamoDb,
        Err(_) => return Err(format!("unknown endpoint service {}", s.service)),
    };
    Ok(VpcEndpointSpec {
        vpc: s.vpc,
        service,
        route_tables: s.route_tables.into_iter().collect(),
        tags: tags_from_proto(s.tags),
    })
}
