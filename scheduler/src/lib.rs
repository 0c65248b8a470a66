//! The conductor's loop: shard leadership turns into one actor per process,
//! each ticking observe → plan → execute, fenced by its Raft term.
