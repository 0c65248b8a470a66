//! Machine-readable diagnostics: the demo's two errors as JSON.

use canon_lang::{compile_str, DirLoader, Options};
use serde_json::json;

fn demo(find: &str, replace: &str) -> serde_json::Value {
    let text = include_str!("compositions/VPC-sam.lw").replace(find, replace);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compositions");
    compile_str("VPC.lw", &text, &DirLoader(dir), Options::default()).to_json()
}

#[test]
fn scope_error_as_json() {
    let v = demo("AWS.Us-west-2", "AWS.Us-west-3");
    assert_eq!(
        v,
        json!([{
            "kind": "scope",
            "severity": "error",
            "title": "Not in scope:",
            "message": "Constructor not in scope: AWS.Us-west-3",
            "file": "VPC.lw",
            "line": 11,
            "column": 11,
            "end_line": 11,
            "end_column": 24,
            "label": "not in scope",
            "hints": ["perhaps you mean one of:\n  AWS.Us-west-1 (from Canon.Core.AWS.Common)\n  AWS.Us-west-2 (from Canon.Core.AWS.Common)"],
            "stack": [],
            "given_at": [],
        }])
    );
}

#[test]
fn runtime_error_as_json_points_into_the_library_with_a_stack() {
    let v = demo("\"10.0.0.0/16\"", "\"10.0.0.0/8\"");
    let d = &v[0];
    assert_eq!(d["kind"], "runtime");
    assert_eq!(
        d["message"],
        "Invalid Vpc: cidrBlock size must be between a /28 and /16 netmask. (It is 10.0.0.0/8, a /8.)"
    );
    // The user's line that wrote the value.
    assert_eq!(
        d["given_at"],
        json!([{"file": "VPC.lw", "line": 12, "column": 9}])
    );
    assert_eq!(d["file"], "<canon>/Canon/AWS/Pattern/Network.lw");
    assert_eq!(
        d["stack"],
        json!([{"function": "new", "file": "VPC.lw", "line": 9, "column": 14}])
    );
    assert_eq!(v.as_array().map(Vec::len), Some(1));
}
