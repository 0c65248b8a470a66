//! Helpers shared by the CLI's end-to-end tests. Each test binary uses a
//! part of them.
#![allow(dead_code)]

pub mod cloudtrail;
pub mod dev_cluster;
pub mod latency;
pub mod rogue;
pub mod story;
