//! The composition language: lexer, parser, type checker, evaluator, standard
//! library and diagnostics. Turns `.lw` sources into a [`Compiled`]
//! composition that [`Compiled::instantiate`] makes into a
//! `canon_model::DesiredState` once the process's FID is known.
//!
//! Pipeline: [`program::load`] (parse the composition and every module it
//! imports) → [`check`] (resolve names, check types) → [`eval`] (run the
//! bindings; library validations raise runtime errors) → [`lower`] (resources
//! with stable paths, cloud rules re-checked; `fleet_zones` warns of a
//! fleet whose subnets share a zone) → [`encode`] (protobuf and
//! source hash). Every phase reports [`Diagnostic`]s; nothing panics.
//! [`validation`] runs an organisation's validation modules (loaded and
//! checked the same way) against a compiled composition.
//!
//! A resource kind's language pieces, once its `canon_model` spec exists, in
//! the order to add them:
//!
//! 1. its `resource type` and validating `Kind.new` (checks what the cloud
//!    would refuse, with `error(…)` at the user's call) in the standard
//!    library's source, `lang/stdlib/Canon/AWS/<Service>.lw`, bundled by
//!    [`stdlib`] (a new module is a line in `stdlib::MODULES`). The library's
//!    text is part of every composition's source hash;
//! 2. its message in the `oneof spec` of
//!    `proto/proto/canon/composition/v1/composition.proto`;
//! 3. its file `lang/src/kinds/<kind>.rs`: `NAME` (the resource type's name),
//!    `lower` (evaluated fields → the spec, re-checking the cloud's rules for
//!    values built with the raw constructor), `to_proto` and `from_proto`;
//!    and a line in each dispatch of `lang/src/kinds/mod.rs`;
//! 4. tests: a golden case per validation (`lang/tests/golden/runtime_*.lw`),
//!    and the kind with every field set in `EVERY_KIND` of
//!    `lang/tests/encode.rs` (its encoding round-trips).
//!
//! ```
//! use canon_lang::{compile_str, MapLoader, Options};
//!
//! let src = "import Canon.AWS.EC2 as EC2\n\
//!            import Canon.Core.AWS.Common as AWS\n\
//!            vpc: EC2.Vpc.new {cidrBlock: \"10.0.0.0/16\", region: AWS.Us-west-2}\n";
//! let out = compile_str("vpc.lw", src, &MapLoader::default(), Options::default());
//! assert!(!out.has_errors(), "{}", out.render());
//! let compiled = out.compiled.expect("compiles");
//! let bytes = compiled.encode(); // canonical protobuf, what `canon run` sends
//! let state = compiled.instantiate(canon_model::Fid::random()).expect("valid");
//! assert_eq!(state.resources.len(), 1);
//! # assert_eq!(canon_lang::Compiled::decode(&bytes).unwrap(), compiled);
//! ```

pub mod ast;
pub mod check;
pub mod diag;
pub mod encode;
pub mod eval;
mod fleet_zones;
mod ipv6_rules;
mod kinds;
pub mod lexer;
pub mod lower;
pub mod parser;
pub mod program;
pub mod render;
pub mod span;
pub mod stdlib;
pub mod types;
pub mod validation;
pub mod value;

use std::path::Path;

use canon_model::{DesiredState, Fid, LogicalId, Resource, StateError};
use sha2::{Digest, Sha256};

pub use diag::{Diagnostic, Frame, Kind, Severity};
pub use lower::CompiledResource;
pub use program::{DirLoader, MapLoader, SourceLoader};
pub use span::SourceMap;

/// Compiler options.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Treat warnings as errors.
    pub werror: bool,
}

/// A compiled composition: FID-independent resources, sorted by path, and
/// the hash of the sources they came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Compiled {
    pub resources: Vec<CompiledResource>,
    /// Hex SHA-256 over every module's name and text, in load order.
    pub source_hash: String,
}

impl Compiled {
    /// The desired state of a process with this FID: logical ids are
    /// `LogicalId::new(fid, path)`, references become `Ref::Managed` (or
    /// `Ref::External` for an external resource), `importId`s the state's
    /// `import_ids`.
    pub fn instantiate(&self, fid: Fid) -> Result<DesiredState, StateError> {
        let mut state = DesiredState::empty(fid);
        for r in &self.resources {
            let id = LogicalId::new(fid, &r.path);
            state.insert(Resource {
                id,
                name: r.path.clone(),
                region: r.region.clone(),
                spec: r.spec.map_refs(|p| kinds::reference(fid, p)),
            })?;
            if let Some(cloud_id) = &r.import_id {
                state.import_ids.insert(id, cloud_id.clone());
            }
        }
        state.validate()?;
        Ok(state)
    }
}

/// The result of a compilation: the output if there were no errors, every
/// diagnostic (errors and warnings), and the sources they point into.
#[derive(Debug)]
pub struct Output {
    pub compiled: Option<Compiled>,
    pub diagnostics: Vec<Diagnostic>,
    pub sources: SourceMap,
}

impl Output {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }

    /// All diagnostics rendered for a terminal.
    pub fn render(&self) -> String {
        render::render_all(&self.diagnostics, &self.sources)
    }

    /// All diagnostics as a JSON array.
    pub fn to_json(&self) -> serde_json::Value {
        render::all_to_json(&self.diagnostics, &self.sources)
    }
}

/// Stack for the compiler thread: parsing, checking and evaluation recurse,
/// and their depth is bounded by limits that fit well inside this.
const STACK_SIZE: usize = 256 * 1024 * 1024;

/// Compiles a composition file; user modules are looked up next to it.
pub fn compile_file(path: &Path, opts: Options) -> std::io::Result<Output> {
    let bytes = std::fs::read(path)?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let loader = DirLoader(dir);
    Ok(compile_str(
        &path.display().to_string(),
        &text,
        &loader,
        opts,
    ))
}

/// Compiles composition source text. `name` is shown in diagnostics.
pub fn compile_str(name: &str, text: &str, loader: &dyn SourceLoader, opts: Options) -> Output {
    on_compiler_stack(|| compile_inner(name, text, loader, opts))
        .unwrap_or_else(|| internal_failure(name, text))
}

/// Runs `work` on a thread with the compiler's stack; `None` if it panicked.
pub(crate) fn on_compiler_stack<T: Send>(work: impl Fn() -> T + Sync) -> Option<T> {
    std::thread::scope(|s| {
        match std::thread::Builder::new()
            .stack_size(STACK_SIZE)
            .spawn_scoped(s, &work)
        {
            Ok(h) => h.join().ok(),
            // No thread: run on this one (limits keep depth modest).
            Err(_) => Some(work()),
        }
    })
}

pub(crate) fn internal_failure(name: &str, text: &str) -> Output {
    let mut sources = SourceMap::new();
    let f = sources.add(span::SourceFile::new(
        name.into(),
        text.into(),
        span::Origin::User,
    ));
    Output {
        compiled: None,
        diagnostics: vec![Diagnostic::runtime(
            span::Span::new(f, 0, 0),
            "internal compiler error (please report it with this composition)",
        )],
        sources,
    }
}

fn compile_inner(name: &str, text: &str, loader: &dyn SourceLoader, opts: Options) -> Output {
    let (mut prog, mut diags) = program::load(name, text, loader);
    let finish = |mut diags: Vec<Diagnostic>, compiled: Option<Compiled>, sources: SourceMap| {
        if opts.werror {
            for d in &mut diags {
                d.severity = Severity::Error;
            }
        }
        diags.sort_by_key(|d| (d.span.file, d.span.start));
        let failed = diags.iter().any(|d| d.is_error());
        Output {
            compiled: if failed { None } else { compiled },
            diagnostics: diags,
            sources,
        }
    };
    if diags.iter().any(|d| d.is_error()) {
        return finish(diags, None, prog.sources);
    }
    diags.extend(check::check_program(&mut prog));
    if diags.iter().any(|d| d.is_error()) {
        return finish(diags, None, prog.sources);
    }
    let compiled = {
        let mut ev = eval::Evaluator::new(&prog);
        let root = prog.root;
        let mut values = Vec::new();
        for (i, d) in prog.modules[root].decls.iter().enumerate() {
            let ast::Decl::Binding(b) = d else { continue };
            match ev.binding(root, i) {
                Ok(v) => values.push((b.name.clone(), v)),
                Err(eval::Stop::Error(e)) => {
                    let mut d = Diagnostic::runtime(e.span, e.message).with_title("error:");
                    d.stack = e.stack;
                    diags.push(d);
                }
                Err(eval::Stop::Poisoned) => {}
            }
        }
        if diags.iter().any(|d| d.is_error()) {
            None
        } else {
            match lower::lower(&values) {
                Ok(resources) => {
                    let bindings: Vec<&ast::Binding> = prog.modules[root]
                        .decls
                        .iter()
                        .filter_map(|d| match d {
                            ast::Decl::Binding(b) => Some(b),
                            _ => None,
                        })
                        .collect();
                    diags.extend(fleet_zones::warnings(&resources, &bindings));
                    diags.extend(ipv6_rules::warnings(&resources, &bindings));
                    Some(Compiled {
                        resources,
                        source_hash: source_hash(&prog),
                    })
                }
                Err(errs) => {
                    diags.extend(errs.into_iter().map(|d| d.with_title("error:")));
                    None
                }
            }
        }
    };
    finish(diags, compiled, prog.sources)
}

/// SHA-256 over each module's canonical name and text, in load order; the
/// composition counts as `<composition>`, so the hash does not depend on
/// where the file lives.
fn source_hash(p: &program::Program) -> String {
    let mut h = Sha256::new();
    for m in &p.modules {
        let text = p.sources.get(m.file).map(|f| f.text.as_str()).unwrap_or("");
        h.update(m.name.as_bytes());
        h.update([0]);
        h.update((text.len() as u64).to_be_bytes());
        h.update(text.as_bytes());
    }
    hex::encode(h.finalize())
}
