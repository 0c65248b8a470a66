//! Lowering: the values of a composition's bindings become resources with
//! stable paths (`dev-network.publicSubnets[0]`) and `canon_model` specs
//! whose references are paths. This is also where the cloud's rules are
//! checked for values built with raw constructors (which skip the library's
//! validating `.new`), so nothing the cloud would reject gets through.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::rc::Rc;

use canon_model::{
    DhcpOptionsSpec, InstanceSpec, InternetGatewaySpec, Ipv4Cidr, Peer, Protocol, Region, Route,
    RouteTableSpec, Rule, SecurityGroupSpec, Spec, SubnetSpec, Tags, Tenancy, VpcSpec,
    OWNERSHIP_TAG,
};

use crate::diag::Diagnostic;
use crate::span::Span;
use crate::value::{ResourceVal, ValOrigin, Value};

/// How many values lowering may visit (guards against exponential sharing).
const MAX_VISITS: usize = 5_000_000;

/// One resource of a compiled composition, before a FID is chosen.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CompiledResource {
    /// Its path in the composition; the logical id is derived from it.
    pub path: String,
    pub region: Region,
    /// References to other resources are their paths.
    pub spec: Spec<String>,
}

/// Lowers the evaluated top-level bindings (in source order) to resources,
/// sorted by path. Errors are runtime diagnostics at the code that built the
/// offending value.
pub fn lower<'p>(
    bindings: &[(String, Value<'p>)],
) -> Result<Vec<CompiledResource>, Vec<Diagnostic>> {
    let mut l = Lowerer::default();
    l.assign_paths(bindings)?;
    let mut out = Vec::new();
    let mut errs = Vec::new();
    let order: Vec<u64> = l.order.clone();
    for id in order {
        let Some(r) = l.resources.get(&id).cloned() else {
            continue;
        };
        match l.spec(&r) {
            Ok((region, spec)) => out.push(CompiledResource {
                path: l.paths.get(&id).cloned().unwrap_or_default(),
                region,
                spec,
            }),
            Err(mut e) => errs.append(&mut e),
        }
    }
    if errs.is_empty() {
        check_subnet_overlaps(&l, &mut errs);
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

#[derive(Default)]
struct Lowerer<'p> {
    resources: HashMap<u64, Rc<ResourceVal<'p>>>,
    paths: HashMap<u64, String>,
    /// Resources in the order they received paths.
    order: Vec<u64>,
    visits: usize,
}

fn err_at(origin: &ValOrigin, message: String) -> Diagnostic {
    let mut d = Diagnostic::runtime(origin.span, message);
    d.stack = origin.frames();
    d
}

impl<'p> Lowerer<'p> {
    fn assign_paths(&mut self, bindings: &[(String, Value<'p>)]) -> Result<(), Vec<Diagnostic>> {
        let mut queue: VecDeque<u64> = VecDeque::new();
        for (name, v) in bindings {
            self.walk(v, &mut name.clone(), &mut queue)?;
        }
        // Resources reachable only through other resources get nested paths.
        while let Some(id) = queue.pop_front() {
            let Some(r) = self.resources.get(&id).cloned() else {
                continue;
            };
            let base = self.paths.get(&id).cloned().unwrap_or_default();
            for (f, v) in &r.fields {
                self.walk(v, &mut format!("{base}.{f}"), &mut queue)?;
            }
        }
        Ok(())
    }

    /// Walks plain data, naming each resource met the first time.
    fn walk(
        &mut self,
        v: &Value<'p>,
        path: &mut String,
        queue: &mut VecDeque<u64>,
    ) -> Result<(), Vec<Diagnostic>> {
        self.visits += 1;
        if self.visits > MAX_VISITS {
            return Err(vec![Diagnostic::runtime(
                Span::default(),
                "the composition is too large to lower (too many values)",
            )]);
        }
        match v {
            Value::Resource(r) => {
                if let std::collections::hash_map::Entry::Vacant(slot) = self.paths.entry(r.id) {
                    slot.insert(path.clone());
                    self.resources.insert(r.id, r.clone());
                    self.order.push(r.id);
                    queue.push_back(r.id);
                }
            }
            Value::Record(rec) => {
                for (f, x) in &rec.fields {
                    let len = path.len();
                    path.push('.');
                    path.push_str(f);
                    self.walk(x, path, queue)?;
                    path.truncate(len);
                }
            }
            Value::List(items) | Value::Tuple(items) => {
                for (i, x) in items.iter().enumerate() {
                    let len = path.len();
                    path.push('[');
                    path.push_str(&i.to_string());
                    path.push(']');
                    self.walk(x, path, queue)?;
                    path.truncate(len);
                }
            }
            Value::Ctor(c) => {
                if let Some(p) = &c.payload {
                    let len = path.len();
                    path.push('.');
                    path.push_str(c.name);
                    self.walk(p, path, queue)?;
                    path.truncate(len);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn path_of(&self, v: &Value<'p>) -> Option<String> {
        match v {
            Value::Resource(r) => self.paths.get(&r.id).cloned(),
            _ => None,
        }
    }

    fn spec(&self, r: &ResourceVal<'p>) -> Result<(Region, Spec<String>), Vec<Diagnostic>> {
        let mut errs = Vec::new();
        let o = &r.origin;
        let f = |n: &str| r.fields.get(n).cloned().unwrap_or(Value::None);
        let tags = self.tags(&f("tags"), o, &mut errs);
        let result = match r.kind {
            "Vpc" => {
                let cidr = block(&f("cidrBlock"), "Vpc", o, &mut errs);
                let dhcp = match f("dhcpOptions") {
                    Value::None => None,
                    d => self.path_of(&d),
                };
                let tenancy = match f("instanceTenancy") {
                    Value::Ctor(c) if c.name == "DedicatedTenancy" => Tenancy::Dedicated,
                    _ => Tenancy::Default,
                };
                cidr.map(|cidr_block| {
                    (
                        region_of(&f("region")),
                        Spec::Vpc(VpcSpec {
                            cidr_block,
                            instance_tenancy: tenancy,
                            enable_dns_support: f("enableDnsSupport").as_bool().unwrap_or(true),
                            enable_dns_hostnames: f("enableDnsHostnames")
                                .as_bool()
                                .unwrap_or(false),
                            dhcp_options: dhcp,
                            tags: tags.clone(),
                        }),
                    )
                })
            }
            "DhcpOptions" => Some((
                region_of(&f("region")),
                Spec::DhcpOptions(DhcpOptionsSpec {
                    domain_name: f("domainName").as_str().map(String::from),
                    domain_name_servers: strings(&f("domainNameServers")),
                    ntp_servers: strings(&f("ntpServers")),
                    tags: tags.clone(),
                }),
            )),
            "InternetGateway" => {
                let vpc = f("vpc");
                let own = match f("region") {
                    Value::None => None,
                    reg => Some(region_of(&reg)),
                };
                let vpc_region = vpc_region(&vpc);
                let region = match (own, vpc_region) {
                    (Some(a), Some(b)) if a != b => {
                        errs.push(err_at(
                            o,
                            format!("Invalid InternetGateway: its region {a} differs from its VPC's region {b}"),
                        ));
                        None
                    }
                    (Some(a), _) => Some(a),
                    (None, Some(b)) => Some(b),
                    (None, None) => {
                        errs.push(err_at(
                            o,
                            "Invalid InternetGateway: give it a vpc or a region".into(),
                        ));
                        None
                    }
                };
                region.map(|region| {
                    (
                        region,
                        Spec::InternetGateway(InternetGatewaySpec {
                            vpc: self.path_of(&vpc),
                            tags: tags.clone(),
                        }),
                    )
                })
            }
            "Subnet" => {
                let vpc = f("vpc");
                let cidr = block(&f("cidrBlock"), "Subnet", o, &mut errs);
                let region = vpc_region(&vpc).unwrap_or_else(|| Region::new(""));
                if let (Some(c), Some(vc)) = (cidr, vpc_block(&vpc)) {
                    if !vc.contains(c) {
                        errs.push(err_at(
                            o,
                            format!(
                                "Invalid Subnet: cidrBlock {c} is not inside its VPC's block {vc}"
                            ),
                        ));
                    }
                }
                let zone = match f("availabilityZone") {
                    Value::Ctor(c) => format!("{}{}", region, c.name.to_lowercase()),
                    _ => String::new(),
                };
                match (cidr, self.path_of(&vpc)) {
                    (Some(cidr_block), Some(vpc)) => Some((
                        region,
                        Spec::Subnet(SubnetSpec {
                            vpc,
                            cidr_block,
                            availability_zone: zone,
                            map_public_ip_on_launch: f("mapPublicIpOnLaunch")
                                .as_bool()
                                .unwrap_or(false),
                            tags: tags.clone(),
                        }),
                    )),
                    _ => None,
                }
            }
            "RouteTable" => {
                let vpc = f("vpc");
                let mut routes = BTreeSet::new();
                for rv in f("routes").as_list().unwrap_or(&[]) {
                    let ro = record_origin(rv).unwrap_or(o);
                    let dest = rv.field("destinationCidrBlock").unwrap_or(Value::None);
                    let dest = match dest.as_str().map(str::parse::<Ipv4Cidr>) {
                        Some(Ok(c)) => Some(c),
                        Some(Err(e)) => {
                            errs.push(err_at(
                                ro,
                                format!("Invalid Route: destinationCidrBlock {e}"),
                            ));
                            None
                        }
                        None => None,
                    };
                    let gw_val = rv.field("gateway").unwrap_or(Value::None);
                    let gw_vpc = gw_val.field("vpc").unwrap_or(Value::None);
                    if resource_id(&gw_vpc) != resource_id(&vpc) {
                        errs.push(err_at(
                            ro,
                            format!(
                                "Invalid Route: gateway {} is not attached to the route table's VPC",
                                self.path_of(&gw_val).unwrap_or_default()
                            ),
                        ));
                    }
                    let gw = self.path_of(&gw_val);
                    if let (Some(destination), Some(target)) = (dest, gw) {
                        routes.insert(Route {
                            destination,
                            target,
                        });
                    }
                }
                let assoc_values = f("associations");
                for s in assoc_values.as_list().unwrap_or(&[]) {
                    if resource_id(&s.field("vpc").unwrap_or(Value::None)) != resource_id(&vpc) {
                        errs.push(err_at(
                            o,
                            format!(
                                "Invalid RouteTable: subnet {} is not in the route table's VPC",
                                self.path_of(s).unwrap_or_default()
                            ),
                        ));
                    }
                }
                let associations: BTreeSet<String> = assoc_values
                    .as_list()
                    .unwrap_or(&[])
                    .iter()
                    .filter_map(|s| self.path_of(s))
                    .collect();
                let region = vpc_region(&vpc).unwrap_or_else(|| Region::new(""));
                self.path_of(&vpc).map(|vpc| {
                    (
                        region,
                        Spec::RouteTable(RouteTableSpec {
                            vpc,
                            routes,
                            associations,
                            tags: tags.clone(),
                        }),
                    )
                })
            }
            "SecurityGroup" => {
                let vpc = f("vpc");
                let description = f("description").as_str().unwrap_or("").to_string();
                let n = description.chars().count();
                if n > 255 {
                    errs.push(err_at(
                        o,
                        format!("Invalid SecurityGroup: description must be at most 255 characters (it has {n})"),
                    ));
                }
                let ingress = self.rules(&f("ipPermissions"), o, &mut errs);
                let egress = match f("ipPermissionsEgress") {
                    Value::None => [Rule::allow_all_egress()].into_iter().collect(),
                    e => self.rules(&e, o, &mut errs),
                };
                let region = vpc_region(&vpc).unwrap_or_else(|| Region::new(""));
                let own_path = self.paths.get(&r.id).cloned().unwrap_or_default();
                let group_name = f("groupName")
                    .as_str()
                    .map(String::from)
                    .unwrap_or(own_path);
                self.path_of(&vpc).map(|vpc| {
                    (
                        region,
                        Spec::SecurityGroup(SecurityGroupSpec {
                            vpc,
                            group_name,
                            description,
                            ingress,
                            egress,
                            tags: tags.clone(),
                        }),
                    )
                })
            }
            "Instance" => {
                let subnet = f("subnet");
                let image = f("imageId").as_str().unwrap_or("").to_string();
                if !image.starts_with("ami-") {
                    errs.push(err_at(
                        o,
                        format!("Invalid Instance: imageId must be an AMI id like ami-0abcdef1234567890, not {image:?}"),
                    ));
                }
                let subnet_vpc = resource_id(&subnet.field("vpc").unwrap_or(Value::None));
                for g in f("securityGroups").as_list().unwrap_or(&[]) {
                    if resource_id(&g.field("vpc").unwrap_or(Value::None)) != subnet_vpc {
                        errs.push(err_at(
                            o,
                            format!(
                                "Invalid Instance: security group {} is not in the VPC of its subnet {}",
                                self.path_of(g).unwrap_or_default(),
                                self.path_of(&subnet).unwrap_or_default()
                            ),
                        ));
                    }
                }
                let instance_type = match f("instanceType") {
                    Value::Ctor(c) => c.name.to_lowercase().replacen('-', ".", 1),
                    _ => "t2.micro".into(),
                };
                let region = subnet
                    .field("vpc")
                    .and_then(|v| vpc_region(&v))
                    .unwrap_or_else(|| Region::new(""));
                let security_groups: BTreeSet<String> = f("securityGroups")
                    .as_list()
                    .unwrap_or(&[])
                    .iter()
                    .filter_map(|s| self.path_of(s))
                    .collect();
                self.path_of(&subnet).map(|subnet| {
                    (
                        region,
                        Spec::Instance(InstanceSpec {
                            image_id: image,
                            instance_type,
                            subnet,
                            key_name: f("keyName").as_str().map(String::from),
                            user_data: f("userData").as_str().map(String::from),
                            security_groups,
                            tags: tags.clone(),
                        }),
                    )
                })
            }
            other => {
                errs.push(err_at(
                    o,
                    format!("internal: unknown resource type {other}"),
                ));
                None
            }
        };
        match result {
            Some(x) if errs.is_empty() => Ok(x),
            _ => Err(errs),
        }
    }

    fn tags(&self, v: &Value<'p>, o: &ValOrigin, errs: &mut Vec<Diagnostic>) -> Tags {
        let mut tags = Tags::new();
        for t in v.as_list().unwrap_or(&[]) {
            let to = record_origin(t).unwrap_or(o);
            let key = t
                .field("key")
                .and_then(|k| k.as_str().map(String::from))
                .unwrap_or_default();
            let value = t
                .field("value")
                .and_then(|k| k.as_str().map(String::from))
                .unwrap_or_default();
            let kl = key.chars().count();
            let vl = value.chars().count();
            if kl == 0 || kl > 128 {
                errs.push(err_at(
                    to,
                    format!("Invalid Tag: key must be 1 to 128 characters long (it has {kl})"),
                ));
            } else if vl > 256 {
                errs.push(err_at(
                    to,
                    format!("Invalid Tag: value must be at most 256 characters long (it has {vl})"),
                ));
            } else if key.starts_with("aws:") || key == OWNERSHIP_TAG {
                errs.push(err_at(
                    to,
                    format!("Invalid Tag: the key {key:?} is reserved"),
                ));
            } else if let std::collections::btree_map::Entry::Vacant(slot) = tags.entry(key.clone())
            {
                slot.insert(value);
            } else {
                errs.push(err_at(
                    to,
                    format!("Invalid Tag: the key {key:?} is given twice"),
                ));
            }
        }
        tags
    }

    fn rules(
        &self,
        v: &Value<'p>,
        o: &ValOrigin,
        errs: &mut Vec<Diagnostic>,
    ) -> BTreeSet<Rule<String>> {
        let mut out = BTreeSet::new();
        for p in v.as_list().unwrap_or(&[]) {
            let po = record_origin(p).unwrap_or(o);
            let proto_text = p
                .field("ipProtocol")
                .and_then(|x| x.as_str().map(String::from))
                .unwrap_or_default();
            let from = p.field("fromPort").and_then(|x| x.as_int());
            let to = p.field("toPort").and_then(|x| x.as_int());
            let Some(protocol) = Protocol::parse(&proto_text) else {
                errs.push(err_at(
                    po,
                    format!("Invalid IpPermission: ipProtocol must be tcp, udp, icmp, -1 (all traffic) or a protocol number from 0 to 255, not \"{proto_text}\""),
                ));
                continue;
            };
            let (from, to) = match protocol {
                Protocol::Tcp | Protocol::Udp => match (from, to) {
                    (Some(f), Some(t)) => {
                        let bad = |n: i64| !(0..=65535).contains(&n);
                        if bad(f) {
                            errs.push(err_at(po, format!("Invalid IpPermission: fromPort must be between 0 and 65535 (it is {f})")));
                            continue;
                        }
                        if bad(t) {
                            errs.push(err_at(po, format!("Invalid IpPermission: toPort must be between 0 and 65535 (it is {t})")));
                            continue;
                        }
                        if f > t {
                            errs.push(err_at(po, format!("Invalid IpPermission: fromPort ({f}) must not be greater than toPort ({t})")));
                            continue;
                        }
                        (f as i32, t as i32)
                    }
                    _ => {
                        errs.push(err_at(po, format!("Invalid IpPermission: fromPort and toPort are required for {proto_text}")));
                        continue;
                    }
                },
                Protocol::Icmp => {
                    let ok = |n: Option<i64>| n.is_none_or(|n| (-1..=255).contains(&n));
                    if !ok(from) || !ok(to) {
                        errs.push(err_at(
                            po,
                            "Invalid IpPermission: ICMP type and code must be between -1 and 255"
                                .into(),
                        ));
                        continue;
                    }
                    (from.unwrap_or(-1) as i32, to.unwrap_or(-1) as i32)
                }
                _ => (-1, -1),
            };
            let target = p.field("target").unwrap_or(Value::None);
            let Value::Ctor(c) = &target else { continue };
            let items = c.payload.as_ref().and_then(|x| x.as_list()).unwrap_or(&[]);
            for item in items {
                let peer = match c.name {
                    "IpRanges" => {
                        let io = record_origin(item).unwrap_or(po);
                        let text = item
                            .field("cidrIp")
                            .and_then(|x| x.as_str().map(String::from))
                            .unwrap_or_default();
                        match text.parse::<Ipv4Cidr>() {
                            Ok(c) => Peer::Cidr(c),
                            Err(e) => {
                                errs.push(err_at(io, format!("Invalid IpRange: cidrIp {e}")));
                                continue;
                            }
                        }
                    }
                    _ => match self.path_of(item) {
                        Some(g) => Peer::Group(g),
                        None => continue,
                    },
                };
                out.insert(Rule::new(protocol, from, to, peer));
            }
        }
        out
    }
}

/// The identity of a resource value (`None` for anything else).
fn resource_id(v: &Value<'_>) -> Option<u64> {
    match v {
        Value::Resource(r) => Some(r.id),
        _ => None,
    }
}

fn record_origin<'a, 'p>(v: &'a Value<'p>) -> Option<&'a ValOrigin<'p>> {
    match v {
        Value::Record(r) => r.origin.as_ref(),
        _ => None,
    }
}

fn strings(v: &Value<'_>) -> Vec<String> {
    v.as_list()
        .unwrap_or(&[])
        .iter()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

/// The region code of a `Region` constructor (`Us-west-2` → `us-west-2`).
fn region_of(v: &Value<'_>) -> Region {
    match v {
        Value::Ctor(c) => Region::new(c.name.to_lowercase()),
        _ => Region::new(""),
    }
}

fn vpc_region(vpc: &Value<'_>) -> Option<Region> {
    match vpc {
        Value::Resource(r) => r.fields.get("region").map(region_of),
        _ => None,
    }
}

fn vpc_block(vpc: &Value<'_>) -> Option<Ipv4Cidr> {
    vpc.field("cidrBlock")?.as_str()?.parse().ok()
}

/// Parses and checks a VPC or subnet block (valid, /16 to /28).
fn block(v: &Value<'_>, what: &str, o: &ValOrigin, errs: &mut Vec<Diagnostic>) -> Option<Ipv4Cidr> {
    let text = v.as_str().unwrap_or("");
    match text.parse::<Ipv4Cidr>() {
        Ok(c) if (16..=28).contains(&c.prefix()) => Some(c),
        Ok(_) => {
            errs.push(err_at(
                o,
                format!("Invalid {what}: cidrBlock size must be between a /28 and /16 netmask."),
            ));
            None
        }
        Err(e) => {
            errs.push(err_at(o, format!("Invalid {what}: cidrBlock {e}")));
            None
        }
    }
}

/// Subnets of one VPC must not overlap.
fn check_subnet_overlaps(l: &Lowerer<'_>, errs: &mut Vec<Diagnostic>) {
    let mut by_vpc: BTreeMap<String, Vec<(String, Ipv4Cidr, &ValOrigin)>> = BTreeMap::new();
    for id in &l.order {
        let Some(r) = l.resources.get(id) else {
            continue;
        };
        if r.kind != "Subnet" {
            continue;
        }
        let Some(vpc) = r.fields.get("vpc").and_then(|v| l.path_of(v)) else {
            continue;
        };
        let Some(c) = r
            .fields
            .get("cidrBlock")
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse().ok())
        else {
            continue;
        };
        let path = l.paths.get(id).cloned().unwrap_or_default();
        by_vpc.entry(vpc).or_default().push((path, c, &r.origin));
    }
    for subnets in by_vpc.values() {
        for (i, (pa, a, _)) in subnets.iter().enumerate() {
            for (pb, b, ob) in &subnets[i + 1..] {
                if a.overlaps(*b) {
                    errs.push(err_at(
                        ob,
                        format!("Invalid Subnet: cidrBlock {b} ({pb}) overlaps {a} ({pa}) in the same VPC"),
                    ));
                }
            }
        }
    }
}
