//! Every process of a shard in alias order, killed and released ones too:
//! the order `canon status` pages through (`node::api::reads`). A page
//! starts after the last row of the previous one, so it costs a range
//! look-up here (log n) plus the rows it returns, never a walk over the
//! shard. Live processes are also in [`CanonState::aliases`]; this index
//! adds the processes that no longer hold their alias (an alias freed by a
//! kill may be taken again, so one alias may name several processes, told
//! apart by FID). Derived from the processes: kept in step by
//! `ProcessCreated` and `ProcessDeleted`, never serialised, and rebuilt
//! whole when a state is decoded from a snapshot ([`CanonState::decode`]).

use std::collections::BTreeSet;
use std::ops::Bound;

use canon_model::Fid;

use super::{CanonState, ProcessRecord};

/// Where a page of processes starts: after this alias and FID.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AliasCursor {
    pub alias: String,
    pub fid: Fid,
}

impl AliasCursor {
    /// The cursor just past process `p`.
    pub fn after(p: &ProcessRecord) -> AliasCursor {
        AliasCursor {
            alias: p.alias.clone(),
            fid: p.fid,
        }
    }
}

/// (alias, FID) of every process of a shard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AliasIndex(BTreeSet<(String, Fid)>);

impl AliasIndex {
    /// The index of `processes`.
    pub(super) fn of(processes: &super::ProcessMap) -> AliasIndex {
        AliasIndex(
            processes
                .values()
                .map(|p| (p.alias.clone(), p.fid))
                .collect(),
        )
    }

    pub(super) fn insert(&mut self, alias: &str, fid: Fid) {
        self.0.insert((alias.to_string(), fid));
    }

    pub(super) fn remove(&mut self, alias: &str, fid: Fid) {
        self.0.remove(&(alias.to_string(), fid));
    }

    /// How many processes the index holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl CanonState {
    /// The processes after `cursor` (none: from the first), in (alias,
    /// FID) order; only the live ones unless `all`. Lazy: taking n of them
    /// costs a range look-up and those n (and, with `all` false, the
    /// killed processes of the aliases in between, which the live index
    /// skips without visiting).
    pub fn processes_after<'a>(
        &'a self,
        cursor: Option<&AliasCursor>,
        all: bool,
    ) -> Box<dyn Iterator<Item = &'a ProcessRecord> + 'a> {
        let start_alias: Bound<String> = match cursor {
            Some(c) => Bound::Included(c.alias.clone()),
            None => Bound::Unbounded,
        };
        let owned = cursor.cloned();
        let past = move |alias: &str, fid: Fid| match &owned {
            Some(c) => (alias, fid) > (c.alias.as_str(), c.fid),
            None => true,
        };
        if all {
            let start = match cursor {
                Some(c) => Bound::Excluded((c.alias.clone(), c.fid)),
                None => Bound::Unbounded,
            };
            let rows = self
                .by_alias
                .0
                .range((start, Bound::Unbounded))
                .filter_map(|(_, fid)| self.processes.get(fid).map(|p| &**p));
            return Box::new(rows);
        }
        let rows = self
            .aliases
            .range((start_alias, Bound::Unbounded))
            .filter(move |(alias, fid)| past(alias, **fid))
            .filter_map(|(_, fid)| self.processes.get(fid).map(|p| &**p))
            .filter(|p| p.state.is_live());
        Box::new(rows)
    }

    /// The index of processes by alias.
    pub fn by_alias(&self) -> &AliasIndex {
        &self.by_alias
    }
}

#[cfg(test)]
mod tests {
    use canon_model::ProcessState;

    use super::super::tests::{create, set_state};
    use super::*;
    use crate::command::{Command, Request, Response};
    use crate::shard::group_of_shard;

    fn apply(s: &mut CanonState, at: u64, command: Command) {
        let r = s.apply(&Request::new(at, command));
        assert_eq!(r, Response::Applied);
    }

    /// Running → Killing → Killed (the only way to Killed).
    fn kill(s: &mut CanonState, at: u64, fid: Fid) {
        apply(s, at, set_state(fid, ProcessState::Killing));
        apply(s, at + 1, set_state(fid, ProcessState::Killed));
    }

    /// One shard of a one-shard cluster: every alias lives in it.
    fn state() -> CanonState {
        CanonState::new(group_of_shard(0), 1)
    }

    fn aliases(
        rows: impl Iterator<Item = impl std::ops::Deref<Target = ProcessRecord>>,
    ) -> Vec<String> {
        rows.map(|p| p.alias.clone()).collect()
    }

    #[test]
    fn pages_follow_alias_order_and_resume_after_the_cursor() {
        let mut s = state();
        let names = ["delta", "alpha", "charlie", "bravo", "echo"];
        let mut fids = std::collections::BTreeMap::new();
        for (i, alias) in names.iter().enumerate() {
            let fid = Fid::random();
            fids.insert(*alias, fid);
            apply(&mut s, i as u64 + 1, create(fid, alias));
        }
        let all: Vec<String> = aliases(s.processes_after(None, false));
        assert_eq!(all, ["alpha", "bravo", "charlie", "delta", "echo"]);
        let first: Vec<&ProcessRecord> = s.processes_after(None, false).take(2).collect();
        let cursor = AliasCursor::after(first[1]);
        assert_eq!(cursor.alias, "bravo");
        // A process created before the cursor is not seen again; one after
        // it is; a killed one drops out of the live order only.
        apply(&mut s, 10, create(Fid::random(), "aardvark"));
        apply(&mut s, 11, create(Fid::random(), "foxtrot"));
        kill(&mut s, 12, fids["delta"]);
        let rest: Vec<String> = aliases(s.processes_after(Some(&cursor), false));
        assert_eq!(rest, ["charlie", "echo", "foxtrot"]);
        let rest_all: Vec<String> = aliases(s.processes_after(Some(&cursor), true));
        assert_eq!(rest_all, ["charlie", "delta", "echo", "foxtrot"]);
    }

    #[test]
    fn an_alias_taken_again_after_a_kill_shows_both_processes_with_all() {
        let mut s = state();
        let (old, new) = (Fid::random(), Fid::random());
        apply(&mut s, 1, create(old, "web"));
        kill(&mut s, 2, old);
        apply(&mut s, 4, create(new, "web"));
        let live: Vec<Fid> = s.processes_after(None, false).map(|p| p.fid).collect();
        assert_eq!(live, [new]);
        let every: Vec<Fid> = s.processes_after(None, true).map(|p| p.fid).collect();
        let mut expected = vec![old, new];
        expected.sort();
        assert_eq!(every, expected);
        // Resuming between the two: the second only.
        let first = s.process(&expected[0]).unwrap();
        let cursor = AliasCursor::after(first);
        let rest: Vec<Fid> = s
            .processes_after(Some(&cursor), true)
            .map(|p| p.fid)
            .collect();
        assert_eq!(rest, [expected[1]]);
        // Live order resumes after the cursor too: the live process is
        // shown again only if it sorts after the cursor.
        let rest_live: Vec<Fid> = s
            .processes_after(Some(&cursor), false)
            .map(|p| p.fid)
            .collect();
        assert_eq!(
            rest_live,
            if new == expected[1] {
                vec![new]
            } else {
                vec![]
            }
        );
    }

    #[test]
    fn the_index_follows_deletes_and_is_rebuilt_from_a_snapshot() {
        let mut s = state();
        let (a, b) = (Fid::random(), Fid::random());
        apply(&mut s, 1, create(a, "a"));
        apply(&mut s, 2, create(b, "b"));
        kill(&mut s, 3, a);
        apply(&mut s, 5, Command::ProcessDeleted { fid: a });
        assert_eq!(s.by_alias().len(), 1);
        let bytes = crate::codec::encode(&s).unwrap();
        let back = CanonState::decode(&bytes).unwrap();
        assert_eq!(back, s);
        assert_eq!(aliases(back.processes_after(None, true)), ["b"]);
    }
}
