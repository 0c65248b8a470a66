//! `canon compile --validations V.lw…`: validation modules run here against
//! the composition just compiled, exactly as a node runs the stored ones
//! before it takes a run or an update (`canon_lang::validation`). Each
//! file is a module named by its stem (`policy.lw` → `policy`); a module
//! that does not compile, or cannot be read, counts as failing.

use std::io::Write;
use std::path::PathBuf;

use canon_lang::validation::{evaluate, Report, Subject, ValidationSource};
use canon_lang::Compiled;
use serde_json::json;

/// Every module's report (or why its file could not be read), by file.
pub struct Checked {
    modules: Vec<(PathBuf, Result<Report, String>)>,
}

impl Checked {
    /// Runs the modules at `files` against `compiled`.
    pub fn run(files: &[PathBuf], compiled: &Compiled) -> Checked {
        let subjects = Subject::of_compiled(compiled);
        let modules = files
            .iter()
            .map(|path| {
                let name = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "validations".into());
                let report = std::fs::read_to_string(path)
                    .map(|text| {
                        let source = ValidationSource::new(name, path.display().to_string(), text);
                        evaluate(&source, &subjects)
                    })
                    .map_err(|e| format!("cannot read {}: {e}", path.display()));
                (path.clone(), report)
            })
            .collect();
        Checked { modules }
    }

    pub fn passed(&self) -> bool {
        self.modules
            .iter()
            .all(|(_, r)| r.as_ref().is_ok_and(|r| r.failures.is_empty()))
    }

    fn reports(&self) -> impl Iterator<Item = &Report> {
        self.modules.iter().filter_map(|(_, r)| r.as_ref().ok())
    }

    pub fn print_text(&self) {
        let mut stdout = std::io::stdout().lock();
        let mut stderr = std::io::stderr().lock();
        for (_, r) in &self.modules {
            match r {
                Ok(r) if !r.diagnostics.is_empty() => {
                    let _ = writeln!(stderr, "{}", r.render());
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = writeln!(stderr, "[ ERROR ] {e}");
                }
            }
        }
        if self.passed() {
            let validations: usize = self.reports().map(|r| r.validations.len()).sum();
            let _ = writeln!(
                stdout,
                "[ OK ] {validations} validation(s) of {} module(s) passed.",
                self.modules.len()
            );
            return;
        }
        let failures: Vec<_> = self.reports().flat_map(|r| &r.failures).collect();
        let _ = writeln!(
            stderr,
            "[ ERROR ] {} validation failure(s):",
            failures.len()
        );
        for f in failures {
            let _ = writeln!(stderr, "  {f}");
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        let modules: Vec<serde_json::Value> = self
            .modules
            .iter()
            .map(|(path, r)| match r {
                Ok(r) => json!({
                    "file": path.display().to_string(),
                    "validations": r.validations,
                    "failures": r.failures,
                    "diagnostics": r.to_json(),
                }),
                Err(e) => json!({"file": path.display().to_string(), "error": e}),
            })
            .collect();
        json!(modules)
    }
}
