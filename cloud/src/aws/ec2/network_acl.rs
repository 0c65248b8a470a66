//! Network ACLs, their entries and subnet associations through EC2. A
//! create takes the request's client token. EC2 moves a subnet between
//! ACLs by the id of its current association (`ReplaceNetworkAclAssociation`),
//! which Canon's request does not carry: the adapter reads it first (one
//! `DescribeNetworkAcls` by subnet, and one more for the VPC's default ACL
//! when the subnet goes back to it). Observation leaves out EC2's own
//! last entries (32767).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{Filter, IcmpTypeCode, NetworkAcl, PortRange, RuleAction};
use canon_model::{
    AclAction, AclEntry, Action, IpCidr, NetworkAclSpec, ObservedResource, Protocol, ResourceKind,
    Spec, RULE_NUMBERS,
};

use super::{Call, Ec2};
use crate::aws::convert::{by_family, tag_specs, tags_from};
use crate::aws::missing;
use crate::aws::observe::{all_pages, next};
use crate::error::{misrouted, BAD_RESPONSE};
use crate::refs::id;
use crate::{CloudError, Outcome};

const KIND: ResourceKind = ResourceKind::NetworkAcl;

/// Sets an entry's fields on a create or a replace of an entry (the two
/// builders share no trait).
macro_rules! with_entry {
    ($builder:expr, $acl:expr, $entry:expr) => {{
        let e: &AclEntry = $entry;
        let (v4, v6) = by_family(&e.range);
        $builder
            .network_acl_id($acl)
            .rule_number(i32::from(e.rule_number))
            .protocol(e.protocol_number())
            .rule_action(match e.action {
                AclAction::Allow => RuleAction::Allow,
                AclAction::Deny => RuleAction::Deny,
            })
            .egress(e.egress)
            .set_cidr_block(v4)
            .set_ipv6_cidr_block(v6)
            .set_port_range(
                e.port_range()
                    .map(|(from, to)| PortRange::builder().from(from).to(to).build()),
            )
            .set_icmp_type_code(
                e.icmp_type_code()
                    .map(|(t, c)| IcmpTypeCode::builder().r#type(t).code(c).build()),
            )
    }};
}

/// Sends the call of one network-ACL action.
pub(in crate::aws) async fn run(call: &Call<'_>, action: &Action) -> Result<Outcome, CloudError> {
    let client = call.ec2.client;
    match action {
        Action::CreateNetworkAcl { vpc, tags } => {
            let v = id(vpc)?;
            let resp = call
                .send(|| {
                    client
                        .create_network_acl()
                        .vpc_id(v)
                        .client_token(call.token)
                        .set_tag_specifications(tag_specs(KIND, tags))
                        .send()
                })
                .await?;
            let n = resp
                .network_acl()
                .and_then(|a| a.network_acl_id())
                .ok_or_else(|| missing("NetworkAclId"))?;
            Ok(Outcome::created(n, "network ACL"))
        }
        Action::CreateNetworkAclEntry { network_acl, entry } => {
            let n = id(network_acl)?;
            call.send(|| with_entry!(client.create_network_acl_entry(), n, entry).send())
                .await?;
            Ok(entry_changed(entry, n))
        }
        Action::ReplaceNetworkAclEntry { network_acl, entry } => {
            let n = id(network_acl)?;
            call.send(|| with_entry!(client.replace_network_acl_entry(), n, entry).send())
                .await?;
            Ok(entry_changed(entry, n))
        }
        Action::DeleteNetworkAclEntry {
            network_acl,
            egress,
            rule_number,
        } => {
            let n = id(network_acl)?;
            call.send(|| {
                client
                    .delete_network_acl_entry()
                    .network_acl_id(n)
                    .egress(*egress)
                    .rule_number(i32::from(*rule_number))
                    .send()
            })
            .await?;
            Ok(Outcome::changed([format!(
                "deleted entry {rule_number} (egress {egress}) from {n}"
            )]))
        }
        Action::ReplaceNetworkAclAssociation {
            subnet,
            network_acl,
        } => {
            let target = network_acl.as_ref().map(id).transpose()?;
            move_subnet(call, id(subnet)?, target).await
        }
        Action::DeleteNetworkAcl { network_acl } => {
            let n = id(network_acl)?;
            call.send(|| client.delete_network_acl().network_acl_id(n).send())
                .await?;
            Ok(Outcome::changed([format!("deleted {n}")]))
        }
        _ => Err(misrouted(action)),
    }
}

fn entry_changed(entry: &AclEntry, n: &str) -> Outcome {
    Outcome::changed([format!("{}: {entry} in {n}", entry.property())])
}

/// Where a subnet is: the ACL holding it, its association, its VPC.
struct Held {
    acl: String,
    association: String,
    vpc: String,
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// Moves subnet `s` into ACL `target`, or (`None`) its VPC's default, by
/// its current association. Done already if it is there, or, going back
/// to the default, if the subnet is gone.
async fn move_subnet(
    call: &Call<'_>,
    s: &str,
    target: Option<&str>,
) -> Result<Outcome, CloudError> {
    let Some(held) = holder(&call.ec2, s).await? else {
        if target.is_none() {
            let why = format!("{s} is gone, and its association with it");
            return Ok(Outcome::already_done(None, why));
        }
        return Err(CloudError::classified(
            call.request_type,
            "InvalidSubnetID.NotFound",
            &format!("no network ACL holds subnet {s}"),
        ));
    };
    let target = match target {
        Some(t) => t.to_string(),
        None => default_acl(&call.ec2, &held.vpc).await?,
    };
    if held.acl == target {
        let mut o = Outcome::already_done(None, format!("{s} is in {target} already"));
        o.association_id = Some(held.association);
        return Ok(o);
    }
    let client = call.ec2.client;
    let resp = call
        .send(|| {
            client
                .replace_network_acl_association()
                .association_id(&held.association)
                .network_acl_id(&target)
                .send()
        })
        .await?;
    let a = resp
        .new_association_id()
        .ok_or_else(|| missing("NewAssociationId"))?;
    let mut o = Outcome::changed([format!("moved {s} from {} to {target} ({a})", held.acl)]);
    o.association_id = Some(a.to_string());
    Ok(o)
}

/// The ACL holding subnet `s`, if EC2 shows one.
async fn holder(ec2: &Ec2<'_>, s: &str) -> Result<Option<Held>, CloudError> {
    let resp = ec2
        .describe(KIND, || {
            ec2.client
                .describe_network_acls()
                .filters(filter("association.subnet-id", s))
                .send()
        })
        .await?;
    for acl in resp.network_acls() {
        let association = acl
            .associations()
            .iter()
            .find(|a| a.subnet_id() == Some(s))
            .and_then(|a| a.network_acl_association_id());
        if let (Some(association), Some(n), Some(vpc)) =
            (association, acl.network_acl_id(), acl.vpc_id())
        {
            return Ok(Some(Held {
                acl: n.to_string(),
                association: association.to_string(),
                vpc: vpc.to_string(),
            }));
        }
    }
    Ok(None)
}

/// The default ACL of VPC `v`.
async fn default_acl(ec2: &Ec2<'_>, v: &str) -> Result<String, CloudError> {
    let resp = ec2
        .describe(KIND, || {
            ec2.client
                .describe_network_acls()
                .filters(filter("vpc-id", v))
                .filters(filter("default", "true"))
                .send()
        })
        .await?;
    resp.network_acls()
        .iter()
        .find_map(|a| a.network_acl_id())
        .map(String::from)
        .ok_or_else(|| missing("the default NetworkAclId"))
}

/// The entries of ACL `n` as EC2 describes them now (for the recovery of
/// an entry refused as existing).
pub(in crate::aws) async fn entries(
    ec2: &Ec2<'_>,
    n: &str,
) -> Result<BTreeSet<AclEntry>, CloudError> {
    let resp = ec2
        .describe(KIND, || {
            ec2.client.describe_network_acls().network_acl_ids(n).send()
        })
        .await?;
    let mut out = BTreeSet::new();
    for acl in resp.network_acls() {
        out.append(&mut entries_of(acl)?);
    }
    Ok(out)
}

/// Every owned ACL, page by page.
pub(in crate::aws) async fn observe(ec2: &Ec2<'_>) -> Result<Vec<ObservedResource>, CloudError> {
    all_pages(|mut out, token| async move {
        let resp =
            super::describe_owned_page!(ec2, describe_network_acls, set_network_acl_ids, token)
                .await?;
        for a in resp.network_acls() {
            out.push(observed(ec2, a)?);
        }
        Ok((out, next(resp.next_token())))
    })
    .await
}

fn bad(what: &str, value: &str) -> CloudError {
    CloudError::terminal(BAD_RESPONSE, format!("{what}: {value:?}"))
}

/// A described ACL's entries in Canon's terms, EC2's own last ones left
/// out.
fn entries_of(a: &NetworkAcl) -> Result<BTreeSet<AclEntry>, CloudError> {
    let mut entries = BTreeSet::new();
    for e in a.entries() {
        entries.extend(entry_from(e)?);
    }
    Ok(entries)
}

/// One described entry in Canon's terms; `None` for EC2's own last ones.
fn entry_from(e: &aws_sdk_ec2::types::NetworkAclEntry) -> Result<Option<AclEntry>, CloudError> {
    let number = e.rule_number().ok_or_else(|| missing("RuleNumber"))?;
    let Some(number) = u16::try_from(number)
        .ok()
        .filter(|n| RULE_NUMBERS.contains(n))
    else {
        return Ok(None);
    };
    let text = e.protocol().unwrap_or("-1");
    let protocol = Protocol::parse(text).ok_or_else(|| bad("Protocol", text))?;
    let action = match e.rule_action() {
        Some(RuleAction::Allow) => AclAction::Allow,
        Some(RuleAction::Deny) => AclAction::Deny,
        other => return Err(bad("RuleAction", &format!("{other:?}"))),
    };
    let range = match (e.cidr_block(), e.ipv6_cidr_block()) {
        (Some(c), _) => IpCidr::V4(c.parse().map_err(|_| bad("CidrBlock", c))?),
        (None, Some(c)) => IpCidr::V6(c.parse().map_err(|_| bad("Ipv6CidrBlock", c))?),
        (None, None) => return Err(missing("CidrBlock")),
    };
    let ports = e
        .port_range()
        .map(|p| (p.from().unwrap_or(-1), p.to().unwrap_or(-1)));
    let type_code = e
        .icmp_type_code()
        .map(|i| (i.r#type().unwrap_or(-1), i.code().unwrap_or(-1)));
    let egress = e.egress().unwrap_or(false);
    Ok(Some(AclEntry::described(
        egress,
        number,
        protocol,
        action,
        range,
        (ports, type_code),
    )))
}

/// One described ACL in Canon's terms: its entries (not EC2's last ones)
/// and its subnets, with their association ids.
fn observed(ec2: &Ec2<'_>, a: &NetworkAcl) -> Result<ObservedResource, CloudError> {
    let id = a.network_acl_id().ok_or_else(|| missing("NetworkAclId"))?;
    let mut association_ids = BTreeMap::new();
    for x in a.associations() {
        if let (Some(s), Some(assoc)) = (x.subnet_id(), x.network_acl_association_id()) {
            association_ids.insert(s.to_string(), assoc.to_string());
        }
    }
    Ok(ObservedResource {
        cloud_id: id.to_string(),
        region: ec2.scope.region.clone(),
        spec: Spec::NetworkAcl(NetworkAclSpec {
            vpc: a.vpc_id().ok_or_else(|| missing("VpcId"))?.to_string(),
            entries: entries_of(a)?.into(),
            associations: association_ids.keys().cloned().collect(),
            tags: tags_from(a.tags()),
        }),
        association_ids,
        pending: false,
        life: None,
    })
}
