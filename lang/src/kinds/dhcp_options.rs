//! DHCP options sets (`Canon.AWS.EC2.DhcpOptions`): lowering and encoding.

use canon_model::{DhcpOptionsSpec, Spec};
use canon_proto::canon::composition::v1 as pb;

use super::encoding::{tags_from_proto, tags_to_proto};
use super::lowering::{region_of, strings, Lowered, Lowering};

/// The stdlib resource type this file lowers.
pub(super) const NAME: &str = "DhcpOptions";

pub(super) fn lower(l: &mut Lowering<'_, '_>) -> Lowered {
    let spec = DhcpOptionsSpec {
        domain_name: l.field("domainName").as_str().map(String::from),
        domain_name_servers: strings(&l.field("domainNameServers")),
        ntp_servers: strings(&l.field("ntpServers")),
        tags: l.tags(),
    };
    Some((region_of(&l.field("region")), Spec::DhcpOptions(spec)))
}

pub(super) fn to_proto(s: &DhcpOptionsSpec) -> pb::DhcpOptions {
    pb::DhcpOptions {
        domain_name: s.domain_name.clone(),
        domain_name_servers: s.domain_name_servers.clone(),
        ntp_servers: s.ntp_servers.clone(),
        tags: tags_to_proto(&s.tags),
    }
}

pub(super) fn from_proto(s: pb::DhcpOptions) -> Result<DhcpOptionsSpec, String> {
    Ok(DhcpOptionsSpec {
        domain_name: s.domain_name,
        domain_name_servers: s.domain_name_servers,
        ntp_servers: s.ntp_servers,
        tags: tags_from_proto(s.tags),
    })
}
