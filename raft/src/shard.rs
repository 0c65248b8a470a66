//! Which shard owns a process: a stable hash of its alias modulo the shard
//! count, fixed when the cluster is created.
//!
//! The hash is FNV-1a (64 bit), written out here so that it can never change
//! with a Rust release or a dependency bump: a different hash would move every
//! process to another shard.

use crate::ids::GroupId;

/// The number of shards of a new cluster unless configured otherwise.
pub const DEFAULT_SHARD_COUNT: u32 = 16;

/// The group id of the meta group (members, placement, trust data).
pub const META_GROUP: GroupId = 0;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a, 64 bit, of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(FNV_PRIME)
    })
}

/// The shard (0-based) of the process named `alias`. A shard count of 0 is
/// treated as 1 so that bad configuration cannot divide by zero.
pub fn shard_of(alias: &str, shard_count: u32) -> u32 {
    let n = u64::from(shard_count.max(1));
    // The remainder is below `shard_count`, which fits in u32.
    (fnv1a64(alias.as_bytes()) % n) as u32
}

/// The Raft group that carries shard `shard`: groups are numbered 1.. for
/// shards, 0 being the meta group.
pub fn group_of_shard(shard: u32) -> GroupId {
    GroupId::from(shard) + 1
}

/// The shard carried by `group`, or `None` for the meta group.
pub fn shard_of_group(group: GroupId) -> Option<u32> {
    group.checked_sub(1).and_then(|s| u32::try_from(s).ok())
}

/// The Raft group that owns the process named `alias`.
pub fn group_of_alias(alias: &str, shard_count: u32) -> GroupId {
    group_of_shard(shard_of(alias, shard_count))
}

/// Every group of a cluster with `shard_count` shards, meta group first.
pub fn all_groups(shard_count: u32) -> impl Iterator<Item = GroupId> {
    std::iter::once(META_GROUP).chain((0..shard_count).map(group_of_shard))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_reference_vectors() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn shards_are_stable_and_in_range() {
        // Pinned values: if these change, every process moves shard.
        assert_eq!(shard_of("dev-sam", 16), (fnv1a64(b"dev-sam") % 16) as u32);
        for alias in ["dev-sam", "prod", "a", "", "web-app-01"] {
            let s = shard_of(alias, 16);
            assert!(s < 16);
            assert_eq!(s, shard_of(alias, 16));
            assert_eq!(shard_of_group(group_of_alias(alias, 16)), Some(s));
        }
        assert_eq!(shard_of("x", 0), 0);
        assert_eq!(shard_of_group(META_GROUP), None);
        let groups: Vec<_> = all_groups(3).collect();
        assert_eq!(groups, vec![0, 1, 2, 3]);
    }

    #[test]
    fn aliases_spread_over_shards() {
        let mut counts = [0u32; 16];
        for i in 0..1600 {
            counts[shard_of(&format!("proc-{i}"), 16) as usize] += 1;
        }
        assert!(counts.iter().all(|c| *c > 50), "{counts:?}");
    }
}
