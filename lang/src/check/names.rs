//! Name resolution: dotted names in expressions and patterns become
//! resolved references (locals, module items, fields), and a name that is
//! not in scope is an error with "perhaps you mean" hints naming the module
//! of each candidate.

use crate::ast::*;
use crate::diag::{closest, Diagnostic};
use crate::program::ValueItem;
use crate::span::Span;
use crate::types::TypeId;

use super::Checker;

impl Checker<'_> {
    /// Longest dotted prefix of `segs` naming a value in module `t`.
    fn longest_in(
        &self,
        t: ModuleId,
        segs: &[(String, Span)],
        need_export: bool,
    ) -> Option<(String, usize)> {
        for k in (1..=segs.len()).rev() {
            let name = segs[..k]
                .iter()
                .map(|s| s.0.as_str())
                .collect::<Vec<_>>()
                .join(".");
            if self.p.scopes[t].values.contains_key(&name)
                && (!need_export || self.p.scopes[t].exported(&name))
            {
                return Some((name, k));
            }
        }
        None
    }

    /// Resolves a dotted name to a local or global plus how many segments it
    /// used; reports a scope error if nothing matches.
    fn resolve_path(&mut self, segs: &[(String, Span)]) -> Option<(ExprKind, usize)> {
        let m = self.m;
        // Paths come from the parser with at least one segment.
        if segs.is_empty() {
            return None;
        }
        let first = &segs[0].0;
        if let Some(l) = self.locals.iter_mut().rev().find(|l| &l.name == first) {
            l.used = true;
            return Some((ExprKind::Local(first.clone()), 1));
        }
        if let Some((name, k)) = self.longest_in(m, segs, false) {
            return Some((ExprKind::Global(m, name), k));
        }
        if let Some(&(t, _)) = self.p.scopes[m].aliases.get(first) {
            self.alias_used.insert((m, first.clone()));
            if segs.len() > 1 {
                if let Some((name, k)) = self.longest_in(t, &segs[1..], true) {
                    return Some((ExprKind::Global(t, name), k + 1));
                }
            }
            self.scope_error_in_alias(segs, t);
            return None;
        }
        if let Some(pre) = self.p.prelude {
            if let Some((name, k)) = self.longest_in(pre, segs, true) {
                return Some((ExprKind::Global(pre, name), k));
            }
        }
        self.scope_error_plain(segs);
        None
    }

    fn not_in_scope_message(segs: &[(String, Span)]) -> (String, String) {
        let full = segs
            .iter()
            .map(|s| s.0.as_str())
            .collect::<Vec<_>>()
            .join(".");
        let last_upper = segs
            .last()
            .is_some_and(|s| s.0.chars().next().is_some_and(|c| c.is_ascii_uppercase()));
        let what = if last_upper {
            "Constructor"
        } else {
            "Variable"
        };
        (full.clone(), format!("{what} not in scope: {full}"))
    }

    /// Callers pass the non-empty path they failed to resolve.
    fn scope_error_in_alias(&mut self, segs: &[(String, Span)], t: ModuleId) {
        if segs.is_empty() {
            return;
        }
        let alias = &segs[0].0;
        let span = segs[0].1.to(segs[segs.len() - 1].1);
        let (_, msg) = Self::not_in_scope_message(segs);
        let rest = segs[1..]
            .iter()
            .map(|s| s.0.as_str())
            .collect::<Vec<_>>()
            .join(".");
        let names: Vec<String> = self.p.scopes[t]
            .values
            .keys()
            .filter(|k| self.p.scopes[t].exported(k))
            .cloned()
            .collect();
        let mut near: Vec<&str> = closest(&rest, names.iter().map(|s| s.as_str()));
        if near.is_empty() && segs.len() > 2 {
            near = closest(&segs[1].0, names.iter().map(|s| s.as_str()));
        }
        let label = self.module_label(t);
        let mut d = Diagnostic::scope(span, msg).with_label("not in scope");
        if segs.len() == 1 {
            d = Diagnostic::scope(span, format!("`{alias}` is a module, not a value"))
                .with_label("a module")
                .with_hint(format!(
                    "write `{alias}.name` to use something {alias} exports"
                ));
        }
        let cands: Vec<String> = near
            .iter()
            .map(|n| format!("{alias}.{n} (from {label})"))
            .collect();
        self.diags.push(with_candidates(d, &cands));
    }

    /// Callers pass the non-empty path they failed to resolve.
    fn scope_error_plain(&mut self, segs: &[(String, Span)]) {
        if segs.is_empty() {
            return;
        }
        let span = segs[0].1.to(segs[segs.len() - 1].1);
        let first = segs[0].0.clone();
        let (_, msg) = Self::not_in_scope_message(&segs[..1]);
        let m = self.m;
        let mut pool: Vec<(String, String)> = Vec::new();
        for l in &self.locals {
            pool.push((l.name.clone(), "local".into()));
        }
        let here = self.module_label(m);
        for k in self.p.scopes[m].values.keys() {
            pool.push((k.clone(), format!("from {here}")));
        }
        if let Some(pre) = self.p.prelude {
            let pl = self.module_label(pre);
            for k in self.p.scopes[pre].values.keys() {
                if self.p.scopes[pre].exported(k) {
                    pool.push((k.clone(), format!("from {pl}")));
                }
            }
        }
        for (a, (t, _)) in &self.p.scopes[m].aliases {
            pool.push((a.clone(), format!("import of {}", self.module_label(*t))));
        }
        let near = closest(&first, pool.iter().map(|(n, _)| n.as_str()));
        let mut cands: Vec<String> = Vec::new();
        for n in near {
            for (pn, from) in &pool {
                if pn == n {
                    let c = format!("{n} ({from})");
                    if !cands.contains(&c) {
                        cands.push(c);
                    }
                }
            }
        }
        let d = Diagnostic::scope(span, msg).with_label("not in scope");
        self.diags.push(with_candidates(d, &cands));
    }

    /// Rewrites a `Path` expression into resolved form (in place).
    pub(super) fn resolve_expr_path(&mut self, e: &mut Expr) {
        let ExprKind::Path(segs) = &e.kind else {
            return;
        };
        let segs = segs.clone();
        let Some((head, used)) = self.resolve_path(&segs) else {
            e.kind = ExprKind::Error;
            return;
        };
        let mut cur = Expr {
            kind: head,
            span: segs[0].1.to(segs[used - 1].1),
        };
        for (name, sp) in &segs[used..] {
            let span = cur.span.to(*sp);
            cur = Expr {
                kind: ExprKind::Field(Box::new(cur), name.clone(), *sp),
                span,
            };
        }
        e.kind = cur.kind;
    }

    /// `path` is never empty (the parser reads at least one name).
    pub(super) fn resolve_ctor_pattern(
        &mut self,
        path: &[String],
        span: Span,
    ) -> Option<(ModuleId, String, TypeId, usize)> {
        let m = self.m;
        if path.is_empty() {
            return None;
        }
        let segs: Vec<(String, Span)> = path.iter().map(|p| (p.clone(), span)).collect();
        let found = if let Some((n, k)) = self
            .longest_in(m, &segs, false)
            .filter(|(_, k)| *k == segs.len())
        {
            Some((m, n, k))
        } else if let Some(&(t, _)) = self.p.scopes[m].aliases.get(&path[0]) {
            self.alias_used.insert((m, path[0].clone()));
            self.longest_in(t, &segs[1..], true)
                .filter(|(_, k)| *k + 1 == segs.len())
                .map(|(n, k)| (t, n, k))
        } else if let Some(pre) = self.p.prelude {
            self.longest_in(pre, &segs, true)
                .filter(|(_, k)| *k == segs.len())
                .map(|(n, k)| (pre, n, k))
        } else {
            None
        };
        if let Some((t, n, _)) = found {
            if let Some(ValueItem::Ctor(tid, ci)) = self.p.scopes[t].values.get(&n) {
                return Some((t, n, *tid, *ci));
            }
            self.diags.push(
                Diagnostic::scope(span, format!("`{}` is not a constructor", path.join(".")))
                    .with_label("patterns match constructors"),
            );
            return None;
        }
        if path.len() > 1 {
            if let Some(&(t, _)) = self.p.scopes[m].aliases.get(&path[0]) {
                self.scope_error_in_alias(&segs, t);
                return None;
            }
        }
        self.scope_error_plain(&segs);
        None
    }
}

fn with_candidates(d: Diagnostic, cands: &[String]) -> Diagnostic {
    match cands.len() {
        0 => d,
        1 => d.with_hint(format!("perhaps you mean:\n  {}", cands[0])),
        _ => d.with_hint(format!(
            "perhaps you mean one of:\n{}",
            cands
                .iter()
                .map(|c| format!("  {c}"))
                .collect::<Vec<_>>()
                .join("\n")
        )),
    }
}
