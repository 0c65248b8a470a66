//! DHCP option sets through EC2, and the recognition of the account's
//! default set (a VPC on it reads as having none).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{Filter, NewDhcpConfiguration};
use canon_model::{
    Action, CloudRef, DhcpOptionsSpec, ObservedResource, ResourceKind, Spec, Tags, OWNERSHIP_TAG,
};

use super::{tags, Call, Ec2};
use crate::aws::convert::{tag_specs, tags_from};
use crate::aws::missing;
use crate::aws::observe::{all_pages, next};
use crate::error::misrouted;
use crate::refs::id;
use crate::{CloudError, Outcome};

const KIND: ResourceKind = ResourceKind::DhcpOptions;

/// Sends the call of one DHCP-options action.
pub(in crate::aws) async fn run(call: &Call<'_>, action: &Action) -> Result<Outcome, CloudError> {
    match action {
        Action::CreateDhcpOptions {
            domain_name,
            domain_name_servers,
            ntp_servers,
            tags,
        } => create(call, domain_name, domain_name_servers, ntp_servers, tags).await,
        Action::DeleteDhcpOptions { dhcp_options } => {
            let d = id(dhcp_options)?;
            call.send(|| {
                call.ec2
                    .client
                    .delete_dhcp_options()
                    .dhcp_options_id(d)
                    .send()
            })
            .await?;
            Ok(Outcome::changed([format!("deleted {d}")]))
        }
        Action::AssociateDhcpOptions { vpc, dhcp_options } => {
            associate(call, vpc, dhcp_options.as_ref()).await
        }
        _ => Err(misrouted(action)),
    }
}

async fn create(
    call: &Call<'_>,
    domain_name: &Option<String>,
    domain_name_servers: &[String],
    ntp_servers: &[String],
    tags: &Tags,
) -> Result<Outcome, CloudError> {
    let mut confs = Vec::new();
    let mut conf = |key: &str, values: Vec<String>| {
        if !values.is_empty() {
            confs.push(
                NewDhcpConfiguration::builder()
                    .key(key)
                    .set_values(Some(values))
                    .build(),
            );
        }
    };
    conf("domain-name", domain_name.iter().cloned().collect());
    conf("domain-name-servers", domain_name_servers.to_vec());
    conf("ntp-servers", ntp_servers.to_vec());
    let resp = call
        .send(|| {
            call.ec2
                .client
                .create_dhcp_options()
                .set_dhcp_configurations(Some(confs.clone()))
                .set_tag_specifications(tag_specs(KIND, tags))
                .send()
        })
        .await?;
    let created = resp.dhcp_options().ok_or_else(|| missing("DhcpOptions"))?;
    let d = created
        .dhcp_options_id()
        .ok_or_else(|| missing("DhcpOptionsId"))?;
    tags::ensure_tags(&call.ec2, d, tags, created.tags()).await?;
    Ok(Outcome::created(d, "dhcp options"))
}

async fn associate(
    call: &Call<'_>,
    vpc: &CloudRef,
    dhcp_options: Option<&CloudRef>,
) -> Result<Outcome, CloudError> {
    let v = id(vpc)?;
    let d = match dhcp_options {
        Some(d) => id(d)?,
        None => "default",
    };
    call.send(|| {
        call.ec2
            .client
            .associate_dhcp_options()
            .vpc_id(v)
            .dhcp_options_id(d)
            .send()
    })
    .await?;
    Ok(Outcome::changed([format!("associated {d} with {v}")]))
}

super::find_owned_by_tag!(describe_dhcp_options, dhcp_options, dhcp_options_id);

/// True for a DHCP option set that only says what the account's default
/// set says (Amazon's DNS, the region's internal domain).
fn looks_default(domain: &Option<String>, servers: &[String], ntp: &[String]) -> bool {
    let domain_ok = domain
        .as_deref()
        .is_none_or(|d| d.ends_with(".compute.internal") || d == "ec2.internal");
    domain_ok && ntp.is_empty() && servers.iter().all(|s| s == "AmazonProvidedDNS")
}

type DhcpConfig = (Option<String>, Vec<String>, Vec<String>);

fn dhcp_config(d: &aws_sdk_ec2::types::DhcpOptions) -> DhcpConfig {
    let mut domain = None;
    let mut servers = Vec::new();
    let mut ntp = Vec::new();
    for c in d.dhcp_configurations() {
        let values: Vec<String> = c
            .values()
            .iter()
            .filter_map(|v| v.value().map(String::from))
            .collect();
        match c.key() {
            Some("domain-name") => domain = values.into_iter().next(),
            Some("domain-name-servers") => servers = values,
            Some("ntp-servers") => ntp = values,
            _ => {}
        }
    }
    (domain, servers, ntp)
}

/// Every owned set, page by page.
pub(in crate::aws) async fn observe(ec2: &Ec2<'_>) -> Result<Vec<ObservedResource>, CloudError> {
    all_pages(|mut out, token| async move {
        let resp =
            super::describe_owned_page!(ec2, describe_dhcp_options, set_dhcp_options_ids, token)
                .await?;
        for d in resp.dhcp_options() {
            let id = d
                .dhcp_options_id()
                .ok_or_else(|| missing("DhcpOptionsId"))?;
            let (domain_name, domain_name_servers, ntp_servers) = dhcp_config(d);
            out.push(ObservedResource {
                cloud_id: id.to_string(),
                region: ec2.scope.region.clone(),
                spec: Spec::DhcpOptions(DhcpOptionsSpec {
                    domain_name,
                    domain_name_servers,
                    ntp_servers,
                    tags: tags_from(d.tags()),
                }),
                association_ids: BTreeMap::new(),
                pending: false,
                life: None,
            });
        }
        Ok((out, next(resp.next_token())))
    })
    .await
}

/// Which of `ids` (DHCP sets not owned by Canon) are the account's
/// default set; remembered per scope, so this costs one batched describe
/// the first time.
pub(in crate::aws) async fn default_sets(
    ec2: &Ec2<'_>,
    ids: &BTreeSet<String>,
) -> Result<BTreeSet<String>, CloudError> {
    let known = ec2
        .cloud
        .default_dhcp
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(ec2.scope)
        .cloned()
        .unwrap_or_default();
    let unknown: Vec<String> = ids
        .iter()
        .filter(|i| !known.contains(*i))
        .cloned()
        .collect();
    let mut found = known;
    for chunk in unknown.chunks(200) {
        let resp = ec2
            .describe(KIND, || {
                ec2.client
                    .describe_dhcp_options()
                    .filters(
                        Filter::builder()
                            .name("dhcp-options-id")
                            .set_values(Some(chunk.to_vec()))
                            .build(),
                    )
                    .send()
            })
            .await?;
        for d in resp.dhcp_options() {
            let (domain, servers, ntp) = dhcp_config(d);
            let owned = d.tags().iter().any(|t| t.key() == Some(OWNERSHIP_TAG));
            if !owned && looks_default(&domain, &servers, &ntp) {
                if let Some(id) = d.dhcp_options_id() {
                    found.insert(id.to_string());
                }
            }
        }
    }
    ec2.cloud
        .default_dhcp
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(ec2.scope.clone(), found.clone());
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::looks_default;

    #[test]
    fn default_dhcp_sets_are_recognised() {
        let amazon = vec!["AmazonProvidedDNS".to_string()];
        assert!(looks_default(
            &Some("us-west-2.compute.internal".into()),
            &amazon,
            &[]
        ));
        assert!(looks_default(&Some("ec2.internal".into()), &amazon, &[]));
        assert!(!looks_default(&Some("corp.example".into()), &amazon, &[]));
        assert!(!looks_default(
            &Some("ec2.internal".into()),
            &["10.0.0.2".to_string()],
            &[]
        ));
        assert!(!looks_default(&None, &amazon, &["10.0.0.1".to_string()]));
    }
}
