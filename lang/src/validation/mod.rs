//! Organisation policy, written in the language (issue #20 §4). A
//! *validation module* is a module whose exported functions and bindings of
//! type `(Canon.Validation.Resources) -> Canon.Validation.Outcome` are its
//! validations; it imports the standard library only, so that the text
//! alone (what `canon validation add` stores in the cluster) is the whole
//! policy. [`evaluate`] runs every validation of a module against the
//! resources of a compiled composition (or of a process as the cloud shows
//! it: [`Subject`] is built from `canon_model` specs) and answers with each
//! failure's validation, message and place in the module, as values and as
//! diagnostics that render like the compiler's. A module that does not
//! compile, and a validation that raises an error, fail: a policy that
//! cannot be evaluated refuses rather than lets through.
//!
//! ```
//! use canon_lang::validation::{evaluate, Subject, ValidationSource};
//! use canon_lang::{compile_str, MapLoader, Options};
//!
//! let policy = ValidationSource::new("org", "org.lw",
//!     "import Canon.Validation.Network as Network\n\
//!      no-admin-ports: Network.noOpenAdminPorts\n");
//! let src = "import Canon.AWS.EC2 as EC2\n\
//!            import Canon.Core.AWS.Common as AWS\n\
//!            vpc: EC2.Vpc.new {cidrBlock: \"10.0.0.0/16\", region: AWS.Us-west-2}\n";
//! let out = compile_str("vpc.lw", src, &MapLoader::default(), Options::default());
//! let compiled = out.compiled.expect("compiles");
//! let report = evaluate(&policy, &Subject::of_compiled(&compiled));
//! assert_eq!(report.validations, ["no-admin-ports"]);
//! assert!(report.failures.is_empty(), "{}", report.render());
//! ```

mod exports;
mod resources;

use std::fmt;

use canon_model::Spec;

use crate::ast::{Decl, ModuleId};
use crate::diag::{Diagnostic, Kind};
use crate::eval::{Evaluator, Stop};
use crate::program::{self, MapLoader};
use crate::span::{SourceMap, Span};
use crate::value::{FrameName, Value};
use crate::{check, render, Compiled};

/// A validation module's text, the name it goes by (`canon validation add
/// NAME`) and the file name its diagnostics show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationSource {
    pub name: String,
    pub file: String,
    pub text: String,
}

impl ValidationSource {
    pub fn new(name: impl Into<String>, file: impl Into<String>, text: impl Into<String>) -> Self {
        ValidationSource {
            name: name.into(),
            file: file.into(),
            text: text.into(),
        }
    }
}

/// One resource as a validation sees it: its path, region code and spec
/// (references to other resources written as their paths, or cloud ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub path: String,
    pub region: String,
    pub spec: Spec<String>,
}

impl Subject {
    /// The resources of a compiled composition.
    pub fn of_compiled(compiled: &Compiled) -> Vec<Subject> {
        compiled
            .resources
            .iter()
            .map(|r| Subject {
                path: r.path.clone(),
                region: r.region.as_str().to_string(),
                spec: r.spec.clone(),
            })
            .collect()
    }
}

/// One problem a validation found: `validation` is `MODULE.NAME`
/// (`org.no-admin-ports`), the place is the validation's (or, if it raised
/// an error, the error's) in the module's file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Failure {
    pub validation: String,
    pub message: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} ({}:{}:{})",
            self.validation, self.message, self.file, self.line, self.column
        )
    }
}

/// What evaluating a module found.
#[derive(Debug)]
pub struct Report {
    /// The module's validations, by name, in declaration order (empty if it
    /// does not compile).
    pub validations: Vec<String>,
    pub failures: Vec<Failure>,
    /// The module's compile errors and warnings, then one diagnostic a
    /// failure.
    pub diagnostics: Vec<Diagnostic>,
    pub sources: SourceMap,
}

impl Report {
    /// Whether the module compiled (its validations could be run).
    pub fn compiles(&self) -> bool {
        !self
            .diagnostics
            .iter()
            .any(|d| d.is_error() && d.kind != Kind::Validation)
    }

    /// Every diagnostic rendered for a terminal.
    pub fn render(&self) -> String {
        render::render_all(&self.diagnostics, &self.sources)
    }

    /// Every diagnostic as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        render::all_to_json(&self.diagnostics, &self.sources)
    }
}

/// Compiles a validation module and lists its validations, running none:
/// what `canon validation add` checks before it stores a module.
pub fn check(source: &ValidationSource) -> Report {
    run(source, None)
}

/// Runs every validation of `source` against `subjects`.
pub fn evaluate(source: &ValidationSource, subjects: &[Subject]) -> Report {
    run(source, Some(subjects))
}

/// The failures of every module against `subjects`, module by module.
pub fn failures_of_all(sources: &[ValidationSource], subjects: &[Subject]) -> Vec<Failure> {
    sources
        .iter()
        .flat_map(|s| evaluate(s, subjects).failures)
        .collect()
}

fn run(source: &ValidationSource, subjects: Option<&[Subject]>) -> Report {
    crate::on_compiler_stack(|| run_here(source, subjects)).unwrap_or_else(|| {
        let out = crate::internal_failure(&source.file, &source.text);
        refused(source, out.diagnostics, out.sources)
    })
}

fn run_here(source: &ValidationSource, subjects: Option<&[Subject]>) -> Report {
    let (mut prog, mut diags) = program::load(&source.file, &source.text, &MapLoader::default());
    for d in diags.iter_mut().filter(|d| d.title == "Unknown module:") {
        d.hints = vec!["a validation module imports the standard library (Canon.*) only".into()];
    }
    if !diags.iter().any(|d| d.is_error()) {
        diags.extend(check::check_program(&mut prog));
    }
    let found = if diags.iter().any(|d| d.is_error()) {
        Vec::new()
    } else {
        exports::validations(&prog, &mut diags)
    };
    diags.sort_by_key(|d| (d.span.file, d.span.start));
    if diags.iter().any(|d| d.is_error()) {
        return refused(source, diags, prog.sources);
    }
    let mut report = Report {
        validations: found.iter().map(|v| v.name.clone()).collect(),
        failures: Vec::new(),
        diagnostics: diags,
        sources: SourceMap::new(),
    };
    if let Some(subjects) = subjects {
        let resources = resources::resources_value(subjects);
        for v in &found {
            for (message, span, stack) in run_one(&prog, v, &resources) {
                let name = format!("{}.{}", source.name, v.name);
                let (file, line, column) = prog.sources.locate(span);
                let label = if stack.is_empty() {
                    "this validation"
                } else {
                    "raised here"
                };
                let mut d = Diagnostic::new(Kind::Validation, span, format!("{name}: {message}"))
                    .with_label(label);
                d.stack = stack;
                report.diagnostics.push(d);
                report.failures.push(Failure {
                    validation: name,
                    message,
                    file,
                    line,
                    column,
                });
            }
        }
    }
    report.sources = prog.sources;
    report
}

/// A module that does not compile: one failure, named by the module, at its
/// first error.
fn refused(source: &ValidationSource, diagnostics: Vec<Diagnostic>, sources: SourceMap) -> Report {
    let first = diagnostics.iter().find(|d| d.is_error());
    let (file, line, column) = first
        .map(|d| sources.locate(d.span))
        .unwrap_or_else(|| (source.file.clone(), 0, 0));
    let failures = vec![Failure {
        validation: source.name.clone(),
        message: format!(
            "the validation module does not compile: {}",
            first.map(|d| d.message.as_str()).unwrap_or("unknown error")
        ),
        file,
        line,
        column,
    }];
    Report {
        validations: Vec::new(),
        failures,
        diagnostics,
        sources,
    }
}

/// Runs one validation: each message it fails with, where, and (for a
/// raised error) the calls that led there.
fn run_one<'p>(
    prog: &'p program::Program,
    v: &exports::Found,
    resources: &Value<'p>,
) -> Vec<(String, Span, Vec<crate::diag::Frame>)> {
    let mut ev = Evaluator::new(prog);
    let root: ModuleId = prog.root;
    let outcome = match prog.modules[root].decls.get(v.decl) {
        Some(Decl::Fun(f)) => ev.apply(
            Value::Func(root, v.decl),
            vec![resources.clone()],
            v.span,
            FrameName::Name(&f.name),
        ),
        Some(Decl::Binding(b)) => ev
            .binding(root, v.decl)
            .and_then(|f| ev.apply(f, vec![resources.clone()], v.span, FrameName::Name(&b.name))),
        _ => return vec![internal(v.span)],
    };
    match outcome {
        Ok(Value::Ctor(c)) if c.name == "Pass" => Vec::new(),
        Ok(Value::Ctor(c)) if c.name == "Fail" => {
            let messages: Vec<String> = c
                .payload
                .as_ref()
                .and_then(|p| p.as_list())
                .map(|ms| {
                    ms.iter()
                        .filter_map(|m| m.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            if messages.is_empty() {
                vec![("fails (without a message)".into(), v.span, Vec::new())]
            } else {
                messages
                    .into_iter()
                    .map(|m| (m, v.span, Vec::new()))
                    .collect()
            }
        }
        Ok(_) => vec![internal(v.span)],
        Err(Stop::Error(e)) => vec![(format!("raised an error: {}", e.message), e.span, e.stack)],
        Err(Stop::Poisoned) => vec![("could not be evaluated".into(), v.span, Vec::new())],
    }
}

fn internal(span: Span) -> (String, Span, Vec<crate::diag::Frame>) {
    (
        "internal: the validation did not answer with an Outcome".into(),
        span,
        Vec::new(),
    )
}
