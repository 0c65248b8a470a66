//! `canon compile` end to end: exit codes, text and JSON output, `-o`,
//! `--werror`.

use std::path::PathBuf;

use assert_cmd::Command;

fn composition(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../lang/tests/compositions")
        .join(name)
}

fn canon() -> Command {
    Command::cargo_bin("canon").expect("binary")
}

#[test]
fn a_good_composition_compiles_with_exit_0() {
    let out = canon()
        .args(["compile"])
        .arg(composition("VPC-sam.lw"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("[ OK ] Successfully compiled. No errors."),
        "{stdout}"
    );
}

#[test]
fn the_demo_scope_error_exits_1_with_the_hint() {
    let dir = tempfile::tempdir().expect("tmp");
    let text = std::fs::read_to_string(composition("VPC-sam.lw")).expect("read");
    let file = dir.path().join("VPC.lw");
    std::fs::write(&file, text.replace("AWS.Us-west-2", "AWS.Us-west-3")).expect("write");
    let out = canon().arg("compile").arg(&file).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("canon (scope error):"), "{stderr}");
    assert!(stderr.contains("(line 11, column 11)"), "{stderr}");
    assert!(
        stderr.contains("Constructor not in scope: AWS.Us-west-3"),
        "{stderr}"
    );
    assert!(
        stderr.contains("AWS.Us-west-1 (from Canon.Core.AWS.Common)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("AWS.Us-west-2 (from Canon.Core.AWS.Common)"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("[ OK ]"));
}

#[test]
fn json_reports_the_demo_runtime_error_with_its_stack() {
    let dir = tempfile::tempdir().expect("tmp");
    let text = std::fs::read_to_string(composition("VPC-sam.lw")).expect("read");
    let file = dir.path().join("VPC.lw");
    std::fs::write(&file, text.replace("\"10.0.0.0/16\"", "\"10.0.0.0/8\"")).expect("write");
    let out = canon()
        .arg("compile")
        .arg(&file)
        .arg("--json")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["ok"], false);
    let d = &v["diagnostics"][0];
    assert_eq!(d["kind"], "runtime");
    assert_eq!(d["severity"], "error");
    assert_eq!(
        d["message"],
        "Invalid Vpc: cidrBlock size must be between a /28 and /16 netmask. (It is 10.0.0.0/8, a /8.)"
    );
    // And the user's line that wrote it.
    assert_eq!(d["given_at"][0]["line"], 12, "{d}");
    assert!(d["file"]
        .as_str()
        .unwrap_or("")
        .ends_with("Canon/AWS/Pattern/Network.lw"));
    let frame = &d["stack"][0];
    assert_eq!(frame["function"], "new");
    assert_eq!(frame["line"], 9);
    assert_eq!(frame["column"], 14);
    assert!(frame["file"].as_str().unwrap_or("").ends_with("VPC.lw"));
}

#[test]
fn json_success_lists_resources_and_output_file_is_protobuf() {
    let dir = tempfile::tempdir().expect("tmp");
    let out_file = dir.path().join("sam.pb");
    let out = canon()
        .arg("compile")
        .arg(composition("VPC-sam.lw"))
        .arg("--json")
        .arg("-o")
        .arg(&out_file)
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["ok"], true);
    assert_eq!(v["resources"].as_array().map(Vec::len), Some(6));
    let sg = &v["resources"][5];
    assert_eq!(sg["path"], "dev-sam-sg");
    assert_eq!(sg["kind"], "security_group");
    assert_eq!(sg["spec"]["vpc"], "dev-network.vpc");
    assert_eq!(sg["spec"]["ingress"].as_array().map(Vec::len), Some(2));
    let bytes = std::fs::read(&out_file).expect("written");
    let compiled = canon_lang::Compiled::decode(&bytes).expect("decodes");
    assert_eq!(
        compiled.source_hash,
        v["source_hash"].as_str().unwrap_or("")
    );
}

#[test]
fn werror_turns_warnings_into_failure() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("warn.lw");
    std::fs::write(
        &file,
        "import Canon.AWS.EC2 as EC2\nimport Canon.Core.AWS.Common as AWS\n\nt: AWS.tag('a', 'b')\n",
    )
    .expect("write");
    let ok = canon().arg("compile").arg(&file).output().expect("runs");
    assert_eq!(ok.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&ok.stderr).contains("import `EC2` is never used"));
    let strict = canon()
        .arg("compile")
        .arg(&file)
        .arg("--werror")
        .output()
        .expect("runs");
    assert_eq!(strict.status.code(), Some(1));
}

#[test]
fn a_missing_file_exits_1_and_bad_usage_exits_2() {
    let out = canon()
        .args(["compile", "/nonexistent/x.lw"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
    let usage = canon().args(["compile"]).output().expect("runs");
    assert_eq!(usage.status.code(), Some(2));
}
