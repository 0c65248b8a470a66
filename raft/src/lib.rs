//! Replicated state: openraft over sled, many Raft groups (shards) per node,
//! and the gRPC transport that carries every group's messages.
