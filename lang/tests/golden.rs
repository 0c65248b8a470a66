//! Golden tests: every `tests/golden/*.lw` is compiled and its rendered
//! diagnostics (or its resources) compared with the `.out` file beside it.
//! Run with `UPDATE_GOLDEN=1` to rewrite the expected files after a
//! deliberate change, then review the diff.

use std::path::{Path, PathBuf};

use canon_lang::{compile_str, DirLoader, Options};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The demo-style compositions; their goldens show the full desired state.
fn compositions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compositions")
}

/// Compiles one case and renders what a user would see.
fn run_case(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read case");
    let name = path.file_name().and_then(|n| n.to_str()).expect("name");
    let opts = Options {
        werror: text.starts_with("# werror"),
    };
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(golden_dir);
    let out = compile_str(name, &text, &DirLoader(dir), opts);
    let mut s = out.render();
    s.push_str("--\n");
    match &out.compiled {
        Some(c) => {
            s.push_str("[ OK ] Successfully compiled.\n");
            for r in &c.resources {
                s.push_str(&format!("{} {} {}\n", r.path, r.spec.kind(), r.region));
                if path.starts_with(compositions_dir()) {
                    let spec = serde_json::to_string(&r.spec).unwrap_or_default();
                    s.push_str(&format!("  {spec}\n"));
                }
            }
        }
        None => {
            let n = out.errors().count();
            s.push_str(&format!("[ ERROR ] {n} error(s)\n"));
        }
    }
    s
}

#[test]
fn golden_cases() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut cases: Vec<PathBuf> = [golden_dir(), compositions_dir()]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).expect("golden dir"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "lw"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 30, "expected at least 30 golden cases");
    let mut failures = Vec::new();
    for case in &cases {
        let got = run_case(case);
        let expected_path = case.with_extension("out");
        if update {
            std::fs::write(&expected_path, &got).expect("write golden");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if got != expected {
            failures.push(format!(
                "{}:\n--- expected\n{expected}\n--- got\n{got}",
                case.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_error_case_fails_and_every_ok_case_compiles() {
    for entry in std::fs::read_dir(golden_dir()).expect("dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "lw") {
            continue;
        }
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let out = run_case(&path);
        let ok = out.contains("[ OK ]");
        let should_fail = !(name.starts_with("ok_") || name.starts_with("warn_"));
        assert_eq!(!ok, should_fail, "{name}:\n{out}");
        // The header names the kind of error the case is about.
        for (prefix, kind) in [
            ("syntax_", "(syntax error)"),
            ("scope_", "(scope error)"),
            ("type_", "(type error)"),
            ("runtime_", "(runtime error)"),
            ("demo_scope", "(scope error)"),
            ("demo_runtime", "(runtime error)"),
        ] {
            if name.starts_with(prefix) {
                assert!(out.contains(kind), "{name} should report {kind}:\n{out}");
            }
        }
    }
}
