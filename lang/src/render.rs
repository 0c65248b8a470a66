//! Rendering diagnostics for people (miette's graphical report, without
//! colour so output is stable) and for machines (JSON). For an error raised
//! inside library code, the report shows the library source at the call that
//! failed and a stack trace back to the user's call site.

use std::fmt;

use miette::{
    Diagnostic as MietteDiagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan,
    NamedSource, SourceCode,
};
use serde_json::{json, Value as Json};

use crate::diag::{Diagnostic, Frame, Kind, Severity};
use crate::lexer::Tok;
use crate::span::{Origin, SourceMap, Span};

/// Where a diagnostic is shown and the stack frames listed under it.
fn placement(d: &Diagnostic, sources: &SourceMap) -> (Span, Vec<Frame>) {
    let is_lib = |s: Span| {
        sources
            .get(s.file)
            .is_some_and(|f| f.origin == Origin::Library)
    };
    if d.stack.is_empty() || !is_lib(d.span) {
        return (d.span, d.stack.clone());
    }
    // Raised inside the library: show the first call into the raising file
    // from elsewhere, then the rest of the stack.
    match d.stack.iter().position(|f| f.span.file != d.span.file) {
        Some(i) => (d.stack[i].span, d.stack[i + 1..].to_vec()),
        None => (d.span, d.stack.clone()),
    }
}

struct Report {
    message: String,
    code: String,
    severity: miette::Severity,
    help: Option<String>,
    src: NamedSource<String>,
    labels: Vec<LabeledSpan>,
    related: Vec<Report>,
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Report {}

impl MietteDiagnostic for Report {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        if self.code.is_empty() {
            None
        } else {
            Some(Box::new(&self.code))
        }
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.src)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(self.labels.clone().into_iter()))
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn MietteDiagnostic> + 'a>> {
        if self.related.is_empty() {
            None
        } else {
            Some(Box::new(
                self.related.iter().map(|r| r as &dyn MietteDiagnostic),
            ))
        }
    }
}

fn named_source(sources: &SourceMap, span: Span) -> NamedSource<String> {
    match sources.get(span.file) {
        Some(f) => NamedSource::new(f.name.clone(), f.text.clone()),
        None => NamedSource::new("<unknown>", String::new()),
    }
}

/// Length of the part of `span` on its first line (a call site is shown by
/// its first line only).
fn first_line_len(sources: &SourceMap, span: Span) -> usize {
    let text = sources
        .get(span.file)
        .and_then(|f| f.text.get(span.start as usize..span.end as usize))
        .unwrap_or("");
    text.find('\n').unwrap_or(text.len())
}

fn location(sources: &SourceMap, span: Span) -> String {
    let (name, line, col) = sources.locate(span);
    format!("\"{name}\" (line {line}, column {col})")
}

/// Where the user wrote the values a library error names: for an error
/// raised inside the library, the string literals of the user's file
/// (the one the stack leaves the library for) whose text the message
/// quotes as a whole word, such as `"10.0.0.0/8"` for "… (It is
/// 10.0.0.0/8, a /8.)". The value reached the library from one of them.
/// None when the file writes no such literal or too many to point at.
fn given_values(d: &Diagnostic, sources: &SourceMap) -> Vec<Span> {
    /// More places than this point nowhere in particular.
    const PLACES_MAX: usize = 3;
    let user = d.stack.iter().find_map(|f| {
        sources
            .get(f.span.file)
            .filter(|s| s.origin == Origin::User)
            .map(|s| (f.span.file, s))
    });
    let Some((file, source)) = user.filter(|_| d.kind == Kind::Runtime) else {
        return Vec::new();
    };
    let (tokens, _) = crate::lexer::lex(file, &source.text);
    let places: Vec<Span> = tokens
        .iter()
        .filter_map(|t| match &t.tok {
            Tok::Str(text) if quotes(&d.message, text) => Some(t.span),
            _ => None,
        })
        .collect();
    if places.len() > PLACES_MAX {
        return Vec::new();
    }
    places
}

/// Whether `message` holds `text` (three characters or more) as a whole
/// word: not inside a longer name or number.
fn quotes(message: &str, text: &str) -> bool {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
    text.chars().count() >= 3
        && message.match_indices(text).any(|(i, _)| {
            !word(message[..i].chars().next_back())
                && !word(message[i + text.len()..].chars().next())
        })
}

/// Renders one diagnostic as text: a header in the style
/// `canon (scope error):` with file, line and column, then the source lines
/// with a caret, hints and (for runtime errors) the stack trace.
pub fn render_text(d: &Diagnostic, sources: &SourceMap) -> String {
    let (span, stack) = placement(d, sources);
    let mut out = String::new();
    let sev = match d.severity {
        Severity::Error => "",
        Severity::Warning => "warning: ",
    };
    out.push_str(&format!("canon ({sev}{}):\n", d.kind.describe()));
    out.push_str(&format!("  {}:\n", location(sources, span)));
    out.push_str(&format!("    {}\n", d.title));

    let mut help = d.hints.join("\n");
    if !stack.is_empty() {
        if !help.is_empty() {
            help.push('\n');
        }
        help.push_str("Stack trace:");
        for f in &stack {
            help.push_str(&format!(
                "\n  In call to {} at {}",
                f.function,
                location(sources, f.span)
            ));
        }
    }
    let mut related = Vec::new();
    // For library errors, also show the user's call site.
    let user_frame = stack.iter().find(|f| {
        sources
            .get(f.span.file)
            .is_some_and(|s| s.origin == Origin::User)
    });
    if let Some(f) = user_frame {
        if f.span.file != span.file || stack.len() > 1 {
            let mut labels = vec![LabeledSpan::new(
                Some("called here".into()),
                f.span.start as usize,
                first_line_len(sources, f.span),
            )];
            for v in given_values(d, sources) {
                let here = Some("the value given here".into());
                labels.push(LabeledSpan::new(here, v.start as usize, v.len()));
            }
            related.push(Report {
                message: format!("In call to {}", f.function),
                code: String::new(),
                severity: miette::Severity::Advice,
                help: None,
                src: named_source(sources, f.span),
                labels,
                related: Vec::new(),
            });
        }
    }
    let label = if d.label.is_empty() {
        None
    } else {
        Some(d.label.clone())
    };
    let report = Report {
        message: d.message.clone(),
        // The header already names the kind.
        code: String::new(),
        severity: match d.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        },
        help: if help.is_empty() { None } else { Some(help) },
        src: named_source(sources, span),
        labels: vec![LabeledSpan::new(label, span.start as usize, span.len())],
        related,
    };
    let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .with_links(false)
        .with_context_lines(1);
    let mut body = String::new();
    if handler.render_report(&mut body, &report).is_err() {
        body = format!("{}\n", d.message);
    }
    out.push_str(&body);
    out
}

/// Renders all diagnostics as text, separated by blank lines.
pub fn render_all(diags: &[Diagnostic], sources: &SourceMap) -> String {
    diags
        .iter()
        .map(|d| render_text(d, sources))
        .collect::<Vec<_>>()
        .join("\n")
}

fn span_json(sources: &SourceMap, span: Span) -> (String, usize, usize, usize, usize) {
    let (name, line, col) = sources.locate(span);
    let (end_line, end_col) = sources
        .get(span.file)
        .map(|f| f.line_col(span.end))
        .unwrap_or((line, col));
    (name, line, col, end_line, end_col)
}

/// All diagnostics as a JSON array.
pub fn all_to_json(diags: &[Diagnostic], sources: &SourceMap) -> Json {
    Json::Array(diags.iter().map(|d| to_json(d, sources)).collect())
}

/// One diagnostic as a JSON object.
pub fn to_json(d: &Diagnostic, sources: &SourceMap) -> Json {
    let (span, stack) = placement(d, sources);
    let (file, line, column, end_line, end_column) = span_json(sources, span);
    json!({
        "kind": d.kind.code(),
        "severity": match d.severity { Severity::Error => "error", Severity::Warning => "warning" },
        "title": d.title,
        "message": d.message,
        "file": file,
        "line": line,
        "column": column,
        "end_line": end_line,
        "end_column": end_column,
        "label": d.label,
        "hints": d.hints,
        "stack": stack.iter().map(|f| {
            let (file, line, column, _, _) = span_json(sources, f.span);
            json!({"function": f.function, "file": file, "line": line, "column": column})
        }).collect::<Vec<_>>(),
        "given_at": given_values(d, sources).into_iter().map(|v| {
            let (file, line, column, _, _) = span_json(sources, v);
            json!({"file": file, "line": line, "column": column})
        }).collect::<Vec<_>>(),
    })
}
