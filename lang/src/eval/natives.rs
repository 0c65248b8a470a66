//! The native functions: those the standard library declares with
//! `native fun` (the prelude's list and text functions, `Canon.Core.Cidr`,
//! `Canon.AWS.EC2`'s external resources), implemented here, one function
//! per family. Like everything the evaluator does, each is charged in
//! steps and bounded in size.

use std::rc::Rc;

use canon_model::{CidrError, Ipv4Cidr, ResourceKind};

use super::{Evaluator, MAX_LEN, R};
use crate::ast::ModuleId;
use crate::kinds;
use crate::span::Span;
use crate::value::{FrameName, ResourceVal, Value, EXTERNAL_ID_FIELD};

/// The module whose natives are CIDR arithmetic.
const CIDR_MODULE: &str = "Canon.Core.Cidr";

/// The module whose natives make external resources (`Vpc.external`).
const EC2_MODULE: &str = "Canon.AWS.EC2";

/// A native's arguments; a missing one reads as `None` (the checker rules
/// that out).
struct Args<'p>(Vec<Value<'p>>);

impl<'p> Args<'p> {
    fn get(&self, i: usize) -> Value<'p> {
        self.0.get(i).cloned().unwrap_or(Value::None)
    }

    fn list(&self, i: usize) -> &[Value<'p>] {
        self.0.get(i).and_then(|v| v.as_list()).unwrap_or(&[])
    }

    fn str(&self, i: usize) -> &str {
        self.0.get(i).and_then(|v| v.as_str()).unwrap_or("")
    }

    fn cidr(&self, i: usize) -> Result<Ipv4Cidr, CidrError> {
        self.str(i).parse::<Ipv4Cidr>()
    }
}

fn str_value(s: impl AsRef<str>) -> Value<'static> {
    Value::Str(Rc::from(s.as_ref()))
}

impl<'p> Evaluator<'p> {
    /// Calls native function `name` of module `m`.
    pub(super) fn native(
        &mut self,
        m: ModuleId,
        name: &'p str,
        args: Vec<Value<'p>>,
        span: Span,
    ) -> R<'p> {
        let p = self.p;
        let module = p.modules.get(m).map(|md| md.name.as_str()).unwrap_or("");
        let args = Args(args);
        let found = self
            .higher_order(name, &args, span)
            .or_else(|| self.list_native(name, &args, span))
            .or_else(|| self.text_native(name, &args, span))
            .or_else(|| match module {
                CIDR_MODULE => self.cidr_native(name, &args, span),
                EC2_MODULE => self.external_native(m, name, &args, span),
                _ => None,
            });
        found.unwrap_or_else(|| {
            self.err(
                span,
                format!("internal: no native function {module}.{name}"),
            )
        })
    }

    /// `Vpc.external(id, region)`, `Subnet.external(id, vpc)`, …: a
    /// resource Canon does not manage, known by its cloud id (checked
    /// against the kind here, at the caller's line) and where it lives.
    fn external_native(
        &mut self,
        m: ModuleId,
        name: &'p str,
        args: &Args<'p>,
        span: Span,
    ) -> Option<R<'p>> {
        let type_name = name.strip_suffix(".external")?;
        let p = self.p;
        let Some((ty, def)) = p
            .types
            .iter()
            .enumerate()
            .find(|(_, d)| d.module == m && d.resource && d.name == type_name)
        else {
            return Some(self.err(span, format!("internal: no resource type {type_name}")));
        };
        let kind = kinds::kind_named(type_name)?;
        let id = args.str(0);
        if let Some(problem) = kinds::id_problem(kind, id) {
            return Some(self.err(span, format!("Invalid {type_name}.external: {problem}")));
        }
        // A VPC lives in a region; the others in a VPC.
        let place = if kind == ResourceKind::Vpc {
            "region"
        } else {
            "vpc"
        };
        let fields = [(EXTERNAL_ID_FIELD, str_value(id)), (place, args.get(1))]
            .into_iter()
            .collect();
        self.next_id += 1;
        Some(Ok(Value::Resource(Rc::new(ResourceVal {
            id: self.next_id,
            ty,
            kind: &def.name,
            fields,
            origin: self.origin(span),
        }))))
    }

    /// `map`, `filter`, `all`, `any`: apply a function to each item.
    fn higher_order(&mut self, name: &'p str, args: &Args<'p>, span: Span) -> Option<R<'p>> {
        let (f, items) = (args.get(0), args.list(1));
        Some(match name {
            "map" => self.map(&f, items, span),
            "filter" => self.filter(&f, items, span),
            "all" => self.quantify(true, name, &f, items, span),
            "any" => self.quantify(false, name, &f, items, span),
            _ => return None,
        })
    }

    /// Calls `f(x)` with `name` on the call stack.
    fn call_1(&mut self, f: &Value<'p>, x: &Value<'p>, span: Span, name: &'p str) -> R<'p> {
        self.apply(f.clone(), vec![x.clone()], span, FrameName::Name(name))
    }

    fn map(&mut self, f: &Value<'p>, items: &[Value<'p>], span: Span) -> R<'p> {
        let mut out = Vec::new();
        for x in items {
            out.push(self.call_1(f, x, span, "map")?);
        }
        Ok(Value::List(Rc::new(out)))
    }

    fn filter(&mut self, f: &Value<'p>, items: &[Value<'p>], span: Span) -> R<'p> {
        let mut out = Vec::new();
        for x in items {
            if self.call_1(f, x, span, "filter")?.as_bool() == Some(true) {
                out.push(x.clone());
            }
        }
        Ok(Value::List(Rc::new(out)))
    }

    /// `all` (`want_all`) or `any`, stopping at the first item that decides.
    fn quantify(
        &mut self,
        want_all: bool,
        name: &'p str,
        f: &Value<'p>,
        items: &[Value<'p>],
        span: Span,
    ) -> R<'p> {
        for x in items {
            let b = self.call_1(f, x, span, name)?.as_bool() == Some(true);
            if b != want_all {
                return Ok(Value::Bool(b));
            }
        }
        Ok(Value::Bool(want_all))
    }

    /// `length`, `concat`, `indexed`, `range`: lists.
    fn list_native(&mut self, name: &str, args: &Args<'p>, span: Span) -> Option<R<'p>> {
        Some(match name {
            "length" => Ok(Value::Int(args.list(0).len() as i64)),
            "concat" => self.concat(args.list(0), span),
            "indexed" => {
                let items = args.list(0);
                self.charge(items.len(), span).map(|()| {
                    let pairs = items
                        .iter()
                        .enumerate()
                        .map(|(i, x)| Value::Tuple(Rc::new(vec![Value::Int(i as i64), x.clone()])));
                    Value::List(Rc::new(pairs.collect()))
                })
            }
            "range" => self.range(args, span),
            _ => return None,
        })
    }

    fn concat(&mut self, lists: &[Value<'p>], span: Span) -> R<'p> {
        let mut out = Vec::new();
        for l in lists {
            let items = l.as_list().unwrap_or(&[]);
            self.charge(items.len(), span)?;
            out.extend(items.iter().cloned());
            if out.len() > MAX_LEN {
                return self.err(span, "list is too long");
            }
        }
        Ok(Value::List(Rc::new(out)))
    }

    fn range(&mut self, args: &Args<'p>, span: Span) -> R<'p> {
        let from = args.get(0).as_int().unwrap_or(0);
        let to = args.get(1).as_int().unwrap_or(0);
        if to.saturating_sub(from) > MAX_LEN as i64 {
            return self.err(span, "range is too long");
        }
        self.charge(usize::try_from(to.saturating_sub(from)).unwrap_or(0), span)?;
        Ok(Value::List(Rc::new((from..to).map(Value::Int).collect())))
    }

    /// `error`, `not`, `toString`, `strLength`, `durationSeconds`,
    /// `lowercase`, `join`: scalars and text.
    fn text_native(&mut self, name: &str, args: &Args<'p>, span: Span) -> Option<R<'p>> {
        Some(match name {
            "error" => self.err(span, args.str(0)),
            "not" => Ok(Value::Bool(!args.get(0).as_bool().unwrap_or(false))),
            "toString" => Ok(str_value(args.get(0).as_int().unwrap_or(0).to_string())),
            "strLength" => Ok(Value::Int(args.str(0).chars().count() as i64)),
            "durationSeconds" => Ok(Value::Int(duration_seconds(args.str(0)))),
            "lowercase" => Ok(str_value(args.str(0).to_lowercase())),
            "join" => {
                let parts: Vec<&str> = args
                    .list(1)
                    .iter()
                    .map(|v| v.as_str().unwrap_or(""))
                    .collect();
                let out = parts.join(args.str(0));
                if out.len() > MAX_LEN {
                    return Some(self.err(span, "string is too long"));
                }
                Ok(str_value(out))
            }
            _ => return None,
        })
    }

    /// `Canon.Core.Cidr`: `cidrError`, `prefix`, `contains`, `overlaps`,
    /// `overlapping`.
    fn cidr_native(&mut self, name: &str, args: &Args<'p>, span: Span) -> Option<R<'p>> {
        let both = |f: fn(Ipv4Cidr, Ipv4Cidr) -> bool| match (args.cidr(0), args.cidr(1)) {
            (Ok(x), Ok(y)) => f(x, y),
            _ => false,
        };
        Some(match name {
            "cidrError" => Ok(str_value(
                args.cidr(0)
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default(),
            )),
            "prefix" => Ok(Value::Int(
                args.cidr(0).map(|c| i64::from(c.prefix())).unwrap_or(-1),
            )),
            "contains" => Ok(Value::Bool(both(|x, y| x.contains(y)))),
            "overlaps" => Ok(Value::Bool(both(|x, y| x.overlaps(y)))),
            "overlapping" => self.overlapping(args.list(0), span),
            _ => return None,
        })
    }

    /// Every pair of blocks in the list that overlap, each pair once, in
    /// list order; text that is not a block overlaps nothing.
    fn overlapping(&mut self, items: &[Value<'p>], span: Span) -> R<'p> {
        let blocks: Vec<(&str, Option<Ipv4Cidr>)> = items
            .iter()
            .map(|v| {
                let t = v.as_str().unwrap_or("");
                (t, t.parse::<Ipv4Cidr>().ok())
            })
            .collect();
        self.charge(blocks.len().saturating_mul(blocks.len()), span)?;
        let mut out = Vec::new();
        for (i, (ta, ca)) in blocks.iter().enumerate() {
            for (tb, cb) in &blocks[i + 1..] {
                if let (Some(x), Some(y)) = (ca, cb) {
                    if x.overlaps(*y) {
                        out.push(Value::Tuple(Rc::new(vec![str_value(ta), str_value(tb)])));
                    }
                }
            }
        }
        Ok(Value::List(Rc::new(out)))
    }
}

/// The whole seconds of a duration as users write them (`6h`, `30m`,
/// `90s`), or -1 if it is not one.
fn duration_seconds(s: &str) -> i64 {
    canon_model::parse_duration(s)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .unwrap_or(-1)
}
