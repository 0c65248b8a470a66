//! Compiles every `.proto` file under `proto/` with protox (pure Rust, so no
//! `protoc` is needed) and generates prost messages and tonic services for
//! all of them, gathered into one module tree (`mod.rs` in OUT_DIR).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from("proto");
    let mut files: Vec<PathBuf> = Vec::new();
    collect(&root, &mut files)?;
    files.sort();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(&files, [&root])?;
    tonic_prost_build::configure()
        .include_file("mod.rs")
        .compile_fds(fds)?;
    Ok(())
}

fn collect(dir: &PathBuf, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
