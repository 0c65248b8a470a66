//! `canond`: configuration, the gRPC client API, signed-command intake and
//! metrics, wiring raft, scheduler and cloud into one conductor node.
