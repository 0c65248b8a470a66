//! The faults a drill can inject, what each does, and whom it hits: a
//! target (`follower`, `leader`, `meta-leader`, `node=N`, `random`)
//! resolved against the cluster's roles at that moment, within the blast
//! radius a cluster of n members survives ((n−1)/2 nodes). Process faults
//! signal the node, network faults filter its packets, environment faults
//! change what surrounds it: its disk (`replace-member`: wiped, then the
//! member replaced), its clock (`clock-skew`: libfaketime) and its free
//! space (`disk-full`: a small tmpfs, filled).

use std::collections::BTreeMap;
use std::fmt;

/// One fault of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    KillFollower,
    KillLeader,
    KillMetaLeader,
    TermLeader,
    PauseLeader,
    BlackholePeer,
    PartitionOne,
    PartitionHalves,
    PartitionBridge,
    OneWay,
    DelayPeers,
    LossPeers,
    ReplaceMember,
    ClockSkew,
    DiskFull,
    None,
}

/// How a fault acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// Signals to the node's process.
    Process,
    /// Packet filters in the node's network namespace.
    Network,
    /// The node's surroundings: its disk, its clock, its membership.
    Environment,
    /// Load only.
    Nothing,
}

impl Fault {
    pub const ALL: [Fault; 16] = [
        Fault::KillFollower,
        Fault::KillLeader,
        Fault::KillMetaLeader,
        Fault::TermLeader,
        Fault::PauseLeader,
        Fault::BlackholePeer,
        Fault::PartitionOne,
        Fault::PartitionHalves,
        Fault::PartitionBridge,
        Fault::OneWay,
        Fault::DelayPeers,
        Fault::LossPeers,
        Fault::ReplaceMember,
        Fault::ClockSkew,
        Fault::DiskFull,
        Fault::None,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::KillFollower => "kill-follower",
            Fault::KillLeader => "kill-leader",
            Fault::KillMetaLeader => "kill-meta-leader",
            Fault::TermLeader => "term-leader",
            Fault::PauseLeader => "pause-leader",
            Fault::BlackholePeer => "blackhole-peer",
            Fault::PartitionOne => "partition-one",
            Fault::PartitionHalves => "partition-halves",
            Fault::PartitionBridge => "partition-bridge",
            Fault::OneWay => "one-way",
            Fault::DelayPeers => "delay-peers",
            Fault::LossPeers => "loss-peers",
            Fault::ReplaceMember => "replace-member",
            Fault::ClockSkew => "clock-skew",
            Fault::DiskFull => "disk-full",
            Fault::None => "none",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Fault::KillFollower => "kill -9 the node leading the fewest groups (not the meta group), then restart it",
            Fault::KillLeader => "kill -9 the node leading the most shard groups, then restart it",
            Fault::KillMetaLeader => "kill -9 the meta group's leader, then restart it",
            Fault::TermLeader => "SIGTERM the node leading the most shard groups (it drains), then restart it",
            Fault::PauseLeader => "SIGSTOP the node leading the most shard groups past the election timeout, then SIGCONT",
            Fault::BlackholePeer => "drop every packet between the target and one other member",
            Fault::PartitionOne => "cut the target off from every other member",
            Fault::PartitionHalves => "split the members into a minority (with the target) and a majority",
            Fault::PartitionBridge => "cut the target from one member but not the other: the third sees both",
            Fault::OneWay => "the target hears no other member but can still send to them",
            Fault::DelayPeers => "delay each Raft message to and from the target by --delay plus up to --jitter (default 200ms + 50ms), in its canond's transport (canond --drill-faults)",
            Fault::LossPeers => "lose --loss percent (default 20) of the Raft messages to and from the target, in its canond's transport (canond --drill-faults)",
            Fault::ReplaceMember => "kill -9 a follower and wipe its data dir; heal: remove it, let it join afresh (same id and address), wait until it is a caught-up voter",
            Fault::ClockSkew => "restart the node leading the most shard groups under libfaketime, its clock off by --skew (default +90s); heal: restart it without",
            Fault::DiskFull => "move a follower's data dir onto a small tmpfs and fill it: its log must name the full disk; heal: its data back on disk, restarted",
            Fault::None => "no fault: the load and the checks only",
        }
    }

    pub fn mechanism(self) -> Mechanism {
        match self {
            Fault::KillFollower
            | Fault::KillLeader
            | Fault::KillMetaLeader
            | Fault::TermLeader
            | Fault::PauseLeader => Mechanism::Process,
            Fault::ReplaceMember | Fault::ClockSkew | Fault::DiskFull => Mechanism::Environment,
            Fault::None => Mechanism::Nothing,
            _ => Mechanism::Network,
        }
    }

    /// The target a fault takes when none is given.
    pub fn default_target(self) -> Target {
        match self {
            Fault::KillFollower | Fault::ReplaceMember | Fault::DiskFull => Target::Follower,
            Fault::KillMetaLeader => Target::MetaLeader,
            Fault::KillLeader | Fault::TermLeader | Fault::PauseLeader | Fault::ClockSkew => {
                Target::Leader
            }
            _ => Target::Random,
        }
    }

    pub fn parse(name: &str) -> Result<Fault, String> {
        Fault::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
                format!("no fault {name:?}; the faults: {}", names.join(", "))
            })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whom a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Follower,
    Leader,
    MetaLeader,
    Node(u64),
    Random,
}

impl Target {
    pub fn parse(s: &str) -> Result<Target, String> {
        Ok(match s {
            "follower" => Target::Follower,
            "leader" => Target::Leader,
            "meta-leader" => Target::MetaLeader,
            "random" => Target::Random,
            other => match other.strip_prefix("node=").map(str::parse) {
                Some(Ok(n)) if n > 0 => Target::Node(n),
                _ => {
                    return Err(format!(
                        "bad target {other:?}: follower, leader, meta-leader, node=N or random"
                    ))
                }
            },
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Follower => f.write_str("follower"),
            Target::Leader => f.write_str("leader"),
            Target::MetaLeader => f.write_str("meta-leader"),
            Target::Node(n) => write!(f, "node={n}"),
            Target::Random => f.write_str("random"),
        }
    }
}

/// Who leads what when the fault is planned.
#[derive(Debug, Clone, Default)]
pub struct Roles {
    /// Every member, ascending.
    pub members: Vec<u64>,
    /// Group → its leader (groups without one are absent).
    pub leaders: BTreeMap<u64, u64>,
    /// How many voters each shard keeps (a removal must leave that many
    /// members).
    pub replicas: usize,
}

impl Roles {
    /// The groups `node` leads.
    pub fn led_by(&self, node: u64) -> Vec<u64> {
        self.leaders
            .iter()
            .filter(|(_, l)| **l == node)
            .map(|(g, _)| *g)
            .collect()
    }

    /// A member's role, for the report (`leader of groups [0, 2]`).
    pub fn role_of(&self, node: u64) -> String {
        match self.led_by(node) {
            led if led.is_empty() => "follower".into(),
            led => format!("leader of groups {led:?}"),
        }
    }

    /// The node `target` names; `pick` draws for `random`.
    pub fn resolve(
        &self,
        target: Target,
        pick: &mut dyn FnMut(usize) -> usize,
    ) -> Result<u64, String> {
        let shard_leads = |n: &u64| {
            self.leaders
                .iter()
                .filter(|(g, l)| **g != 0 && *l == n)
                .count()
        };
        match target {
            Target::Node(n) if self.members.contains(&n) => Ok(n),
            Target::Node(n) => Err(format!("node {n} is not a member")),
            Target::MetaLeader => self
                .leaders
                .get(&0)
                .copied()
                .ok_or_else(|| "the meta group has no leader now".to_string()),
            Target::Leader => self
                .members
                .iter()
                .filter(|n| shard_leads(n) > 0)
                .max_by_key(|n| (shard_leads(n), std::cmp::Reverse(**n)))
                .copied()
                .ok_or_else(|| "no shard group has a leader now".to_string()),
            // With many groups every member may lead some: the follower is
            // the member leading the fewest, never the meta group's leader
            // while another will do.
            Target::Follower => self
                .members
                .iter()
                .min_by_key(|n| {
                    (
                        self.led_by(**n).len(),
                        self.leaders.get(&0) == Some(*n),
                        **n,
                    )
                })
                .copied()
                .ok_or_else(|| "no members".to_string()),
            Target::Random if self.members.is_empty() => Err("no members".into()),
            Target::Random => Ok(self.members[pick(self.members.len()) % self.members.len()]),
        }
    }
}

/// The most members a fault may take away from a cluster of `members`
/// without losing a quorum.
pub fn blast_radius_max(members: usize) -> usize {
    members.saturating_sub(1) / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles() -> Roles {
        Roles {
            members: vec![1, 2, 3, 4, 5],
            leaders: [(0, 2), (1, 3), (2, 3), (3, 1)].into_iter().collect(),
            replicas: 3,
        }
    }

    #[test]
    fn every_fault_has_a_name_that_parses_back_and_a_line() {
        for f in Fault::ALL {
            assert_eq!(Fault::parse(f.name()).unwrap(), f);
            assert!(!f.describe().is_empty());
        }
        assert!(Fault::parse("kill-everyone")
            .unwrap_err()
            .contains("kill-leader"));
    }

    #[test]
    fn targets_resolve_against_the_roles_of_the_moment() {
        let r = roles();
        let mut never = |_: usize| unreachable!();
        assert_eq!(r.resolve(Target::MetaLeader, &mut never).unwrap(), 2);
        assert_eq!(
            r.resolve(Target::Leader, &mut never).unwrap(),
            3,
            "leads two shards"
        );
        assert_eq!(r.resolve(Target::Follower, &mut never).unwrap(), 4);
        assert_eq!(r.resolve(Target::Node(5), &mut never).unwrap(), 5);
        assert!(r.resolve(Target::Node(9), &mut never).is_err());
        assert_eq!(r.resolve(Target::Random, &mut |n| n - 1).unwrap(), 5);
        assert_eq!(r.role_of(3), "leader of groups [1, 2]");
        assert_eq!(r.role_of(5), "follower");
        let busy = Roles {
            members: vec![1, 2, 3],
            leaders: [(0, 1), (1, 1), (2, 2), (3, 3)].into_iter().collect(),
            replicas: 3,
        };
        assert_eq!(
            busy.resolve(Target::Follower, &mut never).unwrap(),
            2,
            "leads fewest, not meta"
        );
        let leaderless = Roles {
            members: vec![1, 2, 3],
            leaders: BTreeMap::new(),
            replicas: 3,
        };
        assert!(leaderless.resolve(Target::MetaLeader, &mut never).is_err());
        for s in ["follower", "leader", "meta-leader", "random", "node=3"] {
            assert_eq!(Target::parse(s).unwrap().to_string(), s);
        }
        assert!(Target::parse("node=0").is_err());
    }

    #[test]
    fn the_blast_radius_keeps_a_quorum() {
        assert_eq!(blast_radius_max(1), 0);
        assert_eq!(blast_radius_max(3), 1);
        assert_eq!(blast_radius_max(4), 1);
        assert_eq!(blast_radius_max(5), 2);
    }
}
