//! What the cloud says about a machine beyond its properties: when it was
//! launched, which state it is in and how its status checks stand. The
//! planner reads it to replace instances that are too old, stopped or
//! impaired (`rotation`), and to keep an old instance serving until its
//! replacement is ready.

use serde::{Deserialize, Serialize};

use crate::UnixMillis;

/// An instance's lifecycle as one observation saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceLife {
    /// When the instance was launched (milliseconds since the Unix epoch).
    pub launched_at: UnixMillis,
    pub state: InstanceState,
    pub health: Health,
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
        self.state == InstanceState::Running && matches!(self.health, Health::Ok | Health::Unknown)
    }

    /// How long it has lived at `now` (zero if `now` is before its launch).
    pub fn age_ms(&self, now: UnixMillis) -> u64 {
        now.saturating_sub(self.launched_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        };
        assert!(life(InstanceState::Running, Health::Ok).ready());
        assert!(life(InstanceState::Running, Health::Unknown).ready());
        assert!(!life(InstanceState::Running, Health::Initializing).ready());
        assert!(life(InstanceState::Running, Health::Initializing).serving());
        assert!(!life(InstanceState::Running, Health::Impaired).serving());
        assert!(!life(InstanceState::Pending, Health::Unknown).ready());
        assert!(!life(InstanceState::Stopped, Health::Unknown).serving());
    }
}
