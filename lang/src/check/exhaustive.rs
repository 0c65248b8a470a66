//! Whether a `case` covers every value of its scrutinee. A `case` that
//! misses one fails at run time on it, far from the line that forgot it,
//! so the checker warns at compile time and names a value no arm takes.
//!
//! The check is exact for booleans, optionals and sum types (constructor
//! payloads included, to any depth) and for numbers and strings (which
//! only a catch-all arm covers). It says nothing about tuples, whose
//! arms can cover them together in ways one column cannot show: a
//! warning is only given for a value that is certainly missed.

use crate::ast::Pattern;
use crate::types::{Subst, Type, TypeDef, TypeDefBody};

/// A value of `ty` that none of `pats` matches, as a pattern would spell
/// it (`Prod(_)`, `Some(false)`, or `_` for "any other value"); `None`
/// when the patterns cover every value or cannot be known to miss one.
pub(super) fn uncovered(
    pats: &[&Pattern],
    ty: &Type,
    subst: &Subst,
    defs: &[TypeDef],
) -> Option<String> {
    if pats
        .iter()
        .any(|p| matches!(p, Pattern::Wildcard(_) | Pattern::Var(..)))
    {
        return None;
    }
    match subst.shallow(ty) {
        Type::Bool => [true, false]
            .into_iter()
            .find(|b| {
                !pats
                    .iter()
                    .any(|p| matches!(p, Pattern::Bool(x, _) if x == b))
            })
            .map(|b| if b { "True" } else { "False" }.to_string()),
        Type::Opt(inner) => uncovered_optional(pats, &inner, subst, defs),
        Type::Named(tid) => match defs.get(tid) {
            Some(TypeDef {
                body: TypeDefBody::Sum(ctors),
                ..
            }) => uncovered_sum(pats, ctors, subst, defs),
            _ => None,
        },
        Type::Int | Type::Str | Type::List(_) | Type::Record(_) | Type::Fun(..) => Some("_".into()),
        Type::Tuple(_) | Type::Var(_) | Type::Param(_) | Type::Error => None,
    }
}

/// [`uncovered`] for an optional: `None`, then what the `Some` arms miss.
fn uncovered_optional(
    pats: &[&Pattern],
    inner: &Type,
    subst: &Subst,
    defs: &[TypeDef],
) -> Option<String> {
    if !pats.iter().any(|p| matches!(p, Pattern::None(_))) {
        return Some("None".into());
    }
    let somes: Vec<&Pattern> = pats
        .iter()
        .filter_map(|p| match p {
            Pattern::Some(q, _) => Some(&**q),
            _ => None,
        })
        .collect();
    if somes.is_empty() {
        return Some("Some(_)".into());
    }
    uncovered(&somes, inner, subst, defs).map(|m| format!("Some({m})"))
}

/// [`uncovered`] for a sum type: the first constructor no arm names, or
/// whose payloads the arms that name it do not cover.
fn uncovered_sum(
    pats: &[&Pattern],
    ctors: &[(String, Option<Type>)],
    subst: &Subst,
    defs: &[TypeDef],
) -> Option<String> {
    for (name, payload) in ctors {
        let arms: Vec<&Pattern> = pats
            .iter()
            .copied()
            .filter(|p| matches!(p, Pattern::Ctor { resolved: Some((_, n)), .. } if n == name))
            .collect();
        let Some(payload) = payload else {
            if arms.is_empty() {
                return Some(name.clone());
            }
            continue;
        };
        let inner: Vec<&Pattern> = arms
            .iter()
            .filter_map(|p| match p {
                Pattern::Ctor {
                    payload: Some(q), ..
                } => Some(&**q),
                _ => None,
            })
            .collect();
        if arms.is_empty() {
            return Some(format!("{name}(_)"));
        }
        if inner.len() < arms.len() {
            continue; // An arm without its payload is a type error already.
        }
        if let Some(m) = uncovered(&inner, payload, subst, defs) {
            return Some(format!("{name}({m})"));
        }
    }
    None
}
