//! glibc's malloc arenas, capped at one a core: why a node's resident
//! memory is its heap and not a multiple of it (issue #19, memory per node).
//!
//! glibc gives a thread that finds the arenas busy an arena of its own, up
//! to eight a core; a node has many threads (tokio's workers and blocking
//! pool, Raft's, sled's) that each allocate and free in bursts, so freed
//! memory is spread over many arenas and none of it goes back to the
//! system. At 10,000 processes the scale bench's process held 4,065 MiB
//! with glibc's default and 3,382 MiB with `MALLOC_ARENA_MAX=2` on this
//! 2-core machine (`client/tests/bench_scale.rs`), the same work: 17 % of
//! the resident memory was arenas' free space. A `MALLOC_ARENA_MAX` the
//! operator set is left as it is (glibc has already read it).

/// The arena cap set: one arena a core, unless `MALLOC_ARENA_MAX` is set
/// (then None, and glibc keeps the operator's). Call it first thing in
/// `main`, before threads start: an arena made before it stays.
pub fn cap_arenas() -> Option<usize> {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return None;
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    set_arena_max(cores).then_some(cores)
}

/// Hands the heap's free pages back to the system (glibc's
/// `malloc_trim`, every arena): so that a resident-memory reading after
/// something was dropped shows what it held, not what malloc kept. True
/// if any memory went back. For benches that measure by difference.
pub fn trim() -> bool {
    trim_heap()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_heap() -> bool {
    // SAFETY: malloc_trim takes a size and locks each arena while it
    // returns free pages; sound with other threads allocating.
    unsafe { libc::malloc_trim(0) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_heap() -> bool {
    false
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_arena_max(arenas: usize) -> bool {
    let arenas = libc::c_int::try_from(arenas).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt takes two integers and changes a malloc setting;
    // glibc serialises it against allocations (it takes the main arena's
    // lock), so it is sound with other threads running.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_arena_max(_arenas: usize) -> bool {
    false
}

#[cfg(test)]
mod tests {
    #[test]
    fn caps_at_the_cores_unless_the_operator_chose() {
        let chose = std::env::var_os("MALLOC_ARENA_MAX").is_some();
        let set = super::cap_arenas();
        if chose {
            assert_eq!(set, None);
        } else if cfg!(all(target_os = "linux", target_env = "gnu")) {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            assert_eq!(set, Some(cores));
        }
    }
}
