//! Lowering: the values of a composition's bindings become resources with
//! stable paths (`dev-network.publicSubnets[0]`) and `canon_model` specs
//! whose references are paths. This is also where the cloud's rules are
//! checked for values built with raw constructors (which skip the library's
//! validating `.new`), so nothing the cloud would reject gets through. This
//! module names the resources; each kind's file under `kinds/` lowers it.

use std::rc::Rc;

use canon_model::{Region, Spec};

use crate::diag::Diagnostic;
use crate::kinds::{self, lowering::Paths};
use crate::span::Span;
use crate::value::{ResourceVal, Value};

/// How many values lowering may visit (guards against exponential sharing).
const MAX_VISITS: usize = 5_000_000;

/// One resource of a compiled composition, before a FID is chosen.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CompiledResource {
    /// Its path in the composition; the logical id is derived from it.
    pub path: String,
    pub region: Region,
    /// References to other resources are their paths (an external one's
    /// is `external:` and its cloud id).
    pub spec: Spec<String>,
    /// The existing resource `canon run --import` adopts for it
    /// (`importId`), if the composition names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_id: Option<String>,
}

/// Lowers the evaluated top-level bindings (in source order) to resources,
/// sorted by path. Errors are runtime diagnostics at the code that built the
/// offending value.
pub fn lower<'p>(
    bindings: &[(String, Value<'p>)],
) -> Result<Vec<CompiledResource>, Vec<Diagnostic>> {
    let mut l = Lowerer::default();
    l.assign_paths(bindings)?;
    let resources: Vec<&ResourceVal<'p>> = l.resources.iter().map(|r| &**r).collect();
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for r in &resources {
        match kinds::lower(r, &l.paths) {
            Ok(lowered) => out.push(CompiledResource {
                path: l.paths.get(r.id),
                region: lowered.region,
                spec: lowered.spec,
                import_id: lowered.import_id,
            }),
            Err(mut e) => errs.append(&mut e),
        }
    }
    if errs.is_empty() {
        errs = kinds::check_together(&resources, &l.paths);
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Names each resource by the first place it is met.
#[derive(Default)]
struct Lowerer<'p> {
    paths: Paths,
    /// Every resource, in the order it received its path.
    resources: Vec<Rc<ResourceVal<'p>>>,
    visits: usize,
}

impl<'p> Lowerer<'p> {
    fn assign_paths(&mut self, bindings: &[(String, Value<'p>)]) -> Result<(), Vec<Diagnostic>> {
        for (name, v) in bindings {
            self.walk(v, &mut name.clone())?;
        }
        // Resources reachable only through other resources get nested paths,
        // breadth first: their fields are walked in the order they were named.
        let mut next = 0;
        while let Some(r) = self.resources.get(next).cloned() {
            next += 1;
            let base = self.paths.get(r.id);
            for (f, v) in &r.fields {
                self.walk(v, &mut format!("{base}.{f}"))?;
            }
        }
        Ok(())
    }

    /// Gives `r` the path `path` unless it already has one.
    fn name(&mut self, r: &Rc<ResourceVal<'p>>, path: &str) {
        if self.paths.assign(r.id, path) {
            self.resources.push(r.clone());
        }
    }

    /// Walks plain data, naming each resource met the first time.
    fn walk(&mut self, v: &Value<'p>, path: &mut String) -> Result<(), Vec<Diagnostic>> {
        self.visits += 1;
        if self.visits > MAX_VISITS {
            return Err(vec![Diagnostic::runtime(
                Span::default(),
                "the composition is too large to lower (too many values)",
            )]);
        }
        match v {
            // An external resource is referred to, never lowered.
            Value::Resource(r) if r.external_id().is_some() => {}
            Value::Resource(r) => self.name(r, path),
            Value::Record(rec) => {
                for (f, x) in &rec.fields {
                    let len = path.len();
                    path.push('.');
                    path.push_str(f);
                    self.walk(x, path)?;
                    path.truncate(len);
                }
            }
            Value::List(items) | Value::Tuple(items) => {
                for (i, x) in items.iter().enumerate() {
                    let len = path.len();
                    path.push('[');
                    path.push_str(&i.to_string());
                    path.push(']');
                    self.walk(x, path)?;
                    path.truncate(len);
                }
            }
            Value::Ctor(c) => {
                if let Some(p) = &c.payload {
                    let len = path.len();
                    path.push('.');
                    path.push_str(c.name);
                    self.walk(p, path)?;
                    path.truncate(len);
                }
            }
            _ => {}
        }
        Ok(())
    }
}
