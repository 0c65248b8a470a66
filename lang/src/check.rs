//! Name resolution and static type checking. Runs over every module in
//! dependency order, rewrites dotted names into resolved references (so the
//! evaluator never looks a name up by string in the wrong scope), and
//! reports scope errors (with "perhaps you mean" hints naming the module of
//! each candidate), type errors and warnings. Errors yield the `Error` type,
//! which unifies with anything, so one mistake is reported once and checking
//! goes on. The phases (scopes, type definitions, signatures, bodies) are
//! here; `names` resolves names and `expr` types expressions.

use std::collections::{HashMap, HashSet};

use crate::ast::*;
use crate::diag::{closest, Diagnostic, Kind};
use crate::program::{Program, Scope, ValueItem};
use crate::span::Span;
use crate::types::{instantiate, RField, Subst, Type, TypeDef, TypeDefBody, TypeId};

mod exhaustive;
mod expr;
mod names;

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
    c.keep_root_types();
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

    /// Leaves the types of the root module's functions and bindings in the
    /// program, for callers that look at a module's exports by type.
    fn keep_root_types(&mut self) {
        let root = self.p.root;
        let mut types = HashMap::new();
        for (i, state) in self.states.get(root).into_iter().flatten().enumerate() {
            if let BState::Done(t) = state {
                types.insert(i, self.subst.resolve(t));
            }
        }
        for ((m, i), t) in &self.fun_types {
            if *m == root {
                types.insert(*i, t.clone());
            }
        }
        self.p.root_types = types;
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
