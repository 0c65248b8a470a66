//! Test support: a reference interpreter of EC2 semantics over
//! `ObservedState`, and generators of random declarations and drift.

#![allow(dead_code)]

pub mod gen;
pub mod reference;
