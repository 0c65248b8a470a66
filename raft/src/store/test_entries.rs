//! Log entries for the store's tests: one bare `Noop` request at an index
//! (term 1, node 1), the shape every store test writes and reads back.

use openraft::{CommittedLeaderId, EntryPayload, LogId};

use crate::command::{Batch, Command, Request};
use crate::types::Entry;

/// Entry `index` of term 1 holding one `Noop`.
pub(crate) fn noop_entry(index: u64) -> Entry {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(Batch::from(vec![Request::new(index, Command::Noop)])),
    }
}
