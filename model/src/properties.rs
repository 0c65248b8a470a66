//! A process's properties (`canon property ALIAS NAME on|off`): how Canon
//! treats the process, apart from what it declares. Kept in the process
//! record, so they are replicated and survive a change of leader.
//!
//! - `enforcement` (on by default): off, drift is still found, recorded
//!   and alerted each tick, but not healed (detect-only). Suspend is
//!   different: it stops ticks altogether.
//! - `lock` (off by default): on, the process refuses update and kill
//!   until it is unlocked.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Every property of one process. Records written before properties
/// existed read as the defaults (enforced, unlocked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessProperties {
    /// Drift is healed (true) or only detected, recorded and alerted.
    pub enforcement: bool,
    /// Update and kill are refused while set.
    pub locked: bool,
}

impl Default for ProcessProperties {
    fn default() -> Self {
        ProcessProperties {
            enforcement: true,
            locked: false,
        }
    }
}

impl ProcessProperties {
    /// These properties with `change` made.
    pub fn with(self, change: ProcessProperty) -> Self {
        match change {
            ProcessProperty::Enforcement(on) => ProcessProperties {
                enforcement: on,
                ..self
            },
            ProcessProperty::Lock(on) => ProcessProperties { locked: on, ..self },
        }
    }
}

impl fmt::Display for ProcessProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, {}",
            ProcessProperty::Enforcement(self.enforcement),
            ProcessProperty::Lock(self.locked)
        )
    }
}

/// One property set to a value: what `canon property` sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProcessProperty {
    Enforcement(bool),
    Lock(bool),
}

impl ProcessProperty {
    /// The property's name, as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            ProcessProperty::Enforcement(_) => "enforcement",
            ProcessProperty::Lock(_) => "lock",
        }
    }

    /// The value it is set to.
    pub fn is_on(self) -> bool {
        match self {
            ProcessProperty::Enforcement(on) | ProcessProperty::Lock(on) => on,
        }
    }

    /// `name` set to `on`; an error naming the properties for a name that
    /// is none of them.
    pub fn named(name: &str, on: bool) -> Result<Self, UnknownProperty> {
        match name {
            "enforcement" => Ok(ProcessProperty::Enforcement(on)),
            "lock" => Ok(ProcessProperty::Lock(on)),
            other => Err(UnknownProperty(other.to_string())),
        }
    }
}

impl fmt::Display for ProcessProperty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = if self.is_on() { "on" } else { "off" };
        write!(f, "{} {value}", self.name())
    }
}

/// A property name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown property {0:?}: the properties are enforcement and lock")]
pub struct UnknownProperty(pub String);

/// `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch(pub bool);

/// A word that is neither `on` nor `off`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not on or off")]
pub struct NotASwitch(pub String);

impl FromStr for Switch {
    type Err = NotASwitch;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "on" => Ok(Switch(true)),
            "off" => Ok(Switch(false)),
            other => Err(NotASwitch(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_without_properties_is_enforced_and_unlocked() {
        let p: ProcessProperties = serde_json::from_str("{}").unwrap();
        assert_eq!(p, ProcessProperties::default());
        assert!(p.enforcement && !p.locked);
    }

    #[test]
    fn each_change_sets_its_own_property_only() {
        let p = ProcessProperties::default().with(ProcessProperty::Lock(true));
        assert!(p.locked && p.enforcement);
        let p = p.with(ProcessProperty::Enforcement(false));
        assert!(p.locked && !p.enforcement);
        assert_eq!(p.to_string(), "enforcement off, lock on");
    }

    #[test]
    fn names_and_switches_parse_or_say_what_is_wrong() {
        assert_eq!(
            ProcessProperty::named("lock", true),
            Ok(ProcessProperty::Lock(true))
        );
        let e = ProcessProperty::named("locked", true).unwrap_err();
        assert!(e.to_string().contains("enforcement and lock"), "{e}");
        assert_eq!("off".parse::<Switch>(), Ok(Switch(false)));
        assert!("yes".parse::<Switch>().is_err());
    }
}
