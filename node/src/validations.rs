//! The organisation's validations as a node evaluates them (issue #20 §4):
//! the modules the meta group stores, run against a stored composition.
//! Pure and synchronous; the API runs it off the async runtime before it
//! takes a run or an update, and for `canon validation report`.

use std::collections::BTreeMap;

use canon_lang::validation::{failures_of_all, Failure, Subject, ValidationSource};
use canon_raft::state::StoredValidation;
use canon_raft::Composition;

/// The stored modules as the language takes them, in name order.
pub fn sources(stored: &BTreeMap<String, StoredValidation>) -> Vec<ValidationSource> {
    stored
        .iter()
        .map(|(name, v)| ValidationSource::new(name, &v.file, &v.text))
        .collect()
}

/// Every failure of `modules` against the resources `composition`
/// declares; the error is a composition that does not decode.
pub fn failures(
    modules: &[ValidationSource],
    composition: &Composition,
) -> Result<Vec<Failure>, String> {
    if modules.is_empty() {
        return Ok(Vec::new());
    }
    let compiled = canon_lang::Compiled::decode(&composition.bytes).map_err(|e| e.to_string())?;
    Ok(failures_of_all(modules, &Subject::of_compiled(&compiled)))
}

/// What a refused command answers: each failure on its own line, with its
/// validation and place.
pub fn refusal(failures: &[Failure]) -> String {
    let mut text = format!(
        "refused by the organisation's validations ({} failure{}):",
        failures.len(),
        if failures.len() == 1 { "" } else { "s" }
    );
    for f in failures {
        text.push_str("\n  ");
        text.push_str(&f.to_string());
    }
    text
}
