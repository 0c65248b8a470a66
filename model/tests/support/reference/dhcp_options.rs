//! DHCP options sets: created whole, deleted only when no VPC uses them.

use canon_model::{Action, DhcpOptionsSpec, Request, Spec};

use super::{id, not_mine, RefCloud};

pub(super) fn execute(cloud: &mut RefCloud, req: &Request) -> Result<Option<String>, String> {
    match &req.action {
        Action::CreateDhcpOptions {
            domain_name,
            domain_name_servers,
            ntp_servers,
            tags,
        } => {
            let spec = Spec::DhcpOptions(DhcpOptionsSpec {
                domain_name: domain_name.clone(),
                domain_name_servers: domain_name_servers.clone(),
                ntp_servers: ntp_servers.clone(),
                tags: tags.clone(),
            });
            return Ok(Some(cloud.create(&req.region, "dopt", spec)));
        }
        Action::DeleteDhcpOptions { dhcp_options } => {
            let d = id(dhcp_options)?;
            let in_use = cloud.state.iter().any(|r| {
                matches!(&r.spec, Spec::Vpc(v) if v.dhcp_options.as_deref() == Some(d.as_str()))
            });
            if in_use {
                return Err("DependencyViolation: dhcp options in use".into());
            }
            cloud.remove(&d)?;
        }
        _ => return Err(not_mine("dhcp options", req)),
    }
    Ok(None)
}
