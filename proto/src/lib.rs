//! Canon's wire formats: the `.proto` files under `proto/` and the prost/tonic
//! code generated from them (compiled with `protox`, so no `protoc` is needed).
//!
//! Each package gets a module path from its proto package name, e.g.
//! `canon.raft.v1` is `canon_proto::canon::raft::v1`. Adding a `.proto` file
//! under `proto/` is all it takes to add a package. Beside the generated
//! code: the bytes a user signs (`signing`) and the SQS message bodies
//! (`sqs`), both part of the wire format.

#![allow(clippy::all, missing_docs)]

include!(concat!(env!("OUT_DIR"), "/mod.rs"));

pub mod signing;
pub mod sqs;
