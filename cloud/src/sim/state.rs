//! The simulated EC2 of one account and region: its resources and the
//! semantics and error codes of every call Canon makes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use canon_model::{
    Action, CloudRef, DhcpOptionsSpec, InstanceSpec, InternetGatewaySpec, Ipv4Cidr,
    ObservedResource, Peer, Region, ResourceKind, Route, RouteTableSpec, Rule, SecurityGroupSpec,
    Spec, SubnetSpec, Tags, Tenancy, VpcAttribute, VpcSpec, OWNERSHIP_TAG,
};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::refs::id;
use crate::rules::resolved_rules;
use crate::{CloudError, Outcome};

/// What every resource has: tags and the time it becomes visible to
/// describes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Meta {
    pub tags: Tags,
    pub visible_at: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Dopt {
    pub meta: Meta,
    pub domain_name: Option<String>,
    pub servers: Vec<String>,
    pub ntp: Vec<String>,
}

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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Igw {
    pub meta: Meta,
    pub vpc: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Subnet {
    pub meta: Meta,
    pub vpc: String,
    pub cidr: Ipv4Cidr,
    pub az: String,
    pub map_public: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Rtb {
    pub meta: Meta,
    pub vpc: String,
    pub main: bool,
    /// Destination → gateway, without the implicit local route.
    pub routes: BTreeMap<Ipv4Cidr, String>,
    /// Subnet → association id.
    pub assoc: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Sg {
    pub meta: Meta,
    pub vpc: String,
    pub name: String,
    pub description: String,
    pub ingress: BTreeSet<Rule<String>>,
    pub egress: BTreeSet<Rule<String>>,
    pub default: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum InstanceState {
    Running,
    /// Terminated but still holding its subnet and groups until `until`.
    ShuttingDown {
        until: u64,
    },
    Terminated,
}

impl InstanceState {
    /// Whether the instance still blocks deletes of its subnet and groups.
    fn blocks(self, now: u64) -> bool {
        match self {
            InstanceState::Running => true,
            InstanceState::ShuttingDown { until } => now < until,
            InstanceState::Terminated => false,
        }
    }
}

/// The times one call works with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub now: u64,
    /// When resources it creates become visible to describes.
    pub visible_at: u64,
    /// How long a terminated instance keeps blocking deletes.
    pub shutdown_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Inst {
    pub meta: Meta,
    pub image: String,
    pub itype: String,
    pub subnet: String,
    pub key: Option<String>,
    pub user_data: Option<String>,
    pub groups: BTreeSet<String>,
    pub state: InstanceState,
}

/// One account and region of the simulated EC2.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RegionState {
    pub region: Region,
    pub default_dhcp: String,
    pub dhcp: BTreeMap<String, Dopt>,
    pub vpcs: BTreeMap<String, Vpc>,
    pub igws: BTreeMap<String, Igw>,
    pub subnets: BTreeMap<String, Subnet>,
    pub rtbs: BTreeMap<String, Rtb>,
    pub sgs: BTreeMap<String, Sg>,
    pub instances: BTreeMap<String, Inst>,
    /// Client token → (fingerprint of the request, id it created).
    pub tokens: HashMap<String, (String, String)>,
    /// (VPC, group name) of every non-default group, for the duplicate-name
    /// check without a scan.
    pub sg_names: std::collections::HashSet<(String, String)>,
}

/// What applying one action did.
pub(crate) struct Applied {
    pub outcome: Outcome,
    /// The resource touched, for the mutation log.
    pub resource: Option<String>,
    /// False when nothing changed (an idempotent replay).
    pub mutated: bool,
}

fn err(code: &str, message: impl Into<String>) -> CloudError {
    // Classified later, against the request type.
    CloudError::terminal(code, message)
}

/// A new id in EC2's long format: prefix, dash, 17 hex digits.
pub(crate) fn new_id<R: Rng + ?Sized>(rng: &mut R, prefix: &str) -> String {
    let n: u128 = rng.random();
    format!("{prefix}-{:017x}", n & ((1u128 << 68) - 1))
}

fn changed(line: String) -> Outcome {
    Outcome::changed([line])
}

impl RegionState {
    pub fn new<R: Rng + ?Sized>(region: Region, rng: &mut R) -> Self {
        let default_dhcp = new_id(rng, "dopt");
        let mut dhcp = BTreeMap::new();
        let domain = if region.as_str() == "us-east-1" {
            "ec2.internal".to_string()
        } else {
            format!("{region}.compute.internal")
        };
        dhcp.insert(
            default_dhcp.clone(),
            Dopt {
                meta: Meta::default(),
                domain_name: Some(domain),
                servers: vec!["AmazonProvidedDNS".into()],
                ntp: vec![],
            },
        );
        RegionState {
            region,
            default_dhcp,
            dhcp,
            vpcs: BTreeMap::new(),
            igws: BTreeMap::new(),
            subnets: BTreeMap::new(),
            rtbs: BTreeMap::new(),
            sgs: BTreeMap::new(),
            instances: BTreeMap::new(),
            tokens: HashMap::new(),
            sg_names: std::collections::HashSet::new(),
        }
    }

    fn vpc(&self, v: &str) -> Result<&Vpc, CloudError> {
        self.vpcs.get(v).ok_or_else(|| {
            err(
                "InvalidVpcID.NotFound",
                format!("The vpc ID '{v}' does not exist"),
            )
        })
    }

    fn subnet(&self, s: &str) -> Result<&Subnet, CloudError> {
        self.subnets.get(s).ok_or_else(|| {
            err(
                "InvalidSubnetID.NotFound",
                format!("The subnet ID '{s}' does not exist"),
            )
        })
    }

    fn group_missing(g: &str) -> CloudError {
        err(
            "InvalidGroup.NotFound",
            format!("The security group '{g}' does not exist"),
        )
    }

    fn rtb_missing(r: &str) -> CloudError {
        err(
            "InvalidRouteTableID.NotFound",
            format!("The routeTable ID '{r}' does not exist"),
        )
    }

    fn igw_missing(i: &str) -> CloudError {
        err(
            "InvalidInternetGatewayID.NotFound",
            format!("The internetGateway ID '{i}' does not exist"),
        )
    }

    fn instance_missing(i: &str) -> CloudError {
        err(
            "InvalidInstanceID.NotFound",
            format!("The instance ID '{i}' does not exist"),
        )
    }

    /// The tags of any resource by id.
    pub fn tags_mut(&mut self, rid: &str) -> Result<&mut Tags, CloudError> {
        let t = if let Some(r) = self.dhcp.get_mut(rid) {
            &mut r.meta.tags
        } else if let Some(r) = self.vpcs.get_mut(rid) {
            &mut r.meta.tags
        } else if let Some(r) = self.igws.get_mut(rid) {
            &mut r.meta.tags
        } else if let Some(r) = self.subnets.get_mut(rid) {
            &mut r.meta.tags
        } else if let Some(r) = self.rtbs.get_mut(rid) {
            &mut r.meta.tags
        } else if let Some(r) = self.sgs.get_mut(rid) {
            &mut r.meta.tags
        } else if let Some(r) = self.instances.get_mut(rid) {
            &mut r.meta.tags
        } else {
            let code = match rid.split('-').next() {
                Some("vpc") => "InvalidVpcID.NotFound",
                Some("subnet") => "InvalidSubnetID.NotFound",
                Some("sg") => "InvalidGroup.NotFound",
                Some("igw") => "InvalidInternetGatewayID.NotFound",
                Some("rtb") => "InvalidRouteTableID.NotFound",
                Some("dopt") => "InvalidDhcpOptionID.NotFound",
                Some("i") => "InvalidInstanceID.NotFound",
                _ => "InvalidID",
            };
            return Err(err(code, format!("The ID '{rid}' does not exist")));
        };
        Ok(t)
    }

    /// The id of a visible, owned resource of `kind` whose ownership tag is
    /// `owner` (the pre-create lookup), if any.
    pub fn find_owned(&self, kind: ResourceKind, owner: &str, now: u64) -> Option<String> {
        fn hit<'a, T>(
            m: &'a BTreeMap<String, T>,
            meta: impl Fn(&T) -> &Meta,
            owner: &str,
            now: u64,
        ) -> Option<&'a String> {
            m.iter()
                .find(|(_, r)| {
                    let meta = meta(r);
                    meta.visible_at <= now
                        && meta.tags.get(OWNERSHIP_TAG).map(String::as_str) == Some(owner)
                })
                .map(|(k, _)| k)
        }
        match kind {
            ResourceKind::DhcpOptions => hit(&self.dhcp, |r| &r.meta, owner, now),
            ResourceKind::Vpc => hit(&self.vpcs, |r| &r.meta, owner, now),
            ResourceKind::InternetGateway => hit(&self.igws, |r| &r.meta, owner, now),
            ResourceKind::Subnet => hit(&self.subnets, |r| &r.meta, owner, now),
            ResourceKind::RouteTable => hit(&self.rtbs, |r| &r.meta, owner, now),
            ResourceKind::SecurityGroup => hit(&self.sgs, |r| &r.meta, owner, now),
            ResourceKind::Instance => self
                .instances
                .iter()
                .find(|(_, r)| {
                    r.state == InstanceState::Running
                        && r.meta.visible_at <= now
                        && r.meta.tags.get(OWNERSHIP_TAG).map(String::as_str) == Some(owner)
                })
                .map(|(k, _)| k),
        }
        .cloned()
    }

    /// One page of owned, visible resources of `kind` after `after`, at most
    /// `max` of them, and whether more follow.
    pub fn page(
        &self,
        kind: ResourceKind,
        after: Option<&str>,
        max: usize,
        now: u64,
    ) -> (Vec<ObservedResource>, Option<String>) {
        use std::ops::Bound::{Excluded, Unbounded};
        let lower = after.map_or(Unbounded, |a| Excluded(a.to_string()));
        let mut out = Vec::new();
        let mut last = None;
        macro_rules! scan {
            ($map:expr, $ok:expr) => {{
                for (k, r) in $map.range::<String, _>((lower.clone(), Unbounded)) {
                    if r.meta.visible_at > now || !r.meta.tags.contains_key(OWNERSHIP_TAG) {
                        continue;
                    }
                    #[allow(clippy::redundant_closure_call)]
                    if !($ok)(r) {
                        continue;
                    }
                    if out.len() == max {
                        return (out, last);
                    }
                    if let Some(o) = self.observed(k) {
                        out.push(o);
                    }
                    last = Some(k.clone());
                }
            }};
        }
        match kind {
            ResourceKind::DhcpOptions => scan!(self.dhcp, |_: &Dopt| true),
            ResourceKind::Vpc => scan!(self.vpcs, |_: &Vpc| true),
            ResourceKind::InternetGateway => scan!(self.igws, |_: &Igw| true),
            ResourceKind::Subnet => scan!(self.subnets, |_: &Subnet| true),
            ResourceKind::RouteTable => scan!(self.rtbs, |_: &Rtb| true),
            ResourceKind::SecurityGroup => scan!(self.sgs, |_: &Sg| true),
            ResourceKind::Instance => {
                scan!(self.instances, |i: &Inst| i.state == InstanceState::Running)
            }
        }
        (out, None)
    }

    /// The observed form of resource `rid` (None if it does not exist).
    pub fn observed(&self, rid: &str) -> Option<ObservedResource> {
        let spec = if let Some(d) = self.dhcp.get(rid) {
            Spec::DhcpOptions(DhcpOptionsSpec {
                domain_name: d.domain_name.clone(),
                domain_name_servers: d.servers.clone(),
                ntp_servers: d.ntp.clone(),
                tags: d.meta.tags.clone(),
            })
        } else if let Some(v) = self.vpcs.get(rid) {
            Spec::Vpc(VpcSpec {
                cidr_block: v.cidr,
                instance_tenancy: v.tenancy,
                enable_dns_support: v.dns_support,
                enable_dns_hostnames: v.dns_hostnames,
                dhcp_options: (v.dhcp != self.default_dhcp && v.dhcp != "default")
                    .then(|| v.dhcp.clone()),
                tags: v.meta.tags.clone(),
            })
        } else if let Some(i) = self.igws.get(rid) {
            Spec::InternetGateway(InternetGatewaySpec {
                vpc: i.vpc.clone(),
                tags: i.meta.tags.clone(),
            })
        } else if let Some(s) = self.subnets.get(rid) {
            Spec::Subnet(SubnetSpec {
                vpc: s.vpc.clone(),
                cidr_block: s.cidr,
                availability_zone: s.az.clone(),
                map_public_ip_on_launch: s.map_public,
                tags: s.meta.tags.clone(),
            })
        } else if let Some(r) = self.rtbs.get(rid) {
            Spec::RouteTable(RouteTableSpec {
                vpc: r.vpc.clone(),
                routes: r
                    .routes
                    .iter()
                    .map(|(d, t)| Route {
                        destination: *d,
                        target: t.clone(),
                    })
                    .collect(),
                associations: r.assoc.keys().cloned().collect(),
                tags: r.meta.tags.clone(),
            })
        } else if let Some(g) = self.sgs.get(rid) {
            Spec::SecurityGroup(SecurityGroupSpec {
                vpc: g.vpc.clone(),
                group_name: g.name.clone(),
                description: g.description.clone(),
                ingress: g.ingress.clone(),
                egress: g.egress.clone(),
                tags: g.meta.tags.clone(),
            })
        } else if let Some(i) = self.instances.get(rid) {
            Spec::Instance(InstanceSpec {
                image_id: i.image.clone(),
                instance_type: i.itype.clone(),
                subnet: i.subnet.clone(),
                key_name: i.key.clone(),
                user_data: i.user_data.clone(),
                security_groups: i.groups.clone(),
                tags: i.meta.tags.clone(),
            })
        } else {
            return None;
        };
        let association_ids = self
            .rtbs
            .get(rid)
            .map(|r| {
                r.assoc
                    .iter()
                    .map(|(s, a)| (s.clone(), a.clone()))
                    .collect()
            })
            .unwrap_or_default();
        Some(ObservedResource {
            cloud_id: rid.to_string(),
            region: self.region.clone(),
            spec,
            association_ids,
        })
    }

    fn check_tags(tags: &Tags) -> Result<(), CloudError> {
        if tags.len() > 50 {
            return Err(err(
                "TagLimitExceeded",
                "The maximum number of tags (50) for a resource has been exceeded",
            ));
        }
        for (k, v) in tags {
            if k.is_empty() || k.len() > 128 || v.len() > 256 {
                return Err(err(
                    "InvalidParameterValue",
                    format!("Tag key or value has an invalid length: {k:?}"),
                ));
            }
            if k.to_ascii_lowercase().starts_with("aws:") {
                return Err(err(
                    "InvalidParameterValue",
                    format!("Tag keys starting with 'aws:' are reserved for internal use: {k:?}"),
                ));
            }
        }
        Ok(())
    }

    fn check_az(&self, az: &str) -> Result<(), CloudError> {
        let ok = az.strip_prefix(self.region.as_str()).is_some_and(|rest| {
            rest.len() == 1 && ('a'..='f').contains(&rest.chars().next().unwrap_or(' '))
        });
        if ok {
            Ok(())
        } else {
            Err(err(
                "InvalidParameterValue",
                format!(
                    "Value ({az}) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: {r}a, {r}b, {r}c.",
                    r = self.region
                ),
            ))
        }
    }

    fn check_peers(&self, vpc: &str, rules: &BTreeSet<Rule<String>>) -> Result<(), CloudError> {
        for r in rules {
            if let Peer::Group(g) = &r.peer {
                let Some(peer) = self.sgs.get(g) else {
                    return Err(Self::group_missing(g));
                };
                if peer.vpc != vpc {
                    return Err(err(
                        "InvalidGroup.NotFound",
                        format!("The security group '{g}' does not exist in VPC '{vpc}'"),
                    ));
                }
            }
            if r.protocol.has_ports()
                && r.protocol != canon_model::Protocol::Icmp
                && (r.from_port < 0 || r.to_port > 65535 || r.from_port > r.to_port)
            {
                return Err(err(
                    "InvalidParameterValue",
                    format!("Invalid port range {}-{}", r.from_port, r.to_port),
                ));
            }
        }
        Ok(())
    }

    /// Applies one action. `token` is the client token for the creates that
    /// take one; `visible_at` the time new resources become visible.
    pub fn apply<R: Rng + ?Sized>(
        &mut self,
        action: &Action,
        token: Option<&str>,
        timing: Timing,
        rng: &mut R,
    ) -> Result<Applied, CloudError> {
        let Timing {
            now,
            visible_at,
            shutdown_ms,
        } = timing;
        let meta = |tags: &Tags| Meta {
            tags: tags.clone(),
            visible_at,
        };
        let done = |outcome: Outcome, resource: Option<String>| Applied {
            outcome,
            resource,
            mutated: true,
        };
        match action {
            Action::CreateDhcpOptions {
                domain_name,
                domain_name_servers,
                ntp_servers,
                tags,
            } => {
                Self::check_tags(tags)?;
                if domain_name.is_none() && domain_name_servers.is_empty() && ntp_servers.is_empty()
                {
                    return Err(err(
                        "MissingParameter",
                        "The request must contain the parameter dhcpConfiguration",
                    ));
                }
                if domain_name_servers.len() > 4 || ntp_servers.len() > 4 {
                    return Err(err(
                        "InvalidParameterValue",
                        "At most four domain name servers and four NTP servers are allowed",
                    ));
                }
                let rid = new_id(rng, "dopt");
                self.dhcp.insert(
                    rid.clone(),
                    Dopt {
                        meta: meta(tags),
                        domain_name: domain_name.clone(),
                        servers: domain_name_servers.clone(),
                        ntp: ntp_servers.clone(),
                    },
                );
                Ok(done(Outcome::created(&rid, "dhcp options"), Some(rid)))
            }
            Action::DeleteDhcpOptions { dhcp_options } => {
                let d = id(dhcp_options)?;
                if !self.dhcp.contains_key(d) {
                    return Err(err(
                        "InvalidDhcpOptionID.NotFound",
                        format!("The dhcpOption ID '{d}' does not exist"),
                    ));
                }
                if self.vpcs.values().any(|v| v.dhcp == d) {
                    return Err(err(
                        "DependencyViolation",
                        format!("The dhcpOptions '{d}' has dependencies and cannot be deleted."),
                    ));
                }
                self.dhcp.remove(d);
                Ok(done(changed(format!("deleted {d}")), Some(d.to_string())))
            }
            Action::AssociateDhcpOptions { vpc, dhcp_options } => {
                let v = id(vpc)?.to_string();
                self.vpc(&v)?;
                let d = match dhcp_options {
                    Some(d) => {
                        let d = id(d)?;
                        if !self.dhcp.contains_key(d) {
                            return Err(err(
                                "InvalidDhcpOptionID.NotFound",
                                format!("The dhcpOption ID '{d}' does not exist"),
                            ));
                        }
                        d.to_string()
                    }
                    None => "default".to_string(),
                };
                if let Some(x) = self.vpcs.get_mut(&v) {
                    x.dhcp = d.clone();
                }
                Ok(done(changed(format!("associated {d} with {v}")), Some(v)))
            }
            Action::CreateVpc {
                cidr_block,
                instance_tenancy,
                tags,
            } => {
                Self::check_tags(tags)?;
                if !(16..=28).contains(&cidr_block.prefix()) {
                    return Err(err(
                        "InvalidVpc.Range",
                        format!("The CIDR '{cidr_block}' is invalid."),
                    ));
                }
                let rid = new_id(rng, "vpc");
                let main_rtb = new_id(rng, "rtb");
                let default_sg = new_id(rng, "sg");
                self.rtbs.insert(
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
                    },
                );
                self.sgs.insert(
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
                self.vpcs.insert(
                    rid.clone(),
                    Vpc {
                        meta: meta(tags),
                        cidr: *cidr_block,
                        tenancy: *instance_tenancy,
                        dns_support: true,
                        dns_hostnames: false,
                        dhcp: self.default_dhcp.clone(),
                        main_rtb,
                        default_sg,
                    },
                );
                Ok(done(Outcome::created(&rid, "vpc"), Some(rid)))
            }
            Action::ModifyVpcAttribute {
                vpc,
                attribute,
                value,
            } => {
                let v = id(vpc)?.to_string();
                let x = self.vpc(&v)?;
                if *attribute == VpcAttribute::EnableDnsHostnames && *value && !x.dns_support {
                    return Err(err(
                        "InvalidParameterValue",
                        "enableDnsHostnames requires enableDnsSupport",
                    ));
                }
                if *attribute == VpcAttribute::EnableDnsSupport && !*value && x.dns_hostnames {
                    return Err(err(
                        "InvalidParameterValue",
                        "enableDnsSupport cannot be disabled while enableDnsHostnames is enabled",
                    ));
                }
                if let Some(x) = self.vpcs.get_mut(&v) {
                    match attribute {
                        VpcAttribute::EnableDnsSupport => x.dns_support = *value,
                        VpcAttribute::EnableDnsHostnames => x.dns_hostnames = *value,
                    }
                }
                Ok(done(
                    changed(format!("set {attribute:?} of {v} to {value}")),
                    Some(v),
                ))
            }
            Action::DeleteVpc { vpc } => {
                let v = id(vpc)?.to_string();
                let x = self.vpc(&v)?.clone();
                let blocking = self.subnets.values().any(|s| s.vpc == v)
                    || self
                        .igws
                        .values()
                        .any(|i| i.vpc.as_deref() == Some(v.as_str()))
                    || self.rtbs.values().any(|r| r.vpc == v && !r.main)
                    || self.sgs.values().any(|g| g.vpc == v && !g.default);
                if blocking {
                    return Err(err(
                        "DependencyViolation",
                        format!("The vpc '{v}' has dependencies and cannot be deleted."),
                    ));
                }
                self.rtbs.remove(&x.main_rtb);
                self.sgs.remove(&x.default_sg);
                self.vpcs.remove(&v);
                Ok(done(changed(format!("deleted {v}")), Some(v)))
            }
            Action::CreateInternetGateway { tags } => {
                Self::check_tags(tags)?;
                let rid = new_id(rng, "igw");
                self.igws.insert(
                    rid.clone(),
                    Igw {
                        meta: meta(tags),
                        vpc: None,
                    },
                );
                Ok(done(Outcome::created(&rid, "internet gateway"), Some(rid)))
            }
            Action::AttachInternetGateway {
                internet_gateway,
                vpc,
            } => {
                let i = id(internet_gateway)?.to_string();
                let v = id(vpc)?.to_string();
                let igw = self.igws.get(&i).ok_or_else(|| Self::igw_missing(&i))?;
                self.vpc(&v)?;
                match &igw.vpc {
                    Some(attached) if *attached == v => {
                        return Ok(Applied {
                            outcome: Outcome::already_done(
                                None,
                                format!("{i} already attached to {v}"),
                            ),
                            resource: Some(i),
                            mutated: false,
                        })
                    }
                    Some(attached) => {
                        return Err(err(
                            "Resource.AlreadyAssociated",
                            format!("resource {i} is already attached to network {attached}"),
                        ))
                    }
                    None => {}
                }
                if self
                    .igws
                    .values()
                    .any(|g| g.vpc.as_deref() == Some(v.as_str()))
                {
                    return Err(err(
                        "Resource.AlreadyAssociated",
                        format!("Network {v} already has an internet gateway attached"),
                    ));
                }
                if let Some(g) = self.igws.get_mut(&i) {
                    g.vpc = Some(v.clone());
                }
                Ok(done(changed(format!("attached {i} to {v}")), Some(i)))
            }
            Action::DetachInternetGateway {
                internet_gateway,
                vpc,
            } => {
                let i = id(internet_gateway)?.to_string();
                let v = id(vpc)?.to_string();
                let igw = self.igws.get_mut(&i).ok_or_else(|| Self::igw_missing(&i))?;
                if igw.vpc.as_deref() != Some(v.as_str()) {
                    return Err(err(
                        "Gateway.NotAttached",
                        format!("resource {i} is not attached to network {v}"),
                    ));
                }
                igw.vpc = None;
                Ok(done(changed(format!("detached {i} from {v}")), Some(i)))
            }
            Action::DeleteInternetGateway { internet_gateway } => {
                let i = id(internet_gateway)?.to_string();
                let igw = self.igws.get(&i).ok_or_else(|| Self::igw_missing(&i))?;
                if igw.vpc.is_some() {
                    return Err(err(
                        "DependencyViolation",
                        format!(
                            "The internetGateway '{i}' has dependencies and cannot be deleted."
                        ),
                    ));
                }
                self.igws.remove(&i);
                Ok(done(changed(format!("deleted {i}")), Some(i)))
            }
            Action::CreateSubnet {
                vpc,
                cidr_block,
                availability_zone,
                tags,
            } => {
                Self::check_tags(tags)?;
                let v = id(vpc)?.to_string();
                let x = self.vpc(&v)?;
                if !(16..=28).contains(&cidr_block.prefix()) || !x.cidr.contains(*cidr_block) {
                    return Err(err(
                        "InvalidSubnet.Range",
                        format!("The CIDR '{cidr_block}' is invalid."),
                    ));
                }
                self.check_az(availability_zone)?;
                if self
                    .subnets
                    .values()
                    .any(|s| s.vpc == v && s.cidr.overlaps(*cidr_block))
                {
                    return Err(err(
                        "InvalidSubnet.Conflict",
                        format!("The CIDR '{cidr_block}' conflicts with another subnet"),
                    ));
                }
                let rid = new_id(rng, "subnet");
                self.subnets.insert(
                    rid.clone(),
                    Subnet {
                        meta: meta(tags),
                        vpc: v,
                        cidr: *cidr_block,
                        az: availability_zone.clone(),
                        map_public: false,
                    },
                );
                Ok(done(Outcome::created(&rid, "subnet"), Some(rid)))
            }
            Action::ModifySubnetAttribute {
                subnet,
                map_public_ip_on_launch,
            } => {
                let s = id(subnet)?.to_string();
                self.subnet(&s)?;
                if let Some(x) = self.subnets.get_mut(&s) {
                    x.map_public = *map_public_ip_on_launch;
                }
                Ok(done(
                    changed(format!(
                        "set mapPublicIpOnLaunch of {s} to {map_public_ip_on_launch}"
                    )),
                    Some(s),
                ))
            }
            Action::DeleteSubnet { subnet } => {
                let s = id(subnet)?.to_string();
                self.subnet(&s)?;
                if self
                    .instances
                    .values()
                    .any(|i| i.subnet == s && i.state.blocks(now))
                {
                    return Err(err(
                        "DependencyViolation",
                        format!("The subnet '{s}' has dependencies and cannot be deleted."),
                    ));
                }
                for r in self.rtbs.values_mut() {
                    r.assoc.remove(&s);
                }
                self.subnets.remove(&s);
                Ok(done(changed(format!("deleted {s}")), Some(s)))
            }
            Action::CreateRouteTable { vpc, tags } => {
                Self::check_tags(tags)?;
                let v = id(vpc)?.to_string();
                self.vpc(&v)?;
                let fingerprint = format!("{action:?}");
                if let Some(t) = token {
                    if let Some((fp, existing)) = self.tokens.get(t) {
                        if *fp != fingerprint {
                            return Err(err(
                                "IdempotentParameterMismatch",
                                "The client token has been used with different parameters",
                            ));
                        }
                        return Ok(Applied {
                            outcome: Outcome::already_done(
                                Some(existing.clone()),
                                format!("client token already used: {existing}"),
                            ),
                            resource: Some(existing.clone()),
                            mutated: false,
                        });
                    }
                }
                let rid = new_id(rng, "rtb");
                self.rtbs.insert(
                    rid.clone(),
                    Rtb {
                        meta: meta(tags),
                        vpc: v,
                        main: false,
                        routes: BTreeMap::new(),
                        assoc: BTreeMap::new(),
                    },
                );
                if let Some(t) = token {
                    self.tokens
                        .insert(t.to_string(), (fingerprint, rid.clone()));
                }
                Ok(done(Outcome::created(&rid, "route table"), Some(rid)))
            }
            Action::CreateRoute {
                route_table,
                destination,
                gateway,
            }
            | Action::ReplaceRoute {
                route_table,
                destination,
                gateway,
            } => {
                let replace = matches!(action, Action::ReplaceRoute { .. });
                let r = id(route_table)?.to_string();
                let g = id(gateway)?.to_string();
                let rtb = self.rtbs.get(&r).ok_or_else(|| Self::rtb_missing(&r))?;
                let Some(igw) = self.igws.get(&g) else {
                    return Err(err(
                        "InvalidGatewayID.NotFound",
                        format!("The gateway ID '{g}' does not exist"),
                    ));
                };
                if igw.vpc.as_deref() != Some(rtb.vpc.as_str()) {
                    return Err(err(
                        "InvalidParameterValue",
                        format!(
                            "route table {r} and network gateway {g} belong to different networks"
                        ),
                    ));
                }
                let vpc_cidr = self.vpc(&rtb.vpc)?.cidr;
                if vpc_cidr == *destination {
                    return Err(err(
                        "InvalidParameterValue",
                        format!(
                            "The destination CIDR block {destination} is equal to the local route"
                        ),
                    ));
                }
                match (replace, rtb.routes.get(destination)) {
                    (false, Some(existing)) if *existing == g => {
                        return Ok(Applied {
                            outcome: Outcome::already_done(
                                None,
                                format!("route {destination} via {g} exists"),
                            ),
                            resource: Some(r),
                            mutated: false,
                        })
                    }
                    (false, Some(_)) => {
                        return Err(err(
                            "RouteAlreadyExists",
                            format!("The route identified by {destination} already exists."),
                        ))
                    }
                    (true, None) => {
                        return Err(err(
                            "InvalidRoute.NotFound",
                            format!(
                            "no route with destination-cidr-block {destination} in route table {r}"
                        ),
                        ))
                    }
                    _ => {}
                }
                if let Some(rtb) = self.rtbs.get_mut(&r) {
                    rtb.routes.insert(*destination, g.clone());
                }
                Ok(done(
                    changed(format!("route {destination} via {g} in {r}")),
                    Some(r),
                ))
            }
            Action::DeleteRoute {
                route_table,
                destination,
            } => {
                let r = id(route_table)?.to_string();
                let rtb = self.rtbs.get_mut(&r).ok_or_else(|| Self::rtb_missing(&r))?;
                if rtb.routes.remove(destination).is_none() {
                    return Err(err(
                        "InvalidRoute.NotFound",
                        format!(
                            "no route with destination-cidr-block {destination} in route table {r}"
                        ),
                    ));
                }
                Ok(done(
                    changed(format!("deleted route {destination} from {r}")),
                    Some(r),
                ))
            }
            Action::AssociateRouteTable {
                route_table,
                subnet,
            } => {
                let r = id(route_table)?.to_string();
                let s = id(subnet)?.to_string();
                let rtb = self.rtbs.get(&r).ok_or_else(|| Self::rtb_missing(&r))?;
                let sub = self.subnet(&s)?;
                if sub.vpc != rtb.vpc {
                    return Err(err(
                        "InvalidParameterValue",
                        format!("Route table {r} and subnet {s} belong to different networks"),
                    ));
                }
                if let Some(a) = rtb.assoc.get(&s) {
                    let mut o =
                        Outcome::already_done(None, format!("{s} already associated with {r}"));
                    o.association_id = Some(a.clone());
                    return Ok(Applied {
                        outcome: o,
                        resource: Some(r),
                        mutated: false,
                    });
                }
                if self.rtbs.values().any(|t| t.assoc.contains_key(&s)) {
                    return Err(err(
                        "Resource.AlreadyAssociated",
                        format!("the specified association for route table {r} conflicts with an existing association"),
                    ));
                }
                let a = new_id(rng, "rtbassoc");
                if let Some(rtb) = self.rtbs.get_mut(&r) {
                    rtb.assoc.insert(s.clone(), a.clone());
                }
                let mut o = changed(format!("associated {s} with {r} ({a})"));
                o.association_id = Some(a);
                Ok(done(o, Some(r)))
            }
            Action::DisassociateRouteTable { association_id } => {
                for (r, rtb) in self.rtbs.iter_mut() {
                    let hit = rtb
                        .assoc
                        .iter()
                        .find(|(_, a)| *a == association_id)
                        .map(|(s, _)| s.clone());
                    if let Some(s) = hit {
                        rtb.assoc.remove(&s);
                        return Ok(done(
                            changed(format!("disassociated {s} from {r}")),
                            Some(r.clone()),
                        ));
                    }
                }
                Err(err(
                    "InvalidAssociationID.NotFound",
                    format!("The association ID '{association_id}' does not exist"),
                ))
            }
            Action::DeleteRouteTable { route_table } => {
                let r = id(route_table)?.to_string();
                let rtb = self.rtbs.get(&r).ok_or_else(|| Self::rtb_missing(&r))?;
                if rtb.main || !rtb.assoc.is_empty() {
                    return Err(err(
                        "DependencyViolation",
                        format!("The routeTable '{r}' has dependencies and cannot be deleted."),
                    ));
                }
                self.rtbs.remove(&r);
                Ok(done(changed(format!("deleted {r}")), Some(r)))
            }
            Action::CreateSecurityGroup {
                vpc,
                group_name,
                description,
                tags,
            } => {
                Self::check_tags(tags)?;
                let v = id(vpc)?.to_string();
                self.vpc(&v)?;
                if group_name.is_empty() || group_name.len() > 255 || description.len() > 255 {
                    return Err(err(
                        "InvalidParameterValue",
                        "Group name and description must be 1 to 255 characters",
                    ));
                }
                if group_name.starts_with("sg-") {
                    return Err(err(
                        "InvalidParameterValue",
                        "Group names may not be in the format sg-*",
                    ));
                }
                if group_name == "default" {
                    return Err(err(
                        "InvalidGroup.Reserved",
                        "The security group 'default' is reserved",
                    ));
                }
                if self.sg_names.contains(&(v.clone(), group_name.clone())) {
                    return Err(err(
                        "InvalidGroup.Duplicate",
                        format!("The security group '{group_name}' already exists for VPC '{v}'"),
                    ));
                }
                let rid = new_id(rng, "sg");
                self.sg_names.insert((v.clone(), group_name.clone()));
                self.sgs.insert(
                    rid.clone(),
                    Sg {
                        meta: meta(tags),
                        vpc: v,
                        name: group_name.clone(),
                        description: description.clone(),
                        ingress: BTreeSet::new(),
                        egress: [Rule::allow_all_egress()].into_iter().collect(),
                        default: false,
                    },
                );
                Ok(done(Outcome::created(&rid, "security group"), Some(rid)))
            }
            Action::AuthorizeSecurityGroupIngress { group, rules }
            | Action::AuthorizeSecurityGroupEgress { group, rules } => {
                let ingress = matches!(action, Action::AuthorizeSecurityGroupIngress { .. });
                let g = id(group)?.to_string();
                let rules = resolved_rules(rules)?;
                let sg = self.sgs.get(&g).ok_or_else(|| Self::group_missing(&g))?;
                self.check_peers(&sg.vpc.clone(), &rules)?;
                let set = if ingress { &sg.ingress } else { &sg.egress };
                if let Some(dup) = rules.iter().find(|r| set.contains(*r)) {
                    return Err(err(
                        "InvalidPermission.Duplicate",
                        format!("the specified rule \"peer: {}\" already exists", dup),
                    ));
                }
                if set.len() + rules.len() > 60 {
                    return Err(err(
                        "RulesPerSecurityGroupLimitExceeded",
                        "The maximum number of rules per security group has been reached.",
                    ));
                }
                let lines = rules
                    .iter()
                    .map(|r| {
                        format!(
                            "authorized {} {r} on {g}",
                            if ingress { "ingress" } else { "egress" }
                        )
                    })
                    .collect::<Vec<_>>();
                if let Some(sg) = self.sgs.get_mut(&g) {
                    let set = if ingress {
                        &mut sg.ingress
                    } else {
                        &mut sg.egress
                    };
                    set.extend(rules);
                }
                Ok(done(Outcome::changed(lines), Some(g)))
            }
            Action::RevokeSecurityGroupIngress { group, rules }
            | Action::RevokeSecurityGroupEgress { group, rules } => {
                let ingress = matches!(action, Action::RevokeSecurityGroupIngress { .. });
                let g = id(group)?.to_string();
                let rules = resolved_rules(rules)?;
                let sg = self
                    .sgs
                    .get_mut(&g)
                    .ok_or_else(|| Self::group_missing(&g))?;
                let set = if ingress {
                    &mut sg.ingress
                } else {
                    &mut sg.egress
                };
                let present: Vec<_> = rules.iter().filter(|r| set.contains(*r)).cloned().collect();
                if present.is_empty() {
                    return Err(err(
                        "InvalidPermission.NotFound",
                        "The specified rule does not exist in this security group.",
                    ));
                }
                let mut lines = Vec::new();
                for r in &present {
                    set.remove(r);
                    lines.push(format!(
                        "revoked {} {r} on {g}",
                        if ingress { "ingress" } else { "egress" }
                    ));
                }
                for r in rules.iter().filter(|r| !present.contains(r)) {
                    lines.push(format!("already absent: {r}"));
                }
                Ok(done(Outcome::changed(lines), Some(g)))
            }
            Action::DeleteSecurityGroup { group } => {
                let g = id(group)?.to_string();
                let sg = self.sgs.get(&g).ok_or_else(|| Self::group_missing(&g))?;
                if sg.default {
                    return Err(err(
                        "CannotDelete",
                        format!("the specified group: \"{g}\" name: \"default\" cannot be deleted by a user"),
                    ));
                }
                let referenced = self.sgs.iter().any(|(other, s)| {
                    *other != g
                        && s.ingress
                            .iter()
                            .chain(&s.egress)
                            .any(|r| r.peer == Peer::Group(g.clone()))
                });
                let in_use = self
                    .instances
                    .values()
                    .any(|i| i.state.blocks(now) && i.groups.contains(&g));
                if referenced || in_use {
                    return Err(err(
                        "DependencyViolation",
                        format!("resource {g} has a dependent object"),
                    ));
                }
                if let Some(gone) = self.sgs.remove(&g) {
                    self.sg_names.remove(&(gone.vpc, gone.name));
                }
                Ok(done(changed(format!("deleted {g}")), Some(g)))
            }
            Action::RunInstances {
                image_id,
                instance_type,
                subnet,
                security_groups,
                key_name,
                user_data,
                tags,
            } => {
                Self::check_tags(tags)?;
                let fingerprint = format!("{action:?}");
                if let Some(t) = token {
                    if let Some((fp, existing)) = self.tokens.get(t) {
                        if *fp != fingerprint {
                            return Err(err(
                                "IdempotentParameterMismatch",
                                "The client token has been used with different parameters",
                            ));
                        }
                        return Ok(Applied {
                            outcome: Outcome::already_done(
                                Some(existing.clone()),
                                format!("client token already used: {existing}"),
                            ),
                            resource: Some(existing.clone()),
                            mutated: false,
                        });
                    }
                }
                let hex_ok = image_id.strip_prefix("ami-").is_some_and(|h| {
                    (8..=17).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit())
                });
                if !hex_ok {
                    return Err(err(
                        "InvalidAMIID.Malformed",
                        format!("Invalid id: \"{image_id}\" (expecting \"ami-...\")"),
                    ));
                }
                let type_ok = instance_type
                    .split_once('.')
                    .is_some_and(|(f, s)| !f.is_empty() && !s.is_empty());
                if !type_ok {
                    return Err(err(
                        "InvalidParameterValue",
                        format!("Invalid value '{instance_type}' for InstanceType."),
                    ));
                }
                let s = id(subnet)?.to_string();
                let vpc = self.subnet(&s)?.vpc.clone();
                let mut groups = BTreeSet::new();
                for g in security_groups {
                    let g = id(g)?.to_string();
                    let sg = self.sgs.get(&g).ok_or_else(|| Self::group_missing(&g))?;
                    if sg.vpc != vpc {
                        return Err(err(
                            "InvalidParameter",
                            format!(
                                "Security group {g} and subnet {s} belong to different networks."
                            ),
                        ));
                    }
                    groups.insert(g);
                }
                if groups.is_empty() {
                    if let Some(v) = self.vpcs.get(&vpc) {
                        groups.insert(v.default_sg.clone());
                    }
                }
                let rid = new_id(rng, "i");
                self.instances.insert(
                    rid.clone(),
                    Inst {
                        meta: meta(tags),
                        image: image_id.clone(),
                        itype: instance_type.clone(),
                        subnet: s,
                        key: key_name.clone(),
                        user_data: user_data.clone(),
                        groups,
                        state: InstanceState::Running,
                    },
                );
                if let Some(t) = token {
                    self.tokens
                        .insert(t.to_string(), (fingerprint, rid.clone()));
                }
                Ok(done(Outcome::created(&rid, "instance"), Some(rid)))
            }
            Action::ModifyInstanceSecurityGroups {
                instance,
                security_groups,
            } => {
                let i = id(instance)?.to_string();
                let inst = self
                    .instances
                    .get(&i)
                    .filter(|x| x.state == InstanceState::Running)
                    .ok_or_else(|| Self::instance_missing(&i))?;
                let vpc = self.subnet(&inst.subnet)?.vpc.clone();
                let mut groups = BTreeSet::new();
                for g in security_groups {
                    let g = id(g)?.to_string();
                    let sg = self.sgs.get(&g).ok_or_else(|| Self::group_missing(&g))?;
                    if sg.vpc != vpc {
                        return Err(err(
                            "InvalidGroup.NotFound",
                            format!("The security group '{g}' does not exist in VPC '{vpc}'"),
                        ));
                    }
                    groups.insert(g);
                }
                if groups.is_empty() {
                    return Err(err(
                        "InvalidParameterValue",
                        "An instance must belong to at least one security group",
                    ));
                }
                if let Some(x) = self.instances.get_mut(&i) {
                    x.groups = groups;
                }
                Ok(done(
                    changed(format!("replaced the groups of {i}")),
                    Some(i),
                ))
            }
            Action::TerminateInstances { instance } => {
                let i = id(instance)?.to_string();
                let inst = self
                    .instances
                    .get_mut(&i)
                    .ok_or_else(|| Self::instance_missing(&i))?;
                if inst.state != InstanceState::Running {
                    return Ok(Applied {
                        outcome: Outcome::already_done(None, format!("{i} already terminated")),
                        resource: Some(i),
                        mutated: false,
                    });
                }
                inst.state = if shutdown_ms == 0 {
                    InstanceState::Terminated
                } else {
                    InstanceState::ShuttingDown {
                        until: now.saturating_add(shutdown_ms),
                    }
                };
                Ok(done(changed(format!("terminated {i}")), Some(i)))
            }
            Action::CreateTags { resource, tags } => {
                let rid = id(resource)?.to_string();
                let t = self.tags_mut(&rid)?;
                let mut merged = t.clone();
                merged.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
                Self::check_tags(&merged)?;
                *t = merged;
                Ok(done(
                    Outcome::changed(tags.iter().map(|(k, v)| format!("tagged {rid} {k}={v}"))),
                    Some(rid),
                ))
            }
            Action::DeleteTags { resource, keys } => {
                let rid = id(resource)?.to_string();
                let t = self.tags_mut(&rid)?;
                for k in keys {
                    t.remove(k);
                }
                Ok(done(
                    Outcome::changed(keys.iter().map(|k| format!("untagged {rid} {k}"))),
                    Some(rid),
                ))
            }
        }
    }

    /// The resolved peers of a rule set as plain ids (for rogue helpers).
    #[allow(dead_code)]
    pub fn as_cloud_refs(rules: &BTreeSet<Rule<String>>) -> BTreeSet<Rule<CloudRef>> {
        rules
            .iter()
            .map(|r| r.map_peer(|g| CloudRef::Id(g.clone())))
            .collect()
    }
}
