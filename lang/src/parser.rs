//! The parser: tokens to a [`Module`]. Recursive descent with a nesting
//! limit (deep input is an error, never a stack overflow). On a syntax error
//! it records a diagnostic and skips to the next declaration (a token in the
//! first column), so independent errors are all reported in one run.

use crate::ast::*;
use crate::diag::Diagnostic;
use crate::lexer::{lex, Kw, Sym, Tok, Token};
use crate::span::{FileId, Span};

/// How deeply expressions, types and patterns may nest.
pub const MAX_DEPTH: usize = 100;
/// How long a chain of operators or postfix operations may be.
pub const MAX_CHAIN: usize = 2000;

/// Marker: a diagnostic has been recorded; unwind to the declaration.
#[derive(Debug)]
pub struct Failed;

type PResult<T> = Result<T, Failed>;

/// Parses one source file.
pub fn parse(
    file: FileId,
    name: &str,
    src: &str,
    is_composition: bool,
) -> (Module, Vec<Diagnostic>) {
    let (tokens, errs) = lex(file, src);
    let mut p = Parser {
        toks: tokens,
        pos: 0,
        errs,
        depth: 0,
        file,
    };
    let module = p.module(name, is_composition);
    (module, p.errs)
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    errs: Vec<Diagnostic>,
    depth: usize,
    file: FileId,
}

impl Parser {
    fn peek(&self) -> &Token {
        // `toks` always ends with Eof and `pos` never passes it.
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }
    fn peek_at(&self, n: usize) -> &Token {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)]
    }
    fn tok(&self) -> &Tok {
        &self.peek().tok
    }
    fn span(&self) -> Span {
        self.peek().span
    }
    fn prev_span(&self) -> Span {
        if self.pos == 0 {
            Span::new(self.file, 0, 0)
        } else {
            self.toks[(self.pos - 1).min(self.toks.len() - 1)].span
        }
    }
    /// Consumes the current token and returns its span.
    fn bump(&mut self) -> Span {
        let sp = self.peek().span;
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        sp
    }
    fn is_sym(&self, s: Sym) -> bool {
        self.tok() == &Tok::Sym(s)
    }
    fn is_kw(&self, k: Kw) -> bool {
        self.tok() == &Tok::Kw(k)
    }
    fn eat_sym(&mut self, s: Sym) -> bool {
        if self.is_sym(s) {
            self.bump();
            true
        } else {
            false
        }
    }
    fn eat_kw(&mut self, k: Kw) -> bool {
        if self.is_kw(k) {
            self.bump();
            true
        } else {
            false
        }
    }
    fn error<T>(&mut self, span: Span, msg: impl Into<String>) -> PResult<T> {
        self.errs.push(Diagnostic::syntax(span, msg));
        Err(Failed)
    }
    fn unexpected<T>(&mut self, expected: &str) -> PResult<T> {
        let t = self.peek().clone();
        let found = t.tok.describe();
        self.errs.push(
            Diagnostic::syntax(t.span, format!("unexpected {found}; expected {expected}"))
                .with_title("Syntax error:")
                .with_label(format!("expected {expected}")),
        );
        Err(Failed)
    }
    fn expect_sym(&mut self, s: Sym) -> PResult<Span> {
        if self.is_sym(s) {
            Ok(self.bump())
        } else {
            self.unexpected(&format!("`{}`", s.text()))
        }
    }
    fn lower(&mut self, what: &str) -> PResult<(String, Span)> {
        match self.tok().clone() {
            Tok::Lower(s) => {
                let sp = self.bump();
                Ok((s, sp))
            }
            _ => self.unexpected(what),
        }
    }
    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let sp = self.span();
            self.depth -= 1;
            return self.error(
                sp,
                format!("nesting is too deep (more than {MAX_DEPTH} levels)"),
            );
        }
        Ok(())
    }
    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Skips to the next token in the first column (a new declaration).
    fn recover(&mut self, item_start: usize) {
        self.depth = 0;
        loop {
            let t = self.peek();
            if t.tok == Tok::Eof || (t.line_start && t.col == 0 && self.pos != item_start) {
                break;
            }
            self.bump();
        }
    }

    fn module(&mut self, name: &str, is_composition: bool) -> Module {
        let mut m = Module {
            file: self.file,
            name: name.to_string(),
            is_composition,
            exports: None,
            imports: Vec::new(),
            decls: Vec::new(),
        };
        while self.tok() != &Tok::Eof {
            let start = self.pos;
            let r = self.top_item(&mut m);
            let ok = r.is_ok() && self.end_of_item();
            if !ok || self.pos == start {
                self.recover(start);
            }
        }
        m
    }

    /// After a declaration the next token must start a new line.
    fn end_of_item(&mut self) -> bool {
        let t = self.peek();
        if t.tok == Tok::Eof || t.line_start {
            return true;
        }
        let _ = self.unexpected::<()>("a new line after this declaration");
        false
    }

    fn top_item(&mut self, m: &mut Module) -> PResult<()> {
        match self.tok().clone() {
            Tok::Kw(Kw::Composition) => {
                self.bump();
                Ok(())
            }
            Tok::Kw(Kw::Import) => {
                self.bump();
                let (path, path_span) = self.module_path()?;
                let (alias, alias_span) = if self.eat_kw(Kw::As) {
                    match self.tok().clone() {
                        Tok::Upper(s) | Tok::Lower(s) => {
                            let sp = self.bump();
                            (s, sp)
                        }
                        _ => return self.unexpected("a module alias"),
                    }
                } else {
                    (path.last().cloned().unwrap_or_default(), path_span)
                };
                m.imports.push(Import {
                    path,
                    path_span,
                    alias,
                    alias_span,
                });
                Ok(())
            }
            Tok::Kw(Kw::Export) => {
                self.bump();
                let mut names = Vec::new();
                loop {
                    let (n, sp) = self.dotted_name()?;
                    names.push((n, sp));
                    if !self.eat_sym(Sym::Comma) {
                        break;
                    }
                }
                m.exports.get_or_insert_with(Vec::new).extend(names);
                Ok(())
            }
            Tok::Kw(Kw::Type) => {
                self.bump();
                let d = self.type_decl(false)?;
                m.decls.push(Decl::Type(d));
                Ok(())
            }
            Tok::Kw(Kw::Resource) => {
                self.bump();
                if !self.eat_kw(Kw::Type) {
                    return self.unexpected("`type`");
                }
                let d = self.type_decl(true)?;
                m.decls.push(Decl::Type(d));
                Ok(())
            }
            Tok::Kw(Kw::Fun) => {
                self.bump();
                let f = self.fun_decl(false)?;
                m.decls.push(Decl::Fun(f));
                Ok(())
            }
            Tok::Kw(Kw::Native) => {
                self.bump();
                if !self.eat_kw(Kw::Fun) {
                    return self.unexpected("`fun`");
                }
                let f = self.fun_decl(true)?;
                m.decls.push(Decl::Fun(f));
                Ok(())
            }
            Tok::Upper(_) if matches!(self.peek_at(1).tok, Tok::Sym(Sym::Dot)) => {
                // A dotted binding such as `Target.all: …` (library helpers).
                let (name, name_span) = self.dotted_name()?;
                self.expect_sym(Sym::Colon)?;
                let expr = self.expr()?;
                m.decls.push(Decl::Binding(Binding {
                    name,
                    name_span,
                    expr,
                }));
                Ok(())
            }
            Tok::Lower(name) => {
                let name_span = self.bump();
                if !self.is_sym(Sym::Colon) {
                    return self.unexpected("`:` after the binding name");
                }
                self.bump();
                let expr = self.expr()?;
                m.decls.push(Decl::Binding(Binding {
                    name,
                    name_span,
                    expr,
                }));
                Ok(())
            }
            _ => self.unexpected("a binding (`name: value`), `import`, `type` or `fun`"),
        }
    }

    fn module_path(&mut self) -> PResult<(Vec<String>, Span)> {
        let start = self.span();
        let mut path = Vec::new();
        loop {
            match self.tok().clone() {
                Tok::Upper(s) => {
                    self.bump();
                    path.push(s);
                }
                _ => return self.unexpected("a module name (capitalised)"),
            }
            if !self.eat_sym(Sym::Dot) {
                break;
            }
        }
        Ok((path, start.to(self.prev_span())))
    }

    /// `name` or `Name.name` (for declarations like `fun Vpc.new`).
    fn dotted_name(&mut self) -> PResult<(String, Span)> {
        let start = self.span();
        let mut parts = Vec::new();
        loop {
            match self.tok().clone() {
                Tok::Upper(s) | Tok::Lower(s) => {
                    self.bump();
                    parts.push(s);
                }
                _ => return self.unexpected("a name"),
            }
            if !self.is_sym(Sym::Dot) {
                break;
            }
            self.bump();
        }
        Ok((parts.join("."), start.to(self.prev_span())))
    }

    fn type_decl(&mut self, resource: bool) -> PResult<TypeDecl> {
        let (name, name_span) = match self.tok().clone() {
            Tok::Upper(s) => {
                let sp = self.bump();
                (s, sp)
            }
            _ => return self.unexpected("a type name (capitalised)"),
        };
        self.expect_sym(Sym::Colon)?;
        let body = if self.is_sym(Sym::LBrace) {
            self.bump();
            let mut fields = Vec::new();
            while !self.is_sym(Sym::RBrace) {
                let (fname, span) = self.lower("a field name")?;
                self.expect_sym(Sym::Colon)?;
                let ty = self.type_expr()?;
                fields.push(FieldDecl {
                    name: fname,
                    span,
                    ty,
                });
                if !self.eat_sym(Sym::Comma) {
                    break;
                }
            }
            self.expect_sym(Sym::RBrace)?;
            TypeBody::Record(fields)
        } else if self.is_sym(Sym::Bar) {
            let mut ctors = Vec::new();
            while self.eat_sym(Sym::Bar) {
                let (cname, span) = match self.tok().clone() {
                    Tok::Upper(s) => {
                        let sp = self.bump();
                        (s, sp)
                    }
                    _ => return self.unexpected("a constructor name (capitalised)"),
                };
                let payload = if self.is_sym(Sym::LParen) && self.same_line() {
                    self.bump();
                    let t = self.type_expr()?;
                    self.expect_sym(Sym::RParen)?;
                    Some(t)
                } else {
                    None
                };
                ctors.push(CtorDecl {
                    name: cname,
                    span,
                    payload,
                });
            }
            TypeBody::Sum(ctors)
        } else {
            TypeBody::Alias(self.type_expr()?)
        };
        if resource && !matches!(body, TypeBody::Record(_)) {
            return self.error(name_span, "a resource type must be a record type");
        }
        Ok(TypeDecl {
            name,
            name_span,
            resource,
            body,
        })
    }

    fn fun_decl(&mut self, native: bool) -> PResult<FunDecl> {
        let (name, name_span) = self.dotted_name()?;
        let mut type_params = Vec::new();
        if self.eat_sym(Sym::Lt) {
            loop {
                match self.tok().clone() {
                    Tok::Upper(s) => {
                        self.bump();
                        type_params.push(s);
                    }
                    _ => return self.unexpected("a type parameter"),
                }
                if !self.eat_sym(Sym::Comma) {
                    break;
                }
            }
            self.expect_sym(Sym::Gt)?;
        }
        let params = if self.is_sym(Sym::LBrace) {
            self.bump();
            let mut ps = Vec::new();
            while !self.is_sym(Sym::RBrace) {
                let (pname, span) = self.lower("a parameter name")?;
                self.expect_sym(Sym::Colon)?;
                let ty = self.type_expr()?;
                let default = if self.eat_sym(Sym::Eq) {
                    Some(self.expr()?)
                } else {
                    None
                };
                ps.push(RecParam {
                    name: pname,
                    span,
                    ty,
                    default,
                });
                if !self.eat_sym(Sym::Comma) {
                    break;
                }
            }
            self.expect_sym(Sym::RBrace)?;
            Params::Record(ps)
        } else {
            self.expect_sym(Sym::LParen)?;
            let ps = self.params(true)?;
            Params::Positional(ps)
        };
        self.expect_sym(Sym::Arrow)?;
        let ret = self.type_expr()?;
        let body = if native {
            None
        } else {
            self.expect_sym(Sym::Colon)?;
            Some(self.expr()?)
        };
        Ok(FunDecl {
            name,
            name_span,
            type_params,
            params,
            ret,
            body,
        })
    }

    /// Parameters after `(`, through `)`.
    fn params(&mut self, typed: bool) -> PResult<Vec<Param>> {
        let mut ps = Vec::new();
        while !self.is_sym(Sym::RParen) {
            let (name, span) = self.lower("a parameter name")?;
            let ty = if self.eat_sym(Sym::Colon) {
                Some(self.type_expr()?)
            } else if typed {
                return self.unexpected("`:` and the parameter's type");
            } else {
                None
            };
            ps.push(Param { name, span, ty });
            if !self.eat_sym(Sym::Comma) {
                break;
            }
        }
        self.expect_sym(Sym::RParen)?;
        Ok(ps)
    }

    fn same_line(&self) -> bool {
        !self.peek().line_start
    }

    // ----- types -----

    fn type_expr(&mut self) -> PResult<TypeExpr> {
        self.enter()?;
        let r = self.type_expr_inner();
        self.leave();
        r
    }

    fn type_expr_inner(&mut self) -> PResult<TypeExpr> {
        let start = self.span();
        let t = match self.tok().clone() {
            Tok::Upper(_) => {
                let mut path = Vec::new();
                loop {
                    match self.tok().clone() {
                        Tok::Upper(s) => {
                            self.bump();
                            path.push(s);
                        }
                        _ => return self.unexpected("a type name"),
                    }
                    if !self.eat_sym(Sym::Dot) {
                        break;
                    }
                }
                let mut args = Vec::new();
                if self.eat_sym(Sym::Lt) {
                    loop {
                        args.push(self.type_expr()?);
                        if !self.eat_sym(Sym::Comma) {
                            break;
                        }
                    }
                    self.expect_sym(Sym::Gt)?;
                }
                TypeExpr::Named {
                    path,
                    args,
                    span: start.to(self.prev_span()),
                }
            }
            Tok::Sym(Sym::LParen) => {
                self.bump();
                let mut items = Vec::new();
                while !self.is_sym(Sym::RParen) {
                    items.push(self.type_expr()?);
                    if !self.eat_sym(Sym::Comma) {
                        break;
                    }
                }
                self.expect_sym(Sym::RParen)?;
                let span = start.to(self.prev_span());
                if self.is_sym(Sym::Arrow) {
                    self.bump();
                    let ret = self.type_expr()?;
                    let span = start.to(ret.span());
                    return Ok(TypeExpr::Fun(items, Box::new(ret), span));
                }
                if items.len() == 1 {
                    items.pop().ok_or(Failed)?
                } else {
                    TypeExpr::Tuple(items, span)
                }
            }
            Tok::Sym(Sym::LBrace) => {
                self.bump();
                let mut fields = Vec::new();
                while !self.is_sym(Sym::RBrace) {
                    let (n, sp) = self.lower("a field name")?;
                    self.expect_sym(Sym::Colon)?;
                    let ty = self.type_expr()?;
                    fields.push((n, sp, ty));
                    if !self.eat_sym(Sym::Comma) {
                        break;
                    }
                }
                self.expect_sym(Sym::RBrace)?;
                TypeExpr::Record(fields, start.to(self.prev_span()))
            }
            _ => return self.unexpected("a type"),
        };
        if self.is_sym(Sym::Arrow) {
            self.bump();
            let ret = self.type_expr()?;
            let span = start.to(ret.span());
            return Ok(TypeExpr::Fun(vec![t], Box::new(ret), span));
        }
        Ok(t)
    }

    // ----- expressions -----

    pub fn expr(&mut self) -> PResult<Expr> {
        self.enter()?;
        let r = self.expr_inner();
        self.leave();
        r
    }

    fn expr_inner(&mut self) -> PResult<Expr> {
        let start = self.span();
        match self.tok() {
            Tok::Kw(Kw::Let) => {
                self.bump();
                let (name, nspan) = self.lower("a name after `let`")?;
                self.expect_sym(Sym::Colon)?;
                let value = self.expr()?;
                let body = self.expr()?;
                let span = start.to(body.span);
                Ok(Expr {
                    kind: ExprKind::Let(name, nspan, Box::new(value), Box::new(body)),
                    span,
                })
            }
            Tok::Kw(Kw::If) => {
                self.bump();
                let c = self.expr()?;
                if !self.eat_kw(Kw::Then) {
                    return self.unexpected("`then`");
                }
                let t = self.expr()?;
                if !self.eat_kw(Kw::Else) {
                    return self.unexpected("`else`");
                }
                let e = self.expr()?;
                let span = start.to(e.span);
                Ok(Expr {
                    kind: ExprKind::If(Box::new(c), Box::new(t), Box::new(e)),
                    span,
                })
            }
            Tok::Kw(Kw::Case) => {
                self.bump();
                let scrut = self.expr()?;
                if !self.eat_kw(Kw::Of) {
                    return self.unexpected("`of`");
                }
                let mut arms = Vec::new();
                let first_bar = self.eat_sym(Sym::Bar);
                loop {
                    let pat = self.pattern()?;
                    self.expect_sym(Sym::Arrow)?;
                    let body = self.expr()?;
                    arms.push(Arm { pat, body });
                    if !self.eat_sym(Sym::Bar) {
                        break;
                    }
                }
                let _ = first_bar;
                let span = start.to(self.prev_span());
                Ok(Expr {
                    kind: ExprKind::Case(Box::new(scrut), arms),
                    span,
                })
            }
            Tok::Kw(Kw::Fun) if matches!(self.peek_at(1).tok, Tok::Sym(Sym::LParen)) => {
                self.bump();
                self.bump();
                let ps = self.params(false)?;
                self.expect_sym(Sym::Colon)?;
                let body = self.expr()?;
                let span = start.to(body.span);
                Ok(Expr {
                    kind: ExprKind::Lambda(ps, Box::new(body)),
                    span,
                })
            }
            _ => self.binary(0),
        }
    }

    fn binop(&self) -> Option<(BinOp, u8, bool)> {
        // (operator, precedence, right-associative)
        let Tok::Sym(s) = self.tok() else {
            return None;
        };
        Some(match s {
            Sym::OrOr => (BinOp::Or, 1, false),
            Sym::AndAnd => (BinOp::And, 2, false),
            Sym::EqEq => (BinOp::Eq, 3, false),
            Sym::NotEq => (BinOp::Ne, 3, false),
            Sym::Lt => (BinOp::Lt, 3, false),
            Sym::Le => (BinOp::Le, 3, false),
            Sym::Gt => (BinOp::Gt, 3, false),
            Sym::Ge => (BinOp::Ge, 3, false),
            Sym::Concat => (BinOp::Concat, 4, true),
            Sym::Plus => (BinOp::Add, 5, false),
            Sym::Minus => (BinOp::Sub, 5, false),
            Sym::Star => (BinOp::Mul, 6, false),
            Sym::Slash => (BinOp::Div, 6, false),
            _ => return None,
        })
    }

    /// Precedence climbing; chains are bounded by [`MAX_CHAIN`].
    fn binary(&mut self, min_prec: u8) -> PResult<Expr> {
        let mut lhs = self.unary()?;
        let mut count = 0usize;
        while let Some((op, prec, right)) = self.binop() {
            if prec < min_prec {
                break;
            }
            count += 1;
            if count > MAX_CHAIN {
                let sp = self.span();
                return self.error(sp, "operator chain is too long");
            }
            self.bump();
            let rhs = if right {
                self.enter()?;
                let r = self.binary(prec);
                self.leave();
                r?
            } else {
                self.binary(prec + 1)?
            };
            let span = lhs.span.to(rhs.span);
            lhs = Expr {
                kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                span,
            };
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> PResult<Expr> {
        if self.is_sym(Sym::Minus) {
            let start = self.bump();
            self.enter()?;
            let e = self.unary();
            self.leave();
            let e = e?;
            let span = start.to(e.span);
            if let ExprKind::Int(n) = e.kind {
                return Ok(Expr {
                    kind: ExprKind::Int(n.wrapping_neg()),
                    span,
                });
            }
            return Ok(Expr {
                kind: ExprKind::Neg(Box::new(e)),
                span,
            });
        }
        self.postfix()
    }

    fn postfix(&mut self) -> PResult<Expr> {
        let mut e = self.primary()?;
        let mut count = 0usize;
        loop {
            count += 1;
            if count > MAX_CHAIN {
                let sp = self.span();
                return self.error(sp, "chain of calls is too long");
            }
            if self.is_sym(Sym::LParen) && self.same_line() {
                self.bump();
                let args = self.call_args()?;
                let span = e.span.to(self.prev_span());
                e = Expr {
                    kind: ExprKind::Call(Box::new(e), args),
                    span,
                };
            } else if self.is_sym(Sym::LBrace) && self.same_line() && is_callee(&e) {
                let arg = self.primary()?;
                let span = e.span.to(arg.span);
                e = Expr {
                    kind: ExprKind::Call(Box::new(e), vec![arg]),
                    span,
                };
            } else if self.is_sym(Sym::Dot) {
                self.bump();
                let (name, nspan) = match self.tok().clone() {
                    Tok::Lower(s) | Tok::Upper(s) => {
                        let sp = self.bump();
                        (s, sp)
                    }
                    _ => return self.unexpected("a field name after `.`"),
                };
                let span = e.span.to(nspan);
                e = match e.kind {
                    ExprKind::Path(mut segs) => {
                        segs.push((name, nspan));
                        Expr {
                            kind: ExprKind::Path(segs),
                            span,
                        }
                    }
                    kind => Expr {
                        kind: ExprKind::Field(Box::new(Expr { kind, span: e.span }), name, nspan),
                        span,
                    },
                };
            } else if self.is_kw(Kw::With) {
                self.bump();
                if !self.is_sym(Sym::LBrace) {
                    return self.unexpected("`{` after `with`");
                }
                self.bump();
                let fields = self.record_fields()?;
                let span = e.span.to(self.prev_span());
                e = Expr {
                    kind: ExprKind::With(Box::new(e), fields),
                    span,
                };
            } else {
                return Ok(e);
            }
        }
    }

    /// Arguments after `(`: positional, or named (`f(a: 1, b: 2)`, sugar for
    /// one record argument).
    fn call_args(&mut self) -> PResult<Vec<Expr>> {
        let start = self.span();
        if matches!(self.tok(), Tok::Lower(_))
            && matches!(self.peek_at(1).tok, Tok::Sym(Sym::Colon))
        {
            let fields = self.fields_until(Sym::RParen)?;
            let span = start.to(self.prev_span());
            return Ok(vec![Expr {
                kind: ExprKind::Record(fields),
                span,
            }]);
        }
        let mut args = Vec::new();
        while !self.is_sym(Sym::RParen) {
            args.push(self.expr()?);
            if !self.eat_sym(Sym::Comma) {
                break;
            }
        }
        if !self.is_sym(Sym::RParen) {
            return self.unexpected("`,` or `)`");
        }
        self.bump();
        Ok(args)
    }

    /// Record fields after `{`, through `}`.
    fn record_fields(&mut self) -> PResult<Vec<FieldInit>> {
        self.fields_until(Sym::RBrace)
    }

    fn fields_until(&mut self, close: Sym) -> PResult<Vec<FieldInit>> {
        let mut fields = Vec::new();
        while !self.is_sym(close) {
            let (name, span) = self.lower("a field name")?;
            let value = if self.eat_sym(Sym::Colon) {
                self.expr()?
            } else {
                // `{region}` is `{region: region}`.
                Expr {
                    kind: ExprKind::Path(vec![(name.clone(), span)]),
                    span,
                }
            };
            fields.push(FieldInit { name, span, value });
            if !self.eat_sym(Sym::Comma) {
                break;
            }
        }
        if !self.is_sym(close) {
            return self.unexpected(&format!("`,` or `{}`", close.text()));
        }
        self.bump();
        Ok(fields)
    }

    /// After `{`: whether what follows is Ludwig's brace tuple
    /// (`{AWS.A, "10.0.1.0/24"}`) rather than a record. A record's every
    /// item is a field (`name: value`) or a punned name (`{region}`), so
    /// the braces hold a tuple as soon as one item is anything else.
    fn brace_holds_tuple(&self) -> bool {
        let mut depth = 0usize;
        let mut item_start = true;
        let mut n = 0;
        loop {
            let t = &self.peek_at(n).tok;
            if depth == 0 && item_start {
                let field = matches!(t, Tok::Lower(_))
                    && matches!(
                        self.peek_at(n + 1).tok,
                        Tok::Sym(Sym::Colon | Sym::Comma | Sym::RBrace)
                    );
                if !field && !matches!(t, Tok::Sym(Sym::RBrace)) {
                    return true;
                }
            }
            item_start = false;
            match t {
                Tok::Eof => return false,
                Tok::Sym(Sym::LParen | Sym::LBracket | Sym::LBrace) => depth += 1,
                Tok::Sym(Sym::RBrace) if depth == 0 => return false,
                Tok::Sym(Sym::RParen | Sym::RBracket | Sym::RBrace) => {
                    depth = depth.saturating_sub(1)
                }
                Tok::Sym(Sym::Comma) if depth == 0 => item_start = true,
                _ => {}
            }
            n += 1;
        }
    }

    /// The items of a brace tuple up to its `}` (the `{` is behind).
    fn brace_tuple(&mut self, start: Span) -> PResult<Vec<Expr>> {
        let mut items = Vec::new();
        while !self.is_sym(Sym::RBrace) {
            items.push(self.expr()?);
            if !self.eat_sym(Sym::Comma) {
                break;
            }
        }
        if !self.is_sym(Sym::RBrace) {
            return self.unexpected("`,` or `}`");
        }
        self.bump();
        if items.len() < 2 {
            return self.error(
                start.to(self.prev_span()),
                "a tuple in braces needs two items or more, as in `{AWS.A, \"10.0.1.0/24\"}`",
            );
        }
        Ok(items)
    }

    fn primary(&mut self) -> PResult<Expr> {
        self.enter()?;
        let r = self.primary_inner();
        self.leave();
        r
    }

    fn primary_inner(&mut self) -> PResult<Expr> {
        let start = self.span();
        let t = self.tok().clone();
        let kind = match t {
            Tok::Int(n) => {
                self.bump();
                ExprKind::Int(n)
            }
            Tok::Str(s) => {
                self.bump();
                ExprKind::Str(s)
            }
            Tok::Kw(Kw::True) => {
                self.bump();
                ExprKind::Bool(true)
            }
            Tok::Kw(Kw::False) => {
                self.bump();
                ExprKind::Bool(false)
            }
            Tok::Kw(Kw::None) => {
                self.bump();
                ExprKind::None
            }
            Tok::Kw(Kw::Some) => {
                self.bump();
                self.expect_sym(Sym::LParen)?;
                let e = self.expr()?;
                self.expect_sym(Sym::RParen)?;
                ExprKind::Some(Box::new(e))
            }
            Tok::Lower(s) | Tok::Upper(s) => {
                let sp = self.bump();
                ExprKind::Path(vec![(s, sp)])
            }
            Tok::Sym(Sym::LBracket) => {
                self.bump();
                let mut items = Vec::new();
                while !self.is_sym(Sym::RBracket) {
                    items.push(self.expr()?);
                    if !self.eat_sym(Sym::Comma) {
                        break;
                    }
                }
                if !self.is_sym(Sym::RBracket) {
                    return self.unexpected("`,` or `]`");
                }
                self.bump();
                ExprKind::List(items)
            }
            Tok::Sym(Sym::LParen) => {
                self.bump();
                let mut items = Vec::new();
                let mut trailing = false;
                while !self.is_sym(Sym::RParen) {
                    items.push(self.expr()?);
                    trailing = self.eat_sym(Sym::Comma);
                    if !trailing {
                        break;
                    }
                }
                if !self.is_sym(Sym::RParen) {
                    return self.unexpected("`,` or `)`");
                }
                self.bump();
                if items.is_empty() {
                    return self.error(
                        start.to(self.prev_span()),
                        "empty parentheses `()` are not a value",
                    );
                }
                if items.len() == 1 && !trailing {
                    let mut e = items.pop().ok_or(Failed)?;
                    e.span = start.to(self.prev_span());
                    return Ok(e);
                }
                ExprKind::Tuple(items)
            }
            Tok::Sym(Sym::LBrace) => {
                self.bump();
                if self.brace_holds_tuple() {
                    ExprKind::Tuple(self.brace_tuple(start)?)
                } else {
                    ExprKind::Record(self.record_fields()?)
                }
            }
            _ => return self.unexpected("an expression"),
        };
        Ok(Expr {
            kind,
            span: start.to(self.prev_span()),
        })
    }

    fn pattern(&mut self) -> PResult<Pattern> {
        self.enter()?;
        let r = self.pattern_inner();
        self.leave();
        r
    }

    fn pattern_inner(&mut self) -> PResult<Pattern> {
        let start = self.span();
        match self.tok().clone() {
            Tok::Lower(s) => {
                self.bump();
                Ok(if s == "_" {
                    Pattern::Wildcard(start)
                } else {
                    Pattern::Var(s, start)
                })
            }
            Tok::Int(n) => {
                self.bump();
                Ok(Pattern::Int(n, start))
            }
            Tok::Sym(Sym::Minus) => {
                self.bump();
                match self.tok().clone() {
                    Tok::Int(n) => {
                        self.bump();
                        Ok(Pattern::Int(n.wrapping_neg(), start.to(self.prev_span())))
                    }
                    _ => self.unexpected("a number"),
                }
            }
            Tok::Str(s) => {
                self.bump();
                Ok(Pattern::Str(s, start))
            }
            Tok::Kw(Kw::True) => {
                self.bump();
                Ok(Pattern::Bool(true, start))
            }
            Tok::Kw(Kw::False) => {
                self.bump();
                Ok(Pattern::Bool(false, start))
            }
            Tok::Kw(Kw::None) => {
                self.bump();
                Ok(Pattern::None(start))
            }
            Tok::Kw(Kw::Some) => {
                self.bump();
                self.expect_sym(Sym::LParen)?;
                let p = self.pattern()?;
                self.expect_sym(Sym::RParen)?;
                Ok(Pattern::Some(Box::new(p), start.to(self.prev_span())))
            }
            Tok::Sym(Sym::LParen) => {
                self.bump();
                let mut items = Vec::new();
                while !self.is_sym(Sym::RParen) {
                    items.push(self.pattern()?);
                    if !self.eat_sym(Sym::Comma) {
                        break;
                    }
                }
                self.expect_sym(Sym::RParen)?;
                if items.len() == 1 {
                    return items.pop().ok_or(Failed);
                }
                Ok(Pattern::Tuple(items, start.to(self.prev_span())))
            }
            Tok::Upper(_) => {
                let mut path = Vec::new();
                loop {
                    match self.tok().clone() {
                        Tok::Upper(s) => {
                            self.bump();
                            path.push(s);
                        }
                        _ => return self.unexpected("a constructor name"),
                    }
                    if !self.eat_sym(Sym::Dot) {
                        break;
                    }
                }
                let payload = if self.is_sym(Sym::LParen) && self.same_line() {
                    self.bump();
                    let p = self.pattern()?;
                    self.expect_sym(Sym::RParen)?;
                    Some(Box::new(p))
                } else {
                    None
                };
                Ok(Pattern::Ctor {
                    path,
                    payload,
                    span: start.to(self.prev_span()),
                    resolved: None,
                })
            }
            _ => self.unexpected("a pattern"),
        }
    }
}

/// A record written right after one of these is its argument
/// (`Network.new {…}`).
fn is_callee(e: &Expr) -> bool {
    matches!(e.kind, ExprKind::Path(_) | ExprKind::Field(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(src: &str) -> Module {
        let (m, errs) = parse(0, "t", src, true);
        assert!(errs.is_empty(), "{errs:?}");
        m
    }

    #[test]
    fn demo_bindings_parse() {
        let m = ok(r#"
composition
import Fugue.AWS.EC2 as EC2
# Network
dev-network: Network.new {
  name: "dev-network-sam",
  region: AWS.Us-west-2,
  publicSubnets: [
    (AWS.A, "10.0.1.0/24"),
    (AWS.B, "10.0.2.0/24"),
  ],
  privateSubnets: [],
}
internetCIDR: EC2.IpRanges([EC2.IpRange(cidrIp: "0.0.0.0/0")])
web-app-tag: AWS.tag('Application', 'WebApp')
"#);
        assert_eq!(m.imports.len(), 1);
        assert_eq!(m.decls.len(), 3);
        assert_eq!(m.decls[0].name(), "dev-network");
    }

    #[test]
    fn several_errors_in_one_run() {
        let (m, errs) = parse(0, "t", "a: [1, 2\nb: 3\nc: (4 +)\nd: 5\n", true);
        assert_eq!(errs.len(), 2, "{errs:?}");
        let names: Vec<_> = m.decls.iter().map(|d| d.name().to_string()).collect();
        assert_eq!(names, vec!["b", "d"]);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let src = format!("a: {}1{}", "[".repeat(5000), "]".repeat(5000));
        let (_, errs) = parse(0, "t", &src, true);
        assert!(errs.iter().any(|e| e.message.contains("too deep")));
    }
}
