//! The organisation's validations at the door (issue #20 §4): storing and
//! dropping modules (`canon validation add|remove`, meta group, authorised
//! by `validation.add` / `validation.remove`), refusing a run or update
//! whose composition fails one (before anything is proposed, so nothing
//! changes), and the Validations read (`canon validation list|report`,
//! `validation.list`).

use canon_lang::validation::{check, Failure, ValidationSource};
use canon_proto::canon::api::v1 as pb;
use canon_raft::state::{CanonState, StoredValidation};
use canon_raft::{Command, CommandId, Composition, Consistency, Request, META_GROUP};
use canon_trust::Action;
use tonic::Status;

use super::grpc_status::{bad, node_status};
use super::intake::Caller;
use super::read_auth::Reader;
use super::Api;
use crate::validations::{failures, refusal, sources};

/// Longest module text a node stores (a policy, not a program).
const MAX_MODULE_BYTES: usize = 256 * 1024;

/// A live process as the report evaluates it.
struct Evaluated {
    alias: String,
    account: String,
    composition: Composition,
}

impl Api {
    /// `validation.add`: checks the module compiles and is a validation
    /// module, then stores it in the meta group.
    pub(super) async fn add_validation(
        &self,
        by: Caller<'_>,
        add: pb::ValidationAdd,
    ) -> Result<pb::CommandReply, Status> {
        valid_name(&add.name)?;
        if add.text.len() > MAX_MODULE_BYTES {
            return Err(bad(&format!(
                "the validation module is {} bytes; at most {MAX_MODULE_BYTES} are stored",
                add.text.len()
            )));
        }
        let decided = self
            .authorise(by.asker(), Action::ValidationAdd, None, None)
            .await?;
        let file = if add.file.is_empty() {
            format!("{}.lw", add.name)
        } else {
            add.file.clone()
        };
        let source = ValidationSource::new(&add.name, &file, &add.text);
        let checked = tokio::task::spawn_blocking(move || check(&source))
            .await
            .map_err(|e| Status::internal(format!("checking the module: {e}")))?;
        if !checked.compiles() {
            return Err(bad(&format!(
                "the validation module is refused:\n{}",
                checked.render()
            )));
        }
        let names = checked.validations.join(", ");
        let message = format!(
            "validation module {} stored: {} validation(s) ({names})",
            add.name,
            checked.validations.len()
        );
        if by.dry_run {
            return Ok(reply(format!("dry run: {message}")));
        }
        let command = Command::ValidationSet {
            name: add.name,
            file,
            text: add.text,
        };
        self.propose_validation(by, Action::ValidationAdd, decided, command)
            .await?;
        Ok(reply(message))
    }

    /// `validation.remove`: drops a stored module.
    pub(super) async fn remove_validation(
        &self,
        by: Caller<'_>,
        name: String,
    ) -> Result<pb::CommandReply, Status> {
        valid_name(&name)?;
        let decided = self
            .authorise(by.asker(), Action::ValidationRemove, None, None)
            .await?;
        let message = format!("validation module {name} removed");
        if by.dry_run {
            return Ok(reply(format!("dry run: {message}")));
        }
        let command = Command::ValidationRemoved { name };
        self.propose_validation(by, Action::ValidationRemove, decided, command)
            .await?;
        Ok(reply(message))
    }

    async fn propose_validation(
        &self,
        by: Caller<'_>,
        action: Action,
        decided: super::authz::Decided,
        command: Command,
    ) -> Result<(), Status> {
        let door = by.door(action, decided, None);
        let req = Request {
            id: CommandId(by.id),
            ..Request::new(self.clock.now_ms(), command)
                .by(by.principal.clone())
                .with_door(door)
        };
        self.propose_meta(req).await
    }

    /// Refuses `composition` (FAILED_PRECONDITION, each failure with its
    /// validation and place) if it fails a stored validation.
    pub(super) async fn validate(&self, composition: &Composition) -> Result<(), Status> {
        let modules = sources(&self.stored_validations().await?);
        if modules.is_empty() {
            // No evaluation, and no blocking task: a cluster without
            // validations (every simulation) schedules exactly as before.
            return Ok(());
        }
        let composition = composition.clone();
        let found = tokio::task::spawn_blocking(move || failures(&modules, &composition))
            .await
            .map_err(|e| Status::internal(format!("evaluating the validations: {e}")))?
            .map_err(|e| bad(&format!("composition: {e}")))?;
        if found.is_empty() {
            Ok(())
        } else {
            tracing::info!(failures = found.len(), "command refused by validations");
            Err(Status::failed_precondition(refusal(&found)))
        }
    }

    async fn stored_validations(
        &self,
    ) -> Result<std::collections::BTreeMap<String, StoredValidation>, Status> {
        self.node
            .read(META_GROUP, Consistency::Linearizable, |s: &CanonState| {
                s.meta.validations.clone()
            })
            .await
            .map_err(node_status)
    }

    /// The Validations read: the stored modules and, with `report`, the
    /// live processes (those the reader may `process.status`) that fail
    /// them.
    pub(super) async fn handle_validations(
        &self,
        by: &Reader,
        req: pb::ValidationsRequest,
    ) -> Result<pb::ValidationsReply, Status> {
        self.authorise(by.asker(), Action::ValidationList, None, None)
            .await?;
        let stored = self.stored_validations().await?;
        let modules = sources(&stored);
        let mut processes = Vec::new();
        if req.report {
            processes = self.live_compositions().await?;
            self.keep_visible(Some(by), &mut processes, |p| (&p.account, &p.alias))
                .await?;
        }
        let checked = processes.len() as u64;
        tokio::task::spawn_blocking(move || {
            let validations = modules
                .iter()
                .zip(stored.values())
                .map(|(m, s)| module_view(m, s))
                .collect();
            let report = processes
                .iter()
                .filter_map(|p| {
                    let found = failures(&modules, &p.composition)
                        .unwrap_or_else(|e| vec![undecodable(&p.alias, e)]);
                    (!found.is_empty()).then(|| pb::ProcessValidations {
                        alias: p.alias.clone(),
                        failures: found.iter().map(failure_view).collect(),
                    })
                })
                .collect();
            pb::ValidationsReply {
                validations,
                report,
                processes_checked: checked,
            }
        })
        .await
        .map_err(|e| Status::internal(format!("evaluating the validations: {e}")))
    }

    /// Every live process's alias, account and composition, by alias.
    async fn live_compositions(&self) -> Result<Vec<Evaluated>, Status> {
        let mut out = Vec::new();
        for shard in 0..self.node.shard_count() {
            let group = canon_raft::shard::group_of_shard(shard);
            let mut found = self
                .node
                .read(group, Consistency::Linearizable, |s: &CanonState| {
                    s.processes
                        .values()
                        .filter(|p| p.state.is_live())
                        .map(|p| Evaluated {
                            alias: p.alias.clone(),
                            account: p.account.clone(),
                            composition: p.composition.clone(),
                        })
                        .collect::<Vec<_>>()
                })
                .await
                .map_err(node_status)?;
            out.append(&mut found);
        }
        out.sort_by(|a, b| a.alias.cmp(&b.alias));
        Ok(out)
    }
}

/// A module name: what `canon validation add NAME` stores it under and
/// failures are named by (`NAME.validation`).
fn valid_name(name: &str) -> Result<(), Status> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(bad(&format!(
            "validation module name {name:?}: 1 to 64 letters, digits, '-' or '_'"
        )))
    }
}

fn reply(message: String) -> pb::CommandReply {
    pb::CommandReply {
        process: None,
        job: 0,
        plan_json: String::new(),
        message,
        policy_version: 0,
        log_index: 0,
    }
}

fn module_view(m: &ValidationSource, s: &StoredValidation) -> pb::ValidationView {
    pb::ValidationView {
        name: m.name.clone(),
        file: m.file.clone(),
        text: m.text.clone(),
        validations: check(m).validations,
        added_by: s.added_by.clone().unwrap_or_default(),
        added_ms: s.added_at,
    }
}

/// A stored composition this node cannot decode fails as such.
fn undecodable(alias: &str, e: String) -> Failure {
    Failure {
        validation: "-".into(),
        message: format!("the composition of {alias} does not decode: {e}"),
        file: String::new(),
        line: 0,
        column: 0,
    }
}

pub(super) fn failure_view(f: &Failure) -> pb::ValidationFailure {
    pb::ValidationFailure {
        validation: f.validation.clone(),
        message: f.message.clone(),
        file: f.file.clone(),
        line: u32::try_from(f.line).unwrap_or(u32::MAX),
        column: u32::try_from(f.column).unwrap_or(u32::MAX),
    }
}
