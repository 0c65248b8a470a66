//! Typing expressions and patterns: `check` against an expected type where
//! one is known (so record literals and lambdas get their field and
//! parameter types), `synth` otherwise, one function per construct.

use std::collections::HashSet;

use crate::ast::*;
use crate::diag::{closest, Diagnostic, Kind};
use crate::span::Span;
use crate::types::{show, RField, Type, TypeDef, TypeDefBody};

use super::exhaustive::uncovered;
use super::{callee_name, Checker};

impl Checker<'_> {
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

    pub(super) fn check(&mut self, e: &mut Expr, expected: &Type) {
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
            ExprKind::Case(s, arms) => self.check_case(s, arms, &exp),
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
                    let message = format!("Unknown field `{}` for {what}", f.name);
                    self.diags
                        .push(unknown_field(f.span, message, &f.name, shape, what));
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

    /// The type of an expression, found from the expression alone.
    pub(super) fn synth(&mut self, e: &mut Expr) -> Type {
        let span = e.span;
        match &mut e.kind {
            ExprKind::Int(_) => Type::Int,
            ExprKind::Str(_) => Type::Str,
            ExprKind::Bool(_) => Type::Bool,
            ExprKind::None => Type::Opt(Box::new(self.subst.fresh())),
            ExprKind::Some(x) => Type::Opt(Box::new(self.synth(x))),
            ExprKind::Error => Type::Error,
            ExprKind::List(items) => self.synth_list(items),
            ExprKind::Tuple(items) => {
                Type::Tuple(items.iter_mut().map(|i| self.synth(i)).collect())
            }
            ExprKind::Record(fields) => self.synth_record(fields),
            ExprKind::Path(_) => {
                self.resolve_expr_path(e);
                self.synth(e)
            }
            ExprKind::Local(name) => self.local_type(name),
            ExprKind::Global(t, name) => self.item_type(*t, name, span),
            ExprKind::Field(obj, name, nspan) => {
                let ot = self.synth(obj);
                self.field_type(&ot, name, *nspan)
            }
            ExprKind::Call(f, args) => self.synth_call(f, args, span),
            ExprKind::Lambda(ps, body) => self.synth_lambda(ps, body),
            ExprKind::Let(name, nspan, v, body) => {
                let vt = self.synth(v);
                let keep = self.locals.len();
                self.push_local(name, vt, *nspan, true);
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
            ExprKind::Case(s, arms) => self.synth_case(s, arms),
            ExprKind::With(r, fields) => self.synth_with(r, fields),
            ExprKind::Binary(op, l, r) => self.synth_binary(*op, l, r),
            ExprKind::Neg(x) => {
                self.check(x, &Type::Int);
                Type::Int
            }
        }
    }

    /// A list takes the type of its first item; the others must match it.
    fn synth_list(&mut self, items: &mut [Expr]) -> Type {
        let Some((first, rest)) = items.split_first_mut() else {
            return Type::List(Box::new(self.subst.fresh()));
        };
        let t = self.synth(first);
        for it in rest {
            self.check(it, &t);
        }
        Type::List(Box::new(t))
    }

    /// A record literal with no expected type: a structural record type.
    fn synth_record(&mut self, fields: &mut [FieldInit]) -> Type {
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

    /// The type of a local in scope (marking it used).
    fn local_type(&mut self, name: &str) -> Type {
        match self.locals.iter_mut().rev().find(|l| l.name == name) {
            Some(l) => {
                l.used = true;
                l.ty.clone()
            }
            None => Type::Error,
        }
    }

    fn synth_call(&mut self, f: &mut Expr, args: &mut [Expr], span: Span) -> Type {
        // Name the callee as written (`EC2.Vpc.new`), before resolution.
        let fname = callee_name(f);
        let ft = self.synth(f);
        let ft = self.subst.shallow(&ft);
        match ft {
            Type::Fun(ps, ret) if ps.len() != args.len() => {
                self.wrong_arity(&fname, ps.len(), args, span);
                *ret
            }
            Type::Fun(ps, ret) => {
                self.check_args(&fname, &ps, args);
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

    /// Reports a call with the wrong number of arguments (and still checks
    /// each argument for errors of its own).
    fn wrong_arity(&mut self, fname: &str, params: usize, args: &mut [Expr], span: Span) {
        self.diags.push(
            Diagnostic::type_error(
                span,
                format!(
                    "`{fname}` takes {} argument{}, but {} {} given",
                    params,
                    if params == 1 { "" } else { "s" },
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
    }

    /// Checks each argument against its parameter's type: lambdas last, so
    /// their parameter types are known.
    fn check_args(&mut self, fname: &str, params: &[Type], args: &mut [Expr]) {
        let mut idx: Vec<usize> = (0..args.len()).collect();
        idx.sort_by_key(|i| matches!(args[*i].kind, ExprKind::Lambda(..)));
        for i in idx {
            let is_record_lit = matches!(args[i].kind, ExprKind::Record(_));
            if is_record_lit {
                self.record_what = Some(format!("`{fname}`"));
            } else {
                self.ctx.push(format!("Argument {} of `{fname}`", i + 1));
            }
            self.check(&mut args[i], &params[i]);
            if is_record_lit {
                self.record_what = None;
            } else {
                self.ctx.pop();
            }
        }
    }

    fn synth_lambda(&mut self, ps: &[Param], body: &mut Expr) -> Type {
        let keep = self.locals.len();
        let mut pts = Vec::new();
        for p in ps {
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

    fn synth_case(&mut self, scrutinee: &mut Expr, arms: &mut [Arm]) -> Type {
        let r = self.subst.fresh();
        self.check_case(scrutinee, arms, &r);
        r
    }

    /// A `case` whose arms are each of type `result`; warned if its arms
    /// miss a value of the scrutinee.
    fn check_case(&mut self, scrutinee: &mut Expr, arms: &mut [Arm], result: &Type) {
        let st = self.synth(scrutinee);
        for arm in arms.iter_mut() {
            let keep = self.locals.len();
            self.check_pattern(&mut arm.pat, &st);
            self.check(&mut arm.body, result);
            self.pop_locals(keep);
        }
        let pats: Vec<&Pattern> = arms.iter().map(|a| &a.pat).collect();
        if let Some(missed) = uncovered(&pats, &st, &self.subst, &self.p.types) {
            self.diags.push(not_exhaustive(scrutinee.span, &missed));
        }
    }

    fn synth_with(&mut self, r: &mut Expr, fields: &mut [FieldInit]) -> Type {
        let rt = self.synth(r);
        for f in fields.iter_mut() {
            let ft = self.field_type(&rt, &f.name, f.span);
            self.ctx.push(format!("Field `{}`", f.name));
            self.check(&mut f.value, &ft);
            self.ctx.pop();
        }
        rt
    }

    fn synth_binary(&mut self, op: BinOp, l: &mut Expr, r: &mut Expr) -> Type {
        let (operand, result) = match op {
            BinOp::Concat => return self.synth_concat(l, r),
            BinOp::Eq | BinOp::Ne => {
                let lt = self.synth(l);
                self.check(r, &lt);
                return Type::Bool;
            }
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => (Type::Int, Type::Int),
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => (Type::Int, Type::Bool),
            BinOp::And | BinOp::Or => (Type::Bool, Type::Bool),
        };
        self.check(l, &operand);
        self.check(r, &operand);
        result
    }

    /// `++` joins two strings or two lists.
    fn synth_concat(&mut self, l: &mut Expr, r: &mut Expr) -> Type {
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

    fn field_type(&mut self, ot: &Type, name: &str, nspan: Span) -> Type {
        let ot = self.subst.shallow(ot);
        if let Some((fs, what)) = self.record_shape(&ot) {
            if let Some(f) = fs.iter().find(|f| f.name == name) {
                return f.ty.clone();
            }
            let message = format!("{what} has no field `{name}`");
            self.diags
                .push(unknown_field(nspan, message, name, &fs, &what));
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

/// The warning for a `case` on `span` whose arms miss `missed`.
fn not_exhaustive(span: Span, missed: &str) -> Diagnostic {
    let d = Diagnostic::new(Kind::NotExhaustive, span, "");
    if missed == "_" {
        Diagnostic {
            message: "this `case` covers only the values its arms name".into(),
            ..d
        }
        .with_label("other values fail at run time")
        .with_hint("add a last arm `_ -> …`")
    } else {
        Diagnostic {
            message: format!("this `case` has no arm for `{missed}`"),
            ..d
        }
        .with_label(format!("`{missed}` fails at run time"))
        .with_hint(format!(
            "add an arm `{missed} -> …`, or a last arm `_ -> …`"
        ))
    }
}

/// A field name that `shape` (the fields of `what`) does not have: the
/// nearest names as a hint, and every name.
fn unknown_field(
    span: Span,
    message: String,
    name: &str,
    shape: &[RField],
    what: &str,
) -> Diagnostic {
    let names: Vec<&str> = shape.iter().map(|s| s.name.as_str()).collect();
    let near = closest(name, names.iter().copied());
    let mut d = Diagnostic::type_error(span, message)
        .with_title("Unknown field:")
        .with_label("no such field");
    if let Some(n) = near.first() {
        d = d.with_hint(format!("perhaps you mean `{n}`"));
    }
    d.with_hint(format!("{what} has the fields: {}", names.join(", ")))
}
