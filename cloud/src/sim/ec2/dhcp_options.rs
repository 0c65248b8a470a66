//! Simulated DHCP option sets: create, delete, and association with a VPC
//! (`None` puts the VPC back on the account's default set).

use canon_model::{Action, CloudRef, DhcpOptionsSpec, ObservedSpec, ResourceKind, Spec, Tags};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::tags::check_tags;
use crate::error::misrouted;
use crate::refs::id;
use crate::sim::region::{changed, err, new_id, not_found, Applied, Call, Meta, RegionState};
use crate::{CloudError, Outcome};

const KIND: ResourceKind = ResourceKind::DhcpOptions;

/// A stored DHCP option set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Dopt {
    pub meta: Meta,
    pub domain_name: Option<String>,
    pub servers: Vec<String>,
    pub ntp: Vec<String>,
}

impl Dopt {
    /// The set as a describe shows it.
    pub fn spec(&self) -> ObservedSpec {
        Spec::DhcpOptions(DhcpOptionsSpec {
            domain_name: self.domain_name.clone(),
            domain_name_servers: self.servers.clone(),
            ntp_servers: self.ntp.clone(),
            tags: self.meta.tags.clone(),
        })
    }
}

/// Applies one DHCP-options action.
pub(crate) fn apply<R: Rng + ?Sized>(
    region: &mut RegionState,
    action: &Action,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    match action {
        Action::CreateDhcpOptions {
            domain_name,
            domain_name_servers,
            ntp_servers,
            tags,
        } => create(
            region,
            domain_name,
            domain_name_servers,
            ntp_servers,
            tags,
            call,
        ),
        Action::DeleteDhcpOptions { dhcp_options } => delete(region, dhcp_options),
        Action::AssociateDhcpOptions { vpc, dhcp_options } => {
            associate(region, vpc, dhcp_options.as_ref())
        }
        _ => Err(misrouted(action)),
    }
}

fn create<R: Rng + ?Sized>(
    region: &mut RegionState,
    domain_name: &Option<String>,
    domain_name_servers: &[String],
    ntp_servers: &[String],
    tags: &Tags,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    check_tags(tags)?;
    if domain_name.is_none() && domain_name_servers.is_empty() && ntp_servers.is_empty() {
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
    let rid = new_id(call.rng, "dopt");
    region.dhcp.insert(
        rid.clone(),
        Dopt {
            meta: Meta::new(tags, call.timing.visible_at),
            domain_name: domain_name.clone(),
            servers: domain_name_servers.to_vec(),
            ntp: ntp_servers.to_vec(),
        },
    );
    Ok(Applied::mutated(
        Outcome::created(&rid, "dhcp options"),
        Some(rid),
    ))
}

fn delete(region: &mut RegionState, dhcp_options: &CloudRef) -> Result<Applied, CloudError> {
    let d = id(dhcp_options)?;
    if !region.dhcp.contains_key(d) {
        return Err(not_found(KIND, d));
    }
    if region.vpcs.values().any(|v| v.dhcp == d) {
        return Err(err(
            "DependencyViolation",
            format!("The dhcpOptions '{d}' has dependencies and cannot be deleted."),
        ));
    }
    region.dhcp.remove(d);
    Ok(Applied::mutated(
        changed(format!("deleted {d}")),
        Some(d.to_string()),
    ))
}

fn associate(
    region: &mut RegionState,
    vpc: &CloudRef,
    dhcp_options: Option<&CloudRef>,
) -> Result<Applied, CloudError> {
    let v = id(vpc)?.to_string();
    region.vpc(&v)?;
    let d = match dhcp_options {
        Some(d) => {
            let d = id(d)?;
            if !region.dhcp.contains_key(d) {
                return Err(not_found(KIND, d));
            }
            d.to_string()
        }
        None => "default".to_string(),
    };
    if let Some(x) = region.vpcs.get_mut(&v) {
        x.dhcp = d.clone();
    }
    Ok(Applied::mutated(
        changed(format!("associated {d} with {v}")),
        Some(v),
    ))
}
