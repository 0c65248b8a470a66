//! Static types and unification. Records are structural; declared record
//! types are nominal names for a record shape (so a record literal can be
//! checked against them); resource types and sum types are nominal only.

use crate::ast::ModuleId;

/// Index of a declared type in [`crate::program::Program::types`].
pub type TypeId = usize;

#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    Int,
    Str,
    Bool,
    List(Box<Type>),
    Opt(Box<Type>),
    Tuple(Vec<Type>),
    Record(Vec<RField>),
    Named(TypeId),
    Fun(Vec<Type>, Box<Type>),
    /// An inference variable.
    Var(u32),
    /// A generic function's type parameter (rigid inside its body).
    Param(String),
    /// The type of something already reported as wrong: unifies with all.
    Error,
}

/// A record field type. `optional` fields may be left out of a literal
/// (Optional-typed fields, and record parameters with defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct RField {
    pub name: String,
    pub ty: Type,
    pub optional: bool,
}

#[derive(Debug, Clone)]
pub enum TypeDefBody {
    Record(Vec<RField>),
    Sum(Vec<(String, Option<Type>)>),
    Alias(Type),
    /// Not resolved yet (or failed to resolve).
    Pending,
}

#[derive(Debug, Clone)]
pub struct TypeDef {
    pub module: ModuleId,
    pub name: String,
    pub resource: bool,
    pub body: TypeDefBody,
}

/// Inference state: the substitution for type variables.
#[derive(Debug, Default)]
pub struct Subst {
    vars: Vec<Option<Type>>,
}

impl Subst {
    pub fn fresh(&mut self) -> Type {
        self.vars.push(None);
        Type::Var(u32::try_from(self.vars.len() - 1).unwrap_or(u32::MAX))
    }

    /// Follows bound variables at the top of `t`.
    pub fn shallow(&self, t: &Type) -> Type {
        let mut t = t.clone();
        let mut steps = 0;
        while let Type::Var(v) = t {
            match self.vars.get(v as usize).and_then(|x| x.clone()) {
                Some(b) if steps < 10_000 => {
                    t = b;
                    steps += 1;
                }
                _ => break,
            }
        }
        t
    }

    /// Fully applies the substitution.
    pub fn resolve(&self, t: &Type) -> Type {
        self.resolve_depth(t, 0)
    }

    fn resolve_depth(&self, t: &Type, depth: usize) -> Type {
        if depth > 200 {
            return Type::Error;
        }
        let r = |x: &Type| self.resolve_depth(x, depth + 1);
        match self.shallow(t) {
            Type::List(x) => Type::List(Box::new(r(&x))),
            Type::Opt(x) => Type::Opt(Box::new(r(&x))),
            Type::Tuple(xs) => Type::Tuple(xs.iter().map(r).collect()),
            Type::Record(fs) => Type::Record(
                fs.iter()
                    .map(|f| RField {
                        name: f.name.clone(),
                        ty: r(&f.ty),
                        optional: f.optional,
                    })
                    .collect(),
            ),
            Type::Fun(ps, ret) => Type::Fun(ps.iter().map(r).collect(), Box::new(r(&ret))),
            other => other,
        }
    }

    fn occurs(&self, v: u32, t: &Type, depth: usize) -> bool {
        if depth > 200 {
            return true;
        }
        match self.shallow(t) {
            Type::Var(w) => w == v,
            Type::List(x) | Type::Opt(x) => self.occurs(v, &x, depth + 1),
            Type::Tuple(xs) => xs.iter().any(|x| self.occurs(v, x, depth + 1)),
            Type::Record(fs) => fs.iter().any(|f| self.occurs(v, &f.ty, depth + 1)),
            Type::Fun(ps, r) => {
                ps.iter().any(|x| self.occurs(v, x, depth + 1)) || self.occurs(v, &r, depth + 1)
            }
            _ => false,
        }
    }

    /// Makes `a` and `b` equal if possible. `defs` gives record shapes of
    /// named record types.
    pub fn unify(&mut self, a: &Type, b: &Type, defs: &[TypeDef]) -> bool {
        self.unify_depth(a, b, defs, 0)
    }

    fn unify_depth(&mut self, a: &Type, b: &Type, defs: &[TypeDef], depth: usize) -> bool {
        if depth > 200 {
            return false;
        }
        let a = self.shallow(a);
        let b = self.shallow(b);
        match (&a, &b) {
            (Type::Error, _) | (_, Type::Error) => true,
            (Type::Var(x), Type::Var(y)) if x == y => true,
            (Type::Var(x), t) | (t, Type::Var(x)) => {
                if self.occurs(*x, t, 0) {
                    return false;
                }
                if let Some(slot) = self.vars.get_mut(*x as usize) {
                    *slot = Some(t.clone());
                }
                true
            }
            (Type::Int, Type::Int) | (Type::Str, Type::Str) | (Type::Bool, Type::Bool) => true,
            (Type::List(x), Type::List(y)) | (Type::Opt(x), Type::Opt(y)) => {
                self.unify_depth(x, y, defs, depth + 1)
            }
            (Type::Tuple(xs), Type::Tuple(ys)) => {
                xs.len() == ys.len()
                    && xs
                        .iter()
                        .zip(ys)
                        .all(|(x, y)| self.unify_depth(x, y, defs, depth + 1))
            }
            (Type::Named(x), Type::Named(y)) => x == y,
            (Type::Named(n), Type::Record(fs)) | (Type::Record(fs), Type::Named(n)) => {
                match defs.get(*n) {
                    Some(TypeDef {
                        resource: false,
                        body: TypeDefBody::Record(shape),
                        ..
                    }) => {
                        let shape = shape.clone();
                        self.unify_fields(&shape, fs, defs, depth)
                    }
                    _ => false,
                }
            }
            (Type::Record(xs), Type::Record(ys)) => self.unify_fields(xs, ys, defs, depth),
            (Type::Fun(ps, r), Type::Fun(qs, s)) => {
                ps.len() == qs.len()
                    && ps
                        .iter()
                        .zip(qs)
                        .all(|(x, y)| self.unify_depth(x, y, defs, depth + 1))
                    && self.unify_depth(r, s, defs, depth + 1)
            }
            (Type::Param(x), Type::Param(y)) => x == y,
            _ => false,
        }
    }

    fn unify_fields(
        &mut self,
        xs: &[RField],
        ys: &[RField],
        defs: &[TypeDef],
        depth: usize,
    ) -> bool {
        if xs.len() != ys.len() {
            return false;
        }
        xs.iter().all(|x| {
            ys.iter()
                .find(|y| y.name == x.name)
                .is_some_and(|y| self.unify_depth(&x.ty, &y.ty, defs, depth + 1))
        })
    }
}

/// Human-readable type, for messages.
pub fn show(t: &Type, defs: &[TypeDef]) -> String {
    show_depth(t, defs, 0)
}

fn show_depth(t: &Type, defs: &[TypeDef], depth: usize) -> String {
    if depth > 20 {
        return "…".into();
    }
    let s = |x: &Type| show_depth(x, defs, depth + 1);
    match t {
        Type::Int => "Int".into(),
        Type::Str => "String".into(),
        Type::Bool => "Bool".into(),
        Type::List(x) => format!("List<{}>", s(x)),
        Type::Opt(x) => format!("Optional<{}>", s(x)),
        Type::Tuple(xs) => format!("({})", xs.iter().map(s).collect::<Vec<_>>().join(", ")),
        Type::Record(fs) => format!(
            "{{{}}}",
            fs.iter()
                .map(|f| format!("{}: {}", f.name, s(&f.ty)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Type::Named(n) => defs.get(*n).map(|d| d.name.clone()).unwrap_or_default(),
        Type::Fun(ps, r) => format!(
            "({}) -> {}",
            ps.iter().map(s).collect::<Vec<_>>().join(", "),
            s(r)
        ),
        Type::Var(_) => "?".into(),
        Type::Param(p) => p.clone(),
        Type::Error => "<error>".into(),
    }
}

/// Replaces type parameters by the given types.
pub fn instantiate(t: &Type, map: &[(String, Type)]) -> Type {
    let r = |x: &Type| instantiate(x, map);
    match t {
        Type::Param(p) => map
            .iter()
            .find(|(n, _)| n == p)
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| t.clone()),
        Type::List(x) => Type::List(Box::new(r(x))),
        Type::Opt(x) => Type::Opt(Box::new(r(x))),
        Type::Tuple(xs) => Type::Tuple(xs.iter().map(r).collect()),
        Type::Record(fs) => Type::Record(
            fs.iter()
                .map(|f| RField {
                    name: f.name.clone(),
                    ty: r(&f.ty),
                    optional: f.optional,
                })
                .collect(),
        ),
        Type::Fun(ps, ret) => Type::Fun(ps.iter().map(r).collect(), Box::new(r(ret))),
        other => other.clone(),
    }
}
