//! The node's event journal: every event this node's replicas show, each
//! numbered by the Raft index of its group's entry that made it, kept for a
//! while so that a subscriber who lost its connection resumes where it
//! left off (`Last-Event-ID` on the console's stream, `EventsRequest.after`
//! on the API) instead of starting again from a snapshot.
//!
//! One watcher per shard group reads the processes each applied entry
//! touched and appends the differences ([`super::diff`]). The journal keeps
//! the last [`JOURNAL_EVENTS`] events; for each group it knows the index
//! after which it holds every event (its floor), so it can say whether a
//! position is still covered. A position is a [`Cursor`]: one index per
//! group, because each group numbers its own log.
//!
//! Appending and following take the same lock, and a follower subscribes
//! to the live feed under it: what it replays and what it then hears
//! neither overlap nor leave a hole.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use canon_model::Fid;
use canon_raft::shard::group_of_shard;
use canon_raft::{Applied, GroupId, RaftNode, WeakRaftNode};
use tokio::sync::broadcast;

use super::diff::{Known, Noted};

/// How many events the journal keeps for subscribers that reconnect.
pub const JOURNAL_EVENTS: usize = 4096;

/// How far a live follower may fall behind the journal before it is told
/// it lost events. As deep as the journal: a follower that lags this far
/// would not be resumable either.
const LIVE_FEED: usize = JOURNAL_EVENTS;

/// One journalled event: its group, the index of the entry it came from,
/// and its place among that entry's events.
#[derive(Debug, Clone)]
pub struct Entry {
    pub group: GroupId,
    pub index: u64,
    /// Its place among the events of `index` (from 0).
    pub ordinal: u32,
    /// Whether it is the last event of `index`.
    pub last: bool,
    pub noted: Noted,
}

/// How far one group's events have been delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    index: u64,
    /// `None`: every event of `index` was; `Some(k)`: its first `k`.
    next: Option<u32>,
}

impl Pos {
    fn whole(index: u64) -> Pos {
        Pos { index, next: None }
    }

    /// Whether `e` comes after this position.
    fn before(&self, e: &Entry) -> bool {
        e.index > self.index || (e.index == self.index && self.next.is_some_and(|k| e.ordinal >= k))
    }
}

/// A position in the event stream: for each group, how far its events
/// have been delivered, because each group numbers its own log. Written
/// `GROUP:INDEX,…` (the SSE id), and `GROUP:INDEX.K` when only the first
/// `K` events of that entry were.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor(BTreeMap<GroupId, Pos>);

impl Cursor {
    /// Reads a cursor as [`fmt::Display`] writes it.
    pub fn parse(text: &str) -> Result<Cursor, String> {
        let mut at = BTreeMap::new();
        for part in text.split(',') {
            let Some((group, pos)) = parse_part(part) else {
                return Err(format!(
                    "event position {text:?}: `{part}` is not GROUP:INDEX or GROUP:INDEX.K (numbers)"
                ));
            };
            if at.insert(group, pos).is_some() {
                return Err(format!(
                    "event position {text:?}: group {group} appears twice"
                ));
            }
        }
        Ok(Cursor(at))
    }

    /// Notes that `group`'s events up to its entry at `index` were all
    /// delivered.
    fn reach(&mut self, group: GroupId, index: u64) {
        let at = self.0.entry(group).or_insert(Pos::whole(index));
        if at.index <= index {
            *at = Pos::whole(index);
        }
    }

    /// Notes that `e` was delivered.
    pub fn deliver(&mut self, e: &Entry) {
        let pos = if e.last {
            Pos::whole(e.index)
        } else {
            Pos {
                index: e.index,
                next: Some(e.ordinal + 1),
            }
        };
        self.0.insert(e.group, pos);
    }

    /// Whether `e` comes after this position (a group the cursor does not
    /// name: yes).
    pub fn precedes(&self, e: &Entry) -> bool {
        self.0.get(&e.group).is_none_or(|p| p.before(e))
    }

    /// This cursor narrowed to `groups`.
    fn only(&self, groups: &BTreeSet<GroupId>) -> Cursor {
        Cursor(
            self.0
                .iter()
                .filter(|(g, _)| groups.contains(g))
                .map(|(g, p)| (*g, *p))
                .collect(),
        )
    }
}

fn parse_part(part: &str) -> Option<(GroupId, Pos)> {
    let (group, pos) = part.split_once(':')?;
    let group = group.parse::<GroupId>().ok()?;
    let pos = match pos.split_once('.') {
        Some((index, k)) => Pos {
            index: index.parse().ok()?,
            next: Some(k.parse().ok()?),
        },
        None => Pos::whole(pos.parse().ok()?),
    };
    Some((group, pos))
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, (g, p)) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str(",")?;
            }
            write!(f, "{g}:{}", p.index)?;
            if let Some(k) = p.next {
                write!(f, ".{k}")?;
            }
        }
        Ok(())
    }
}

/// The kept events and how far they reach.
#[derive(Debug, Default)]
struct Ring {
    entries: VecDeque<Arc<Entry>>,
    /// Per group: every event numbered above this index is in `entries`.
    floor: BTreeMap<GroupId, u64>,
    /// Per group: the index its watcher has read up to.
    head: Cursor,
}

impl Ring {
    /// Whether every event after `after` of each of `groups` is kept.
    fn covers(&self, groups: &BTreeSet<GroupId>, after: &Cursor) -> bool {
        // Every event above the floor is kept: a whole position at or
        // above it is covered, a part of an entry only above it (the rest
        // of the floor's own entry may be gone).
        groups
            .iter()
            .all(|g| match (after.0.get(g), self.floor.get(g)) {
                (Some(at), Some(floor)) => match at.next {
                    None => at.index >= *floor,
                    Some(_) => at.index > *floor,
                },
                _ => false,
            })
    }

    fn push(&mut self, entry: Arc<Entry>) {
        if self.entries.len() == JOURNAL_EVENTS {
            if let Some(old) = self.entries.pop_front() {
                // Events of `old.index` may remain, but not all of them:
                // only a position past it is still covered.
                let floor = self.floor.entry(old.group).or_insert(old.index);
                *floor = (*floor).max(old.index);
            }
        }
        self.entries.push_back(entry);
    }
}

/// What a follower starts with.
pub struct Follow {
    /// Whether the events after the asked position were kept: `replay`
    /// holds them all. False: no position was asked, or the journal no
    /// longer reaches back to it, and the follower must re-read the state.
    pub resumed: bool,
    /// The kept events after the position, in order.
    pub replay: Vec<Arc<Entry>>,
    /// Every event appended from now on.
    pub live: broadcast::Receiver<Arc<Entry>>,
    /// Where the follower stands before `replay`.
    pub position: Cursor,
}

/// The node's journal (see the module doc). Started once per node.
pub struct EventJournal {
    ring: Mutex<Ring>,
    live: broadcast::Sender<Arc<Entry>>,
    started: AtomicBool,
}

impl Default for EventJournal {
    fn default() -> Self {
        EventJournal {
            ring: Mutex::default(),
            live: broadcast::channel(LIVE_FEED).0,
            started: AtomicBool::new(false),
        }
    }
}

impl fmt::Debug for EventJournal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventJournal")
            .field("head", &self.lock().head)
            .finish()
    }
}

impl EventJournal {
    /// The ring. A poisoned lock is recovered: every change to the ring
    /// is a push or a map update, which leave it consistent.
    fn lock(&self) -> MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts watching every shard group of `node` (once; later calls do
    /// nothing). Each group's position is read before this returns, so a
    /// follower from then on has a full cursor. Must run inside a tokio
    /// runtime.
    pub fn start(self: &Arc<Self>, node: &RaftNode) {
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        for group in (0..node.shard_count()).map(group_of_shard) {
            // Subscribe, then read: nothing is missed in between.
            let Ok(rx) = node.subscribe_applied(group) else {
                continue;
            };
            let mut known = Known::default();
            let Ok((index, _)) = node.read_applied(group, |s| known.changes(s, None, false)) else {
                continue;
            };
            {
                let mut ring = self.lock();
                ring.floor.insert(group, index);
                ring.head.reach(group, index);
            }
            let watcher = Watcher {
                journal: Arc::clone(self),
                node: node.downgrade(),
                group,
                known,
            };
            tokio::spawn(watcher.run(rx));
        }
    }

    /// Records `events` of `group`'s entry at `index`, and tells the
    /// followers.
    fn append(&self, group: GroupId, index: u64, events: Vec<Noted>) {
        let mut ring = self.lock();
        ring.head.reach(group, index);
        let count = events.len();
        for (n, noted) in events.into_iter().enumerate() {
            let entry = Arc::new(Entry {
                group,
                index,
                // At most a few events per process an entry touched.
                ordinal: u32::try_from(n).unwrap_or(u32::MAX),
                last: n + 1 == count,
                noted,
            });
            ring.push(Arc::clone(&entry));
            // Nobody following is fine.
            let _ = self.live.send(entry);
        }
    }

    /// Follows `groups` from `after` (if given and still covered: the kept
    /// events after it are replayed) or from now.
    pub fn follow(&self, groups: &BTreeSet<GroupId>, after: Option<&Cursor>) -> Follow {
        let ring = self.lock();
        let live = self.live.subscribe();
        match after {
            Some(after) if ring.covers(groups, after) => {
                let replay = ring
                    .entries
                    .iter()
                    .filter(|e| groups.contains(&e.group) && after.precedes(e))
                    .cloned()
                    .collect();
                Follow {
                    resumed: true,
                    replay,
                    live,
                    position: after.only(groups),
                }
            }
            _ => Follow {
                resumed: false,
                replay: Vec::new(),
                live,
                position: ring.head.only(groups),
            },
        }
    }
}

/// Turns one group's applied entries into journal events.
struct Watcher {
    journal: Arc<EventJournal>,
    /// Weak: the watcher must not keep a stopped node's database open.
    node: WeakRaftNode,
    group: GroupId,
    known: Known,
}

impl Watcher {
    /// Runs until the group's notices end or the node is gone.
    async fn run(mut self, mut rx: broadcast::Receiver<Applied>) {
        loop {
            let (fids, index): (Option<BTreeSet<Fid>>, Option<u64>) = match rx.recv().await {
                Ok(Applied::Processes { index, fids }) => (Some(fids), Some(index)),
                Ok(Applied::Cluster { .. }) => continue,
                // A snapshot replaced the state, or notices were missed:
                // compare everything, numbered by what the read reached.
                Ok(Applied::Reset { .. }) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    (None, None)
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let Some(node) = self.node.upgrade() else {
                return;
            };
            let known = &mut self.known;
            let read = node.read_applied(self.group, |s| known.changes(s, fids.as_ref(), true));
            let Ok((applied, events)) = read else {
                return;
            };
            self.journal
                .append(self.group, index.unwrap_or(applied), events);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use canon_proto::canon::api::v1 as pb;

    fn noted(n: u64) -> Vec<Noted> {
        vec![Noted {
            account: "default".into(),
            event: pb::Event {
                at_ms: n,
                kind: "job.started".into(),
                alias: "web".into(),
                ..pb::Event::default()
            },
        }]
    }

    fn two(n: u64) -> Vec<Noted> {
        let mut both = noted(n);
        both.extend(noted(n + 1));
        both
    }

    fn journal(groups: &[GroupId]) -> EventJournal {
        let j = EventJournal::default();
        {
            let mut ring = j.lock();
            for g in groups {
                ring.floor.insert(*g, 0);
                ring.head.reach(*g, 0);
            }
        }
        j
    }

    fn set(groups: &[GroupId]) -> BTreeSet<GroupId> {
        groups.iter().copied().collect()
    }

    #[test]
    fn a_cursor_reads_back_what_it_writes_and_refuses_garbage() {
        let mut c = Cursor::default();
        c.reach(2, 7);
        c.reach(1, 40);
        c.reach(2, 5);
        assert_eq!(c.to_string(), "1:40,2:7");
        assert_eq!(Cursor::parse("1:40,2:7"), Ok(c.clone()));
        c.deliver(&Entry {
            group: 3,
            index: 9,
            ordinal: 0,
            last: false,
            noted: noted(0).remove(0),
        });
        assert_eq!(c.to_string(), "1:40,2:7,3:9.1");
        assert_eq!(Cursor::parse("1:40,2:7,3:9.1"), Ok(c));
        for bad in [
            "", "1", "1:x", "a:1", "1:2,1:3", "1:-1", ":", "1:2.", "1:2.x", "1:2,",
        ] {
            assert!(Cursor::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_follower_resumes_after_its_position_without_overlap() {
        let j = journal(&[1, 2]);
        j.append(1, 3, noted(1));
        j.append(2, 4, noted(2));
        j.append(1, 5, noted(3));
        let after = Cursor::parse("1:3,2:0").unwrap();
        let mut f = j.follow(&set(&[1, 2]), Some(&after));
        assert!(f.resumed);
        let replayed: Vec<(GroupId, u64)> = f.replay.iter().map(|e| (e.group, e.index)).collect();
        assert_eq!(replayed, [(2, 4), (1, 5)]);
        j.append(2, 6, noted(4));
        let next = f.live.try_recv().unwrap();
        assert_eq!((next.group, next.index), (2, 6));
        assert!(f.live.try_recv().is_err(), "nothing twice");
    }

    #[test]
    fn a_follower_cut_off_inside_an_entry_gets_the_rest_of_it() {
        let j = journal(&[1]);
        j.append(1, 3, two(1));
        let mut f = j.follow(&set(&[1]), Some(&Cursor::parse("1:0").unwrap()));
        assert!(f.resumed);
        assert_eq!(f.replay.len(), 2);
        f.position.deliver(&f.replay[0]);
        assert_eq!(f.position.to_string(), "1:3.1");
        let again = j.follow(&set(&[1]), Some(&f.position));
        assert!(again.resumed);
        let rest: Vec<u32> = again.replay.iter().map(|e| e.ordinal).collect();
        assert_eq!(rest, [1]);
        f.position.deliver(&f.replay[1]);
        assert_eq!(f.position.to_string(), "1:3");
        assert!(j.follow(&set(&[1]), Some(&f.position)).replay.is_empty());
    }

    #[test]
    fn a_position_the_journal_no_longer_reaches_is_not_resumed() {
        let j = journal(&[1]);
        for i in 0..(JOURNAL_EVENTS as u64 + 10) {
            j.append(1, i + 1, noted(i));
        }
        let old = Cursor::parse("1:5").unwrap();
        let f = j.follow(&set(&[1]), Some(&old));
        assert!(!f.resumed && f.replay.is_empty());
        assert_eq!(f.position.to_string(), format!("1:{}", JOURNAL_EVENTS + 10));
        let recent = Cursor::parse(&format!("1:{}", JOURNAL_EVENTS)).unwrap();
        let f = j.follow(&set(&[1]), Some(&recent));
        assert!(f.resumed);
        assert_eq!(f.replay.len(), 10);
    }

    #[test]
    fn a_cursor_missing_a_followed_group_is_not_resumed() {
        let j = journal(&[1, 2]);
        let f = j.follow(&set(&[1, 2]), Some(&Cursor::parse("1:0").unwrap()));
        assert!(!f.resumed);
        // Following only group 1, the same cursor resumes.
        let f = j.follow(&set(&[1]), Some(&Cursor::parse("1:0").unwrap()));
        assert!(f.resumed);
    }
}
