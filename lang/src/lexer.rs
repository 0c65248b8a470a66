//! The lexer: source text to tokens. Identifiers may contain hyphens
//! (`dev-network`, `Us-west-2`), so subtraction needs spaces around `-`.
//! Bad input becomes syntax diagnostics and lexing goes on.

use crate::diag::Diagnostic;
use crate::span::{FileId, Span};

/// Reserved words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kw {
    Composition,
    Import,
    As,
    Export,
    Type,
    Resource,
    Native,
    Fun,
    Let,
    If,
    Then,
    Else,
    Case,
    Of,
    With,
    True,
    False,
    None,
    Some,
}

impl Kw {
    fn from_word(w: &str) -> Option<Kw> {
        Some(match w {
            "composition" => Kw::Composition,
            "import" => Kw::Import,
            "as" => Kw::As,
            "export" => Kw::Export,
            "type" => Kw::Type,
            "resource" => Kw::Resource,
            "native" => Kw::Native,
            "fun" => Kw::Fun,
            "let" => Kw::Let,
            "if" => Kw::If,
            "then" => Kw::Then,
            "else" => Kw::Else,
            "case" => Kw::Case,
            "of" => Kw::Of,
            "with" => Kw::With,
            "True" => Kw::True,
            "False" => Kw::False,
            "None" => Kw::None,
            "Some" => Kw::Some,
            _ => return None,
        })
    }
}

/// Punctuation and operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sym {
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Colon,
    Dot,
    Bar,
    Arrow,
    Concat,
    Plus,
    Minus,
    Star,
    Slash,
    Eq,
    EqEq,
    NotEq,
    Lt,
    Le,
    Gt,
    Ge,
    AndAnd,
    OrOr,
}

impl Sym {
    pub fn text(self) -> &'static str {
        match self {
            Sym::LParen => "(",
            Sym::RParen => ")",
            Sym::LBracket => "[",
            Sym::RBracket => "]",
            Sym::LBrace => "{",
            Sym::RBrace => "}",
            Sym::Comma => ",",
            Sym::Colon => ":",
            Sym::Dot => ".",
            Sym::Bar => "|",
            Sym::Arrow => "->",
            Sym::Concat => "++",
            Sym::Plus => "+",
            Sym::Minus => "-",
            Sym::Star => "*",
            Sym::Slash => "/",
            Sym::Eq => "=",
            Sym::EqEq => "==",
            Sym::NotEq => "!=",
            Sym::Lt => "<",
            Sym::Le => "<=",
            Sym::Gt => ">",
            Sym::Ge => ">=",
            Sym::AndAnd => "&&",
            Sym::OrOr => "||",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// A name starting with a lowercase letter or `_`.
    Lower(String),
    /// A name starting with an uppercase letter (constructors, types, modules).
    Upper(String),
    Int(i64),
    Str(String),
    Kw(Kw),
    Sym(Sym),
    Eof,
}

impl Tok {
    pub fn describe(&self) -> String {
        match self {
            Tok::Lower(s) | Tok::Upper(s) => format!("`{s}`"),
            Tok::Int(n) => format!("`{n}`"),
            Tok::Str(_) => "a string".into(),
            Tok::Kw(k) => format!("`{}`", format!("{k:?}").to_lowercase()),
            Tok::Sym(s) => format!("`{}`", s.text()),
            Tok::Eof => "end of file".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
    /// First token on its line.
    pub line_start: bool,
    /// Column (in bytes from the line start) where the token starts.
    pub col: u32,
}

/// Splits `src` into tokens (always ending with `Eof`) and lexical errors.
pub fn lex(file: FileId, src: &str) -> (Vec<Token>, Vec<Diagnostic>) {
    let mut out = Vec::new();
    let mut errs = Vec::new();
    let bytes = src.as_bytes();
    let mut i = 0usize;
    let mut line_start_pos = 0usize;
    let mut at_line_start = true;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\n' {
            i += 1;
            line_start_pos = i;
            at_line_start = true;
            continue;
        }
        if c == b' ' || c == b'\t' || c == b'\r' {
            i += 1;
            continue;
        }
        if c == b'#' {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        let tok = if c.is_ascii_alphabetic() || c == b'_' {
            i = scan_ident(bytes, i);
            let word = &src[start..i];
            if let Some(k) = Kw::from_word(word) {
                Tok::Kw(k)
            } else if c.is_ascii_uppercase() {
                Tok::Upper(word.to_string())
            } else {
                Tok::Lower(word.to_string())
            }
        } else if c.is_ascii_digit() {
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'_') {
                i += 1;
            }
            let digits: String = src[start..i].chars().filter(|c| *c != '_').collect();
            match digits.parse::<i64>() {
                Ok(n) => Tok::Int(n),
                Err(_) => {
                    errs.push(
                        Diagnostic::syntax(
                            Span::new(file, start, i),
                            format!("integer literal {digits} is too large"),
                        )
                        .with_label("too large")
                        .with_hint(
                            "integers range from -9223372036854775808 to 9223372036854775807",
                        ),
                    );
                    Tok::Int(0)
                }
            }
        } else if c == b'"' || c == b'\'' {
            let (s, end, err) = scan_string(src, i, c);
            i = end;
            if let Some(msg) = err {
                errs.push(Diagnostic::syntax(Span::new(file, start, i), msg));
            }
            Tok::Str(s)
        } else {
            let two = bytes.get(i..i + 2).unwrap_or(&[]);
            let (sym, len) = match two {
                b"->" => (Some(Sym::Arrow), 2),
                b"++" => (Some(Sym::Concat), 2),
                b"==" => (Some(Sym::EqEq), 2),
                b"!=" => (Some(Sym::NotEq), 2),
                b"<=" => (Some(Sym::Le), 2),
                b">=" => (Some(Sym::Ge), 2),
                b"&&" => (Some(Sym::AndAnd), 2),
                b"||" => (Some(Sym::OrOr), 2),
                _ => (
                    match c {
                        b'(' => Some(Sym::LParen),
                        b')' => Some(Sym::RParen),
                        b'[' => Some(Sym::LBracket),
                        b']' => Some(Sym::RBracket),
                        b'{' => Some(Sym::LBrace),
                        b'}' => Some(Sym::RBrace),
                        b',' => Some(Sym::Comma),
                        b':' => Some(Sym::Colon),
                        b'.' => Some(Sym::Dot),
                        b'|' => Some(Sym::Bar),
                        b'+' => Some(Sym::Plus),
                        b'-' => Some(Sym::Minus),
                        b'*' => Some(Sym::Star),
                        b'/' => Some(Sym::Slash),
                        b'=' => Some(Sym::Eq),
                        b'<' => Some(Sym::Lt),
                        b'>' => Some(Sym::Gt),
                        _ => None,
                    },
                    1,
                ),
            };
            match sym {
                Some(s) => {
                    i += len;
                    Tok::Sym(s)
                }
                None => {
                    // Skip one whole character (never split UTF-8).
                    let ch = src[i..].chars().next().unwrap_or('\u{fffd}');
                    i += ch.len_utf8().max(1);
                    errs.push(
                        Diagnostic::syntax(
                            Span::new(file, start, i),
                            format!("unexpected character {ch:?}"),
                        )
                        .with_label("not part of the language"),
                    );
                    continue;
                }
            }
        };
        out.push(Token {
            tok,
            span: Span::new(file, start, i),
            line_start: at_line_start,
            col: u32::try_from(start - line_start_pos).unwrap_or(u32::MAX),
        });
        at_line_start = false;
    }
    out.push(Token {
        tok: Tok::Eof,
        span: Span::new(file, src.len(), src.len()),
        line_start: true,
        col: 0,
    });
    (out, errs)
}

/// Identifier characters: letters, digits, `_`, and `-` between two
/// alphanumerics (`dev-network`, `Us-west-2`).
fn scan_ident(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        let c = b[i];
        let inner_hyphen = c == b'-'
            && i + 1 < b.len()
            && b[i + 1].is_ascii_alphanumeric()
            && i > 0
            && b[i - 1].is_ascii_alphanumeric();
        if c.is_ascii_alphanumeric() || c == b'_' || inner_hyphen {
            i += 1;
        } else {
            break;
        }
    }
    i
}

/// Scans a quoted string starting at `start` (the quote). Returns its value,
/// the offset after it, and an error message if it is malformed.
fn scan_string(src: &str, start: usize, quote: u8) -> (String, usize, Option<String>) {
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices();
    let base = start + 1;
    while let Some((off, ch)) = chars.next() {
        let pos = base + off;
        if ch as u32 == u32::from(quote) {
            return (out, pos + 1, None);
        }
        match ch {
            '\n' => return (out, pos, Some("unterminated string literal".into())),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, '\\')) => out.push('\\'),
                Some((_, '"')) => out.push('"'),
                Some((_, '\'')) => out.push('\''),
                Some((o, other)) => {
                    return (
                        out,
                        base + o + other.len_utf8(),
                        Some(format!("unknown escape sequence \\{other}")),
                    )
                }
                None => return (out, src.len(), Some("unterminated string literal".into())),
            },
            c => out.push(c),
        }
    }
    (out, src.len(), Some("unterminated string literal".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(0, s).0.into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn hyphenated_names_and_operators() {
        assert_eq!(
            toks("dev-network: AWS.Us-west-2 # c\n a - b ++ 'x'"),
            vec![
                Tok::Lower("dev-network".into()),
                Tok::Sym(Sym::Colon),
                Tok::Upper("AWS".into()),
                Tok::Sym(Sym::Dot),
                Tok::Upper("Us-west-2".into()),
                Tok::Lower("a".into()),
                Tok::Sym(Sym::Minus),
                Tok::Lower("b".into()),
                Tok::Sym(Sym::Concat),
                Tok::Str("x".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn bad_input_is_reported_not_fatal() {
        let (t, e) = lex(0, "x: \"abc\n y: 99999999999999999999 é $");
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(matches!(t.last().map(|t| &t.tok), Some(Tok::Eof)));
    }
}
