//! A reference interpreter: applies requests to an `ObservedState` with the
//! EC2 rules that matter for ordering (a create needs what it refers to; a
//! delete fails while something depends on the resource; one gateway per
//! VPC; subnets inside their VPC and not overlapping; duplicate rules and
//! routes are errors; revoking a missing rule is a no-op). If the planner's
//! order is wrong, applying its plan fails here.

use std::collections::BTreeMap;

use canon_model::{
    Action, Bindings, CloudRef, DesiredState, DhcpOptionsSpec, InstanceSpec, InternetGatewaySpec,
    ObservedResource, ObservedState, Peer, Plan, Ref, Region, Request, RouteTableSpec, Rule,
    SecurityGroupSpec, Spec, SubnetSpec, VpcSpec, OWNERSHIP_TAG,
};

pub struct RefCloud {
    pub state: ObservedState,
    next: u64,
    /// Cloud ids touched by each executed request.
    pub touched: Vec<String>,
}

fn id(r: &CloudRef) -> Result<String, String> {
    match r {
        CloudRef::Id(i) => Ok(i.clone()),
        CloudRef::Pending(l) => Err(format!("unresolved reference to {l}")),
    }
}

fn rules(set: &std::collections::BTreeSet<Rule<CloudRef>>) -> Result<Vec<Rule<String>>, String> {
    set.iter().map(|r| r.try_map_peer(id)).collect()
}

impl Default for RefCloud {
    fn default() -> Self {
        Self::new()
    }
}

impl RefCloud {
    pub fn new() -> Self {
        RefCloud {
            state: ObservedState::new(),
            next: 1,
            touched: Vec::new(),
        }
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}-{:08x}", self.next)
    }

    pub fn add(&mut self, cloud_id: String, spec: Spec<String>) {
        self.state.insert(ObservedResource {
            cloud_id,
            region: Region::new("us-west-2"),
            spec,
            association_ids: BTreeMap::new(),
        });
    }

    /// Applies a plan the way the scheduler will: record adoptions, resolve
    /// each request's pending references, execute, bind what it created.
    pub fn apply_plan(&mut self, plan: &Plan, bindings: &mut Bindings) -> Result<(), String> {
        for (l, c) in &plan.adoptions {
            bindings.bind(*l, c.clone());
        }
        for (i, req) in plan.requests.iter().enumerate() {
            let resolved = req
                .resolve(|l| bindings.cloud_id(l).map(str::to_string))
                .map_err(|e| format!("request {i} ({}): {e}", req.request_type()))?;
            let created = self
                .execute(&resolved)
                .map_err(|e| format!("request {i} ({} {}): {e}", req.request_type(), req.guid()))?;
            if let Some(c) = created {
                bindings.bind(req.target, c);
            }
        }
        Ok(())
    }

    fn get(&self, cid: &str) -> Result<&ObservedResource, String> {
        self.state
            .get(cid)
            .ok_or_else(|| format!("{cid} does not exist"))
    }

    fn vpc(&self, cid: &str) -> Result<&VpcSpec<String>, String> {
        match &self.get(cid)?.spec {
            Spec::Vpc(v) => Ok(v),
            _ => Err(format!("{cid} is not a VPC")),
        }
    }

    fn update<F>(&mut self, cid: &str, f: F) -> Result<(), String>
    where
        F: FnOnce(&mut ObservedResource) -> Result<(), String>,
    {
        let mut r = self.get(cid)?.clone();
        f(&mut r)?;
        self.state.insert(r);
        Ok(())
    }

    fn remove(&mut self, cid: &str) -> Result<(), String> {
        self.get(cid)?;
        self.state.remove(cid);
        Ok(())
    }

    /// Executes one resolved request; returns the cloud id of what it created.
    pub fn execute(&mut self, req: &Request) -> Result<Option<String>, String> {
        let region = req.region.clone();
        let mut created = None;
        let mut new = |me: &mut Self, prefix: &str, spec: Spec<String>| {
            let cid = me.fresh(prefix);
            me.state.insert(ObservedResource {
                cloud_id: cid.clone(),
                region: region.clone(),
                spec,
                association_ids: BTreeMap::new(),
            });
            me.touched.push(cid.clone());
            created = Some(cid);
        };
        for r in refs_of(&req.action) {
            if let CloudRef::Id(c) = r {
                self.touched.push(c.clone());
            }
        }
        match &req.action {
            Action::CreateDhcpOptions {
                domain_name,
                domain_name_servers,
                ntp_servers,
                tags,
            } => new(
                self,
                "dopt",
                Spec::DhcpOptions(DhcpOptionsSpec {
                    domain_name: domain_name.clone(),
                    domain_name_servers: domain_name_servers.clone(),
                    ntp_servers: ntp_servers.clone(),
                    tags: tags.clone(),
                }),
            ),
            Action::DeleteDhcpOptions { dhcp_options } => {
                let d = id(dhcp_options)?;
                if self.state.iter().any(|r| matches!(&r.spec, Spec::Vpc(v) if v.dhcp_options.as_deref() == Some(d.as_str()))) {
                    return Err("DependencyViolation: dhcp options in use".into());
                }
                self.remove(&d)?;
            }
            Action::AssociateDhcpOptions { vpc, dhcp_options } => {
                let v = id(vpc)?;
                let d = match dhcp_options {
                    Some(d) => {
                        let d = id(d)?;
                        self.get(&d)?;
                        Some(d)
                    }
                    None => None,
                };
                self.update(&v, |r| match &mut r.spec {
                    Spec::Vpc(s) => {
                        s.dhcp_options = d;
                        Ok(())
                    }
                    _ => Err("not a vpc".into()),
                })?;
            }
            Action::CreateVpc {
                cidr_block,
                instance_tenancy,
                tags,
            } => new(
                self,
                "vpc",
                Spec::Vpc(VpcSpec {
                    cidr_block: *cidr_block,
                    instance_tenancy: *instance_tenancy,
                    enable_dns_support: true,
                    enable_dns_hostnames: false,
                    dhcp_options: None,
                    tags: tags.clone(),
                }),
            ),
            Action::ModifyVpcAttribute {
                vpc,
                attribute,
                value,
            } => {
                let v = id(vpc)?;
                self.update(&v, |r| match &mut r.spec {
                    Spec::Vpc(s) => {
                        match attribute {
                            canon_model::VpcAttribute::EnableDnsSupport => {
                                if !value && s.enable_dns_hostnames {
                                    return Err(
                                        "InvalidParameterValue: hostnames need support".into()
                                    );
                                }
                                s.enable_dns_support = *value
                            }
                            canon_model::VpcAttribute::EnableDnsHostnames => {
                                if *value && !s.enable_dns_support {
                                    return Err(
                                        "InvalidParameterValue: hostnames need support".into()
                                    );
                                }
                                s.enable_dns_hostnames = *value
                            }
                        }
                        Ok(())
                    }
                    _ => Err("not a vpc".into()),
                })?;
            }
            Action::DeleteVpc { vpc } => {
                let v = id(vpc)?;
                self.vpc(&v)?;
                let users = self.state.iter().any(|r| match &r.spec {
                    Spec::Subnet(s) => s.vpc == v,
                    Spec::RouteTable(s) => s.vpc == v,
                    Spec::SecurityGroup(s) => s.vpc == v,
                    Spec::InternetGateway(s) => s.vpc.as_deref() == Some(v.as_str()),
                    _ => false,
                });
                if users {
                    return Err(format!("DependencyViolation: {v} has dependencies"));
                }
                self.remove(&v)?;
            }
            Action::CreateInternetGateway { tags } => new(
                self,
                "igw",
                Spec::InternetGateway(InternetGatewaySpec {
                    vpc: None,
                    tags: tags.clone(),
                }),
            ),
            Action::AttachInternetGateway {
                internet_gateway,
                vpc,
            } => {
                let (g, v) = (id(internet_gateway)?, id(vpc)?);
                self.vpc(&v)?;
                if self.state.iter().any(|r| matches!(&r.spec, Spec::InternetGateway(s) if s.vpc.as_deref() == Some(v.as_str()))) {
                    return Err("Resource.AlreadyAssociated: vpc has a gateway".into());
                }
                self.update(&g, |r| match &mut r.spec {
                    Spec::InternetGateway(s) if s.vpc.is_none() => {
                        s.vpc = Some(v.clone());
                        Ok(())
                    }
                    _ => Err("Resource.AlreadyAssociated or not a gateway".into()),
                })?;
            }
            Action::DetachInternetGateway {
                internet_gateway,
                vpc,
            } => {
                let (g, v) = (id(internet_gateway)?, id(vpc)?);
                self.update(&g, |r| match &mut r.spec {
                    Spec::InternetGateway(s) if s.vpc.as_deref() == Some(v.as_str()) => {
                        s.vpc = None;
                        Ok(())
                    }
                    _ => Err("Gateway.NotAttached".into()),
                })?;
            }
            Action::DeleteInternetGateway { internet_gateway } => {
                let g = id(internet_gateway)?;
                if let Spec::InternetGateway(s) = &self.get(&g)?.spec {
                    if s.vpc.is_some() {
                        return Err("DependencyViolation: gateway attached".into());
                    }
                }
                self.remove(&g)?;
            }
            Action::CreateSubnet {
                vpc,
                cidr_block,
                availability_zone,
                tags,
            } => {
                let v = id(vpc)?;
                let vs = self.vpc(&v)?;
                if !vs.cidr_block.contains(*cidr_block) {
                    return Err("InvalidSubnet.Range".into());
                }
                if self.state.iter().any(|r| matches!(&r.spec, Spec::Subnet(s) if s.vpc == v && s.cidr_block.overlaps(*cidr_block))) {
                    return Err(format!("InvalidSubnet.Conflict: {cidr_block}"));
                }
                new(
                    self,
                    "subnet",
                    Spec::Subnet(SubnetSpec {
                        vpc: v,
                        cidr_block: *cidr_block,
                        availability_zone: availability_zone.clone(),
                        map_public_ip_on_launch: false,
                        tags: tags.clone(),
                    }),
                );
            }
            Action::ModifySubnetAttribute {
                subnet,
                map_public_ip_on_launch,
            } => {
                let s = id(subnet)?;
                self.update(&s, |r| match &mut r.spec {
                    Spec::Subnet(s) => {
                        s.map_public_ip_on_launch = *map_public_ip_on_launch;
                        Ok(())
                    }
                    _ => Err("not a subnet".into()),
                })?;
            }
            Action::DeleteSubnet { subnet } => {
                let s = id(subnet)?;
                if !matches!(self.get(&s)?.spec, Spec::Subnet(_)) {
                    return Err("not a subnet".into());
                }
                if self
                    .state
                    .iter()
                    .any(|r| matches!(&r.spec, Spec::Instance(i) if i.subnet == s))
                {
                    return Err("DependencyViolation: subnet has instances".into());
                }
                // Associations go with the subnet.
                let tables: Vec<String> = self
                    .state
                    .iter()
                    .filter(|r| r.association_ids.contains_key(&s))
                    .map(|r| r.cloud_id.clone())
                    .collect();
                for t in tables {
                    self.update(&t, |r| {
                        r.association_ids.remove(&s);
                        if let Spec::RouteTable(rt) = &mut r.spec {
                            rt.associations.remove(&s);
                        }
                        Ok(())
                    })?;
                }
                self.remove(&s)?;
            }
            Action::CreateRouteTable { vpc, tags } => {
                let v = id(vpc)?;
                self.vpc(&v)?;
                new(
                    self,
                    "rtb",
                    Spec::RouteTable(RouteTableSpec {
                        vpc: v,
                        routes: Default::default(),
                        associations: Default::default(),
                        tags: tags.clone(),
                    }),
                );
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
                let replace = matches!(req.action, Action::ReplaceRoute { .. });
                let (t, g) = (id(route_table)?, id(gateway)?);
                let gw = self.get(&g)?;
                let Spec::InternetGateway(gs) = &gw.spec else {
                    return Err("not a gateway".into());
                };
                let table_vpc = match &self.get(&t)?.spec {
                    Spec::RouteTable(rt) => rt.vpc.clone(),
                    _ => return Err("not a route table".into()),
                };
                if gs.vpc.as_deref() != Some(table_vpc.as_str()) {
                    return Err(
                        "InvalidParameterValue: gateway not attached to the table's VPC".into(),
                    );
                }
                self.update(&t, |r| match &mut r.spec {
                    Spec::RouteTable(rt) => {
                        let exists = rt.routes.iter().any(|x| x.destination == *destination);
                        if exists && !replace {
                            return Err("RouteAlreadyExists".into());
                        }
                        if !exists && replace {
                            return Err("InvalidRoute.NotFound".into());
                        }
                        rt.routes.retain(|x| x.destination != *destination);
                        rt.routes.insert(canon_model::Route {
                            destination: *destination,
                            target: g.clone(),
                        });
                        Ok(())
                    }
                    _ => Err("not a route table".into()),
                })?;
            }
            Action::DeleteRoute {
                route_table,
                destination,
            } => {
                let t = id(route_table)?;
                self.update(&t, |r| match &mut r.spec {
                    Spec::RouteTable(rt) => {
                        if !rt.routes.iter().any(|x| x.destination == *destination) {
                            return Err("InvalidRoute.NotFound".into());
                        }
                        rt.routes.retain(|x| x.destination != *destination);
                        Ok(())
                    }
                    _ => Err("not a route table".into()),
                })?;
            }
            Action::AssociateRouteTable {
                route_table,
                subnet,
            } => {
                let (t, s) = (id(route_table)?, id(subnet)?);
                let Spec::Subnet(ss) = &self.get(&s)?.spec else {
                    return Err("not a subnet".into());
                };
                let subnet_vpc = ss.vpc.clone();
                if self
                    .state
                    .iter()
                    .any(|r| r.association_ids.contains_key(&s))
                {
                    return Err("Resource.AlreadyAssociated".into());
                }
                let assoc = self.fresh("rtbassoc");
                self.update(&t, |r| {
                    let Spec::RouteTable(rt) = &mut r.spec else {
                        return Err("not a route table".into());
                    };
                    if rt.vpc != subnet_vpc {
                        return Err("InvalidParameterValue: subnet in another VPC".into());
                    }
                    rt.associations.insert(s.clone());
                    r.association_ids.insert(s.clone(), assoc);
                    Ok(())
                })?;
            }
            Action::DisassociateRouteTable { association_id } => {
                let table = self
                    .state
                    .iter()
                    .find(|r| r.association_ids.values().any(|a| a == association_id))
                    .map(|r| r.cloud_id.clone());
                // Missing: already done.
                if let Some(t) = table {
                    self.update(&t, |r| {
                        let subnet = r
                            .association_ids
                            .iter()
                            .find(|(_, a)| *a == association_id)
                            .map(|(s, _)| s.clone());
                        if let Some(s) = subnet {
                            r.association_ids.remove(&s);
                            if let Spec::RouteTable(rt) = &mut r.spec {
                                rt.associations.remove(&s);
                            }
                        }
                        Ok(())
                    })?;
                }
            }
            Action::DeleteRouteTable { route_table } => {
                let t = id(route_table)?;
                if !self.get(&t)?.association_ids.is_empty() {
                    return Err("DependencyViolation: table has associations".into());
                }
                self.remove(&t)?;
            }
            Action::CreateSecurityGroup {
                vpc,
                group_name,
                description,
                tags,
            } => {
                let v = id(vpc)?;
                self.vpc(&v)?;
                if self.state.iter().any(|r| matches!(&r.spec, Spec::SecurityGroup(g) if g.vpc == v && g.group_name == *group_name)) {
                    return Err("InvalidGroup.Duplicate".into());
                }
                new(
                    self,
                    "sg",
                    Spec::SecurityGroup(SecurityGroupSpec {
                        vpc: v,
                        group_name: group_name.clone(),
                        description: description.clone(),
                        ingress: Default::default(),
                        egress: [Rule::allow_all_egress()].into_iter().collect(),
                        tags: tags.clone(),
                    }),
                );
            }
            Action::AuthorizeSecurityGroupIngress { group, rules: rs }
            | Action::AuthorizeSecurityGroupEgress { group, rules: rs } => {
                let ingress = matches!(req.action, Action::AuthorizeSecurityGroupIngress { .. });
                let g = id(group)?;
                let rs = rules(rs)?;
                for r in &rs {
                    if let Peer::Group(p) = &r.peer {
                        if !matches!(self.get(p)?.spec, Spec::SecurityGroup(_)) {
                            return Err("InvalidGroup.NotFound".into());
                        }
                    }
                }
                self.update(&g, |r| {
                    let Spec::SecurityGroup(sg) = &mut r.spec else {
                        return Err("not a group".into());
                    };
                    let set = if ingress {
                        &mut sg.ingress
                    } else {
                        &mut sg.egress
                    };
                    for rule in rs {
                        if !set.insert(rule) {
                            return Err("InvalidPermission.Duplicate".into());
                        }
                    }
                    Ok(())
                })?;
            }
            Action::RevokeSecurityGroupIngress { group, rules: rs }
            | Action::RevokeSecurityGroupEgress { group, rules: rs } => {
                let ingress = matches!(req.action, Action::RevokeSecurityGroupIngress { .. });
                let g = id(group)?;
                let rs = rules(rs)?;
                self.update(&g, |r| {
                    let Spec::SecurityGroup(sg) = &mut r.spec else {
                        return Err("not a group".into());
                    };
                    let set = if ingress {
                        &mut sg.ingress
                    } else {
                        &mut sg.egress
                    };
                    for rule in rs {
                        set.remove(&rule);
                    }
                    Ok(())
                })?;
            }
            Action::DeleteSecurityGroup { group } => {
                let g = id(group)?;
                if !matches!(self.get(&g)?.spec, Spec::SecurityGroup(_)) {
                    return Err("not a group".into());
                }
                let used = self.state.iter().any(|r| match &r.spec {
                    Spec::Instance(i) => i.security_groups.contains(&g),
                    Spec::SecurityGroup(other) if r.cloud_id != g => other
                        .ingress
                        .iter()
                        .chain(&other.egress)
                        .any(|x| x.peer == Peer::Group(g.clone())),
                    _ => false,
                });
                if used {
                    return Err(format!("DependencyViolation: {g} is in use"));
                }
                self.remove(&g)?;
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
                let s = id(subnet)?;
                let Spec::Subnet(ss) = &self.get(&s)?.spec else {
                    return Err("not a subnet".into());
                };
                let vpc = ss.vpc.clone();
                let mut groups = std::collections::BTreeSet::new();
                for g in security_groups {
                    let g = id(g)?;
                    match &self.get(&g)?.spec {
                        Spec::SecurityGroup(sg) if sg.vpc == vpc => {}
                        _ => return Err("InvalidGroup.NotFound in subnet's VPC".into()),
                    }
                    groups.insert(g);
                }
                new(
                    self,
                    "i",
                    Spec::Instance(InstanceSpec {
                        image_id: image_id.clone(),
                        instance_type: instance_type.clone(),
                        subnet: s,
                        key_name: key_name.clone(),
                        user_data: user_data.clone(),
                        security_groups: groups,
                        tags: tags.clone(),
                    }),
                );
            }
            Action::ModifyInstanceSecurityGroups {
                instance,
                security_groups,
            } => {
                let i = id(instance)?;
                let mut groups = std::collections::BTreeSet::new();
                for g in security_groups {
                    let g = id(g)?;
                    self.get(&g)?;
                    groups.insert(g);
                }
                if groups.is_empty() {
                    return Err("InvalidParameterValue: an instance needs a group".into());
                }
                self.update(&i, |r| match &mut r.spec {
                    Spec::Instance(s) => {
                        s.security_groups = groups;
                        Ok(())
                    }
                    _ => Err("not an instance".into()),
                })?;
            }
            Action::TerminateInstances { instance } => {
                let i = id(instance)?;
                self.remove(&i)?;
            }
            Action::CreateTags { resource, tags } => {
                let c = id(resource)?;
                self.update(&c, |r| {
                    r.spec.tags_mut().extend(tags.clone());
                    Ok(())
                })?;
            }
            Action::DeleteTags { resource, keys } => {
                let c = id(resource)?;
                self.update(&c, |r| {
                    for k in keys {
                        r.spec.tags_mut().remove(k);
                    }
                    Ok(())
                })?;
            }
        }
        Ok(created)
    }
}

/// The top-level references of an action (enough for touch tracking).
fn refs_of(a: &Action) -> Vec<&CloudRef> {
    match a {
        Action::DeleteDhcpOptions { dhcp_options: r }
        | Action::DeleteVpc { vpc: r }
        | Action::DeleteInternetGateway {
            internet_gateway: r,
        }
        | Action::DeleteSubnet { subnet: r }
        | Action::DeleteRouteTable { route_table: r }
        | Action::DeleteSecurityGroup { group: r }
        | Action::TerminateInstances { instance: r }
        | Action::CreateTags { resource: r, .. }
        | Action::DeleteTags { resource: r, .. }
        | Action::ModifyVpcAttribute { vpc: r, .. }
        | Action::ModifySubnetAttribute { subnet: r, .. }
        | Action::AuthorizeSecurityGroupIngress { group: r, .. }
        | Action::AuthorizeSecurityGroupEgress { group: r, .. }
        | Action::RevokeSecurityGroupIngress { group: r, .. }
        | Action::RevokeSecurityGroupEgress { group: r, .. }
        | Action::ModifyInstanceSecurityGroups { instance: r, .. }
        | Action::DeleteRoute { route_table: r, .. }
        | Action::CreateRoute { route_table: r, .. }
        | Action::ReplaceRoute { route_table: r, .. }
        | Action::AssociateRouteTable { route_table: r, .. } => vec![r],
        Action::AttachInternetGateway {
            internet_gateway, ..
        }
        | Action::DetachInternetGateway {
            internet_gateway, ..
        } => vec![internet_gateway],
        Action::AssociateDhcpOptions { vpc, .. } => vec![vpc],
        _ => vec![],
    }
}

/// Checks that the cloud holds exactly what `desired` declares for its
/// process, through `bindings`; returns the first mismatch.
pub fn check_converged(
    desired: &DesiredState,
    cloud: &ObservedState,
    bindings: &Bindings,
) -> Result<(), String> {
    for d in desired.resources.values() {
        let cid = bindings
            .cloud_id(&d.id)
            .ok_or_else(|| format!("{} ({}) is not bound", d.name, d.id))?;
        let o = cloud
            .get(cid)
            .ok_or_else(|| format!("{} bound to missing {cid}", d.name))?;
        let translated = o.spec.map_refs(|c| match bindings.logical_id(c) {
            Some(l) if desired.resources.contains_key(&l) => Ref::Managed(l),
            _ => Ref::External(c.clone()),
        });
        let mut want = d.spec.clone();
        want.tags_mut()
            .insert(OWNERSHIP_TAG.into(), d.id.to_string());
        if let (Spec::Vpc(w), Spec::Vpc(h)) = (&mut want, &translated) {
            if w.dhcp_options.is_none() {
                w.dhcp_options = h.dhcp_options.clone();
            }
        }
        if want != translated {
            return Err(format!(
                "{} differs:\n declared {want:?}\n observed {translated:?}",
                d.name
            ));
        }
    }
    let owned: Vec<_> = cloud.owned_by(desired.fid).collect();
    if owned.len() != desired.resources.len() {
        return Err(format!(
            "process owns {} resources, declares {}: {:?}",
            owned.len(),
            desired.resources.len(),
            owned.iter().map(|o| &o.cloud_id).collect::<Vec<_>>()
        ));
    }
    Ok(())
}
