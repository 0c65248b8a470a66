//! The Rust SDK for Canon's gRPC API and the `canon` command-line tool.
