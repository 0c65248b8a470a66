//! Compiles the client API's `.proto` into an encoded file descriptor set
//! (with protox: no `protoc` needed) so the node can serve gRPC reflection
//! (`grpcurl list` against any node).

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from("../proto/proto");
    let api = root.join("canon/api/v1/api.proto");
    println!("cargo:rerun-if-changed={}", api.display());
    let fds = protox::compile([&api], [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("canon_api_descriptor.bin");
    std::fs::write(out, fds.encode_to_vec())?;
    Ok(())
}
