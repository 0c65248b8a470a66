//! `canon graph FILE.lw`: a composition drawn with no cluster — SVG by
//! default, JSON and DOT by flag or by the output's extension, the same
//! picture every time; unreadable or failing files exit 1 with the reason.

use std::path::PathBuf;

use assert_cmd::Command;
use serde_json::Value;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

fn canon() -> Command {
    let mut c = Command::cargo_bin("canon").expect("binary");
    // A file needs no cluster: nothing configured must not matter.
    c.env_remove("CANON_ENDPOINTS").env_remove("CANON_CONFIG");
    c
}

fn stdout_of(args: &[&str]) -> String {
    let out = canon().args(args).output().expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn a_file_is_drawn_as_svg_the_same_every_time() {
    let file = example("VPC-sam.lw");
    let file = file.to_str().expect("path");
    let svg = stdout_of(&["graph", file]);
    assert!(
        svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
        "{svg}"
    );
    assert!(
        svg.contains("10.0.0.0/16"),
        "the VPC box names its CIDR: {svg}"
    );
    assert_eq!(svg, stdout_of(&["graph", file]));
}

#[test]
fn json_by_flag_or_by_extension_and_dot_by_flag() {
    let file = example("VPC-sam.lw");
    let file = file.to_str().expect("path");
    let g: Value =
        serde_json::from_str(&stdout_of(&["graph", file, "--format", "json"])).expect("JSON");
    let kinds: Vec<&str> = g["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["kind"].as_str())
        .collect();
    for kind in ["vpc", "subnet"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("sam.json");
    canon()
        .args(["graph", file, "-o"])
        .arg(&out)
        .assert()
        .success();
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("written")).expect("JSON");
    assert_eq!(written, g);
    let dot = stdout_of(&["graph", file, "--format", "dot"]);
    assert!(dot.starts_with("digraph"), "{dot}");
}

#[test]
fn a_missing_or_failing_file_exits_1_with_the_reason() {
    let out = canon()
        .args(["graph", "no-such.lw"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read no-such.lw"));
    let dir = tempfile::tempdir().expect("tmp");
    let bad = dir.path().join("bad.lw");
    let text = std::fs::read_to_string(example("VPC-sam.lw")).expect("read");
    std::fs::write(&bad, text.replace("10.0.0.0/16", "10.0.0.0/8")).expect("write");
    let out = canon().arg("graph").arg(&bad).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/28 and /16"));
    let out = canon()
        .args(["graph", "x.lw", "--format", "png"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "an unknown format is bad usage");
}
