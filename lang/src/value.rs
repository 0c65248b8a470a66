//! Runtime values of the evaluator. Resources (values of `resource type`s)
//! carry a unique identity and the place they were built, so the same VPC
//! reached from two bindings is one resource, and errors about a resource
//! can point at the code that made it.

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::ast::{Expr, ModuleId, Param};
use crate::diag::Frame;
use crate::span::Span;
use crate::types::TypeId;

/// How a stack frame names its function: a declared name, or the callee
/// expression of a call to a function value (named only if an error needs it).
#[derive(Debug, Clone, Copy)]
pub enum FrameName<'p> {
    Name(&'p str),
    Callee(&'p Expr),
}

/// One call on the evaluation stack; the stack is a persistent list, so
/// capturing it (for every record built) costs one reference count.
#[derive(Debug)]
pub struct StackNode<'p> {
    pub name: FrameName<'p>,
    pub span: Span,
    pub parent: Stack<'p>,
}

pub type Stack<'p> = Option<Rc<StackNode<'p>>>;

/// The frames of a stack, innermost first.
pub fn frames(stack: &Stack<'_>) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut cur = stack;
    while let Some(n) = cur {
        out.push(Frame {
            function: match n.name {
                FrameName::Name(s) => s.to_string(),
                FrameName::Callee(e) => crate::check::callee_name(e),
            },
            span: n.span,
        });
        cur = &n.parent;
    }
    out
}

/// Where a record or resource was built: the expression and the call stack.
#[derive(Debug, Clone)]
pub struct ValOrigin<'p> {
    pub span: Span,
    pub stack: Stack<'p>,
}

impl ValOrigin<'_> {
    pub fn frames(&self) -> Vec<Frame> {
        frames(&self.stack)
    }
}

#[derive(Debug)]
pub struct RecordVal<'p> {
    pub fields: BTreeMap<&'p str, Value<'p>>,
    pub origin: Option<ValOrigin<'p>>,
}

#[derive(Debug)]
pub struct ResourceVal<'p> {
    /// Unique per evaluation.
    pub id: u64,
    pub ty: TypeId,
    /// The resource type's name (`Vpc`).
    pub kind: &'p str,
    pub fields: BTreeMap<&'p str, Value<'p>>,
    pub origin: ValOrigin<'p>,
}

/// The field an external resource (`Vpc.external(…)`) carries its cloud
/// id in.
pub const EXTERNAL_ID_FIELD: &str = "externalId";

impl ResourceVal<'_> {
    /// The cloud id of an external resource; `None` for a declared one.
    pub fn external_id(&self) -> Option<&str> {
        self.fields.get(EXTERNAL_ID_FIELD)?.as_str()
    }
}

#[derive(Debug)]
pub struct CtorVal<'p> {
    pub ty: TypeId,
    pub index: usize,
    pub name: &'p str,
    pub payload: Option<Value<'p>>,
}

/// A local environment: an immutable linked list.
#[derive(Debug, Clone, Default)]
pub struct Env<'p>(pub Option<Rc<EnvNode<'p>>>);

#[derive(Debug)]
pub struct EnvNode<'p> {
    pub name: &'p str,
    pub value: Value<'p>,
    pub next: Env<'p>,
}

impl<'p> Env<'p> {
    pub fn bind(&self, name: &'p str, value: Value<'p>) -> Env<'p> {
        Env(Some(Rc::new(EnvNode {
            name,
            value,
            next: self.clone(),
        })))
    }

    pub fn get(&self, name: &str) -> Option<Value<'p>> {
        let mut cur = &self.0;
        while let Some(n) = cur {
            if n.name == name {
                return Some(n.value.clone());
            }
            cur = &n.next.0;
        }
        None
    }
}

#[derive(Debug)]
pub struct Closure<'p> {
    pub params: &'p [Param],
    pub body: &'p Expr,
    pub env: Env<'p>,
    pub module: ModuleId,
}

#[derive(Debug, Clone)]
pub enum Value<'p> {
    Int(i64),
    Str(Rc<str>),
    Bool(bool),
    None,
    List(Rc<Vec<Value<'p>>>),
    Tuple(Rc<Vec<Value<'p>>>),
    Record(Rc<RecordVal<'p>>),
    Ctor(Rc<CtorVal<'p>>),
    Resource(Rc<ResourceVal<'p>>),
    Closure(Rc<Closure<'p>>),
    /// A module-level function: module and decl index.
    Func(ModuleId, usize),
    /// A sum constructor with a payload, used as a function.
    CtorFn(TypeId, usize),
    /// A record type's constructor.
    RecordCtorFn(TypeId),
}

impl<'p> Value<'p> {
    /// Field of a record or resource; an omitted optional field is `None`.
    pub fn field(&self, name: &str) -> Option<Value<'p>> {
        match self {
            Value::Record(r) => Some(r.fields.get(name).cloned().unwrap_or(Value::None)),
            Value::Resource(r) => Some(r.fields.get(name).cloned().unwrap_or(Value::None)),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Value<'p>]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// Structural equality; resources compare by identity, functions never
    /// compare equal.
    pub fn equals(&self, other: &Value<'p>, depth: usize) -> bool {
        if depth > 200 {
            return false;
        }
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::None, Value::None) => true,
            (Value::List(a), Value::List(b)) | (Value::Tuple(a), Value::Tuple(b)) => {
                a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x.equals(y, depth + 1))
            }
            (Value::Record(a), Value::Record(b)) => {
                a.fields.len() == b.fields.len()
                    && a.fields
                        .iter()
                        .all(|(k, v)| b.fields.get(k).is_some_and(|w| v.equals(w, depth + 1)))
            }
            (Value::Ctor(a), Value::Ctor(b)) => {
                a.ty == b.ty
                    && a.index == b.index
                    && match (&a.payload, &b.payload) {
                        (Some(x), Some(y)) => x.equals(y, depth + 1),
                        (None, None) => true,
                        _ => false,
                    }
            }
            (Value::Resource(a), Value::Resource(b)) => a.id == b.id,
            _ => false,
        }
    }
}
