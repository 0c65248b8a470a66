// Shared by the benchmark and the scale test (`include!`d): a generated
// composition in the demo's style with `units * 10` resources. Each unit is a
// network (VPC, internet gateway, route table, three public and three
// private subnets) plus a web security group with two rules.

/// The source of a composition with `units * 10` resources.
pub fn generate(units: usize) -> String {
    let mut s = String::from(
        "composition\n\nimport Fugue.AWS.EC2 as EC2\nimport Fugue.Core.AWS.Common as AWS\nimport Fugue.AWS.Pattern.Network as Network\n\n\
         internetCIDR: EC2.IpRanges([EC2.IpRange(cidrIp: \"0.0.0.0/0\")])\n\n",
    );
    for i in 0..units {
        let (a, b) = (i / 256 % 256, i % 256);
        s.push_str(&format!(
            "# Unit {i}\n\
             net-{i}: Network.new {{\n  name: \"net-{i}\",\n  region: AWS.Us-west-2,\n  cidr: \"10.{b}.0.0/16\",\n  \
             publicSubnets: [\n    (AWS.A, \"10.{b}.1.0/24\"),\n    (AWS.B, \"10.{b}.2.0/24\"),\n    (AWS.C, \"10.{b}.3.0/24\"),\n  ],\n  \
             privateSubnets: [\n    (AWS.A, \"10.{b}.101.0/24\"),\n    (AWS.B, \"10.{b}.102.0/24\"),\n    (AWS.C, \"10.{b}.103.0/24\"),\n  ],\n}}\n\n\
             sg-{i}: EC2.SecurityGroup({{\n  description: \"web {a}-{b}\",\n  ipPermissions: [\n    \
             EC2.IpPermission({{ipProtocol: \"tcp\", fromPort: 80, toPort: 80, prefixLists: None, target: internetCIDR}}),\n    \
             EC2.IpPermission({{ipProtocol: \"tcp\", fromPort: 443, toPort: 443, prefixLists: None, target: internetCIDR}}),\n  ],\n  \
             ipPermissionsEgress: None,\n  tags: [AWS.tag('Unit', '{i}')],\n  vpc: net-{i}.vpc,\n}})\n\n"
        ));
    }
    s
}
