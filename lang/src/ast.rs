//! The syntax tree. Every node carries its span. Dotted names are parsed as
//! [`ExprKind::Path`] and resolved by the checker, which rewrites them into
//! [`ExprKind::Local`] / [`ExprKind::Global`] plus field accesses.

use crate::span::{FileId, Span};

/// Index of a module in the program.
pub type ModuleId = usize;

#[derive(Debug, Clone)]
pub struct Module {
    pub file: FileId,
    /// Canonical dotted module name (`Canon.AWS.EC2`, or the user path).
    pub name: String,
    pub is_composition: bool,
    pub exports: Option<Vec<(String, Span)>>,
    pub imports: Vec<Import>,
    pub decls: Vec<Decl>,
}

#[derive(Debug, Clone)]
pub struct Import {
    /// The module path as written (`Fugue.AWS.EC2`).
    pub path: Vec<String>,
    pub path_span: Span,
    pub alias: String,
    pub alias_span: Span,
}

#[derive(Debug, Clone)]
pub enum Decl {
    Binding(Binding),
    Fun(FunDecl),
    Type(TypeDecl),
}

impl Decl {
    pub fn name(&self) -> &str {
        match self {
            Decl::Binding(b) => &b.name,
            Decl::Fun(f) => &f.name,
            Decl::Type(t) => &t.name,
        }
    }
    pub fn name_span(&self) -> Span {
        match self {
            Decl::Binding(b) => b.name_span,
            Decl::Fun(f) => f.name_span,
            Decl::Type(t) => t.name_span,
        }
    }
}

/// `name: expression` at the top of a module.
#[derive(Debug, Clone)]
pub struct Binding {
    pub name: String,
    pub name_span: Span,
    pub expr: Expr,
}

#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub span: Span,
    pub ty: Option<TypeExpr>,
}

/// A field of a record parameter, optionally with a default.
#[derive(Debug, Clone)]
pub struct RecParam {
    pub name: String,
    pub span: Span,
    pub ty: TypeExpr,
    pub default: Option<Expr>,
}

#[derive(Debug, Clone)]
pub enum Params {
    /// `fun f(a: T, b: U)`
    Positional(Vec<Param>),
    /// `fun new {a: T, b: U = default}`: one record argument.
    Record(Vec<RecParam>),
}

/// `fun name<T>(params) -> Ret: body`, or `native fun …` with no body.
#[derive(Debug, Clone)]
pub struct FunDecl {
    /// May be dotted (`Vpc.new`).
    pub name: String,
    pub name_span: Span,
    pub type_params: Vec<String>,
    pub params: Params,
    pub ret: TypeExpr,
    /// `None` for natives.
    pub body: Option<Expr>,
}

#[derive(Debug, Clone)]
pub struct FieldDecl {
    pub name: String,
    pub span: Span,
    pub ty: TypeExpr,
}

#[derive(Debug, Clone)]
pub struct CtorDecl {
    pub name: String,
    pub span: Span,
    pub payload: Option<TypeExpr>,
}

#[derive(Debug, Clone)]
pub enum TypeBody {
    Record(Vec<FieldDecl>),
    Sum(Vec<CtorDecl>),
    Alias(TypeExpr),
}

/// `type Name: …` (or `resource type Name: {…}` for cloud resources).
#[derive(Debug, Clone)]
pub struct TypeDecl {
    pub name: String,
    pub name_span: Span,
    pub resource: bool,
    pub body: TypeBody,
}

#[derive(Debug, Clone)]
pub enum TypeExpr {
    Named {
        path: Vec<String>,
        args: Vec<TypeExpr>,
        span: Span,
    },
    Tuple(Vec<TypeExpr>, Span),
    Record(Vec<(String, Span, TypeExpr)>, Span),
    Fun(Vec<TypeExpr>, Box<TypeExpr>, Span),
}

impl TypeExpr {
    pub fn span(&self) -> Span {
        match self {
            TypeExpr::Named { span, .. }
            | TypeExpr::Tuple(_, span)
            | TypeExpr::Record(_, span)
            | TypeExpr::Fun(_, _, span) => *span,
        }
    }
}

#[derive(Debug, Clone)]
pub struct FieldInit {
    pub name: String,
    pub span: Span,
    pub value: Expr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Concat,
    Add,
    Sub,
    Mul,
    Div,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

#[derive(Debug, Clone)]
pub enum Pattern {
    Wildcard(Span),
    Var(String, Span),
    Int(i64, Span),
    Str(String, Span),
    Bool(bool, Span),
    None(Span),
    Some(Box<Pattern>, Span),
    Tuple(Vec<Pattern>, Span),
    /// A constructor, possibly qualified (`AWS.A`), with an optional payload
    /// pattern. Resolved by the checker into `resolved`.
    Ctor {
        path: Vec<String>,
        payload: Option<Box<Pattern>>,
        span: Span,
        resolved: Option<(ModuleId, String)>,
    },
}

impl Pattern {
    pub fn span(&self) -> Span {
        match self {
            Pattern::Wildcard(s)
            | Pattern::Var(_, s)
            | Pattern::Int(_, s)
            | Pattern::Str(_, s)
            | Pattern::Bool(_, s)
            | Pattern::None(s)
            | Pattern::Some(_, s)
            | Pattern::Tuple(_, s) => *s,
            Pattern::Ctor { span, .. } => *span,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Arm {
    pub pat: Pattern,
    pub body: Expr,
}

#[derive(Debug, Clone)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum ExprKind {
    Int(i64),
    Str(String),
    Bool(bool),
    None,
    Some(Box<Expr>),
    List(Vec<Expr>),
    Tuple(Vec<Expr>),
    Record(Vec<FieldInit>),
    /// An unresolved dotted name (`dev-network.vpc`, `AWS.Us-west-2`).
    Path(Vec<(String, Span)>),
    /// A resolved local variable.
    Local(String),
    /// A resolved module-level item.
    Global(ModuleId, String),
    Field(Box<Expr>, String, Span),
    Call(Box<Expr>, Vec<Expr>),
    Lambda(Vec<Param>, Box<Expr>),
    Let(String, Span, Box<Expr>, Box<Expr>),
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    Case(Box<Expr>, Vec<Arm>),
    With(Box<Expr>, Vec<FieldInit>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
    /// Stands in for an expression that failed to parse.
    Error,
}
