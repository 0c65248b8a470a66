//! Turning a stored composition (canon-lang's compiled form, as the log
//! keeps it) into a process's declaration. The scheduler decodes with it on
//! every tick and the API for dry runs and status; it is its own module so
//! that neither the API nor the server it runs in reaches into the other
//! for it.

use std::sync::Arc;

/// Turns stored compositions into declarations with the language crate.
pub fn decoder() -> canon_scheduler::Decoder {
    Arc::new(|c: &canon_raft::Composition, fid| {
        let compiled = canon_lang::Compiled::decode(&c.bytes).map_err(|e| e.to_string())?;
        compiled.instantiate(fid).map_err(|e| e.to_string())
    })
}
