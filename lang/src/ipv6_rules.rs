//! A security group rule on an IPv6 range admits nothing in a VPC without
//! an IPv6 block: this warns, once per group, at the binding that
//! declares it, naming the IPv6 rules, when the composition declares the
//! group's VPC without IPv6 (`ipv6: False`, the default). A group in a
//! VPC declared with `ipv6: True`, or in one the composition does not
//! declare (an external id, which may well have IPv6), is not warned
//! about.

use canon_model::{Peer, Spec};

use crate::ast;
use crate::diag::{Diagnostic, Kind};
use crate::lower::CompiledResource;

/// The warnings for the security groups of `resources` that have IPv6
/// rules in a VPC the composition declares without IPv6.
pub(crate) fn warnings(
    resources: &[CompiledResource],
    bindings: &[&ast::Binding],
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for r in resources {
        let Spec::SecurityGroup(sg) = &r.spec else {
            continue;
        };
        if sg.vpc.starts_with("external:") {
            continue;
        }
        let vpc_has_ipv6 = resources
            .iter()
            .any(|v| v.path == sg.vpc && matches!(&v.spec, Spec::Vpc(v) if v.ipv6));
        if vpc_has_ipv6 {
            continue;
        }
        let ipv6: Vec<String> = sg
            .ingress
            .iter()
            .chain(&sg.egress)
            .filter(|rule| matches!(rule.peer, Peer::Ipv6Cidr(_)))
            .map(|rule| rule.to_string())
            .collect();
        if ipv6.is_empty() {
            continue;
        }
        let binding = r.path.split(['.', '[']).next().unwrap_or_default();
        let Some(b) = bindings.iter().find(|b| b.name == binding) else {
            continue;
        };
        out.push(
            Diagnostic::new(
                Kind::Ipv6WithoutRange,
                b.name_span,
                format!(
                    "security group {}: its VPC {} has no IPv6 block, so its IPv6 rules admit nothing: {}",
                    r.path,
                    sg.vpc,
                    ipv6.join("; ")
                ),
            )
            .with_label("IPv6 rules in an IPv4-only VPC")
            .with_hint("give the VPC an IPv6 block (EC2.Vpc.new {…, ipv6: True}), or drop the IPv6 rules"),
        );
    }
    out
}
