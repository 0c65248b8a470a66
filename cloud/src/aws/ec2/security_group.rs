//! Security groups and their rules through EC2: Canon's flat rules go out
//! as `IpPermission`s and come back flattened (see [`crate::rules`]). A
//! revoke of rules none of which exist is already done.

use std::collections::{BTreeMap, BTreeSet};

use canon_model::{
    Action, CloudRef, ObservedResource, ResourceKind, Rule, SecurityGroupSpec, SortedVecSet, Spec,
};

use super::{Call, Ec2};
use crate::aws::convert::{permission_from, permission_to, tag_specs, tags_from};
use crate::aws::missing;
use crate::aws::observe::{all_pages, next};
use crate::error::misrouted;
use crate::refs::id;
use crate::rules::{from_permissions, to_permissions, Permission};
use crate::{CloudError, Outcome, Scope};

const KIND: ResourceKind = ResourceKind::SecurityGroup;

/// Which rules of a group a call touches.
fn direction(ingress: bool) -> &'static str {
    if ingress {
        "ingress"
    } else {
        "egress"
    }
}

/// Sends the call of one security-group action.
pub(in crate::aws) async fn run(call: &Call<'_>, action: &Action) -> Result<Outcome, CloudError> {
    let client = call.ec2.client;
    match action {
        Action::CreateSecurityGroup {
            vpc,
            group_name,
            description,
            tags,
        } => {
            let v = id(vpc)?;
            let resp = call
                .send(|| {
                    client
                        .create_security_group()
                        .vpc_id(v)
                        .group_name(group_name)
                        .description(description)
                        .set_tag_specifications(tag_specs(KIND, tags))
                        .send()
                })
                .await?;
            let g = resp.group_id().ok_or_else(|| missing("GroupId"))?;
            Ok(Outcome::created(g, "security group"))
        }
        Action::AuthorizeSecurityGroupIngress { group, rules } => {
            authorize(call, group, rules, true).await
        }
        Action::AuthorizeSecurityGroupEgress { group, rules } => {
            authorize(call, group, rules, false).await
        }
        Action::RevokeSecurityGroupIngress { group, rules } => {
            revoke(call, group, rules, true).await
        }
        Action::RevokeSecurityGroupEgress { group, rules } => {
            revoke(call, group, rules, false).await
        }
        Action::DeleteSecurityGroup { group } => {
            let g = id(group)?;
            call.send(|| client.delete_security_group().group_id(g).send())
                .await?;
            Ok(Outcome::changed([format!("deleted {g}")]))
        }
        _ => Err(misrouted(action)),
    }
}

async fn authorize(
    call: &Call<'_>,
    group: &CloudRef,
    rules: &BTreeSet<Rule<CloudRef>>,
    ingress: bool,
) -> Result<Outcome, CloudError> {
    let client = call.ec2.client;
    let g = id(group)?;
    let perms: Vec<_> = to_permissions(rules)?.iter().map(permission_to).collect();
    if ingress {
        call.send(|| {
            client
                .authorize_security_group_ingress()
                .group_id(g)
                .set_ip_permissions(Some(perms.clone()))
                .send()
        })
        .await?;
    } else {
        call.send(|| {
            client
                .authorize_security_group_egress()
                .group_id(g)
                .set_ip_permissions(Some(perms.clone()))
                .send()
        })
        .await?;
    }
    let dir = direction(ingress);
    Ok(Outcome::changed(
        rules.iter().map(|r| format!("authorized {dir} {r} on {g}")),
    ))
}

async fn revoke(
    call: &Call<'_>,
    group: &CloudRef,
    rules: &BTreeSet<Rule<CloudRef>>,
    ingress: bool,
) -> Result<Outcome, CloudError> {
    let client = call.ec2.client;
    let g = id(group)?;
    let perms: Vec<_> = to_permissions(rules)?.iter().map(permission_to).collect();
    let unknown = if ingress {
        call.send(|| {
            client
                .revoke_security_group_ingress()
                .group_id(g)
                .set_ip_permissions(Some(perms.clone()))
                .send()
        })
        .await?
        .unknown_ip_permissions()
        .len()
    } else {
        call.send(|| {
            client
                .revoke_security_group_egress()
                .group_id(g)
                .set_ip_permissions(Some(perms.clone()))
                .send()
        })
        .await?
        .unknown_ip_permissions()
        .len()
    };
    if unknown > 0 && unknown >= perms.len() {
        return Ok(Outcome::already_done(None, format!("no such rules on {g}")));
    }
    let dir = direction(ingress);
    Ok(Outcome::changed(
        rules.iter().map(|r| format!("revoked {dir} {r} on {g}")),
    ))
}

/// The current rules of group `gid`, one direction (for the duplicate-rule
/// recovery).
pub(in crate::aws) async fn rules(
    ec2: &Ec2<'_>,
    gid: &str,
    ingress: bool,
) -> Result<SortedVecSet<Rule<String>>, CloudError> {
    let resp = ec2
        .describe(KIND, || {
            ec2.client.describe_security_groups().group_ids(gid).send()
        })
        .await?;
    let g = resp
        .security_groups()
        .first()
        .ok_or_else(|| missing("SecurityGroups"))?;
    match observed(ec2.scope, gid, g).spec {
        Spec::SecurityGroup(s) => Ok(if ingress { s.ingress } else { s.egress }),
        _ => Err(missing("SecurityGroup")),
    }
}

super::find_owned_by_tag!(describe_security_groups, security_groups, group_id);

/// Every owned group, page by page.
pub(in crate::aws) async fn observe(ec2: &Ec2<'_>) -> Result<Vec<ObservedResource>, CloudError> {
    all_pages(|mut out, token| async move {
        let resp = super::describe_owned_page!(ec2, describe_security_groups, set_group_ids, token)
            .await?;
        for g in resp.security_groups() {
            let id = g.group_id().ok_or_else(|| missing("GroupId"))?;
            out.push(observed(ec2.scope, id, g));
        }
        Ok((out, next(resp.next_token())))
    })
    .await
}

/// The observed form of one described security group; rules outside
/// Canon's model are logged and left out.
fn observed(scope: &Scope, id: &str, g: &aws_sdk_ec2::types::SecurityGroup) -> ObservedResource {
    let perms = |ps: &[aws_sdk_ec2::types::IpPermission]| -> Vec<Permission> {
        ps.iter().map(permission_from).collect()
    };
    let (ingress, bad_in) = from_permissions(&perms(g.ip_permissions()));
    let (egress, bad_out) = from_permissions(&perms(g.ip_permissions_egress()));
    for rule in bad_in.iter().chain(&bad_out) {
        tracing::warn!(
            group = id,
            rule,
            "security-group rule outside Canon's model (ignored)"
        );
    }
    ObservedResource {
        cloud_id: id.to_string(),
        region: scope.region.clone(),
        spec: Spec::SecurityGroup(SecurityGroupSpec {
            vpc: g.vpc_id().unwrap_or("").to_string(),
            group_name: g.group_name().unwrap_or("").to_string(),
            description: g.description().unwrap_or("").to_string(),
            ingress: ingress.into(),
            egress: egress.into(),
            tags: tags_from(g.tags()),
        }),
        association_ids: BTreeMap::new(),
        pending: false,
        life: None,
    }
}
