//! Canon's wire formats: the `.proto` files and the prost/tonic code generated
//! from them (compiled with `protox`, so no `protoc` is needed).
//!
//! Owns: the compiled-composition message, the client API service and the
//! signed command envelope. Filled in by the language and node issues.
