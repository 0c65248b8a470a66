//! The rules of a process's life: created (claiming its alias in its
//! shard), updated, moved between states, deleted once killed. Called by
//! [`CanonState::apply`](super::CanonState::apply) for the `Process*`
//! commands.

use std::collections::BTreeMap;

use canon_model::rotation_request::add_request;
use canon_model::{
    Fid, LogicalId, ProcessProperty, ProcessState, ReplacedInstance, ReplacementRecord,
    RolloutFailure, RotationRequest, RotationScope, UnixMillis,
};

use super::{CanonState, ProcessRecord};
use crate::command::{Composition, Rejection};
use crate::shard::{shard_of, shard_of_group};

impl CanonState {
    /// `ProcessCreated`: a new process in its alias's shard; the alias must
    /// not name a live process.
    pub(super) fn create_process(
        &mut self,
        at: UnixMillis,
        fid: Fid,
        alias: &str,
        account: &str,
        composition: &Composition,
        tick_interval_ms: Option<u64>,
    ) -> Result<(), Rejection> {
        if let Some(own) = shard_of_group(self.group) {
            let expected = shard_of(alias, self.shard_count);
            if expected != own {
                return Err(Rejection::WrongShard {
                    alias: alias.to_string(),
                    expected,
                });
            }
        }
        if self.processes.contains_key(&fid) {
            return Err(Rejection::ProcessExists(fid));
        }
        if let Some(by) = self.aliases.get(alias) {
            return Err(Rejection::AliasTaken {
                alias: alias.to_string(),
                by: *by,
            });
        }
        self.aliases.insert(alias.to_string(), fid);
        self.by_alias.insert(alias, fid);
        self.processes.insert(
            fid,
            std::sync::Arc::new(ProcessRecord {
                fid,
                alias: alias.to_string(),
                account: account.to_string(),
                state: ProcessState::Running,
                composition: composition.clone(),
                generation: 1,
                created_at: at,
                updated_at: at,
                jobs: BTreeMap::new(),
                bindings: BTreeMap::new(),
                drift: BTreeMap::new(),
                tick_interval_ms,
                folded: Default::default(),
                properties: Default::default(),
                suspected: None,
                suspected_by: None,
                rotations: Vec::new(),
                replacements: BTreeMap::new(),
                rollout_failures: BTreeMap::new(),
                imports: BTreeMap::new(),
                passes: Some(0),
                open_pass: None,
            }),
        );
        Ok(())
    }

    /// The imports of a process `ProcessCreated` just made.
    pub(super) fn record_imports(&mut self, fid: Fid, imports: &BTreeMap<LogicalId, String>) {
        if let Some(p) = self.processes.get_mut(&fid).map(std::sync::Arc::make_mut) {
            p.imports = imports.clone();
        }
    }

    /// `ProcessUpdated`: a live process gets a new composition (and a new
    /// tick interval when one is given).
    pub(super) fn update_process(
        &mut self,
        at: UnixMillis,
        fid: Fid,
        composition: &Composition,
        tick_interval_ms: Option<u64>,
    ) -> Result<(), Rejection> {
        let p = self.live_mut(&fid)?;
        if p.state == ProcessState::Releasing {
            return Err(Rejection::NotLive {
                fid,
                state: p.state,
            });
        }
        refuse_if_locked(p, "update")?;
        p.composition = composition.clone();
        // A new declaration unparks its fleets.
        p.rollout_failures.clear();
        if tick_interval_ms.is_some() {
            p.tick_interval_ms = tick_interval_ms;
        }
        p.generation += 1;
        p.updated_at = at;
        Ok(())
    }

    /// `ProcessStateChanged`: Running ⇄ Suspended, either → Killing
    /// (unless locked), Killing → Running, Killing → Killed once it owns no
    /// bindings; Running or Suspended → Releasing (with no RUN, UPDATE or
    /// KILL job in progress), Releasing → Released once it owns no
    /// bindings. Killed and Released free the alias.
    pub(super) fn change_state(
        &mut self,
        at: UnixMillis,
        fid: Fid,
        to: ProcessState,
    ) -> Result<(), Rejection> {
        use ProcessState::*;
        let p = self.get_mut(&fid)?;
        let from = p.state;
        let allowed = matches!(
            (from, to),
            (Running, Suspended)
                | (Suspended, Running)
                | (Running, Killing)
                | (Suspended, Killing)
                | (Killing, Running)
                | (Killing, Killed)
                | (Running, Releasing)
                | (Suspended, Releasing)
                | (Releasing, Released)
        );
        if !allowed {
            return Err(Rejection::BadTransition { fid, from, to });
        }
        if to == Killing {
            refuse_if_locked(p, "kill")?;
        }
        if to == Releasing {
            if let Some(busy) = p.busy_job() {
                return Err(Rejection::JobBusy { fid, busy });
            }
        }
        if matches!(to, Killed | Released) && !p.bindings.is_empty() {
            return Err(Rejection::StillOwns {
                fid,
                bindings: p.bindings.len(),
            });
        }
        p.state = to;
        p.updated_at = at;
        if !to.is_live() {
            let alias = p.alias.clone();
            if self.aliases.get(&alias) == Some(&fid) {
                self.aliases.remove(&alias);
            }
        }
        Ok(())
    }

    /// `ProcessPropertySet`: a live process's enforcement or lock changes.
    pub(super) fn set_property(
        &mut self,
        at: UnixMillis,
        fid: Fid,
        property: ProcessProperty,
    ) -> Result<(), Rejection> {
        let p = self.live_mut(&fid)?;
        p.properties = p.properties.with(property);
        p.updated_at = at;
        Ok(())
    }

    /// `RotationRequested`: a Running or Suspended process is asked to
    /// replace every instance in `scope` launched before `at`; requests
    /// this one covers entirely give way to it.
    pub(super) fn request_rotation(
        &mut self,
        at: UnixMillis,
        fid: Fid,
        scope: RotationScope,
    ) -> Result<(), Rejection> {
        let p = self.live_mut(&fid)?;
        if !matches!(p.state, ProcessState::Running | ProcessState::Suspended) {
            return Err(Rejection::NotLive {
                fid,
                state: p.state,
            });
        }
        add_request(&mut p.rotations, RotationRequest { before: at, scope });
        // Asking again unparks the fleets.
        p.rollout_failures.clear();
        p.updated_at = at;
        Ok(())
    }

    /// `RotationDone`: the requests made at or before `through` are done.
    pub(super) fn finish_rotation(
        &mut self,
        fid: Fid,
        through: UnixMillis,
    ) -> Result<(), Rejection> {
        let p = self.get_mut(&fid)?;
        p.rotations.retain(|r| r.before > through);
        Ok(())
    }

    /// `InstanceReplaced`: a row of the replacement history, unless the
    /// same cloud instance's replacement is recorded already.
    pub(super) fn record_replacement(
        &mut self,
        at: UnixMillis,
        fid: Fid,
        job: u64,
        replaced: &ReplacedInstance,
    ) -> Result<(), Rejection> {
        let p = self.get_mut(&fid)?;
        let known = p.replacements.values().any(|r| {
            r.replaced.resource == replaced.resource && r.replaced.cloud_id == replaced.cloud_id
        });
        if known {
            return Ok(());
        }
        let id = p
            .replacements
            .keys()
            .next_back()
            .map_or(at, |last| at.max(last + 1));
        p.replacements.insert(
            id,
            ReplacementRecord {
                id,
                job,
                at,
                replaced: replaced.clone(),
            },
        );
        Ok(())
    }

    /// `RolloutFailed`: one more failed replacement of `resource`, unless
    /// `cloud_id` is the one recorded last.
    pub(super) fn fail_rollout(
        &mut self,
        at: UnixMillis,
        fid: Fid,
        resource: LogicalId,
        cloud_id: &str,
        name: &str,
    ) -> Result<(), Rejection> {
        let p = self.get_mut(&fid)?;
        let f = p
            .rollout_failures
            .entry(resource)
            .or_insert_with(|| RolloutFailure {
                count: 0,
                last_at: at,
                cloud_id: String::new(),
                name: name.to_string(),
            });
        if f.cloud_id != cloud_id {
            f.count += 1;
            f.last_at = at;
            f.cloud_id = cloud_id.to_string();
        }
        Ok(())
    }

    /// `ProcessDeleted`: forgets a killed or released process and its
    /// history.
    pub(super) fn delete_process(&mut self, fid: Fid) -> Result<(), Rejection> {
        let p = self.get(&fid)?;
        if p.state.is_live() {
            return Err(Rejection::NotKilled {
                fid,
                state: p.state,
            });
        }
        if let Some(p) = self.processes.remove(&fid) {
            self.by_alias.remove(&p.alias, fid);
            // None: killed and released processes own no bindings.
            for b in p.bindings.values() {
                self.bound.unbind(&b.cloud_id, b.resource);
            }
        }
        Ok(())
    }
}

/// A locked process refuses `what` (update, kill).
fn refuse_if_locked(p: &ProcessRecord, what: &str) -> Result<(), Rejection> {
    if p.properties.locked {
        return Err(Rejection::Locked {
            alias: p.alias.clone(),
            refused: what.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use canon_model::ResourceKind;
    use canon_model::{Fid, JobKind, JobStatus, LogicalId, ProcessProperty, ProcessState};

    use super::super::tests::{create, finished, shard_state_for, started};
    use super::super::CanonState;
    use crate::command::{Command, Composition, Rejection, Request, Response};

    fn apply(s: &mut CanonState, at: u64, command: Command) -> Response {
        s.apply(&Request::new(at, command))
    }

    fn to(fid: Fid, state: ProcessState) -> Command {
        Command::ProcessStateChanged { fid, state }
    }

    fn set(fid: Fid, property: ProcessProperty) -> Command {
        Command::ProcessPropertySet { fid, property }
    }

    #[test]
    fn a_release_waits_for_the_job_in_progress_then_frees_the_alias_once_unbound() {
        let mut s = shard_state_for("p");
        let f = Fid::random();
        assert!(apply(&mut s, 1, create(f, "p")).is_applied());
        assert!(apply(&mut s, 2, started(f, 2, JobKind::Run)).is_applied());
        assert_eq!(
            apply(&mut s, 3, to(f, ProcessState::Releasing)),
            Response::Rejected(Rejection::JobBusy { fid: f, busy: 2 })
        );
        assert!(apply(&mut s, 4, finished(f, 2, JobStatus::Succeeded)).is_applied());
        let lid = LogicalId::new(f, "vpc");
        let bound = Command::BindingSet {
            resource: lid,
            kind: ResourceKind::Vpc,
            cloud_id: "vpc-1".into(),
            region: None,
            adopted: false,
        };
        assert!(apply(&mut s, 5, bound).is_applied());
        assert!(apply(&mut s, 6, to(f, ProcessState::Releasing)).is_applied());
        // Releasing: no kill, no suspend, no update.
        for state in [ProcessState::Killing, ProcessState::Suspended] {
            assert!(matches!(
                apply(&mut s, 7, to(f, state)),
                Response::Rejected(Rejection::BadTransition { .. })
            ));
        }
        let update = Command::ProcessUpdated {
            fid: f,
            composition: Composition {
                bytes: vec![],
                source_hash: "v2".into(),
            },
            tick_interval_ms: None,
        };
        assert!(matches!(
            apply(&mut s, 8, update),
            Response::Rejected(Rejection::NotLive { .. })
        ));
        assert_eq!(
            apply(&mut s, 9, to(f, ProcessState::Released)),
            Response::Rejected(Rejection::StillOwns {
                fid: f,
                bindings: 1
            })
        );
        assert!(apply(&mut s, 10, Command::BindingCleared { resource: lid }).is_applied());
        assert!(apply(&mut s, 11, to(f, ProcessState::Released)).is_applied());
        assert!(s.process_by_alias("p").is_none(), "the alias is free");
        assert!(apply(&mut s, 12, create(Fid::random(), "p")).is_applied());
        // Released is final, and may be forgotten like a killed process.
        assert!(!apply(&mut s, 13, to(f, ProcessState::Running)).is_applied());
        assert!(apply(&mut s, 14, Command::ProcessDeleted { fid: f }).is_applied());
    }

    #[test]
    fn a_gone_alias_still_names_its_newest_process_for_reads() {
        let mut s = shard_state_for("p");
        assert!(s.newest_gone_by_alias("p").is_none());
        let (first, second) = (Fid::random(), Fid::random());
        assert!(apply(&mut s, 1, create(first, "p")).is_applied());
        assert!(
            s.newest_gone_by_alias("p").is_none(),
            "a live process is not gone"
        );
        assert!(apply(&mut s, 2, to(first, ProcessState::Killing)).is_applied());
        assert!(apply(&mut s, 3, to(first, ProcessState::Killed)).is_applied());
        assert!(s.process_by_alias("p").is_none(), "the alias is free");
        assert_eq!(s.newest_gone_by_alias("p").map(|p| p.fid), Some(first));
        assert!(apply(&mut s, 4, create(second, "p")).is_applied());
        assert!(apply(&mut s, 5, to(second, ProcessState::Killing)).is_applied());
        assert!(apply(&mut s, 6, to(second, ProcessState::Killed)).is_applied());
        assert_eq!(
            s.newest_gone_by_alias("p").map(|p| p.fid),
            Some(second),
            "the newest of the two killed"
        );
        assert!(s.newest_gone_by_alias("q").is_none());
        assert!(apply(&mut s, 7, Command::ProcessDeleted { fid: second }).is_applied());
        assert_eq!(
            s.newest_gone_by_alias("p").map(|p| p.fid),
            Some(first),
            "once retention releases the newest, the one before"
        );
    }

    #[test]
    fn a_locked_process_refuses_update_and_kill_until_unlocked() {
        let mut s = shard_state_for("p");
        let f = Fid::random();
        assert!(apply(&mut s, 1, create(f, "p")).is_applied());
        assert!(apply(&mut s, 2, set(f, ProcessProperty::Lock(true))).is_applied());
        let update = |v: &str| Command::ProcessUpdated {
            fid: f,
            composition: Composition {
                bytes: vec![],
                source_hash: v.into(),
            },
            tick_interval_ms: None,
        };
        let locked = |refused: &str| {
            Response::Rejected(Rejection::Locked {
                alias: "p".into(),
                refused: refused.into(),
            })
        };
        assert_eq!(apply(&mut s, 3, update("v2")), locked("update"));
        assert_eq!(
            apply(&mut s, 4, to(f, ProcessState::Killing)),
            locked("kill")
        );
        let p = s.process(&f).unwrap();
        assert_eq!((p.generation, p.state), (1, ProcessState::Running));
        let shown = Rejection::Locked {
            alias: "p".into(),
            refused: "kill".into(),
        }
        .to_string();
        assert!(shown.contains("canon property p lock off"), "{shown}");
        // Suspend and resume are not refused; unlocked, both work again.
        assert!(apply(&mut s, 5, to(f, ProcessState::Suspended)).is_applied());
        assert!(apply(&mut s, 6, to(f, ProcessState::Running)).is_applied());
        assert!(apply(&mut s, 7, set(f, ProcessProperty::Lock(false))).is_applied());
        assert!(apply(&mut s, 8, update("v2")).is_applied());
        assert!(apply(&mut s, 9, to(f, ProcessState::Killing)).is_applied());
    }

    #[test]
    fn properties_are_kept_in_the_record_and_old_records_read_as_defaults() {
        let mut s = shard_state_for("p");
        let f = Fid::random();
        assert!(apply(&mut s, 1, create(f, "p")).is_applied());
        assert!(apply(&mut s, 2, set(f, ProcessProperty::Enforcement(false))).is_applied());
        let p = s.process(&f).unwrap().clone();
        assert!(!p.properties.enforcement && !p.properties.locked);
        // A record written before properties existed: enforced, unlocked.
        let mut old = serde_json::to_value(&p).unwrap();
        old.as_object_mut().unwrap().remove("properties");
        let read: super::super::ProcessRecord = serde_json::from_value(old).unwrap();
        assert!(read.properties.enforcement && !read.properties.locked);
        // Not on a process that is gone.
        let g = Fid::random();
        assert!(!apply(&mut s, 3, set(g, ProcessProperty::Lock(true))).is_applied());
    }

    #[test]
    fn a_rotation_request_is_timed_by_its_command_and_cleared_when_done() {
        use canon_model::{RotationRequest, RotationScope};
        let mut s = shard_state_for("p");
        let f = Fid::random();
        assert!(apply(&mut s, 1, create(f, "p")).is_applied());
        let ask = |scope| Command::RotationRequested { fid: f, scope };
        assert!(apply(&mut s, 10_000, ask(RotationScope::Fleets)).is_applied());
        assert!(apply(&mut s, 20_000, ask(RotationScope::All)).is_applied());
        let at = |before, scope| RotationRequest { before, scope };
        // The later request of every instance covers the earlier one.
        assert_eq!(
            s.process(&f).unwrap().rotations,
            [at(20_000, RotationScope::All)]
        );
        assert!(apply(&mut s, 30_000, ask(RotationScope::Fleets)).is_applied());
        // Done through 20 000: the request made later stays.
        let done = Command::RotationDone {
            fid: f,
            through: 20_000,
        };
        assert!(apply(&mut s, 31_000, done).is_applied());
        assert_eq!(
            s.process(&f).unwrap().rotations,
            [at(30_000, RotationScope::Fleets)]
        );
        // A process being killed cannot be asked to rotate.
        assert!(apply(&mut s, 32_000, to(f, ProcessState::Killing)).is_applied());
        assert!(!apply(&mut s, 33_000, ask(RotationScope::All)).is_applied());
    }

    #[test]
    fn an_instance_replacement_is_recorded_once() {
        use canon_model::{LogicalId, ReplaceReason, ReplacedInstance};
        let mut s = shard_state_for("p");
        let f = Fid::random();
        assert!(apply(&mut s, 1, create(f, "p")).is_applied());
        let replaced = |cloud_id: &str| Command::InstanceReplaced {
            fid: f,
            job: 7,
            replaced: ReplacedInstance {
                resource: LogicalId::new(f, "web.instances[0]"),
                cloud_id: cloud_id.into(),
                reason: ReplaceReason::Requested,
                detail: "rotation: launched 1m before the request, declared requested".into(),
            },
        };
        assert!(apply(&mut s, 100, replaced("i-1")).is_applied());
        // A pass that retries the launch records nothing more.
        assert!(apply(&mut s, 100, replaced("i-1")).is_applied());
        // The next replacement of the same member is a row of its own,
        // with an id of its own even at the same time.
        assert!(apply(&mut s, 100, replaced("i-2")).is_applied());
        let rows: Vec<(u64, &str)> = s
            .process(&f)
            .unwrap()
            .replacements
            .values()
            .map(|r| (r.id, r.replaced.cloud_id.as_str()))
            .collect();
        assert_eq!(rows, [(100, "i-1"), (101, "i-2")]);
    }

    #[test]
    fn failed_replacements_count_once_each_and_an_update_or_a_rotation_clears_them() {
        use canon_model::{LogicalId, RotationScope};
        let mut s = shard_state_for("p");
        let f = Fid::random();
        assert!(apply(&mut s, 1, create(f, "p")).is_applied());
        let member = LogicalId::new(f, "web.instances[0]");
        let failed = |cloud_id: &str| Command::RolloutFailed {
            fid: f,
            resource: member,
            cloud_id: cloud_id.into(),
            name: "web.instances[0]".into(),
        };
        let count = |s: &CanonState| {
            s.process(&f)
                .unwrap()
                .rollout_failures
                .get(&member)
                .map(|x| (x.count, x.last_at))
        };
        assert!(apply(&mut s, 10, failed("i-1")).is_applied());
        assert!(apply(&mut s, 11, failed("i-1")).is_applied());
        assert_eq!(count(&s), Some((1, 10)), "the same instance counts once");
        assert!(apply(&mut s, 20, failed("i-2")).is_applied());
        assert_eq!(count(&s), Some((2, 20)));
        let rotate = Command::RotationRequested {
            fid: f,
            scope: RotationScope::Fleets,
        };
        assert!(apply(&mut s, 30, rotate).is_applied());
        assert_eq!(count(&s), None, "a rotation request unparks");
        assert!(apply(&mut s, 40, failed("i-3")).is_applied());
        let update = Command::ProcessUpdated {
            fid: f,
            composition: Composition {
                bytes: vec![],
                source_hash: "v2".into(),
            },
            tick_interval_ms: None,
        };
        assert!(apply(&mut s, 50, update).is_applied());
        assert_eq!(count(&s), None, "a new declaration unparks");
        assert!(apply(&mut s, 60, failed("i-4")).is_applied());
        let recovered = Command::RolloutRecovered {
            fid: f,
            resource: member,
        };
        assert!(apply(&mut s, 70, recovered).is_applied());
        assert_eq!(count(&s), None);
    }
}
