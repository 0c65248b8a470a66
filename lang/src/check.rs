//! Name resolution and static type checking. Runs over every module in
//! dependency order, rewrites dotted names into resolved references (so the
//! evaluator never looks a name up by string in the wrong scope), and
//! reports scope errors (with "perhaps you mean" hints naming the module of
//! each candidate), type errors and warnings. Errors yield the `Error` type,
//! which unifies with anything, so one mistake is reported once and checking
//! goes on.

use std::collections::{HashMap, HashSet};

use crate::ast::*;
use crate::diag::{closest, Diagnostic, Kind};
use crate::program::{Program, Scope, ValueItem};
use crate::span::Span;
use crate::types::{instantiate, show, RField, Subst, Type, TypeDef, TypeDefBody, TypeId};

#[derive(Clone)]
enum BState {
    New,
    Active,
    Done(Type),
}

struct Local {
    name: String,
    ty: Type,
    span: Span,
    used: bool,
    warn_unused: bool,
}

/// Checks the whole program; returns diagnostics (errors and warnings).
pub fn check_program(p: &mut Program) -> Vec<Diagnostic> {
    let mut c = Checker {
        states: p
            .modules
            .iter()
            .map(|m| vec![BState::New; m.decls.len()])
            .collect(),
        p,
        subst: Subst::default(),
        diags: Vec::new(),
        m: 0,
        locals: Vec::new(),
        fun_types: HashMap::new(),
        alias_used: HashSet::new(),
        type_params: Vec::new(),
        ctx: Vec::new(),
        record_what: None,
        alias_ids: HashSet::new(),
    };
    c.build_scopes();
    c.resolve_types();
    c.signatures();
    let order = c.p.order.clone();
    for m in order {
        c.check_module(m);
    }
    c.diags
}

struct Checker<'p> {
    p: &'p mut Program,
    subst: Subst,
    diags: Vec<Diagnostic>,
    m: ModuleId,
    locals: Vec<Local>,
    states: Vec<Vec<BState>>,
    fun_types: HashMap<(ModuleId, usize), Type>,
    alias_used: HashSet<(ModuleId, String)>,
    type_params: Vec<String>,
    /// What is being checked, for mismatch messages ("Field `x` of Vpc").
    ctx: Vec<String>,
    /// The callee whose record argument is being checked (`EC2.Vpc.new`).
    record_what: Option<String>,
    /// Type ids declared as aliases (resolved in declaration order).
    alias_ids: HashSet<TypeId>,
}

const BUILTIN_TYPES: &[&str] = &["Int", "String", "Bool", "List", "Optional"];

impl<'p> Checker<'p> {
    fn is_user(&self, m: ModuleId) -> bool {
        !self.p.is_library(m)
    }

    fn module_label(&self, m: ModuleId) -> String {
        let n = &self.p.modules[m].name;
        if n == "<composition>" {
            "this composition".into()
        } else {
            n.clone()
        }
    }

    // ----- phase 1: scopes -----

    fn build_scopes(&mut self) {
        for m in 0..self.p.modules.len() {
            let mut scope_values = HashMap::new();
            let mut scope_types = HashMap::new();
            let mut seen: HashMap<String, Span> = HashMap::new();
            // Taken out while scanning (no clone of the whole AST); put back below.
            let decls = std::mem::take(&mut self.p.modules[m].decls);
            let user = self.is_user(m);
            for (i, d) in decls.iter().enumerate() {
                let name = d.name().to_string();
                if let Some(first) = seen.get(&name) {
                    let (_, line, col) = self.p.sources.locate(*first);
                    self.diags.push(
                        Diagnostic::scope(d.name_span(), format!("`{name}` is defined more than once"))
                            .with_title("Duplicate definition:")
                            .with_label("defined again here")
                            .with_hint(format!(
                                "the first definition is at line {line}, column {col}; binding names must be unique"
                            )),
                    );
                    continue;
                }
                seen.insert(name.clone(), d.name_span());
                match d {
                    Decl::Binding(_) => {
                        scope_values.insert(name, ValueItem::Binding(i));
                    }
                    Decl::Fun(f) => {
                        if f.body.is_none() && user {
                            self.diags.push(
                                Diagnostic::scope(
                                    f.name_span,
                                    "`native` functions exist only in the standard library",
                                )
                                .with_title("Not allowed:"),
                            );
                        }
                        scope_values.insert(name, ValueItem::Fun(i));
                    }
                    Decl::Type(t) => {
                        let id = self.p.types.len();
                        self.p.types.push(TypeDef {
                            module: m,
                            name: t.name.clone(),
                            resource: t.resource,
                            body: TypeDefBody::Pending,
                        });
                        scope_types.insert(name.clone(), id);
                        match &t.body {
                            TypeBody::Record(_) => {
                                scope_values.insert(name, ValueItem::RecordCtor(id));
                            }
                            TypeBody::Sum(ctors) => {
                                for (ci, c) in ctors.iter().enumerate() {
                                    if scope_values.contains_key(&c.name)
                                        || seen.contains_key(&c.name)
                                    {
                                        self.diags.push(Diagnostic::scope(
                                            c.span,
                                            format!(
                                                "constructor `{}` is defined more than once",
                                                c.name
                                            ),
                                        ));
                                        continue;
                                    }
                                    seen.insert(c.name.clone(), c.span);
                                    scope_values.insert(c.name.clone(), ValueItem::Ctor(id, ci));
                                }
                            }
                            TypeBody::Alias(_) => {
                                self.alias_ids.insert(id);
                            }
                        }
                    }
                }
            }
            self.p.modules[m].decls = decls;
            let exports = self.p.modules[m].exports.clone().map(|names| {
                let mut set = HashSet::new();
                for (n, sp) in names {
                    if !scope_values.contains_key(&n) && !scope_types.contains_key(&n) {
                        self.diags.push(
                            Diagnostic::scope(
                                sp,
                                format!("cannot export `{n}`: it is not defined in this module"),
                            )
                            .with_label("not defined"),
                        );
                    }
                    // Exporting a sum type exports its constructors.
                    if let Some(tid) = scope_types.get(&n) {
                        for (cn, item) in &scope_values {
                            if let ValueItem::Ctor(t, _) = item {
                                if t == tid {
                                    set.insert(cn.clone());
                                }
                            }
                        }
                    }
                    set.insert(n);
                }
                set
            });
            let s: &mut Scope = &mut self.p.scopes[m];
            s.values = scope_values;
            s.types = scope_types;
            s.exports = exports;
        }
    }

    // ----- phase 2: type definitions -----

    fn resolve_types(&mut self) {
        let order = self.p.order.clone();
        for m in order {
            self.m = m;
            let decls = std::mem::take(&mut self.p.modules[m].decls);
            for d in &decls {
                let Decl::Type(t) = d else { continue };
                let Some(&id) = self.p.scopes[m].types.get(&t.name) else {
                    continue;
                };
                if !matches!(self.p.types[id].body, TypeDefBody::Pending) {
                    continue;
                }
                let body = match &t.body {
                    TypeBody::Record(fields) => {
                        let mut out: Vec<RField> = Vec::new();
                        for f in fields {
                            if out.iter().any(|o| o.name == f.name) {
                                self.diags.push(Diagnostic::type_error(
                                    f.span,
                                    format!("field `{}` is declared twice", f.name),
                                ));
                                continue;
                            }
                            let ty = self.resolve_type(&f.ty);
                            out.push(RField {
                                name: f.name.clone(),
                                optional: matches!(ty, Type::Opt(_)),
                                ty,
                            });
                        }
                        TypeDefBody::Record(out)
                    }
                    TypeBody::Sum(ctors) => TypeDefBody::Sum(
                        ctors
                            .iter()
                            .map(|c| {
                                (
                                    c.name.clone(),
                                    c.payload.as_ref().map(|t| self.resolve_type(t)),
                                )
                            })
                            .collect(),
                    ),
                    TypeBody::Alias(te) => TypeDefBody::Alias(self.resolve_type(te)),
                };
                self.p.types[id].body = body;
            }
            self.p.modules[m].decls = decls;
        }
    }

    /// Finds a type by (possibly qualified) name as seen from module `m`.
    /// `path` is never empty: the parser builds type names from at least one
    /// segment.
    fn lookup_type(&mut self, path: &[String], span: Span) -> Option<TypeId> {
        let m = self.m;
        if path.is_empty() {
            return None;
        }
        if path.len() == 1 {
            let n = &path[0];
            if let Some(id) = self.p.scopes[m].types.get(n) {
                return Some(*id);
            }
            if let Some(pre) = self.p.prelude {
                if let Some(id) = self.p.scopes[pre].types.get(n) {
                    return Some(*id);
                }
            }
        } else if let Some(&(t, _)) = self.p.scopes[m].aliases.get(&path[0]) {
            self.alias_used.insert((m, path[0].clone()));
            let name = path[1..].join(".");
            if let Some(id) = self.p.scopes[t].types.get(&name) {
                if self.p.scopes[t].exported(&name) {
                    return Some(*id);
                }
            }
        }
        let mut cands: Vec<String> = BUILTIN_TYPES.iter().map(|s| s.to_string()).collect();
        cands.extend(self.p.scopes[m].types.keys().cloned());
        if path.len() > 1 {
            if let Some(&(t, _)) = self.p.scopes[m].aliases.get(&path[0]) {
                cands.extend(
                    self.p.scopes[t]
                        .types
                        .keys()
                        .filter(|k| self.p.scopes[t].exported(k))
                        .map(|k| format!("{}.{k}", path[0])),
                );
            }
        }
        let full = path.join(".");
        let near: Vec<String> = closest(&full, cands.iter().map(|s| s.as_str()))
            .into_iter()
            .map(String::from)
            .collect();
        let mut d = Diagnostic::scope(span, format!("Type not in scope: {full}"))
            .with_label("unknown type");
        if !near.is_empty() {
            d = d.with_hint(format!("perhaps you mean: {}", near.join(", ")));
        }
        self.diags.push(d);
        None
    }

    fn resolve_type(&mut self, te: &TypeExpr) -> Type {
        match te {
            TypeExpr::Named { path, args, span } => {
                let arity = |this: &mut Self, n: usize| {
                    if args.len() != n {
                        this.diags.push(Diagnostic::type_error(
                            *span,
                            format!(
                                "`{}` takes {n} type argument(s), not {}",
                                path.join("."),
                                args.len()
                            ),
                        ));
                        false
                    } else {
                        true
                    }
                };
                if path.len() == 1 {
                    let n = path[0].as_str();
                    if self.type_params.iter().any(|p| p == n) {
                        return Type::Param(n.to_string());
                    }
                    match n {
                        "Int" | "String" | "Bool" => {
                            if !arity(self, 0) {
                                return Type::Error;
                            }
                            return match n {
                                "Int" => Type::Int,
                                "String" => Type::Str,
                                _ => Type::Bool,
                            };
                        }
                        "List" | "Optional" => {
                            if !arity(self, 1) {
                                return Type::Error;
                            }
                            let inner = self.resolve_type(&args[0]);
                            return if n == "List" {
                                Type::List(Box::new(inner))
                            } else {
                                Type::Opt(Box::new(inner))
                            };
                        }
                        _ => {}
                    }
                }
                let Some(id) = self.lookup_type(path, *span) else {
                    return Type::Error;
                };
                if !arity(self, 0) {
                    return Type::Error;
                }
                match &self.p.types[id].body {
                    TypeDefBody::Alias(t) => t.clone(),
                    TypeDefBody::Pending if self.alias_ids.contains(&id) => {
                        self.diags.push(Diagnostic::type_error(
                            *span,
                            format!(
                                "type alias `{}` is used before its definition",
                                path.join(".")
                            ),
                        ));
                        Type::Error
                    }
                    _ => Type::Named(id),
                }
            }
            TypeExpr::Tuple(items, _) => {
                Type::Tuple(items.iter().map(|t| self.resolve_type(t)).collect())
            }
            TypeExpr::Record(fields, _) => Type::Record(
                fields
                    .iter()
                    .map(|(n, _, t)| {
                        let ty = self.resolve_type(t);
                        RField {
                            name: n.clone(),
                            optional: matches!(ty, Type::Opt(_)),
                            ty,
                        }
                    })
                    .collect(),
            ),
            TypeExpr::Fun(ps, r, _) => Type::Fun(
                ps.iter().map(|t| self.resolve_type(t)).collect(),
                Box::new(self.resolve_type(r)),
            ),
        }
    }

    // ----- phase 3: function signatures -----

    fn signatures(&mut self) {
        let order = self.p.order.clone();
        for m in order {
            self.m = m;
            let decls = std::mem::take(&mut self.p.modules[m].decls);
            for (i, d) in decls.iter().enumerate() {
                let Decl::Fun(f) = d else { continue };
                self.type_params = f.type_params.clone();
                let params = match &f.params {
                    Params::Positional(ps) => ps
                        .iter()
                        .map(|p| {
                            p.ty.as_ref()
                                .map(|t| self.resolve_type(t))
                                .unwrap_or(Type::Error)
                        })
                        .collect(),
                    Params::Record(ps) => vec![Type::Record(
                        ps.iter()
                            .map(|p| {
                                let ty = self.resolve_type(&p.ty);
                                RField {
                                    name: p.name.clone(),
                                    optional: p.default.is_some() || matches!(ty, Type::Opt(_)),
                                    ty,
                                }
                            })
                            .collect(),
                    )],
                };
                let ret = self.resolve_type(&f.ret);
                self.type_params.clear();
                self.fun_types
                    .insert((m, i), Type::Fun(params, Box::new(ret)));
            }
            self.p.modules[m].decls = decls;
        }
    }

    // ----- phase 4: bodies -----

    fn check_module(&mut self, m: ModuleId) {
        let n = self.p.modules[m].decls.len();
        for i in 0..n {
            match &self.p.modules[m].decls[i] {
                Decl::Binding(_) => {
                    if matches!(self.states[m][i], BState::New) {
                        self.check_binding(m, i);
                    }
                }
                Decl::Fun(_) => self.check_fun(m, i),
                Decl::Type(_) => {}
            }
        }
        if self.is_user(m) {
            let mut unused: Vec<(String, Span)> = self.p.scopes[m]
                .aliases
                .iter()
                .filter(|(a, _)| !self.alias_used.contains(&(m, (*a).clone())))
                .map(|(a, (_, sp))| (a.clone(), *sp))
                .collect();
            unused.sort_by_key(|(_, sp)| sp.start);
            for (a, sp) in unused {
                self.diags.push(
                    Diagnostic::new(Kind::Unused, sp, format!("import `{a}` is never used"))
                        .with_title("Unused import:")
                        .with_label("unused")
                        .with_hint("remove the import"),
                );
            }
        }
    }

    fn enter_module(&mut self, m: ModuleId) -> (ModuleId, Vec<Local>, Vec<String>, Vec<String>) {
        let saved = (
            self.m,
            std::mem::take(&mut self.locals),
            std::mem::take(&mut self.type_params),
            std::mem::take(&mut self.ctx),
        );
        self.m = m;
        saved
    }

    fn leave_module(&mut self, saved: (ModuleId, Vec<Local>, Vec<String>, Vec<String>)) {
        self.m = saved.0;
        self.locals = saved.1;
        self.type_params = saved.2;
        self.ctx = saved.3;
    }

    fn check_binding(&mut self, m: ModuleId, i: usize) -> Type {
        self.states[m][i] = BState::Active;
        let placeholder = Expr {
            kind: ExprKind::Error,
            span: Span::default(),
        };
        let mut e = match &mut self.p.modules[m].decls[i] {
            Decl::Binding(b) => std::mem::replace(&mut b.expr, placeholder),
            _ => return Type::Error,
        };
        let saved = self.enter_module(m);
        let t = self.synth(&mut e);
        self.leave_module(saved);
        if let Decl::Binding(b) = &mut self.p.modules[m].decls[i] {
            b.expr = e;
        }
        let t = self.subst.resolve(&t);
        self.states[m][i] = BState::Done(t.clone());
        t
    }

    fn check_fun(&mut self, m: ModuleId, i: usize) {
        let Some(Type::Fun(ptys, ret)) = self.fun_types.get(&(m, i)).cloned() else {
            return;
        };
        let (params, mut body, mut defaults, tps) = match &mut self.p.modules[m].decls[i] {
            Decl::Fun(f) => {
                let defaults: Vec<Option<Expr>> = match &mut f.params {
                    Params::Record(ps) => ps.iter_mut().map(|p| p.default.take()).collect(),
                    Params::Positional(_) => Vec::new(),
                };
                (
                    f.params.clone(),
                    f.body.take(),
                    defaults,
                    f.type_params.clone(),
                )
            }
            _ => return,
        };
        let saved = self.enter_module(m);
        self.type_params = tps;
        // Defaults are checked in module scope.
        if let (Params::Record(ps), Some(Type::Record(fs))) = (&params, ptys.first()) {
            for ((p, d), f) in ps.iter().zip(defaults.iter_mut()).zip(fs) {
                if let Some(d) = d {
                    self.ctx.push(format!("Default of `{}`", p.name));
                    self.check(d, &f.ty);
                    self.ctx.pop();
                }
            }
        }
        if let Some(b) = body.as_mut() {
            match (&params, ptys.first()) {
                (Params::Positional(ps), _) => {
                    for (p, t) in ps.iter().zip(&ptys) {
                        self.push_local(&p.name, t.clone(), p.span, false);
                    }
                }
                (Params::Record(ps), Some(Type::Record(fs))) => {
                    for (p, f) in ps.iter().zip(fs) {
                        self.push_local(&p.name, f.ty.clone(), p.span, false);
                    }
                }
                _ => {}
            }
            self.check(b, &ret);
            self.pop_locals(0);
        }
        self.leave_module(saved);
        if let Decl::Fun(f) = &mut self.p.modules[m].decls[i] {
            f.body = body;
            if let Params::Record(ps) = &mut f.params {
                for (p, d) in ps.iter_mut().zip(defaults) {
                    p.default = d;
                }
            }
        }
    }

    // ----- locals -----

    fn push_local(&mut self, name: &str, ty: Type, span: Span, warn_unused: bool) {
        if self.is_user(self.m) && !name.starts_with('_') {
            let shadows_local = self.locals.iter().any(|l| l.name == name);
            let shadows_global = matches!(
                self.p.scopes[self.m].values.get(name),
                Some(ValueItem::Binding(_) | ValueItem::Fun(_))
            );
            if shadows_local || shadows_global {
                self.diags.push(
                    Diagnostic::new(
                        Kind::Shadowing,
                        span,
                        format!("`{name}` shadows an earlier binding of the same name"),
                    )
                    .with_title("Shadowing:")
                    .with_label("shadows")
                    .with_hint("rename one of them"),
                );
            }
        }
        self.locals.push(Local {
            name: name.to_string(),
            ty,
            span,
            used: false,
            warn_unused,
        });
    }

    fn pop_locals(&mut self, keep: usize) {
        while self.locals.len() > keep {
            let Some(l) = self.locals.pop() else { break };
            if l.warn_unused && !l.used && !l.name.starts_with('_') && self.is_user(self.m) {
                self.diags.push(
                    Diagnostic::new(Kind::Unused, l.span, format!("`{}` is never used", l.name))
                        .with_title("Unused binding:")
                        .with_label("unused")
                        .with_hint(format!("remove it, or name it `_{}`", l.name)),
                );
            }
        }
    }

    // ----- types of items -----

    fn item_type(&mut self, t: ModuleId, name: &str, span: Span) -> Type {
        let Some(item) = self.p.scopes[t].values.get(name).copied() else {
            return Type::Error;
        };
        match item {
            ValueItem::Binding(i) => match self.states[t][i].clone() {
                BState::Done(ty) => ty,
                BState::New => self.check_binding(t, i),
                BState::Active => {
                    self.diags.push(
                        Diagnostic::scope(span, format!("`{name}` depends on itself"))
                            .with_title("Cyclic definition:")
                            .with_label("refers back to its own definition")
                            .with_hint("a binding cannot use its own value"),
                    );
                    Type::Error
                }
            },
            ValueItem::Fun(i) => {
                let ft = self.fun_types.get(&(t, i)).cloned().unwrap_or(Type::Error);
                let tps = match &self.p.modules[t].decls[i] {
                    Decl::Fun(f) => f.type_params.clone(),
                    _ => Vec::new(),
                };
                if tps.is_empty() {
                    ft
                } else {
                    let map: Vec<(String, Type)> =
                        tps.into_iter().map(|n| (n, self.subst.fresh())).collect();
                    instantiate(&ft, &map)
                }
            }
            ValueItem::Ctor(tid, ci) => match &self.p.types[tid].body {
                TypeDefBody::Sum(cs) => match cs.get(ci) {
                    Some((_, Some(pay))) => {
                        Type::Fun(vec![pay.clone()], Box::new(Type::Named(tid)))
                    }
                    _ => Type::Named(tid),
                },
                _ => Type::Error,
            },
            ValueItem::RecordCtor(tid) => match &self.p.types[tid].body {
                TypeDefBody::Record(fs) => {
                    Type::Fun(vec![Type::Record(fs.clone())], Box::new(Type::Named(tid)))
                }
                _ => Type::Error,
            },
        }
    }

    // ----- name resolution -----

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
    fn resolve_expr_path(&mut self, e: &mut Expr) {
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
    fn resolve_ctor_pattern(
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

    // ----- expressions -----

    fn mismatch(&mut self, span: Span, expected: &Type, found: &Type) {
        let e = show(&self.subst.resolve(expected), &self.p.types);
        let f = show(&self.subst.resolve(found), &self.p.types);
        let msg = match self.ctx.last() {
            Some(c) => format!("{c}: expected {e}, but this is {f}"),
            None => format!("expected {e}, but this is {f}"),
        };
        self.diags.push(
            Diagnostic::type_error(span, msg)
                .with_label(format!("this is {f}"))
                .with_title("Type mismatch:"),
        );
    }

    fn unify_or_report(&mut self, span: Span, expected: &Type, found: &Type) {
        if !self.subst.unify(expected, found, &self.p.types) {
            self.mismatch(span, expected, found);
        }
    }

    fn record_shape(&self, t: &Type) -> Option<(Vec<RField>, String)> {
        match self.subst.shallow(t) {
            Type::Record(fs) => Some((fs, "record".into())),
            Type::Named(n) => match self.p.types.get(n) {
                Some(TypeDef {
                    body: TypeDefBody::Record(fs),
                    name,
                    ..
                }) => Some((fs.clone(), name.clone())),
                _ => None,
            },
            _ => None,
        }
    }

    fn check(&mut self, e: &mut Expr, expected: &Type) {
        let exp = self.subst.shallow(expected);
        if let Type::Opt(inner) = &exp {
            match &mut e.kind {
                ExprKind::None => return,
                ExprKind::Some(x) => return self.check(x, inner),
                ExprKind::Record(_)
                | ExprKind::List(_)
                | ExprKind::Lambda(..)
                | ExprKind::Tuple(_)
                | ExprKind::Int(_)
                | ExprKind::Str(_)
                | ExprKind::Bool(_) => return self.check(e, inner),
                ExprKind::If(..) | ExprKind::Let(..) | ExprKind::Case(..) => {}
                _ => {
                    let t = self.synth(e);
                    let ts = self.subst.shallow(&t);
                    let target = if matches!(ts, Type::Opt(_) | Type::Var(_)) {
                        exp.clone()
                    } else {
                        (**inner).clone()
                    };
                    self.unify_or_report(e.span, &target, &t);
                    return;
                }
            }
        }
        let span = e.span;
        match &mut e.kind {
            ExprKind::Record(fields) if self.record_shape(&exp).is_some() => {
                let (shape, mut what) = self.record_shape(&exp).unwrap_or_default();
                if let Some(w) = self.record_what.take() {
                    what = w;
                }
                if let Type::Named(n) = exp {
                    if self.p.types.get(n).is_some_and(|d| d.resource) {
                        let name = self.p.types[n].name.clone();
                        // Still resolve and check what is inside.
                        self.synth(e);
                        self.diags.push(
                            Diagnostic::type_error(span, format!("expected a {name}, but this is a plain record"))
                                .with_label("plain record")
                                .with_hint(format!("build it with its constructor, e.g. `{name}({{…}})` or `{name}.new {{…}}`")),
                        );
                        return;
                    }
                }
                self.check_record(fields, &shape, &what, span);
            }
            ExprKind::List(items) => {
                if let Type::List(t) = &exp {
                    for it in items {
                        self.check(it, t);
                    }
                } else {
                    let t = self.synth(e);
                    self.unify_or_report(span, &exp, &t);
                }
            }
            ExprKind::Tuple(items) => match &exp {
                Type::Tuple(ts) if ts.len() == items.len() => {
                    for (it, t) in items.iter_mut().zip(ts) {
                        self.check(it, t);
                    }
                }
                _ => {
                    let t = self.synth(e);
                    self.unify_or_report(span, &exp, &t);
                }
            },
            ExprKind::Lambda(ps, body) => match &exp {
                Type::Fun(pts, ret) if pts.len() == ps.len() => {
                    let keep = self.locals.len();
                    for (p, pt) in ps.iter().zip(pts) {
                        let t = match &p.ty {
                            Some(te) => {
                                let t = self.resolve_type(te);
                                self.unify_or_report(p.span, pt, &t);
                                t
                            }
                            None => pt.clone(),
                        };
                        self.push_local(&p.name, t, p.span, false);
                    }
                    let ret = (**ret).clone();
                    self.check(body, &ret);
                    self.pop_locals(keep);
                }
                _ => {
                    let t = self.synth(e);
                    self.unify_or_report(span, &exp, &t);
                }
            },
            ExprKind::If(c, t, f) => {
                self.check(c, &Type::Bool);
                self.check(t, &exp);
                self.check(f, &exp);
            }
            ExprKind::Let(name, nspan, v, body) => {
                let vt = self.synth(v);
                let keep = self.locals.len();
                let (name, nspan) = (name.clone(), *nspan);
                self.push_local(&name, vt, nspan, true);
                self.check(body, &exp);
                self.pop_locals(keep);
            }
            ExprKind::Case(s, arms) => {
                let st = self.synth(s);
                for arm in arms {
                    let keep = self.locals.len();
                    self.check_pattern(&mut arm.pat, &st);
                    self.check(&mut arm.body, &exp);
                    self.pop_locals(keep);
                }
            }
            _ => {
                let t = self.synth(e);
                self.unify_or_report(span, &exp, &t);
            }
        }
    }

    fn check_record(&mut self, fields: &mut [FieldInit], shape: &[RField], what: &str, span: Span) {
        let mut seen: HashSet<String> = HashSet::new();
        for f in fields.iter_mut() {
            if !seen.insert(f.name.clone()) {
                self.diags.push(
                    Diagnostic::type_error(f.span, format!("field `{}` is given twice", f.name))
                        .with_label("again"),
                );
                continue;
            }
            match shape.iter().find(|s| s.name == f.name) {
                Some(sf) => {
                    self.ctx.push(format!("Field `{}` of {what}", f.name));
                    self.check(&mut f.value, &sf.ty);
                    self.ctx.pop();
                }
                None => {
                    let names: Vec<&str> = shape.iter().map(|s| s.name.as_str()).collect();
                    let near = closest(&f.name, names.iter().copied());
                    let mut d = Diagnostic::type_error(
                        f.span,
                        format!("Unknown field `{}` for {what}", f.name),
                    )
                    .with_title("Unknown field:")
                    .with_label("no such field");
                    if let Some(n) = near.first() {
                        d = d.with_hint(format!("perhaps you mean `{n}`"));
                    }
                    d = d.with_hint(format!("{what} has the fields: {}", names.join(", ")));
                    self.diags.push(d);
                    // Still check the value for errors of its own.
                    self.synth(&mut f.value);
                }
            }
        }
        let missing: Vec<&str> = shape
            .iter()
            .filter(|s| !s.optional && !seen.contains(&s.name))
            .map(|s| s.name.as_str())
            .collect();
        if !missing.is_empty() {
            let list = missing
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let plural = if missing.len() > 1 { "s" } else { "" };
            self.diags.push(
                Diagnostic::type_error(span, format!("Missing field{plural} {list} for {what}"))
                    .with_title("Missing field:")
                    .with_label(format!("needs {list}")),
            );
        }
    }

    fn synth(&mut self, e: &mut Expr) -> Type {
        let span = e.span;
        match &mut e.kind {
            ExprKind::Int(_) => Type::Int,
            ExprKind::Str(_) => Type::Str,
            ExprKind::Bool(_) => Type::Bool,
            ExprKind::None => Type::Opt(Box::new(self.subst.fresh())),
            ExprKind::Some(x) => Type::Opt(Box::new(self.synth(x))),
            ExprKind::Error => Type::Error,
            ExprKind::List(items) => {
                let Some((first, rest)) = items.split_first_mut() else {
                    return Type::List(Box::new(self.subst.fresh()));
                };
                let t = self.synth(first);
                for it in rest {
                    self.check(it, &t);
                }
                Type::List(Box::new(t))
            }
            ExprKind::Tuple(items) => {
                Type::Tuple(items.iter_mut().map(|i| self.synth(i)).collect())
            }
            ExprKind::Record(fields) => {
                let mut out: Vec<RField> = Vec::new();
                for f in fields.iter_mut() {
                    let t = self.synth(&mut f.value);
                    if out.iter().any(|o| o.name == f.name) {
                        self.diags.push(Diagnostic::type_error(
                            f.span,
                            format!("field `{}` is given twice", f.name),
                        ));
                        continue;
                    }
                    out.push(RField {
                        name: f.name.clone(),
                        ty: t,
                        optional: false,
                    });
                }
                Type::Record(out)
            }
            ExprKind::Path(_) => {
                self.resolve_expr_path(e);
                self.synth(e)
            }
            ExprKind::Local(name) => {
                let name = name.clone();
                match self.locals.iter_mut().rev().find(|l| l.name == name) {
                    Some(l) => {
                        l.used = true;
                        l.ty.clone()
                    }
                    None => Type::Error,
                }
            }
            ExprKind::Global(t, name) => {
                let (t, name) = (*t, name.clone());
                self.item_type(t, &name, span)
            }
            ExprKind::Field(obj, name, nspan) => {
                let (name, nspan) = (name.clone(), *nspan);
                let ot = self.synth(obj);
                self.field_type(&ot, &name, nspan)
            }
            ExprKind::Call(f, args) => {
                // Name the callee as written (`EC2.Vpc.new`), before resolution.
                let fname = callee_name(f);
                let ft = self.synth(f);
                let ft = self.subst.shallow(&ft);
                match ft {
                    Type::Fun(ps, ret) => {
                        if ps.len() != args.len() {
                            self.diags.push(
                                Diagnostic::type_error(
                                    span,
                                    format!(
                                        "`{fname}` takes {} argument{}, but {} {} given",
                                        ps.len(),
                                        if ps.len() == 1 { "" } else { "s" },
                                        args.len(),
                                        if args.len() == 1 { "was" } else { "were" }
                                    ),
                                )
                                .with_title("Wrong number of arguments:")
                                .with_label(format!("{} argument(s) given", args.len())),
                            );
                            for a in args.iter_mut() {
                                self.synth(a);
                            }
                            return *ret;
                        }
                        // Lambdas last, so their parameter types are known.
                        let mut idx: Vec<usize> = (0..args.len()).collect();
                        idx.sort_by_key(|i| matches!(args[*i].kind, ExprKind::Lambda(..)));
                        for i in idx {
                            let is_record_lit = matches!(args[i].kind, ExprKind::Record(_));
                            if is_record_lit {
                                self.record_what = Some(format!("`{fname}`"));
                            } else {
                                self.ctx.push(format!("Argument {} of `{fname}`", i + 1));
                            }
                            self.check(&mut args[i], &ps[i]);
                            if is_record_lit {
                                self.record_what = None;
                            } else {
                                self.ctx.pop();
                            }
                        }
                        *ret
                    }
                    Type::Error => {
                        for a in args.iter_mut() {
                            self.synth(a);
                        }
                        Type::Error
                    }
                    Type::Var(_) => {
                        let pts: Vec<Type> = args.iter_mut().map(|a| self.synth(a)).collect();
                        let r = self.subst.fresh();
                        let want = Type::Fun(pts, Box::new(r.clone()));
                        self.unify_or_report(f.span, &want, &ft);
                        r
                    }
                    other => {
                        let shown = show(&self.subst.resolve(&other), &self.p.types);
                        self.diags.push(
                            Diagnostic::type_error(
                                f.span,
                                format!("`{fname}` has type {shown}; it is not a function"),
                            )
                            .with_title("Not a function:")
                            .with_label("cannot be called"),
                        );
                        for a in args.iter_mut() {
                            self.synth(a);
                        }
                        Type::Error
                    }
                }
            }
            ExprKind::Lambda(ps, body) => {
                let keep = self.locals.len();
                let mut pts = Vec::new();
                for p in ps.iter() {
                    let t = match &p.ty {
                        Some(te) => self.resolve_type(te),
                        None => self.subst.fresh(),
                    };
                    pts.push(t.clone());
                    self.push_local(&p.name, t, p.span, false);
                }
                let r = self.synth(body);
                self.pop_locals(keep);
                Type::Fun(pts, Box::new(r))
            }
            ExprKind::Let(name, nspan, v, body) => {
                let vt = self.synth(v);
                let keep = self.locals.len();
                let (name, nspan) = (name.clone(), *nspan);
                self.push_local(&name, vt, nspan, true);
                let t = self.synth(body);
                self.pop_locals(keep);
                t
            }
            ExprKind::If(c, t, f) => {
                self.check(c, &Type::Bool);
                let tt = self.synth(t);
                self.check(f, &tt);
                tt
            }
            ExprKind::Case(s, arms) => {
                let st = self.synth(s);
                let r = self.subst.fresh();
                for arm in arms {
                    let keep = self.locals.len();
                    self.check_pattern(&mut arm.pat, &st);
                    self.check(&mut arm.body, &r);
                    self.pop_locals(keep);
                }
                r
            }
            ExprKind::With(r, fields) => {
                let rt = self.synth(r);
                for f in fields.iter_mut() {
                    let ft = self.field_type(&rt, &f.name, f.span);
                    self.ctx.push(format!("Field `{}`", f.name));
                    self.check(&mut f.value, &ft);
                    self.ctx.pop();
                }
                rt
            }
            ExprKind::Binary(op, l, r) => {
                let op = *op;
                match op {
                    BinOp::Concat => {
                        let lt = self.synth(l);
                        match self.subst.shallow(&lt) {
                            Type::Str | Type::List(_) | Type::Error => {
                                self.check(r, &lt);
                                lt
                            }
                            Type::Var(_) => {
                                self.unify_or_report(l.span, &Type::Str, &lt);
                                self.check(r, &Type::Str);
                                Type::Str
                            }
                            other => {
                                self.ctx.push("`++`".into());
                                self.mismatch(l.span, &Type::Str, &other);
                                self.ctx.pop();
                                self.synth(r);
                                Type::Error
                            }
                        }
                    }
                    BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => {
                        self.check(l, &Type::Int);
                        self.check(r, &Type::Int);
                        Type::Int
                    }
                    BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                        self.check(l, &Type::Int);
                        self.check(r, &Type::Int);
                        Type::Bool
                    }
                    BinOp::Eq | BinOp::Ne => {
                        let lt = self.synth(l);
                        self.check(r, &lt);
                        Type::Bool
                    }
                    BinOp::And | BinOp::Or => {
                        self.check(l, &Type::Bool);
                        self.check(r, &Type::Bool);
                        Type::Bool
                    }
                }
            }
            ExprKind::Neg(x) => {
                self.check(x, &Type::Int);
                Type::Int
            }
        }
    }

    fn field_type(&mut self, ot: &Type, name: &str, nspan: Span) -> Type {
        let ot = self.subst.shallow(ot);
        if let Some((fs, what)) = self.record_shape(&ot) {
            if let Some(f) = fs.iter().find(|f| f.name == name) {
                return f.ty.clone();
            }
            let names: Vec<&str> = fs.iter().map(|f| f.name.as_str()).collect();
            let near = closest(name, names.iter().copied());
            let mut d = Diagnostic::type_error(nspan, format!("{what} has no field `{name}`"))
                .with_title("Unknown field:")
                .with_label("no such field");
            if let Some(n) = near.first() {
                d = d.with_hint(format!("perhaps you mean `{n}`"));
            }
            d = d.with_hint(format!("{what} has the fields: {}", names.join(", ")));
            self.diags.push(d);
            return Type::Error;
        }
        match ot {
            Type::Error => Type::Error,
            Type::Var(_) => {
                self.diags.push(
                    Diagnostic::type_error(nspan, format!("cannot tell what `.{name}` refers to: the type of this value is not known here"))
                        .with_label("unknown record type")
                        .with_hint("give the parameter a type annotation, e.g. `fun(x: EC2.Subnet): …`"),
                );
                Type::Error
            }
            other => {
                let shown = show(&self.subst.resolve(&other), &self.p.types);
                let mut d = Diagnostic::type_error(nspan, format!("{shown} has no field `{name}`"))
                    .with_title("Unknown field:")
                    .with_label("not a record");
                if matches!(other, Type::Opt(_)) {
                    d = d.with_hint(
                        "the value is Optional: use `case … of | Some(x) -> … | None -> …`",
                    );
                }
                self.diags.push(d);
                Type::Error
            }
        }
    }

    fn check_pattern(&mut self, p: &mut Pattern, t: &Type) {
        let span = p.span();
        match p {
            Pattern::Wildcard(_) => {}
            Pattern::Var(n, sp) => {
                let (n, sp) = (n.clone(), *sp);
                self.push_local(&n, t.clone(), sp, false);
            }
            Pattern::Int(..) => self.unify_or_report(span, t, &Type::Int),
            Pattern::Str(..) => self.unify_or_report(span, t, &Type::Str),
            Pattern::Bool(..) => self.unify_or_report(span, t, &Type::Bool),
            Pattern::None(_) => {
                let v = Type::Opt(Box::new(self.subst.fresh()));
                self.unify_or_report(span, t, &v);
            }
            Pattern::Some(inner, _) => {
                let x = self.subst.fresh();
                let v = Type::Opt(Box::new(x.clone()));
                self.unify_or_report(span, t, &v);
                self.check_pattern(inner, &x);
            }
            Pattern::Tuple(ps, _) => {
                let vs: Vec<Type> = ps.iter().map(|_| self.subst.fresh()).collect();
                self.unify_or_report(span, t, &Type::Tuple(vs.clone()));
                for (p, v) in ps.iter_mut().zip(vs) {
                    self.check_pattern(p, &v);
                }
            }
            Pattern::Ctor {
                path,
                payload,
                resolved,
                ..
            } => {
                let Some((m, name, tid, ci)) = self.resolve_ctor_pattern(path, span) else {
                    return;
                };
                *resolved = Some((m, name.clone()));
                self.unify_or_report(span, t, &Type::Named(tid));
                let pay = match &self.p.types[tid].body {
                    TypeDefBody::Sum(cs) => cs.get(ci).and_then(|c| c.1.clone()),
                    _ => None,
                };
                match (payload, pay) {
                    (Some(pp), Some(pt)) => self.check_pattern(pp, &pt),
                    (None, None) => {}
                    (Some(_), None) => self.diags.push(Diagnostic::type_error(
                        span,
                        format!("constructor `{name}` has no payload"),
                    )),
                    (None, Some(_)) => self.diags.push(Diagnostic::type_error(
                        span,
                        format!("constructor `{name}` carries a value: write `{name}(x)`"),
                    )),
                }
            }
        }
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

/// A readable name for the function being called.
pub fn callee_name(f: &Expr) -> String {
    match &f.kind {
        ExprKind::Global(_, n) | ExprKind::Local(n) => n.clone(),
        ExprKind::Field(_, n, _) => n.clone(),
        ExprKind::Path(segs) => segs
            .iter()
            .map(|s| s.0.as_str())
            .collect::<Vec<_>>()
            .join("."),
        _ => "function".into(),
    }
}
