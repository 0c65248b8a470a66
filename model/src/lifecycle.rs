//! What the cloud says about a machine beyond its properties: when it was
//! launched, which state it is in and how its status checks stand. The
//! planner reads it to replace instances that are too old, stopped or
//! impaired (`rotation`), and to keep an old instance serving until its
//! replacement is ready.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::{Fid, UnixMillis};

/// An instance's lifecycle as one observation saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceLife {
    /// When the instance was launched (milliseconds since the Unix epoch).
    pub launched_at: UnixMillis,
    pub state: InstanceState,
    pub health: Health,
    /// Where the conductor reaches it for a `Tcp` health check: its
    /// public address if it has one, else its private one (None where the
    /// cloud does not say, as SimCloud, which models the connect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
}

/// The states an observed instance can be in (shutting-down and
/// terminated instances are gone as far as Canon is concerned).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    Pending,
    Running,
    Stopping,
    Stopped,
}

/// The instance's status checks (EC2's system and instance status, the
/// worse of the two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Health {
    /// The checks have not passed yet (a new instance).
    Initializing,
    Ok,
    Impaired,
    /// The cloud reports no checks (not running, or no data).
    Unknown,
}

/// What makes an instance one of a fleet's: the fleet's name (members of
/// one process with the same name form it), its place, and the fleet's
/// rollout rules. Declared only.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FleetMember {
    pub fleet: String,
    /// Its place in the fleet, from 0: its rotations are staggered by it.
    pub index: u32,
    pub count: u32,
    /// How many instances may exist beyond `count` while some are replaced.
    pub max_surge: u32,
    /// How many of `count` may be unready while some are replaced.
    pub max_unavailable: u32,
    pub health_check: HealthCheck,
    /// How long a new instance has to pass its checks (seconds); one that
    /// has not is replaced, the old one kept.
    pub health_grace_secs: u64,
}

/// When a fleet's new instance is ready to take over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum HealthCheck {
    /// Running, and EC2's status checks pass.
    Ec2Status,
    /// Running.
    None,
    /// Running, not impaired, and the conductor's TCP connect to `port`
    /// succeeds (`rotation`: the probe judges a replacement only, never an
    /// established instance, which the conductor's own network may fail
    /// to reach).
    Tcp { port: u16 },
}

impl FleetMember {
    /// The first time after `launched_at` at which an instance of this
    /// member, living at most `max_ms`, rotates. Member `index` of `count`
    /// rotates at the times `index * max_ms / count` past its fleet's
    /// phase (`fleet_phase_ms`, see [`FleetMember::phase_ms`]) in each
    /// period of `max_ms` from the Unix epoch: the fleet's rotations are
    /// spread evenly, never all in one tick, and no instance lives longer
    /// than `max_ms`.
    pub fn next_rotation(
        &self,
        launched_at: UnixMillis,
        max_ms: u64,
        fleet_phase_ms: u64,
    ) -> UnixMillis {
        let max = i128::from(max_ms.max(1));
        let spread = max * i128::from(self.index) / i128::from(self.count.max(1));
        let phase = (i128::from(fleet_phase_ms) + spread).rem_euclid(max);
        let period = (i128::from(launched_at) - phase).div_euclid(max);
        u64::try_from((period + 1) * max + phase).unwrap_or(u64::MAX)
    }

    /// Where in each period of `max_ms` the fleet of process `fid` starts
    /// its members' rotations: a hash of the process and the fleet's name
    /// (FNV-1a, the same on every node and release), so that a thousand
    /// fleets with one `maxAge` and `count` do not replace their member
    /// 0 all at the same instant, then all their member 1, and so on.
    pub fn phase_ms(&self, fid: Fid, max_ms: u64) -> u64 {
        const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const FNV_PRIME: u64 = 0x0100_0000_01b3;
        let bytes = fid.0.as_bytes().iter().chain(self.fleet.as_bytes());
        let hash = bytes.fold(FNV_OFFSET, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(FNV_PRIME)
        });
        hash % max_ms.max(1)
    }
}

/// When an instance of process `fid` declared with `max_age_secs` (and,
/// in a fleet, its member's place) and launched at `launched_at` is next
/// due for rotation; None without a `maxAge`. What the planner rotates
/// by, and what `canon status` shows.
pub fn next_rotation(
    max_age_secs: Option<u64>,
    fleet: Option<&FleetMember>,
    launched_at: UnixMillis,
    fid: Fid,
) -> Option<UnixMillis> {
    let max_ms = max_age_secs?.saturating_mul(1000);
    Some(match fleet {
        Some(fm) => fm.next_rotation(launched_at, max_ms, fm.phase_ms(fid, max_ms)),
        None => launched_at.saturating_add(max_ms),
    })
}

impl Health {
    /// The worse of two checks' results, as EC2 names them (`ok`,
    /// `impaired`, `initializing`, `insufficient-data`, `not-applicable`).
    pub fn of_checks(system: &str, instance: &str) -> Health {
        let one = |s: &str| match s {
            "ok" => Health::Ok,
            "impaired" => Health::Impaired,
            "initializing" => Health::Initializing,
            _ => Health::Unknown,
        };
        match (one(system), one(instance)) {
            (Health::Impaired, _) | (_, Health::Impaired) => Health::Impaired,
            (Health::Initializing, _) | (_, Health::Initializing) => Health::Initializing,
            (Health::Ok, Health::Ok) => Health::Ok,
            _ => Health::Unknown,
        }
    }
}

impl InstanceLife {
    /// Whether it can serve: running, and its checks have not failed.
    pub fn serving(&self) -> bool {
        self.state == InstanceState::Running && self.health != Health::Impaired
    }

    /// Whether it is ready to take over from the instance it replaces:
    /// running, and its checks passed (or the cloud reports none).
    pub fn ready(&self) -> bool {
        self.ready_by(HealthCheck::Ec2Status)
    }

    /// [`InstanceLife::ready`] by a fleet's health check, as far as the
    /// cloud says: for `Tcp`, running and not impaired (the connect is the
    /// conductor's, which `rotation` adds).
    pub fn ready_by(&self, check: HealthCheck) -> bool {
        self.state == InstanceState::Running
            && match check {
                HealthCheck::None => true,
                HealthCheck::Tcp { .. } => self.health != Health::Impaired,
                HealthCheck::Ec2Status => matches!(self.health, Health::Ok | Health::Unknown),
            }
    }

    /// How long it has lived at `now` (zero if `now` is before its launch).
    pub fn age_ms(&self, now: UnixMillis) -> u64 {
        now.saturating_sub(self.launched_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(index: u32, count: u32) -> FleetMember {
        FleetMember {
            fleet: "web".into(),
            index,
            count,
            max_surge: 1,
            max_unavailable: 0,
            health_check: HealthCheck::Ec2Status,
            health_grace_secs: 300,
        }
    }

    #[test]
    fn a_fleet_born_at_once_rotates_spread_out_and_none_lives_longer_than_max() {
        let max = 60_000;
        let born = 1_000_000;
        for phase in [0, 7_919, max - 1] {
            let mut firsts: Vec<u64> = (0..4)
                .map(|i| member(i, 4).next_rotation(born, max, phase))
                .collect();
            firsts.sort();
            for w in firsts.windows(2) {
                assert_eq!(w[1] - w[0], max / 4, "{firsts:?}");
            }
            for i in 0..4 {
                let m = member(i, 4);
                let next = m.next_rotation(born, max, phase);
                assert!(next > born && next - born <= max);
                assert_eq!(m.next_rotation(next - 1, max, phase), next);
                assert_eq!(m.next_rotation(next, max, phase), next + max);
            }
        }
    }

    #[test]
    fn a_thousand_fleets_with_one_max_age_do_not_rotate_in_step() {
        // 1,000 fleets of 10, maxAge 1 h, all born at once: each member 0
        // rotates within the hour, at times spread over it rather than all
        // in one instant (which would be 1,000 launches at once, every
        // 6 minutes).
        let max = 3_600_000;
        let born = 1_700_000_000_000;
        let m = member(0, 10);
        let mut per_second: std::collections::BTreeMap<u64, u32> = Default::default();
        for i in 0..1000u128 {
            let fid = Fid(uuid::Uuid::from_u128(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)));
            let next = next_rotation(Some(3600), Some(&m), born, fid).unwrap();
            assert!(next > born && next - born <= max);
            *per_second.entry(next / 1000).or_default() += 1;
        }
        // As 1,000 uniform draws over 3,600 seconds fall: about 870
        // distinct seconds, a handful at most in any one.
        let busiest = per_second.values().max().copied().unwrap_or(0);
        assert!(busiest <= 8, "{busiest} fleets in one second");
        assert!(
            per_second.len() > 800,
            "{} distinct seconds",
            per_second.len()
        );
        // A fleet has one phase: its members share it.
        let fid = Fid(uuid::Uuid::from_u128(42));
        assert_eq!(m.phase_ms(fid, max), member(3, 10).phase_ms(fid, max));
    }

    #[test]
    fn the_worse_check_wins() {
        assert_eq!(Health::of_checks("ok", "ok"), Health::Ok);
        assert_eq!(Health::of_checks("ok", "impaired"), Health::Impaired);
        assert_eq!(
            Health::of_checks("initializing", "ok"),
            Health::Initializing
        );
        assert_eq!(
            Health::of_checks("impaired", "initializing"),
            Health::Impaired
        );
        assert_eq!(
            Health::of_checks("insufficient-data", "ok"),
            Health::Unknown
        );
    }

    #[test]
    fn only_a_running_instance_with_passing_checks_is_ready() {
        let life = |state, health| InstanceLife {
            launched_at: 0,
            state,
            health,
            address: None,
        };
        assert!(life(InstanceState::Running, Health::Ok).ready());
        assert!(life(InstanceState::Running, Health::Unknown).ready());
        assert!(!life(InstanceState::Running, Health::Initializing).ready());
        assert!(life(InstanceState::Running, Health::Initializing).serving());
        assert!(!life(InstanceState::Running, Health::Impaired).serving());
        assert!(!life(InstanceState::Pending, Health::Unknown).ready());
        assert!(!life(InstanceState::Stopped, Health::Unknown).serving());
        let tcp = HealthCheck::Tcp { port: 8080 };
        assert!(life(InstanceState::Running, Health::Initializing).ready_by(tcp));
        assert!(!life(InstanceState::Running, Health::Impaired).ready_by(tcp));
        assert!(!life(InstanceState::Pending, Health::Unknown).ready_by(tcp));
    }
}
