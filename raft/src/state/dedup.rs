//! The replay window: what a group answered recent commands, so that a
//! retried or replayed command gets its first answer again and changes
//! nothing, and at which log index it was applied.
//!
//! Every replica looks a command's id up before applying it and remembers
//! it after, so this is on every write's path three times over, and the
//! look-up is nearly always a miss (ids are random). A persistent ordered
//! map of the ids (what this was) made that miss a walk down a tree of
//! some 10^5 keys, cache miss after cache miss: 6 % of the raft bench's
//! CPU at 64 writers. So the ids live in apply order in a persistent
//! vector (what the eviction needs anyway, and what a snapshot's frozen
//! view shares), with their log index, and a hash index beside it finds
//! one in a probe. The index is derived: never serialised, rebuilt when a
//! snapshot is read, and absent from a frozen view (which is only ever
//! written out). Answers are `Applied` but for the few rejections, kept in
//! a map of their own.
//!
//! Serialised exactly as releases before wrote it (an `answers` map, the
//! `order` and an `indexes` map, maps in id order), so that snapshots are
//! read and written across versions alike.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use canon_model::UnixMillis;
use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{DEDUP_MAX_IDS, DEDUP_WINDOW_MS, ENVELOPE_SKEW_MAX_MS, ENVELOPE_TTL_MAX_MS};
use crate::command::{CommandId, Committed, Rejection, Response};

/// One remembered command, in apply order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    id: CommandId,
    /// Its command time.
    at: UnixMillis,
    /// The log index it was applied at (0: not in a log entry, or applied
    /// by a release that did not keep it).
    index: u64,
}

/// Remembered answers to recent commands.
#[derive(Debug, Clone, Default)]
pub(super) struct Dedup {
    /// Oldest first.
    order: imbl::Vector<Seen>,
    /// The commands whose answer was a rejection, with it.
    rejected: imbl::OrdMap<CommandId, Arc<Rejection>>,
    /// Derived: each id of `order` with its log index. Empty in a frozen
    /// view (`frozen`).
    index: HashMap<CommandId, u64>,
    /// A snapshot's view: `index` was left out.
    frozen: bool,
}

impl PartialEq for Dedup {
    /// The same remembered commands and answers (the index is derived).
    fn eq(&self, other: &Dedup) -> bool {
        self.order == other.order && self.rejected == other.rejected
    }
}

impl Eq for Dedup {}

impl Dedup {
    /// A copy for a snapshot to be written from, O(1): it shares the
    /// persistent parts and leaves the index out.
    pub(super) fn frozen_view(&self) -> Dedup {
        Dedup {
            order: self.order.clone(),
            rejected: self.rejected.clone(),
            index: HashMap::new(),
            frozen: true,
        }
    }

    /// The log index of command `id` (0 if not known), if it is remembered.
    fn find(&self, id: &CommandId) -> Option<u64> {
        if self.frozen {
            // Never on a path that counts: views are only written out.
            return self.order.iter().find(|s| s.id == *id).map(|s| s.index);
        }
        self.index.get(id).copied()
    }

    /// The first answer to command `id` and the index it was applied at,
    /// if it was applied recently.
    pub(super) fn answer(&self, id: &CommandId) -> Option<Committed> {
        let index = self.find(id)?;
        Some(Committed {
            response: self.response_of(id),
            index,
        })
    }

    fn response_of(&self, id: &CommandId) -> Response {
        match self.rejected.get(id) {
            None => Response::Applied,
            Some(r) => Response::Rejected((**r).clone()),
        }
    }

    /// The log index command `id` was applied at, if known.
    pub(super) fn index_of(&self, id: &CommandId) -> Option<u64> {
        self.find(id).filter(|index| *index > 0)
    }

    /// How many ids are remembered.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether `other` shares this one's trees (a frozen view of it).
    #[cfg(test)]
    pub(super) fn shares_with(&self, other: &Dedup) -> bool {
        self.order.ptr_eq(&other.order) && self.rejected.ptr_eq(&other.rejected)
    }

    /// Remembers command `id`, applied at command time `at`, and forgets
    /// those past the window: older than [`DEDUP_WINDOW_MS`], or beyond
    /// [`DEDUP_MAX_IDS`] once no live envelope can carry them.
    pub(super) fn remember(&mut self, id: CommandId, at: UnixMillis, committed: &Committed) {
        debug_assert!(!self.frozen, "a frozen view is never applied to");
        if let Response::Rejected(r) = &committed.response {
            self.rejected.insert(id, Arc::new(r.clone()));
        }
        let index = committed.index;
        self.index.insert(id, index);
        self.order.push_back(Seen { id, at, index });
        while let Some(old) = self.order.front().copied() {
            let too_many = self.order.len() > DEDUP_MAX_IDS
                && old
                    .at
                    .saturating_add(ENVELOPE_TTL_MAX_MS + 2 * ENVELOPE_SKEW_MAX_MS)
                    < at;
            let too_old = old.at.saturating_add(DEDUP_WINDOW_MS) < at;
            if !(too_many || too_old) {
                break;
            }
            self.order.pop_front();
            self.index.remove(&old.id);
            if !self.rejected.is_empty() {
                self.rejected.remove(&old.id);
            }
        }
    }

    /// Every remembered id, in id order (as the maps were serialised).
    fn by_id(&self) -> Vec<Seen> {
        let mut seen: Vec<Seen> = self.order.iter().copied().collect();
        seen.sort_unstable_by_key(|s| s.id);
        seen
    }
}

/// The `answers` field: every remembered id with its answer.
struct Answers<'a>(&'a Dedup, &'a [Seen]);

impl Serialize for Answers<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.1.len()))?;
        for seen in self.1 {
            map.serialize_entry(&seen.id, &self.0.response_of(&seen.id))?;
        }
        map.end()
    }
}

/// The `order` field: ids with their command time.
struct Order<'a>(&'a imbl::Vector<Seen>);

impl Serialize for Order<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|seen| (seen.id, seen.at)))
    }
}

/// The `indexes` field: the ids whose index is known, with it.
struct Indexes<'a>(&'a [Seen]);

impl Serialize for Indexes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let known = || self.0.iter().filter(|seen| seen.index > 0);
        let mut map = s.serialize_map(Some(known().count()))?;
        for seen in known() {
            map.serialize_entry(&seen.id, &seen.index)?;
        }
        map.end()
    }
}

impl Serialize for Dedup {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let by_id = self.by_id();
        let mut st = s.serialize_struct("Dedup", 3)?;
        st.serialize_field("answers", &Answers(self, &by_id))?;
        st.serialize_field("order", &Order(&self.order))?;
        st.serialize_field("indexes", &Indexes(&by_id))?;
        st.end()
    }
}

/// The fields as serialised.
#[derive(Deserialize)]
struct DedupFields {
    answers: BTreeMap<CommandId, Response>,
    order: Vec<(CommandId, UnixMillis)>,
    /// Absent in snapshots written before it was kept: those commands'
    /// indexes are not known (0).
    #[serde(default)]
    indexes: BTreeMap<CommandId, u64>,
}

impl<'de> Deserialize<'de> for Dedup {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let fields = DedupFields::deserialize(d)?;
        let mut dedup = Dedup::default();
        for (id, at) in fields.order {
            let index = fields.indexes.get(&id).copied().unwrap_or(0);
            dedup.index.insert(id, index);
            dedup.order.push_back(Seen { id, at, index });
        }
        for (id, response) in fields.answers {
            // An answer without its id in the order would never be
            // forgotten: only the ordered ids count.
            if let (Response::Rejected(r), true) = (response, dedup.index.contains_key(&id)) {
                dedup.rejected.insert(id, Arc::new(r));
            }
        }
        Ok(dedup)
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
    fn a_frozen_view_writes_and_answers_as_the_live_window() {
        let mut d = Dedup::default();
        let ids: Vec<CommandId> = (0..50).map(|_| CommandId::random()).collect();
        for (i, id) in ids.iter().enumerate() {
            let response = if i % 7 == 0 {
                Response::Rejected(Rejection::UnknownProcess(canon_model::Fid::random()))
            } else {
                Response::Applied
            };
            let committed = Committed {
                response,
                index: i as u64,
            };
            d.remember(*id, i as u64, &committed);
        }
        let view = d.frozen_view();
        assert!(view.shares_with(&d));
        assert_eq!(view, d);
        assert_eq!(
            crate::codec::encode(&view).unwrap(),
            crate::codec::encode(&d).unwrap()
        );
        for id in &ids {
            assert_eq!(view.answer(id), d.answer(id));
        }
        // Read back, the index is whole again.
        let back: Dedup = crate::codec::decode(&crate::codec::encode(&view).unwrap()).unwrap();
        assert!(!back.frozen);
        for id in &ids {
            assert_eq!(back.answer(id), d.answer(id));
        }
        assert_eq!(back.answer(&CommandId::random()), None);
    }

    #[test]
    fn forgetting_an_id_forgets_its_rejection() {
        let mut d = Dedup::default();
        let old = CommandId::random();
        let rejected = Committed {
            response: Response::Rejected(Rejection::UnknownProcess(canon_model::Fid::random())),
            index: 1,
        };
        d.remember(old, 0, &rejected);
        d.remember(CommandId::random(), DEDUP_WINDOW_MS + 1, &applied(2));
        assert_eq!(d.answer(&old), None);
        assert!(d.rejected.is_empty());
        assert_eq!(d.len(), 1);
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
