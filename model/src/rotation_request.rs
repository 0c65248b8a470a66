//! A user's request to rotate a process's instances now (`canon fleet
//! rotate`), whatever their age: replicated in the process record, so a new
//! leader carries on with it, and read by the planner as intent beside the
//! observation.
//!
//! The request names a time `before` (the command's own time, which the
//! state machine takes from the log entry, so every replica agrees) and a
//! scope. Every instance in scope launched before that time is due for
//! replacement with the reason "requested" (`rotation::Reason::Requested`),
//! rationed by its fleet's `maxSurge` / `maxUnavailable` like a rotation for
//! age. The request is done once no instance in scope launched before its
//! time is bound any more (`Plan::rotating` is empty): the scheduler then
//! clears it. Launch times are compared to the second (AWS reports them to
//! the second), so an instance launched in the same second as the request is
//! not replaced by it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{DesiredState, FleetMember, LogicalId, Spec, UnixMillis};

/// Which instances of a process a rotation request covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RotationScope {
    /// Every fleet member (the default of `canon fleet rotate`).
    Fleets,
    /// The members of the fleet of this name (`--fleet NAME`).
    Fleet(String),
    /// Every instance of the process, members of a fleet or not (`--all`).
    All,
}

impl RotationScope {
    /// Whether an instance declared with `fleet` (None: not a member) is
    /// in scope.
    pub fn covers(&self, fleet: Option<&FleetMember>) -> bool {
        match (self, fleet) {
            (RotationScope::All, _) => true,
            (RotationScope::Fleets, Some(_)) => true,
            (RotationScope::Fleet(name), Some(fm)) => fm.fleet == *name,
            (_, None) => false,
        }
    }
}

impl RotationScope {
    /// Whether every instance `other` covers, this covers too.
    pub fn includes(&self, other: &RotationScope) -> bool {
        match (self, other) {
            (RotationScope::All, _) => true,
            (RotationScope::Fleets, RotationScope::Fleets | RotationScope::Fleet(_)) => true,
            (RotationScope::Fleet(a), RotationScope::Fleet(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Display for RotationScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RotationScope::Fleets => f.write_str("every fleet member"),
            RotationScope::Fleet(name) => write!(f, "the members of fleet {name}"),
            RotationScope::All => f.write_str("every instance"),
        }
    }
}

/// Replace every instance in `scope` launched before `before`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RotationRequest {
    /// The request's time (milliseconds since the Unix epoch): the time of
    /// the command that made it.
    pub before: UnixMillis,
    pub scope: RotationScope,
}

impl RotationRequest {
    /// Whether an instance declared with `fleet` and launched at
    /// `launched_at` must be replaced for this request: it is in scope and
    /// was launched in an earlier second than the request.
    pub fn covers(&self, fleet: Option<&FleetMember>, launched_at: UnixMillis) -> bool {
        self.scope.covers(fleet) && launched_at / 1000 < self.before / 1000
    }
}

/// The outstanding requests once `new` joins `requests`: those `new`
/// covers entirely (a scope it includes, an earlier time) give way to it.
pub fn add_request(requests: &mut Vec<RotationRequest>, new: RotationRequest) {
    requests.retain(|r| !(new.scope.includes(&r.scope) && new.before >= r.before));
    requests.push(new);
}

impl fmt::Display for RotationRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} launched before {} ms", self.scope, self.before)
    }
}

/// How many rolling steps replacing the declared instances `rotating`
/// takes once their fleets are steady: each fleet replaces `maxSurge` of
/// its members at a time (`maxUnavailable` without a surge), fleets side
/// by side; instances outside a fleet all go in the first step. (A step
/// is one launch-and-wait-until-ready; what the cloud does meanwhile, a
/// failed check or another rotation, can add steps.)
pub fn rollout_steps(desired: &DesiredState, rotating: &[LogicalId]) -> u32 {
    let mut per_fleet: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    let mut lone = 0;
    for l in rotating {
        let Some(Spec::Instance(i)) = desired.resources.get(l).map(|r| &r.spec) else {
            continue;
        };
        match &i.fleet {
            Some(fm) => {
                let width = if fm.max_surge > 0 {
                    fm.max_surge
                } else {
                    fm.max_unavailable
                };
                per_fleet
                    .entry(fm.fleet.as_str())
                    .or_insert((0, width.max(1)))
                    .0 += 1;
            }
            None => lone = 1,
        }
    }
    per_fleet
        .values()
        .map(|(n, width)| n.div_ceil(*width))
        .chain([lone])
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HealthCheck;

    fn member(fleet: &str) -> FleetMember {
        FleetMember {
            fleet: fleet.into(),
            index: 0,
            count: 2,
            max_surge: 1,
            max_unavailable: 0,
            health_check: HealthCheck::Ec2Status,
            health_grace_secs: 300,
        }
    }

    #[test]
    fn the_scope_says_which_instances_are_covered() {
        let (web, db) = (member("web"), member("db"));
        assert!(RotationScope::Fleets.covers(Some(&web)));
        assert!(!RotationScope::Fleets.covers(None));
        assert!(RotationScope::Fleet("web".into()).covers(Some(&web)));
        assert!(!RotationScope::Fleet("web".into()).covers(Some(&db)));
        assert!(!RotationScope::Fleet("web".into()).covers(None));
        assert!(RotationScope::All.covers(None));
        assert!(RotationScope::All.covers(Some(&db)));
    }

    #[test]
    fn a_request_replaces_the_ones_it_covers_entirely() {
        let at = |before, scope| RotationRequest { before, scope };
        let web = || RotationScope::Fleet("web".into());
        let mut rs = vec![at(1_000, web())];
        add_request(&mut rs, at(2_000, RotationScope::Fleet("db".into())));
        assert_eq!(rs.len(), 2, "another fleet's request is kept");
        add_request(&mut rs, at(3_000, web()));
        assert_eq!(rs.len(), 2, "the later one of the same fleet replaces it");
        add_request(&mut rs, at(500, RotationScope::All));
        assert_eq!(rs.len(), 3, "an earlier time covers less");
        add_request(&mut rs, at(4_000, RotationScope::Fleets));
        assert_eq!(
            rs,
            [
                at(500, RotationScope::All),
                at(4_000, RotationScope::Fleets)
            ]
        );
    }

    #[test]
    fn only_instances_launched_in_an_earlier_second_are_covered() {
        let r = RotationRequest {
            before: 10_500,
            scope: RotationScope::All,
        };
        assert!(r.covers(None, 9_999));
        assert!(!r.covers(None, 10_000), "the same second as the request");
        assert!(!r.covers(None, 11_000));
    }
}
