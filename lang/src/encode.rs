//! The canonical serialisation of a compiled composition: the protobuf
//! message `canon.composition.v1.CompiledComposition`. Encoding is
//! deterministic (sorted resources, ordered sets and maps), and decoding
//! checks every field, so `decode(encode(c)) == c`.

use std::collections::{BTreeMap, BTreeSet};

use canon_model::{
    DhcpOptionsSpec, InstanceSpec, InternetGatewaySpec, Ipv4Cidr, Ipv6Cidr, Peer, Protocol, Region,
    Route, RouteTableSpec, Rule, SecurityGroupSpec, Spec, SubnetSpec, Tags, Tenancy, VpcSpec,
};
use canon_proto::canon::composition::v1 as pb;
use prost::Message;

use crate::{Compiled, CompiledResource};

/// Layout version written into every message.
pub const FORMAT_VERSION: u32 = 1;

/// Why bytes are not a valid compiled composition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    Protobuf(String),
    Version(u32),
    Field { path: String, problem: String },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Protobuf(e) => write!(f, "not a compiled composition: {e}"),
            DecodeError::Version(v) => {
                write!(f, "unsupported compiled composition format version {v}")
            }
            DecodeError::Field { path, problem } => write!(f, "resource {path}: {problem}"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl Compiled {
    /// The protobuf message.
    pub fn to_proto(&self) -> pb::CompiledComposition {
        pb::CompiledComposition {
            format_version: FORMAT_VERSION,
            source_hash: self.source_hash.clone(),
            resources: self.resources.iter().map(resource_to_proto).collect(),
        }
    }

    /// Canonical bytes: the same sources always give the same bytes.
    pub fn encode(&self) -> Vec<u8> {
        self.to_proto().encode_to_vec()
    }

    pub fn from_proto(m: pb::CompiledComposition) -> Result<Compiled, DecodeError> {
        if m.format_version != FORMAT_VERSION {
            return Err(DecodeError::Version(m.format_version));
        }
        let mut resources = Vec::with_capacity(m.resources.len());
        for r in m.resources {
            resources.push(resource_from_proto(r)?);
        }
        resources.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Compiled {
            resources,
            source_hash: m.source_hash,
        })
    }

    pub fn decode(bytes: &[u8]) -> Result<Compiled, DecodeError> {
        let m = pb::CompiledComposition::decode(bytes)
            .map_err(|e| DecodeError::Protobuf(e.to_string()))?;
        Compiled::from_proto(m)
    }
}

fn tags_to(t: &Tags) -> Vec<pb::Tag> {
    t.iter()
        .map(|(k, v)| pb::Tag {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

fn tags_from(t: Vec<pb::Tag>) -> Tags {
    t.into_iter()
        .map(|t| (t.key, t.value))
        .collect::<BTreeMap<_, _>>()
}

fn rule_to(r: &Rule<String>) -> pb::Rule {
    pb::Rule {
        protocol: r.protocol.ec2_name(),
        from_port: r.from_port,
        to_port: r.to_port,
        peer: Some(match &r.peer {
            Peer::Cidr(c) => pb::rule::Peer::Cidr(c.to_string()),
            Peer::Group(g) => pb::rule::Peer::Group(g.clone()),
            Peer::Ipv6Cidr(c) => pb::rule::Peer::Ipv6Cidr(c.to_string()),
            Peer::PrefixList(p) => pb::rule::Peer::PrefixList(p.clone()),
        }),
    }
}

fn resource_to_proto(r: &CompiledResource) -> pb::Resource {
    use pb::resource::Spec as S;
    let spec = match &r.spec {
        Spec::DhcpOptions(s) => S::DhcpOptions(pb::DhcpOptions {
            domain_name: s.domain_name.clone(),
            domain_name_servers: s.domain_name_servers.clone(),
            ntp_servers: s.ntp_servers.clone(),
            tags: tags_to(&s.tags),
        }),
        Spec::Vpc(s) => S::Vpc(pb::Vpc {
            cidr_block: s.cidr_block.to_string(),
            instance_tenancy: match s.instance_tenancy {
                Tenancy::Default => pb::Tenancy::Default as i32,
                Tenancy::Dedicated => pb::Tenancy::Dedicated as i32,
            },
            enable_dns_support: s.enable_dns_support,
            enable_dns_hostnames: s.enable_dns_hostnames,
            dhcp_options: s.dhcp_options.clone(),
            tags: tags_to(&s.tags),
        }),
        Spec::InternetGateway(s) => S::InternetGateway(pb::InternetGateway {
            vpc: s.vpc.clone(),
            tags: tags_to(&s.tags),
        }),
        Spec::Subnet(s) => S::Subnet(pb::Subnet {
            vpc: s.vpc.clone(),
            cidr_block: s.cidr_block.to_string(),
            availability_zone: s.availability_zone.clone(),
            map_public_ip_on_launch: s.map_public_ip_on_launch,
            tags: tags_to(&s.tags),
        }),
        Spec::RouteTable(s) => S::RouteTable(pb::RouteTable {
            vpc: s.vpc.clone(),
            routes: s
                .routes
                .iter()
                .map(|r| pb::Route {
                    destination: r.destination.to_string(),
                    target: r.target.clone(),
                })
                .collect(),
            associations: s.associations.iter().cloned().collect(),
            tags: tags_to(&s.tags),
        }),
        Spec::SecurityGroup(s) => S::SecurityGroup(pb::SecurityGroup {
            vpc: s.vpc.clone(),
            group_name: s.group_name.clone(),
            description: s.description.clone(),
            ingress: s.ingress.iter().map(rule_to).collect(),
            egress: s.egress.iter().map(rule_to).collect(),
            tags: tags_to(&s.tags),
        }),
        Spec::Instance(s) => S::Instance(pb::Instance {
            image_id: s.image_id.clone(),
            instance_type: s.instance_type.clone(),
            subnet: s.subnet.clone(),
            key_name: s.key_name.clone(),
            user_data: s.user_data.clone(),
            security_groups: s.security_groups.iter().cloned().collect(),
            tags: tags_to(&s.tags),
        }),
    };
    pb::Resource {
        path: r.path.clone(),
        region: r.region.to_string(),
        spec: Some(spec),
    }
}

fn resource_from_proto(r: pb::Resource) -> Result<CompiledResource, DecodeError> {
    use pb::resource::Spec as S;
    let path = r.path.clone();
    let bad = |problem: String| DecodeError::Field {
        path: path.clone(),
        problem,
    };
    let cidr = |s: &str| s.parse::<Ipv4Cidr>().map_err(|e| bad(e.to_string()));
    let rule = |r: pb::Rule| -> Result<Rule<String>, DecodeError> {
        let protocol = Protocol::parse(&r.protocol)
            .ok_or_else(|| bad(format!("bad protocol {:?}", r.protocol)))?;
        let peer = match r.peer {
            Some(pb::rule::Peer::Cidr(c)) => Peer::Cidr(cidr(&c)?),
            Some(pb::rule::Peer::Group(g)) => Peer::Group(g),
            Some(pb::rule::Peer::Ipv6Cidr(c)) => {
                Peer::Ipv6Cidr(c.parse::<Ipv6Cidr>().map_err(|e| bad(e.to_string()))?)
            }
            Some(pb::rule::Peer::PrefixList(p)) => Peer::PrefixList(p),
            None => return Err(bad("rule without a peer".into())),
        };
        Ok(Rule::new(protocol, r.from_port, r.to_port, peer))
    };
    let spec = match r.spec {
        None => return Err(bad("resource without a spec".into())),
        Some(S::DhcpOptions(s)) => Spec::DhcpOptions(DhcpOptionsSpec {
            domain_name: s.domain_name,
            domain_name_servers: s.domain_name_servers,
            ntp_servers: s.ntp_servers,
            tags: tags_from(s.tags),
        }),
        Some(S::Vpc(s)) => Spec::Vpc(VpcSpec {
            cidr_block: cidr(&s.cidr_block)?,
            instance_tenancy: match pb::Tenancy::try_from(s.instance_tenancy) {
                Ok(pb::Tenancy::Dedicated) => Tenancy::Dedicated,
                Ok(pb::Tenancy::Default) => Tenancy::Default,
                Err(_) => return Err(bad(format!("bad tenancy {}", s.instance_tenancy))),
            },
            enable_dns_support: s.enable_dns_support,
            enable_dns_hostnames: s.enable_dns_hostnames,
            dhcp_options: s.dhcp_options,
            tags: tags_from(s.tags),
        }),
        Some(S::InternetGateway(s)) => Spec::InternetGateway(InternetGatewaySpec {
            vpc: s.vpc,
            tags: tags_from(s.tags),
        }),
        Some(S::Subnet(s)) => Spec::Subnet(SubnetSpec {
            vpc: s.vpc,
            cidr_block: cidr(&s.cidr_block)?,
            availability_zone: s.availability_zone,
            map_public_ip_on_launch: s.map_public_ip_on_launch,
            tags: tags_from(s.tags),
        }),
        Some(S::RouteTable(s)) => {
            let mut routes = BTreeSet::new();
            for r in s.routes {
                routes.insert(Route {
                    destination: cidr(&r.destination)?,
                    target: r.target,
                });
            }
            Spec::RouteTable(RouteTableSpec {
                vpc: s.vpc,
                routes,
                associations: s.associations.into_iter().collect(),
                tags: tags_from(s.tags),
            })
        }
        Some(S::SecurityGroup(s)) => {
            let mut ingress = BTreeSet::new();
            for r in s.ingress {
                ingress.insert(rule(r)?);
            }
            let mut egress = BTreeSet::new();
            for r in s.egress {
                egress.insert(rule(r)?);
            }
            Spec::SecurityGroup(SecurityGroupSpec {
                vpc: s.vpc,
                group_name: s.group_name,
                description: s.description,
                ingress,
                egress,
                tags: tags_from(s.tags),
            })
        }
        Some(S::Instance(s)) => Spec::Instance(InstanceSpec {
            image_id: s.image_id,
            instance_type: s.instance_type,
            subnet: s.subnet,
            key_name: s.key_name,
            user_data: s.user_data,
            security_groups: s.security_groups.into_iter().collect(),
            tags: tags_from(s.tags),
        }),
    };
    Ok(CompiledResource {
        path: r.path,
        region: Region::new(r.region),
        spec,
    })
}
