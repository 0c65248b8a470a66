//! The evaluator: runs a checked program at compile time. Compositions are
//! pure, so evaluation is where the standard library's validations run;
//! `error("…")` raises a runtime error that carries the call stack back to
//! the user's call site. Bounded in steps, depth and sizes so no input can
//! hang or exhaust the machine. The library's `native fun`s are in
//! `natives`.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use crate::ast::*;
use crate::diag::Frame;
use crate::program::{Program, ValueItem};
use crate::span::Span;
use crate::types::TypeDefBody;
use crate::value::*;

mod natives;

/// Evaluation steps before giving up.
pub const MAX_STEPS: u64 = 20_000_000;
/// Nested calls before giving up.
pub const MAX_CALL_DEPTH: usize = 200;
/// Longest list or string a composition may build.
pub const MAX_LEN: usize = 10_000_000;

/// A runtime error: message, where it was raised, and the calls leading
/// there (innermost first).
#[derive(Debug, Clone)]
pub struct RtError {
    pub message: String,
    pub span: Span,
    pub module: ModuleId,
    pub stack: Vec<Frame>,
}

/// Why evaluation of a binding stopped.
#[derive(Debug, Clone)]
pub enum Stop {
    Error(RtError),
    /// Depends on a binding whose error was already reported.
    Poisoned,
}

type R<'p> = Result<Value<'p>, Stop>;

pub struct Evaluator<'p> {
    p: &'p Program,
    memo: HashMap<(ModuleId, usize), Result<Value<'p>, ()>>,
    stack: Stack<'p>,
    depth: usize,
    steps: u64,
    next_id: u64,
    module: ModuleId,
}

impl<'p> Evaluator<'p> {
    pub fn new(p: &'p Program) -> Self {
        Evaluator {
            p,
            memo: HashMap::new(),
            stack: None,
            depth: 0,
            steps: 0,
            next_id: 0,
            module: p.root,
        }
    }

    /// Evaluates the top-level binding `i` of module `m`. An error is
    /// returned once; later uses of the binding get `Stop::Poisoned`.
    pub fn binding(&mut self, m: ModuleId, i: usize) -> R<'p> {
        if let Some(r) = self.memo.get(&(m, i)) {
            return r.clone().map_err(|_| Stop::Poisoned);
        }
        let p = self.p;
        let Some(Decl::Binding(b)) = p.modules.get(m).and_then(|md| md.decls.get(i)) else {
            return Err(Stop::Poisoned);
        };
        // Mark as failed while in progress: a cycle (rejected by the checker)
        // can never loop here.
        self.memo.insert((m, i), Err(()));
        let saved_stack = self.stack.take();
        let saved_depth = std::mem::take(&mut self.depth);
        let saved_mod = self.module;
        self.module = m;
        let r = self.eval(&b.expr, &Env::default());
        self.module = saved_mod;
        self.stack = saved_stack;
        self.depth = saved_depth;
        self.memo.insert((m, i), r.clone().map_err(|_| ()));
        r
    }

    fn err<T>(&self, span: Span, message: impl Into<String>) -> Result<T, Stop> {
        Err(Stop::Error(RtError {
            message: message.into(),
            span,
            module: self.module,
            stack: frames(&self.stack),
        }))
    }

    fn origin(&self, span: Span) -> ValOrigin<'p> {
        ValOrigin {
            span,
            stack: self.stack.clone(),
        }
    }

    fn tick(&mut self, span: Span) -> Result<(), Stop> {
        self.charge(1, span)
    }

    /// Counts `n` steps of work (building a list of `n` elements costs `n`).
    fn charge(&mut self, n: usize, span: Span) -> Result<(), Stop> {
        self.steps = self.steps.saturating_add(n as u64);
        if self.steps > MAX_STEPS {
            return self.err(span, "evaluation takes too long (step limit reached)");
        }
        Ok(())
    }

    fn global(&mut self, m: ModuleId, name: &'p str, span: Span) -> R<'p> {
        match self
            .p
            .scopes
            .get(m)
            .and_then(|s| s.values.get(name))
            .copied()
        {
            Some(ValueItem::Binding(i)) => self.binding(m, i),
            Some(ValueItem::Fun(i)) => Ok(Value::Func(m, i)),
            Some(ValueItem::Ctor(t, c)) => {
                let has_payload = matches!(
                    self.p.types.get(t).map(|d| &d.body),
                    Some(TypeDefBody::Sum(cs)) if cs.get(c).is_some_and(|x| x.1.is_some())
                );
                if has_payload {
                    Ok(Value::CtorFn(t, c))
                } else {
                    Ok(Value::Ctor(Rc::new(CtorVal {
                        ty: t,
                        index: c,
                        name: name.rsplit('.').next().unwrap_or(name),
                        payload: None,
                    })))
                }
            }
            Some(ValueItem::RecordCtor(t)) => Ok(Value::RecordCtorFn(t)),
            None => self.err(span, format!("internal: unresolved name {name}")),
        }
    }

    pub fn eval(&mut self, e: &'p Expr, env: &Env<'p>) -> R<'p> {
        self.tick(e.span)?;
        match &e.kind {
            ExprKind::Int(n) => Ok(Value::Int(*n)),
            ExprKind::Str(s) => Ok(Value::Str(Rc::from(s.as_str()))),
            ExprKind::Bool(b) => Ok(Value::Bool(*b)),
            ExprKind::None => Ok(Value::None),
            ExprKind::Some(x) => self.eval(x, env),
            ExprKind::Error | ExprKind::Path(_) => {
                self.err(e.span, "internal: unchecked expression")
            }
            ExprKind::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for it in items {
                    out.push(self.eval(it, env)?);
                }
                Ok(Value::List(Rc::new(out)))
            }
            ExprKind::Tuple(items) => {
                let mut out = Vec::with_capacity(items.len());
                for it in items {
                    out.push(self.eval(it, env)?);
                }
                Ok(Value::Tuple(Rc::new(out)))
            }
            ExprKind::Record(fields) => {
                let mut map = BTreeMap::new();
                for f in fields {
                    let v = self.eval(&f.value, env)?;
                    map.insert(f.name.as_str(), v);
                }
                Ok(Value::Record(Rc::new(RecordVal {
                    fields: map,
                    origin: Some(self.origin(e.span)),
                })))
            }
            ExprKind::Local(n) => match env.get(n) {
                Some(v) => Ok(v),
                None => self.err(e.span, format!("internal: unbound local {n}")),
            },
            ExprKind::Global(m, n) => self.global(*m, n, e.span),
            ExprKind::Field(obj, name, nspan) => {
                let v = self.eval(obj, env)?;
                match v.field(name) {
                    Some(f) => Ok(f),
                    None => self.err(*nspan, format!("this value has no field `{name}`")),
                }
            }
            ExprKind::Call(f, args) => {
                let fv = self.eval(f, env)?;
                let mut avs = Vec::with_capacity(args.len());
                for a in args {
                    avs.push(self.eval(a, env)?);
                }
                self.apply(fv, avs, e.span, FrameName::Callee(f))
            }
            ExprKind::Lambda(ps, body) => Ok(Value::Closure(Rc::new(Closure {
                params: ps,
                body,
                env: env.clone(),
                module: self.module,
            }))),
            ExprKind::Let(name, _, v, body) => {
                let val = self.eval(v, env)?;
                let env2 = env.bind(name, val);
                self.eval(body, &env2)
            }
            ExprKind::If(c, t, f) => {
                let cv = self.eval(c, env)?;
                if cv.as_bool().unwrap_or(false) {
                    self.eval(t, env)
                } else {
                    self.eval(f, env)
                }
            }
            ExprKind::Case(s, arms) => {
                let sv = self.eval(s, env)?;
                for arm in arms {
                    let mut binds = Vec::new();
                    if self.matches(&arm.pat, &sv, &mut binds) {
                        let mut env2 = env.clone();
                        for (n, v) in binds {
                            env2 = env2.bind(n, v);
                        }
                        return self.eval(&arm.body, &env2);
                    }
                }
                self.err(e.span, "no case matches this value")
            }
            ExprKind::With(r, fields) => {
                let rv = self.eval(r, env)?;
                let mut updates = Vec::new();
                for f in fields {
                    updates.push((f.name.as_str(), self.eval(&f.value, env)?));
                }
                match rv {
                    Value::Record(rec) => {
                        let mut map = rec.fields.clone();
                        map.extend(updates);
                        Ok(Value::Record(Rc::new(RecordVal {
                            fields: map,
                            origin: Some(self.origin(e.span)),
                        })))
                    }
                    Value::Resource(res) => {
                        let mut map = res.fields.clone();
                        map.extend(updates);
                        self.next_id += 1;
                        Ok(Value::Resource(Rc::new(ResourceVal {
                            id: self.next_id,
                            ty: res.ty,
                            kind: res.kind,
                            fields: map,
                            origin: self.origin(e.span),
                        })))
                    }
                    _ => self.err(e.span, "`with` needs a record"),
                }
            }
            ExprKind::Binary(op, l, r) => {
                let lv = self.eval(l, env)?;
                // Short-circuit boolean operators.
                match op {
                    BinOp::And if lv.as_bool() == Some(false) => return Ok(Value::Bool(false)),
                    BinOp::Or if lv.as_bool() == Some(true) => return Ok(Value::Bool(true)),
                    _ => {}
                }
                let rv = self.eval(r, env)?;
                self.binary(*op, lv, rv, e.span)
            }
            ExprKind::Neg(x) => {
                let v = self.eval(x, env)?;
                match v.as_int().and_then(i64::checked_neg) {
                    Some(n) => Ok(Value::Int(n)),
                    None => self.err(e.span, "integer overflow"),
                }
            }
        }
    }

    fn binary(&mut self, op: BinOp, l: Value<'p>, r: Value<'p>, span: Span) -> R<'p> {
        let ints = |l: &Value, r: &Value| Some((l.as_int()?, r.as_int()?));
        match op {
            BinOp::Concat => match (&l, &r) {
                (Value::Str(a), Value::Str(b)) => {
                    if a.len() + b.len() > MAX_LEN {
                        return self.err(span, "string is too long");
                    }
                    self.charge((a.len() + b.len()) / 16, span)?;
                    Ok(Value::Str(Rc::from(format!("{a}{b}"))))
                }
                (Value::List(a), Value::List(b)) => {
                    if a.len() + b.len() > MAX_LEN {
                        return self.err(span, "list is too long");
                    }
                    self.charge(a.len() + b.len(), span)?;
                    let mut v = Vec::with_capacity(a.len() + b.len());
                    v.extend(a.iter().cloned());
                    v.extend(b.iter().cloned());
                    Ok(Value::List(Rc::new(v)))
                }
                _ => self.err(span, "`++` needs two strings or two lists"),
            },
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => {
                let Some((a, b)) = ints(&l, &r) else {
                    return self.err(span, "arithmetic needs integers");
                };
                let res = match op {
                    BinOp::Add => a.checked_add(b),
                    BinOp::Sub => a.checked_sub(b),
                    BinOp::Mul => a.checked_mul(b),
                    _ => {
                        if b == 0 {
                            return self.err(span, "division by zero");
                        }
                        a.checked_div(b)
                    }
                };
                match res {
                    Some(n) => Ok(Value::Int(n)),
                    None => self.err(span, "integer overflow"),
                }
            }
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let Some((a, b)) = ints(&l, &r) else {
                    return self.err(span, "comparison needs integers");
                };
                Ok(Value::Bool(match op {
                    BinOp::Lt => a < b,
                    BinOp::Le => a <= b,
                    BinOp::Gt => a > b,
                    _ => a >= b,
                }))
            }
            BinOp::Eq => Ok(Value::Bool(l.equals(&r, 0))),
            BinOp::Ne => Ok(Value::Bool(!l.equals(&r, 0))),
            BinOp::And | BinOp::Or => {
                let (Some(a), Some(b)) = (l.as_bool(), r.as_bool()) else {
                    return self.err(span, "boolean operator needs booleans");
                };
                Ok(Value::Bool(if op == BinOp::And { a && b } else { a || b }))
            }
        }
    }

    fn matches(
        &self,
        pat: &'p Pattern,
        v: &Value<'p>,
        binds: &mut Vec<(&'p str, Value<'p>)>,
    ) -> bool {
        match pat {
            Pattern::Wildcard(_) => true,
            Pattern::Var(n, _) => {
                binds.push((n.as_str(), v.clone()));
                true
            }
            Pattern::Int(n, _) => v.as_int() == Some(*n),
            Pattern::Str(s, _) => v.as_str() == Some(s.as_str()),
            Pattern::Bool(b, _) => v.as_bool() == Some(*b),
            Pattern::None(_) => matches!(v, Value::None),
            Pattern::Some(inner, _) => !matches!(v, Value::None) && self.matches(inner, v, binds),
            Pattern::Tuple(ps, _) => match v {
                Value::Tuple(items) => {
                    items.len() == ps.len()
                        && ps
                            .iter()
                            .zip(items.iter())
                            .all(|(p, x)| self.matches(p, x, binds))
                }
                _ => false,
            },
            Pattern::Ctor {
                payload, resolved, ..
            } => {
                let Some((m, name)) = resolved else {
                    return false;
                };
                let Some(ValueItem::Ctor(t, c)) =
                    self.p.scopes.get(*m).and_then(|s| s.values.get(name))
                else {
                    return false;
                };
                match v {
                    Value::Ctor(cv) if cv.ty == *t && cv.index == *c => {
                        match (payload, &cv.payload) {
                            (Some(pp), Some(pv)) => self.matches(pp, pv, binds),
                            (None, _) => true,
                            (Some(_), None) => false,
                        }
                    }
                    _ => false,
                }
            }
        }
    }

    fn push_frame(&mut self, name: FrameName<'p>, span: Span) -> Result<(), Stop> {
        if self.depth >= MAX_CALL_DEPTH {
            return self.err(
                span,
                format!("calls nest too deeply (more than {MAX_CALL_DEPTH})"),
            );
        }
        let parent = self.stack.take();
        self.stack = Some(Rc::new(StackNode { name, span, parent }));
        self.depth += 1;
        Ok(())
    }

    fn pop_frame(&mut self) {
        if let Some(n) = self.stack.take() {
            self.stack = n.parent.clone();
        }
        self.depth = self.depth.saturating_sub(1);
    }

    /// Calls a function value.
    pub fn apply(
        &mut self,
        f: Value<'p>,
        args: Vec<Value<'p>>,
        span: Span,
        name: FrameName<'p>,
    ) -> R<'p> {
        self.tick(span)?;
        match f {
            Value::Closure(c) => {
                let mut env = c.env.clone();
                for (p, a) in c.params.iter().zip(args) {
                    env = env.bind(&p.name, a);
                }
                self.push_frame(name, span)?;
                let saved = self.module;
                self.module = c.module;
                let r = self.eval(c.body, &env);
                self.module = saved;
                self.pop_frame();
                r
            }
            Value::Func(m, i) => {
                let p = self.p;
                let Some(Decl::Fun(fd)) = p.modules.get(m).and_then(|md| md.decls.get(i)) else {
                    return self.err(span, "internal: not a function");
                };
                let Some(body) = &fd.body else {
                    return self.native(m, &fd.name, args, span);
                };
                self.push_frame(FrameName::Name(&fd.name), span)?;
                let saved = self.module;
                self.module = m;
                let r = self.call_decl(fd, body, args);
                self.module = saved;
                self.pop_frame();
                r
            }
            Value::CtorFn(t, c) => {
                let p = self.p;
                let name = match p.types.get(t).map(|d| &d.body) {
                    Some(TypeDefBody::Sum(cs)) => cs.get(c).map(|x| x.0.as_str()).unwrap_or(""),
                    _ => "",
                };
                Ok(Value::Ctor(Rc::new(CtorVal {
                    ty: t,
                    index: c,
                    name,
                    payload: args.into_iter().next(),
                })))
            }
            Value::RecordCtorFn(t) => {
                let fields = match args.into_iter().next() {
                    Some(Value::Record(r)) => r.fields.clone(),
                    _ => BTreeMap::new(),
                };
                let p = self.p;
                let Some(def) = p.types.get(t) else {
                    return self.err(span, "internal: unknown type");
                };
                if def.resource {
                    self.next_id += 1;
                    Ok(Value::Resource(Rc::new(ResourceVal {
                        id: self.next_id,
                        ty: t,
                        kind: &def.name,
                        fields,
                        origin: self.origin(span),
                    })))
                } else {
                    Ok(Value::Record(Rc::new(RecordVal {
                        fields,
                        origin: Some(self.origin(span)),
                    })))
                }
            }
            _ => self.err(span, "this value is not a function"),
        }
    }

    fn call_decl(&mut self, fd: &'p FunDecl, body: &'p Expr, args: Vec<Value<'p>>) -> R<'p> {
        let mut env = Env::default();
        match &fd.params {
            Params::Positional(ps) => {
                for (p, a) in ps.iter().zip(args) {
                    env = env.bind(&p.name, a);
                }
            }
            Params::Record(ps) => {
                let given = match args.into_iter().next() {
                    Some(Value::Record(r)) => Some(r),
                    _ => None,
                };
                for p in ps {
                    let v = match given.as_ref().and_then(|r| r.fields.get(p.name.as_str())) {
                        Some(v) => v.clone(),
                        None => match &p.default {
                            Some(d) => self.eval(d, &Env::default())?,
                            None => Value::None,
                        },
                    };
                    env = env.bind(&p.name, v);
                }
            }
        }
        self.eval(body, &env)
    }
}
