//! The plain SDK loop the create benches compare Canon with
//! (`cloud/benches/creates.rs`, `scheduler/benches/creates_moto.rs`): a
//! process's creates straight through the SDK, as a script would make them,
//! with the ownership tags Canon gives them and nothing else.

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use canon_model::{Fid, LogicalId, OWNERSHIP_TAG};

/// The ownership tag of `l`, on a resource of `kind`.
fn tagged(kind: ResourceType, l: LogicalId) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .tags(
            Tag::builder()
                .key(OWNERSHIP_TAG)
                .value(l.to_string())
                .build(),
        )
        .build()
}

/// Process `fid`'s creates: its VPC (`vpc`), a subnet in it (`subnet`) and
/// `groups` security groups (`sg0`…): `2 + groups` calls.
pub async fn create_process(ec2: &aws_sdk_ec2::Client, fid: Fid, groups: usize) {
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .tag_specifications(tagged(ResourceType::Vpc, LogicalId::new(fid, "vpc")))
        .send()
        .await
        .expect("create vpc");
    let v = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("vpc id")
        .to_string();
    ec2.create_subnet()
        .vpc_id(&v)
        .cidr_block("10.0.1.0/24")
        .availability_zone("us-west-2a")
        .tag_specifications(tagged(ResourceType::Subnet, LogicalId::new(fid, "subnet")))
        .send()
        .await
        .expect("create subnet");
    for g in 0..groups {
        ec2.create_security_group()
            .vpc_id(&v)
            .group_name(format!("sg{g}"))
            .description("bench")
            .tag_specifications(tagged(
                ResourceType::SecurityGroup,
                LogicalId::new(fid, &format!("sg{g}")),
            ))
            .send()
            .await
            .expect("create group");
    }
}
