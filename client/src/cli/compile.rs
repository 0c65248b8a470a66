//! `canon compile FILE [--json] [-o OUT] [--werror] [--validations V.lw…]`:
//! compiles a composition locally. Prints `[ OK ] Successfully compiled. No
//! errors.` and exits 0, or prints the diagnostics and exits 1. `-o` writes
//! the compiled composition (canonical protobuf) to a file; `--json` prints
//! a machine-readable report instead of text. `--validations` also runs
//! validation modules against it, as a node would before a run
//! ([`super::compile_validations`]): a failure is printed like a diagnostic
//! and exits 1.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use canon_lang::{compile_file, Options, Output};

use super::compile_validations::Checked;
use clap::Args;
use serde_json::json;

#[derive(Debug, Args)]
pub struct CompileArgs {
    /// The composition (`.lw` file); imports of the user's own modules are
    /// looked up next to it.
    pub file: PathBuf,
    /// Print a JSON report (diagnostics, source hash, resources) on stdout.
    #[arg(long)]
    pub json: bool,
    /// Write the compiled composition (protobuf) to this file.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Treat warnings as errors.
    #[arg(long)]
    pub werror: bool,
    /// Validation modules (`.lw` files, each named by its file's stem) to
    /// run against the compiled composition.
    #[arg(long, value_name = "V.lw", num_args = 1..)]
    pub validations: Vec<PathBuf>,
}

pub fn run(args: &CompileArgs) -> ExitCode {
    let opts = Options {
        werror: args.werror,
    };
    let out = match compile_file(&args.file, opts) {
        Ok(o) => o,
        Err(e) => {
            let msg = format!("cannot read {}: {e}", args.file.display());
            if args.json {
                println!("{}", json!({"ok": false, "error": msg, "diagnostics": []}));
            } else {
                eprintln!("[ ERROR ] {msg}");
            }
            return ExitCode::FAILURE;
        }
    };
    let mut write_error = None;
    if let (Some(path), Some(c)) = (&args.output, &out.compiled) {
        if let Err(e) = std::fs::write(path, c.encode()) {
            write_error = Some(format!("cannot write {}: {e}", path.display()));
        }
    }
    let checked = match &out.compiled {
        Some(c) if !args.validations.is_empty() => Some(Checked::run(&args.validations, c)),
        _ => None,
    };
    let passed = checked.as_ref().is_none_or(Checked::passed);
    let ok = out.compiled.is_some() && write_error.is_none() && passed;
    if args.json {
        print_json(&out, write_error.as_deref(), checked.as_ref());
    } else {
        print_text(args, &out, write_error.as_deref());
        if let Some(c) = &checked {
            c.print_text();
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_json(out: &Output, write_error: Option<&str>, checked: Option<&Checked>) {
    let passed = checked.is_none_or(Checked::passed);
    let report = json!({
        "ok": out.compiled.is_some() && write_error.is_none() && passed,
        "validations": checked.map(Checked::to_json),
        "error": write_error,
        "diagnostics": out.to_json(),
        "source_hash": out.compiled.as_ref().map(|c| c.source_hash.clone()),
        "resources": out.compiled.as_ref().map(|c| {
            c.resources
                .iter()
                .map(|r| {
                    json!({
                        "path": r.path,
                        "kind": r.spec.kind().name(),
                        "region": r.region.as_str(),
                        "spec": serde_json::to_value(&r.spec).unwrap_or_default(),
                    })
                })
                .collect::<Vec<_>>()
        }),
    });
    let text = serde_json::to_string_pretty(&report).unwrap_or_else(|_| report.to_string());
    println!("{text}");
}

fn print_text(args: &CompileArgs, out: &Output, write_error: Option<&str>) {
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    // Output to a closed pipe is not worth a panic: ignore write errors.
    let _ = writeln!(stdout, "Compiling Canon file {}", args.file.display());
    if out.compiled.is_some() {
        if !out.diagnostics.is_empty() {
            let _ = writeln!(stderr, "{}", out.render());
        }
        if let Some(e) = write_error {
            let _ = writeln!(stderr, "[ ERROR ] {e}");
            return;
        }
        let _ = writeln!(stdout, "[ OK ] Successfully compiled. No errors.");
        if let Some(path) = &args.output {
            let _ = writeln!(
                stdout,
                "[ OK ] Wrote the compiled composition to {}",
                path.display()
            );
        }
    } else {
        let _ = writeln!(stderr, "[ ERROR ] Error compiling Canon composition:\n");
        let _ = writeln!(stderr, "{}", out.render());
    }
}
