//! What a validation sees: the resources of a composition (or of a process
//! as observed) as a value of `Canon.Validation.Resources`, built from their
//! `canon_model` specs. The view is deliberately small and flat (strings,
//! numbers, lists; no optionals) so that validations are easy to write and
//! the same view can be built from a compiled composition and from what the
//! cloud shows.

use std::collections::BTreeMap;
use std::rc::Rc;

use canon_model::{Peer, Rule, Spec, Tags};

use super::Subject;
use crate::kinds;
use crate::value::{RecordVal, Value};

/// The `Canon.Validation.Resources` value of `subjects`.
pub(super) fn resources_value<'p>(subjects: &[Subject]) -> Value<'p> {
    let mut all = Vec::new();
    let mut vpcs = Vec::new();
    let mut subnets = Vec::new();
    let mut groups = Vec::new();
    let mut instances = Vec::new();
    for s in subjects {
        all.push(record(vec![
            ("path", text(&s.path)),
            ("kind", text(kinds::type_name(s.spec.kind()))),
            ("region", text(&s.region)),
            ("tags", tags(s.spec.tags())),
        ]));
        match &s.spec {
            Spec::Vpc(v) => vpcs.push(record(vec![
                ("path", text(&s.path)),
                ("region", text(&s.region)),
                ("cidrBlock", text(&v.cidr_block.to_string())),
                ("tags", tags(&v.tags)),
            ])),
            Spec::Subnet(n) => subnets.push(record(vec![
                ("path", text(&s.path)),
                ("vpc", text(&n.vpc)),
                ("availabilityZone", text(&n.availability_zone)),
                ("cidrBlock", text(&n.cidr_block.to_string())),
                ("tags", tags(&n.tags)),
            ])),
            Spec::SecurityGroup(g) => groups.push(record(vec![
                ("path", text(&s.path)),
                ("vpc", text(&g.vpc)),
                ("groupName", text(&g.group_name)),
                ("ingress", list(g.ingress.iter().map(rule).collect())),
                ("egress", list(g.egress.iter().map(rule).collect())),
                ("tags", tags(&g.tags)),
            ])),
            Spec::Instance(i) => instances.push(record(vec![
                ("path", text(&s.path)),
                ("subnet", text(&i.subnet)),
                ("imageId", text(&i.image_id)),
                ("instanceType", text(&i.instance_type)),
                ("tags", tags(&i.tags)),
            ])),
            _ => {}
        }
    }
    record(vec![
        ("all", list(all)),
        ("vpcs", list(vpcs)),
        ("subnets", list(subnets)),
        ("securityGroups", list(groups)),
        ("instances", list(instances)),
    ])
}

fn rule<'p>(r: &Rule<String>) -> Value<'p> {
    let (cidr, group, prefix_list) = match &r.peer {
        Peer::Cidr(c) => (c.to_string(), String::new(), String::new()),
        Peer::Ipv6Cidr(c) => (c.to_string(), String::new(), String::new()),
        Peer::Group(g) => (String::new(), g.clone(), String::new()),
        Peer::PrefixList(p) => (String::new(), String::new(), p.clone()),
    };
    record(vec![
        ("protocol", text(&r.protocol.ec2_name())),
        ("fromPort", Value::Int(i64::from(r.from_port))),
        ("toPort", Value::Int(i64::from(r.to_port))),
        ("cidr", text(&cidr)),
        ("group", text(&group)),
        ("prefixList", text(&prefix_list)),
    ])
}

fn tags<'p>(tags: &Tags) -> Value<'p> {
    list(
        tags.iter()
            .map(|(k, v)| record(vec![("key", text(k)), ("value", text(v))]))
            .collect(),
    )
}

fn record<'p>(fields: Vec<(&'static str, Value<'p>)>) -> Value<'p> {
    Value::Record(Rc::new(RecordVal {
        fields: fields.into_iter().collect::<BTreeMap<_, _>>(),
        origin: None,
    }))
}

fn list<'p>(items: Vec<Value<'p>>) -> Value<'p> {
    Value::List(Rc::new(items))
}

fn text<'p>(s: &str) -> Value<'p> {
    Value::Str(Rc::from(s))
}
