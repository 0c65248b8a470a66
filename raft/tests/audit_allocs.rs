//! What the audit costs a signed write in allocations, counted (issue #13:
//! the profile put most of its cost in the allocator and in the heap the
//! records grow). A signed write is a bare `Noop` plus a principal and the
//! door's context (`benches/support/signed_write.rs`, as the benches make
//! it); the counts here are of a signed write's apply and decode minus a
//! bare one's, so what the state machine does for every request is not
//! counted.
//!
//! Before the records shared their text, a signed write's record kept
//! about ten allocations on every replica, and a follower made seven
//! decoding its request.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use canon_raft::command::{Batch, EntryAt};
use canon_raft::entry_codec::{decode_entry, encode_entry};
use canon_raft::shard::group_of_shard;
use canon_raft::types::Entry;
use canon_raft::{CanonState, Request};
use openraft::{CommittedLeaderId, EntryPayload, LogId};

#[path = "../benches/support/signed_write.rs"]
mod signed_write;
use signed_write::write;

/// The system allocator, counting on each thread what it allocates and
/// frees (per thread, so tests running alongside do not count).
struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static FREES: Cell<u64> = const { Cell::new(0) };
}

fn bump(c: &'static std::thread::LocalKey<Cell<u64>>) {
    // During thread teardown the counters may be gone: not counted then.
    let _ = c.try_with(|c| c.set(c.get() + 1));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump(&ALLOCS);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        bump(&FREES);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump(&ALLOCS);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump(&ALLOCS);
        bump(&FREES);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Allocations made, and allocations still live, while `f` ran.
fn counted(f: impl FnOnce()) -> (u64, i64) {
    let (a0, f0) = (ALLOCS.with(Cell::get), FREES.with(Cell::get));
    f();
    let (a1, f1) = (ALLOCS.with(Cell::get), FREES.with(Cell::get));
    (a1 - a0, (a1 - a0) as i64 - (f1 - f0) as i64)
}

const WARM: usize = 2_000;
const N: usize = 20_000;

/// Allocations per request of applying `N` writes after `WARM` of them,
/// and allocations per request still live after.
fn apply_counts(signed: bool) -> (f64, f64) {
    let mut state = CanonState::new(group_of_shard(0), 16);
    let requests: Vec<Request> = (0..(WARM + N) as u64)
        .map(|i| write(signed, 1_700_000_000_000 + i))
        .collect();
    let at = |i: usize| {
        Some(EntryAt {
            term: 1,
            index: i as u64 + 1,
        })
    };
    for (i, r) in requests[..WARM].iter().enumerate() {
        state.apply_at(r, at(i));
    }
    let (allocs, live) = counted(|| {
        for (i, r) in requests[WARM..].iter().enumerate() {
            state.apply_at(r, at(WARM + i));
        }
    });
    if signed {
        assert_eq!(state.audit.records.len(), WARM + N);
        assert_eq!(state.audit.verify(state.group), Ok((WARM + N) as u64));
    }
    (allocs as f64 / N as f64, live as f64 / N as f64)
}

/// Allocations per request of decoding batches of 33 writes.
fn decode_counts(signed: bool) -> f64 {
    const BATCH: usize = 33;
    let batches: Vec<Vec<u8>> = (0..N / BATCH)
        .map(|k| {
            let requests: Vec<Request> = (0..BATCH as u64)
                .map(|i| write(signed, 1_700_000_000_000 + i))
                .collect();
            let entry = Entry {
                log_id: LogId::new(CommittedLeaderId::new(1, 1), k as u64 + 1),
                payload: EntryPayload::Normal(Batch::from(requests)),
            };
            encode_entry(&entry).unwrap()
        })
        .collect();
    let (allocs, _) = counted(|| {
        for bytes in &batches {
            std::hint::black_box(decode_entry(bytes).unwrap());
        }
    });
    allocs as f64 / (batches.len() * BATCH) as f64
}

#[test]
fn a_signed_write_keeps_next_to_nothing_and_decodes_with_one_allocation_more() {
    let (bare, bare_live) = apply_counts(false);
    let (signed, signed_live) = apply_counts(true);
    let (bare_decode, signed_decode) = (decode_counts(false), decode_counts(true));
    eprintln!(
        "allocations per write: apply bare {bare:.2} (live {bare_live:.2}), \
         signed {signed:.2} (live {signed_live:.2}); decode bare {bare_decode:.2}, \
         signed {signed_decode:.2}"
    );
    // The record: its chain hash's buffer, and a share of the chunks the
    // records are kept in. Nothing of its own that it keeps.
    assert!(signed - bare <= 2.0, "{signed} against {bare}");
    assert!(
        signed_live - bare_live <= 0.5,
        "{signed_live} against {bare_live}"
    );
    // The request: its door context's box.
    assert!(
        signed_decode - bare_decode <= 1.5,
        "{signed_decode} against {bare_decode}"
    );
}
