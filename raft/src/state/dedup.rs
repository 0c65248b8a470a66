//! The replay window: what a group answered recent commands, so that a
//! retried or replayed command gets its first answer again and changes
//! nothing, and at which log index it was applied.
//!
//! Every replica looks a command's id up before applying it and remembers
//! it after, so this is on every write's path three times over: one map
//! holds the answer and the index together (two maps cost two inserts and
//! two removals per command), and the answer is kept small (`Applied`, by
//! far the most common, as nothing; a rejection behind an `Arc`), so that
//! the tree's nodes, copied when a snapshot's view shares them, stay small.
//!
//! Persistent collections (see [`super::ProcessMap`]): a snapshot's frozen
//! view shares them. Serialised exactly as releases before this module
//! wrote it (an `answers` map, the `order` and an `indexes` map), so that
//! snapshots are read and written across versions alike.

use std::collections::BTreeMap;
use std::sync::Arc;

use canon_model::UnixMillis;
use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{DEDUP_MAX_IDS, DEDUP_WINDOW_MS, ENVELOPE_SKEW_MAX_MS, ENVELOPE_TTL_MAX_MS};
use crate::command::{CommandId, Committed, Rejection, Response};

/// What a replica remembers of one applied command.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Remembered {
    /// `None`: applied.
    rejected: Option<Arc<Rejection>>,
    /// The log index it was applied at (0: not in a log entry, or applied
    /// by a release that did not keep it).
    index: u64,
}

impl Remembered {
    fn response(&self) -> Response {
        match &self.rejected {
            None => Response::Applied,
            Some(r) => Response::Rejected((**r).clone()),
        }
    }
}

/// Remembered answers to recent commands, oldest first in `order`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Dedup {
    remembered: imbl::OrdMap<CommandId, Remembered>,
    /// Ids in apply order with their command time, oldest first.
    order: imbl::Vector<(CommandId, UnixMillis)>,
}

impl Dedup {
    /// The first answer to command `id` and the index it was applied at,
    /// if it was applied recently.
    pub(super) fn answer(&self, id: &CommandId) -> Option<Committed> {
        self.remembered.get(id).map(|r| Committed {
            response: r.response(),
            index: r.index,
        })
    }

    /// The log index command `id` was applied at, if known.
    pub(super) fn index_of(&self, id: &CommandId) -> Option<u64> {
        self.remembered
            .get(id)
            .map(|r| r.index)
            .filter(|index| *index > 0)
    }

    /// How many ids are remembered.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether `other` shares this one's trees (a frozen view of it).
    #[cfg(test)]
    pub(super) fn shares_with(&self, other: &Dedup) -> bool {
        self.remembered.ptr_eq(&other.remembered)
    }

    /// Remembers command `id`, applied at command time `at`, and forgets
    /// those past the window: older than [`DEDUP_WINDOW_MS`], or beyond
    /// [`DEDUP_MAX_IDS`] once no live envelope can carry them.
    pub(super) fn remember(&mut self, id: CommandId, at: UnixMillis, committed: &Committed) {
        let rejected = match &committed.response {
            Response::Applied => None,
            Response::Rejected(r) => Some(Arc::new(r.clone())),
        };
        let remembered = Remembered {
            rejected,
            index: committed.index,
        };
        self.remembered.insert(id, remembered);
        self.order.push_back((id, at));
        while let Some((old, old_at)) = self.order.front().copied() {
            let too_many = self.order.len() > DEDUP_MAX_IDS
                && old_at.saturating_add(ENVELOPE_TTL_MAX_MS + 2 * ENVELOPE_SKEW_MAX_MS) < at;
            let too_old = old_at.saturating_add(DEDUP_WINDOW_MS) < at;
            if !(too_many || too_old) {
                break;
            }
            self.order.pop_front();
            self.remembered.remove(&old);
        }
    }
}

/// The `answers` field: every remembered id with its answer.
struct Answers<'a>(&'a imbl::OrdMap<CommandId, Remembered>);

impl Serialize for Answers<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (id, r) in self.0.iter() {
            map.serialize_entry(id, &r.response())?;
        }
        map.end()
    }
}

/// The `indexes` field: the ids whose index is known, with it.
struct Indexes<'a>(&'a imbl::OrdMap<CommandId, Remembered>);

impl Serialize for Indexes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let known = || self.0.iter().filter(|(_, r)| r.index > 0);
        let mut map = s.serialize_map(Some(known().count()))?;
        for (id, r) in known() {
            map.serialize_entry(id, &r.index)?;
        }
        map.end()
    }
}

impl Serialize for Dedup {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Dedup", 3)?;
        st.serialize_field("answers", &Answers(&self.remembered))?;
        st.serialize_field("order", &self.order)?;
        st.serialize_field("indexes", &Indexes(&self.remembered))?;
        st.end()
    }
}

/// The fields as serialised.
#[derive(Deserialize)]
struct DedupFields {
    answers: BTreeMap<CommandId, Response>,
    order: imbl::Vector<(CommandId, UnixMillis)>,
    /// Absent in snapshots written before it was kept: those commands'
    /// indexes are not known (0).
    #[serde(default)]
    indexes: BTreeMap<CommandId, u64>,
}

impl<'de> Deserialize<'de> for Dedup {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let fields = DedupFields::deserialize(d)?;
        let remembered = fields
            .answers
            .into_iter()
            .map(|(id, response)| {
                let rejected = match response {
                    Response::Applied => None,
                    Response::Rejected(r) => Some(Arc::new(r)),
                };
                let index = fields.indexes.get(&id).copied().unwrap_or(0);
                (id, Remembered { rejected, index })
            })
            .collect();
        Ok(Dedup {
            remembered,
            order: fields.order,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(index: u64) -> Committed {
        Committed {
            response: Response::Applied,
            index,
        }
    }

    /// The fields as releases before this module declared them.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Earlier {
        answers: imbl::OrdMap<CommandId, Response>,
        order: imbl::Vector<(CommandId, UnixMillis)>,
        #[serde(default)]
        indexes: imbl::OrdMap<CommandId, u64>,
    }

    #[test]
    fn encodes_byte_for_byte_as_before_and_reads_what_was_written() {
        let mut d = Dedup::default();
        let (a, b, c) = (
            CommandId::random(),
            CommandId::random(),
            CommandId::random(),
        );
        d.remember(a, 1, &applied(7));
        let rejected = Committed {
            response: Response::Rejected(Rejection::UnknownProcess(canon_model::Fid::random())),
            index: 9,
        };
        d.remember(b, 2, &rejected);
        // Applied outside a log entry: no index.
        d.remember(c, 3, &applied(0));
        let ours = crate::codec::encode(&d).unwrap();
        let earlier: Earlier = crate::codec::decode(&ours).unwrap();
        assert_eq!(earlier.answers.len(), 3);
        assert_eq!(earlier.answers.get(&b), Some(&rejected.response));
        assert_eq!(earlier.indexes.len(), 2);
        assert_eq!(earlier.indexes.get(&a), Some(&7));
        assert_eq!(crate::codec::encode(&earlier).unwrap(), ours);
        let back: Dedup = crate::codec::decode(&ours).unwrap();
        assert_eq!(back, d);
        assert_eq!(back.answer(&b), Some(rejected));
        assert_eq!(back.index_of(&c), None);
        assert_eq!(back.index_of(&a), Some(7));
    }

    #[test]
    fn reads_the_window_of_releases_before_indexes_were_kept() {
        #[derive(Serialize)]
        struct Oldest {
            answers: BTreeMap<CommandId, Response>,
            order: Vec<(CommandId, UnixMillis)>,
        }
        let id = CommandId::random();
        let oldest = Oldest {
            answers: [(id, Response::Applied)].into_iter().collect(),
            order: vec![(id, 5)],
        };
        let d: Dedup = crate::codec::decode(&crate::codec::encode(&oldest).unwrap()).unwrap();
        assert_eq!(d.answer(&id), Some(applied(0)));
        assert_eq!(d.index_of(&id), None);
        assert_eq!(d.len(), 1);
    }
}
