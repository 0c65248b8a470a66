//! What every kind's lowering shares, written once: reading a resource
//! value's fields, reporting a diagnostic at the code that built a value,
//! turning a referenced resource into its path, and the value shapes several
//! kinds read (regions, CIDR blocks, a range of either family, tags).

use std::collections::HashMap;

use canon_model::{IpCidr, Ipv4Cidr, Ipv6Cidr, Region, Spec, Tags, OWNERSHIP_TAG};

use crate::diag::Diagnostic;
use crate::value::{ResourceVal, ValOrigin, Value};

/// What a kind's lowering gives: the resource's region and its spec, or
/// `None` when it could not be built (the reasons are diagnostics).
pub(super) type Lowered = Option<(Region, Spec<String>)>;

/// The path of every resource of the composition, by resource id: how one
/// resource refers to another once lowered.
#[derive(Debug, Default)]
pub(crate) struct Paths(HashMap<u64, String>);

impl Paths {
    /// Names resource `id` unless it already has a path; true if it did not.
    pub(crate) fn assign(&mut self, id: u64, path: &str) -> bool {
        match self.0.entry(id) {
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(path.to_string());
                true
            }
            std::collections::hash_map::Entry::Occupied(_) => false,
        }
    }

    /// The path of resource `id` (empty if it has none, which lowering never
    /// asks for).
    pub(crate) fn get(&self, id: u64) -> String {
        self.0.get(&id).cloned().unwrap_or_default()
    }

    /// The path of a resource value (an external one's is its id behind
    /// `external:`); `None` for any other value.
    pub(crate) fn of(&self, v: &Value<'_>) -> Option<String> {
        match v {
            Value::Resource(r) => match r.external_id() {
                Some(id) => Some(super::external_path(id)),
                None => self.0.get(&r.id).cloned(),
            },
            _ => None,
        }
    }
}

/// One resource value being lowered: its fields, its tags (lowered first,
/// so their diagnostics come first), the paths of the others, and the
/// diagnostics raised so far.
pub(super) struct Lowering<'a, 'p> {
    resource: &'a ResourceVal<'p>,
    paths: &'a Paths,
    tags: Tags,
    errs: Vec<Diagnostic>,
}

impl<'a, 'p> Lowering<'a, 'p> {
    pub(super) fn new(resource: &'a ResourceVal<'p>, paths: &'a Paths) -> Self {
        let mut l = Lowering {
            resource,
            paths,
            tags: Tags::new(),
            errs: Vec::new(),
        };
        l.tags = l.lower_tags(&l.field("tags"));
        l
    }

    /// The resource's kind: the name of its `resource type` (`Vpc`).
    pub(super) fn kind(&self) -> &'p str {
        self.resource.kind
    }

    /// A field's value; an omitted optional field is `Value::None`.
    pub(super) fn field(&self, name: &str) -> Value<'p> {
        self.resource
            .fields
            .get(name)
            .cloned()
            .unwrap_or(Value::None)
    }

    /// The code that built the resource.
    pub(super) fn origin(&self) -> &'a ValOrigin<'p> {
        &self.resource.origin
    }

    /// Reports a problem with the resource at the code that built it.
    pub(super) fn error(&mut self, message: String) {
        let origin = self.origin();
        self.error_at(origin, message);
    }

    /// Reports a problem at the code that built `origin`'s value.
    pub(super) fn error_at(&mut self, origin: &ValOrigin<'_>, message: String) {
        self.errs.push(err_at(origin, message));
    }

    /// The path of a referenced resource.
    pub(super) fn path_of(&self, v: &Value<'_>) -> Option<String> {
        self.paths.of(v)
    }

    /// The paths of a list of referenced resources.
    pub(super) fn paths_of<C: FromIterator<String>>(&self, list: &Value<'_>) -> C {
        list.as_list()
            .unwrap_or(&[])
            .iter()
            .filter_map(|v| self.paths.of(v))
            .collect()
    }

    /// The resource's own path.
    pub(super) fn own_path(&self) -> String {
        self.paths.get(self.resource.id)
    }

    /// The resource's tags, checked.
    pub(super) fn tags(&self) -> Tags {
        self.tags.clone()
    }

    /// The `cidrBlock` of a VPC or subnet: a valid block, /16 to /28.
    pub(super) fn cidr_block(&mut self) -> Option<Ipv4Cidr> {
        let kind = self.kind();
        let v = self.field("cidrBlock");
        match v.as_str().unwrap_or("").parse::<Ipv4Cidr>() {
            Ok(c) if (16..=28).contains(&c.prefix()) => Some(c),
            Ok(c) => {
                self.error(format!(
                    "Invalid {kind}: cidrBlock size must be between a /28 and /16 netmask. \
                     (It is {c}, a /{}.)",
                    c.prefix()
                ));
                None
            }
            Err(e) => {
                self.error(format!("Invalid {kind}: cidrBlock {e}"));
                None
            }
        }
    }

    /// The spec if nothing was wrong, else every diagnostic.
    pub(super) fn finish(
        self,
        lowered: Lowered,
    ) -> Result<(Region, Spec<String>), Vec<Diagnostic>> {
        match lowered {
            Some(x) if self.errs.is_empty() => Ok(x),
            _ => Err(self.errs),
        }
    }

    fn lower_tags(&mut self, v: &Value<'p>) -> Tags {
        let mut tags = Tags::new();
        for t in v.as_list().unwrap_or(&[]) {
            let to = record_origin(t).unwrap_or(self.origin());
            let text = |name: &str| {
                t.field(name)
                    .and_then(|k| k.as_str().map(String::from))
                    .unwrap_or_default()
            };
            let (key, value) = (text("key"), text("value"));
            match tag_problem(&key, &value, &tags) {
                Some(problem) => self.error_at(to, problem),
                None => {
                    tags.insert(key, value);
                }
            }
        }
        tags
    }
}

/// Why a tag cannot be added to `tags`, if it cannot.
fn tag_problem(key: &str, value: &str, tags: &Tags) -> Option<String> {
    let kl = key.chars().count();
    let vl = value.chars().count();
    if kl == 0 || kl > 128 {
        Some(format!(
            "Invalid Tag: key must be 1 to 128 characters long (it has {kl})"
        ))
    } else if vl > 256 {
        Some(format!(
            "Invalid Tag: value must be at most 256 characters long (it has {vl})"
        ))
    } else if key.starts_with("aws:") || key == OWNERSHIP_TAG {
        Some(format!("Invalid Tag: the key {key:?} is reserved"))
    } else if tags.contains_key(key) {
        Some(format!("Invalid Tag: the key {key:?} is given twice"))
    } else {
        None
    }
}

/// A runtime diagnostic at the code that built a value, with its call stack.
pub(super) fn err_at(origin: &ValOrigin, message: String) -> Diagnostic {
    let mut d = Diagnostic::runtime(origin.span, message);
    d.stack = origin.frames();
    d
}

/// The identity of a resource value (`None` for anything else).
pub(super) fn resource_id(v: &Value<'_>) -> Option<u64> {
    match v {
        Value::Resource(r) => Some(r.id),
        _ => None,
    }
}

/// Where a record value was built, if it is a record.
pub(super) fn record_origin<'a, 'p>(v: &'a Value<'p>) -> Option<&'a ValOrigin<'p>> {
    match v {
        Value::Record(r) => r.origin.as_ref(),
        _ => None,
    }
}

/// The one range `record` gives, in its field `v4` (an IPv4 block) or `v6`
/// (an IPv6 one). A record giving neither or both, or a block that does not
/// parse, is refused with the end of a diagnostic: `give it one {noun}: …`,
/// or the field and what is wrong with its block.
pub(super) fn one_range(
    record: &Value<'_>,
    (v4, v6): (&str, &str),
    noun: &str,
) -> Result<IpCidr, String> {
    let text = |name: &str| {
        record
            .field(name)
            .and_then(|x| x.as_str().map(String::from))
    };
    match (text(v4), text(v6)) {
        (Some(c), None) => c
            .parse::<Ipv4Cidr>()
            .map(IpCidr::V4)
            .map_err(|e| format!("{v4} {e}")),
        (None, Some(c)) => c
            .parse::<Ipv6Cidr>()
            .map(IpCidr::V6)
            .map_err(|e| format!("{v6} {e}")),
        _ => Err(format!("give it one {noun}: {v4} (IPv4) or {v6} (IPv6)")),
    }
}

/// The strings of a list of strings.
pub(super) fn strings(v: &Value<'_>) -> Vec<String> {
    v.as_list()
        .unwrap_or(&[])
        .iter()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

/// The region code of a `Region` constructor (`Us-west-2` → `us-west-2`).
pub(super) fn region_of(v: &Value<'_>) -> Region {
    match v {
        Value::Ctor(c) => Region::new(c.name.to_lowercase()),
        _ => Region::new(""),
    }
}

/// The region of a VPC value.
pub(super) fn vpc_region(vpc: &Value<'_>) -> Option<Region> {
    match vpc {
        Value::Resource(r) => r.fields.get("region").map(region_of),
        _ => None,
    }
}

/// The region of a resource that lives in a VPC (empty if it has none,
/// which the types rule out).
pub(super) fn region_of_vpc(vpc: &Value<'_>) -> Region {
    vpc_region(vpc).unwrap_or_else(|| Region::new(""))
}
