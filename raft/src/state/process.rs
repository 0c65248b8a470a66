//! The rules of a process's life: created (claiming its alias in its
//! shard), updated, moved between states, deleted once killed. Called by
//! [`CanonState::apply`](super::CanonState::apply) for the `Process*`
//! commands.

use std::collections::BTreeMap;

use canon_model::{Fid, ProcessState, UnixMillis};

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
        self.processes.insert(
            fid,
            ProcessRecord {
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
            },
        );
        Ok(())
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
        p.composition = composition.clone();
        if tick_interval_ms.is_some() {
            p.tick_interval_ms = tick_interval_ms;
        }
        p.generation += 1;
        p.updated_at = at;
        Ok(())
    }

    /// `ProcessStateChanged`: Running ⇄ Suspended, either → Killing,
    /// Killing → Running, Killing → Killed once it owns no bindings (which
    /// frees its alias).
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
        );
        if !allowed {
            return Err(Rejection::BadTransition { fid, from, to });
        }
        if to == Killed && !p.bindings.is_empty() {
            return Err(Rejection::StillOwns {
                fid,
                bindings: p.bindings.len(),
            });
        }
        p.state = to;
        p.updated_at = at;
        if to == Killed {
            let alias = p.alias.clone();
            if self.aliases.get(&alias) == Some(&fid) {
                self.aliases.remove(&alias);
            }
        }
        Ok(())
    }

    /// `ProcessDeleted`: forgets a killed process and its history.
    pub(super) fn delete_process(&mut self, fid: Fid) -> Result<(), Rejection> {
        let p = self.get(&fid)?;
        if p.state != ProcessState::Killed {
            return Err(Rejection::NotKilled {
                fid,
                state: p.state,
            });
        }
        self.processes.remove(&fid);
        Ok(())
    }
}
