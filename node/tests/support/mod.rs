//! Helpers shared by the node's integration tests. Each test binary uses a
//! part of them.
#![allow(dead_code)]

pub mod audit;
pub mod who;
