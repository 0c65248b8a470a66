//! Canon's trust model: who may do what, written once and decided alike on
//! every replica.
//!
//! Pure data and logic — no I/O, no clock — so the state machine can
//! evaluate it while applying the log (every replica decides the same
//! request the same way, against the policy as of that log index), and the
//! CLI can read, diff and explain a policy file before sending it.
//!
//! - [`document`]: the policy document (users and their keys, accounts,
//!   roles, bindings) and its TOML form;
//! - [`action`]: the actions a rule names (`process.run`, `policy.put`, …);
//! - [`pattern`]: `*`, `prefix*` and exact names;
//! - [`evaluate`]: one decision — a matching deny wins, else a matching
//!   allow, else deny — naming the rule that decided;
//! - [`escalation`]: nobody grants more than they hold, unless they hold
//!   `policy.escalate`;
//! - [`diff`]: what a new document changes, for `canon policy apply`;
//! - [`audit`]: the audit record and its hash chain (made in the state
//!   machine, checked by `canon audit verify`).

pub mod action;
pub mod audit;
pub mod diff;
pub mod document;
pub mod escalation;
pub mod evaluate;
pub mod pattern;

pub use action::{Action, ActionPattern, UnknownAction};
pub use diff::{diff, Change, Sign};
pub use document::{
    Account, Binding, Effect, KeyId, PolicyDocument, PolicyError, PublicKey, Role, Rule, Subject,
    User,
};
pub use escalation::{check_no_escalation, Escalation};
pub use evaluate::{evaluate, AccessRequest, Decision, MatchedRule};
pub use pattern::{Pattern, PatternError};
