//! The rule of the audit chain: which applied requests leave a record and
//! what it says, and retention's trim. Called by
//! [`CanonState::apply_at`](super::CanonState::apply_at) around
//! every request, so every replica appends the same records in the same
//! order.
//!
//! Recorded: every request a user's command made (it carries a principal
//! or the door's context), whatever its answer; the door's refusals
//! (`AuditRefused`); and the conductor's own changes: cloud calls
//! (`CloudCalled`), the calls each pass plans before its first one (a
//! `JobProgressed` that opens a pass), the calls of a pass cut off before
//! their answers were recorded (`PassInterrupted`), adoptions by ownership
//! tag (a `BindingSet` marked `adopted`), jobs started and finished, heals
//! (`DriftHealed`), process state changes and deletions, cluster changes,
//! and trims (see [`super::passes`] for the crash gap). Not recorded: the
//! conductor's bookkeeping, which changes nothing outside Canon (other
//! `JobProgressed`, `DriftOpened`, `BindingSet`, `BindingCleared`, `Noop`):
//! a binding follows a cloud call, which is recorded itself.

use canon_model::{Fid, JobKind, ProcessState};
use canon_trust::audit::{
    AuditDecision, AuditEntry, AuditPrincipal, AuditTarget, Decider, Packed, Text,
};
use canon_trust::{AccessRequest, Action, Effect};

use super::CanonState;
use crate::audit::Interner;
use crate::command::{Command, Rejection, Request, Response};
use crate::policy::{authorise, authorise_key, PolicyChange, Principal};

/// What is known of an audited request before it applies (a process it
/// deletes is gone after).
pub(super) struct Pending {
    target: AuditTarget,
    /// The state machine's own decision (policy changes).
    decided: Option<AuditDecision>,
    /// What the record says of the process's open pass
    /// ([`CanonState::pass_note`]).
    pass_note: Option<String>,
}

/// True if applying `req` leaves a record.
fn audited(req: &Request) -> bool {
    if req.principal.is_some() || req.door.is_some() {
        return true;
    }
    match &req.command {
        Command::JobProgressed { planned, .. } => return !planned.is_empty(),
        Command::BindingSet { adopted, .. } => return *adopted,
        _ => {}
    }
    !matches!(
        req.command,
        Command::Noop
            | Command::BenchPut { .. }
            | Command::DriftOpened { .. }
            | Command::InstanceReplaced { .. }
            | Command::RolloutRecovered { .. }
            | Command::BindingSet { .. }
            | Command::BindingCleared { .. }
    )
}

impl CanonState {
    /// The target (and, for a policy change, the decision) of `req`, if it
    /// is audited; read before it applies.
    pub(super) fn audit_before(&mut self, req: &Request) -> Option<Pending> {
        if !audited(req) {
            return None;
        }
        // Out of the chain while the state is read (given back below).
        let mut strings = std::mem::take(&mut self.audit.interner);
        let pending = self.pending(req, &mut strings);
        self.audit.interner = strings;
        Some(pending)
    }

    /// [`CanonState::audit_before`]'s reading, its text shared through
    /// `strings`.
    fn pending(&self, req: &Request, strings: &mut Interner) -> Pending {
        let mut target = match &req.command {
            Command::ProcessCreated {
                fid,
                alias,
                account,
                ..
            } => AuditTarget {
                account: Some(strings.intern(account)),
                alias: Some(strings.intern(alias)),
                fid: Some(strings.intern(&fid.to_string())),
                region: None,
            },
            Command::AuditRefused { refusal } => AuditTarget {
                account: refusal.account.as_deref().map(|a| strings.intern(a)),
                alias: refusal.alias.as_deref().map(|a| strings.intern(a)),
                ..AuditTarget::default()
            },
            Command::PolicyChanged { change } => AuditTarget {
                account: change.account().map(|a| strings.intern(a)),
                ..AuditTarget::default()
            },
            other => other
                .fid()
                .or(cloud_fid(other))
                .map_or_else(AuditTarget::default, |f| self.target_of(f, strings)),
        };
        match &req.command {
            Command::CloudCalled { region, .. } => target.region = Some(strings.intern(region)),
            Command::BindingSet { region, .. } => {
                target.region = region.as_ref().map(|r| strings.intern(&r.0))
            }
            _ => {}
        }
        if let Some(door) = &req.door {
            target.region = target
                .region
                .or_else(|| door.region.as_deref().map(|r| strings.intern(r)));
        }
        let decided = match (&req.command, req.principal.as_deref()) {
            (Command::PolicyChanged { change }, Some(principal)) => {
                Some(self.policy_decision(principal, change))
            }
            _ => None,
        };
        let pass_note = self.pass_note(&req.command);
        Pending {
            target,
            decided,
            pass_note,
        }
    }

    /// The meta group's decision on a policy change, as `change_policy`
    /// makes it: a user may change their own keys with a key they still
    /// hold; anything else is authorised against the policy in force.
    fn policy_decision(&self, principal: &Principal, change: &PolicyChange) -> AuditDecision {
        let request = AccessRequest {
            action: change.action(),
            account: change.account(),
            alias: None,
        };
        let doc = &self.meta.policy.document;
        let decided = if change.is_own_key_change(principal) {
            authorise_key(doc, principal, &request).map(|()| Some("own keys".to_string()))
        } else {
            authorise(doc, principal, &request).map(|d| d.matched.map(|m| m.to_string()))
        };
        let (effect, rule) = match decided {
            Ok(rule) => (Effect::Allow, rule_text(principal.root, rule)),
            Err(r) => (Effect::Deny, r.to_string()),
        };
        AuditDecision {
            effect,
            rule: Some(rule.into()),
            policy_version: Some(self.meta.policy.version),
            by: Decider::StateMachine,
        }
    }

    /// Appends the record of `req`, answered `response`.
    pub(super) fn audit_after(&mut self, pending: Pending, req: &Request, response: &Response) {
        let mut strings = std::mem::take(&mut self.audit.interner);
        let entry = self.record_of(pending, req, response, &mut strings);
        self.audit.interner = strings;
        self.audit.append(self.group, entry);
    }

    /// The record of `req`, answered `response`, its repeated text shared
    /// through `strings` (the request hash is the request's own string).
    fn record_of(
        &self,
        pending: Pending,
        req: &Request,
        response: &Response,
        strings: &mut Interner,
    ) -> AuditEntry {
        let principal = req.principal.as_deref().map(|p| AuditPrincipal {
            user: strings.intern(&p.user),
            key_id: Some(strings.intern(&p.key_id)),
            cert_fingerprint: req
                .door
                .as_ref()
                .and_then(|d| d.cert_fingerprint.as_deref())
                .map(|c| strings.intern(c)),
            channel: req.door.as_ref().map(|d| d.channel).unwrap_or_default(),
            root: p.root,
        });
        let action = match &req.door {
            Some(door) => strings.intern(&door.action),
            None => strings.intern(&self.action_of(req)),
        };
        let mut entry = AuditEntry {
            group: self.group,
            seq: 0,
            at: req.at,
            command_id: Packed::uuid(*req.id.0.as_bytes()),
            command: strings.intern(req.command.name()),
            principal,
            action,
            target: pending.target,
            decision: decision_of(req, pending.decided, response, strings),
            outcome: outcome_of(response, strings),
            detail: self.detail_of(&req.command),
            request_hash: req.door.as_ref().and_then(|d| d.request_hash.clone()),
            aws_request_ids: Vec::new(),
            dropped: 0,
        };
        match &req.command {
            Command::CloudCalled {
                aws_request_ids, ..
            } => entry.aws_request_ids = aws_request_ids.clone(),
            Command::AuditRefused { refusal } => {
                entry.principal = Some(AuditPrincipal {
                    user: strings.intern(&refusal.user),
                    key_id: refusal.key_id.as_deref().map(|k| strings.intern(k)),
                    cert_fingerprint: refusal
                        .cert_fingerprint
                        .as_deref()
                        .map(|c| strings.intern(c)),
                    channel: refusal.channel,
                    root: refusal.root,
                });
                entry.request_hash = refusal.request_hash.as_deref().map(Packed::new);
                entry.dropped = refusal.dropped;
                entry.outcome = format!("refused: {}", refusal.reason).into();
            }
            _ => {}
        }
        match (pending.pass_note, &req.command) {
            (Some(note), Command::PassInterrupted { .. }) if response.is_applied() => {
                entry.outcome = note.into();
            }
            (Some(note), _) => {
                entry.detail = Some(
                    entry
                        .detail
                        .map_or(note.clone(), |d| format!("{d}; {note}")),
                );
            }
            (None, _) => {}
        }
        entry
    }

    /// `AuditTrimmed`: drops the records up to `through`, keeping the last
    /// one dropped as the anchor. Trimming past the newest record trims
    /// them all.
    pub(super) fn trim_audit(&mut self, through: u64) -> Result<(), Rejection> {
        self.audit.trim_through(through);
        Ok(())
    }

    /// The account, alias and FID of process `fid`, as far as known.
    fn target_of(&self, fid: Fid, strings: &mut Interner) -> AuditTarget {
        let p = self.processes.get(&fid);
        AuditTarget {
            account: p.map(|p| strings.intern(&p.account)),
            region: None,
            alias: p.map(|p| strings.intern(&p.alias)),
            fid: Some(strings.intern(&fid.to_string())),
        }
    }

    /// The action a record names: the door's (a user's command), the
    /// policy change's, the refused command's, or the conductor's.
    fn action_of(&self, req: &Request) -> String {
        if let Some(door) = &req.door {
            return door.action.to_string();
        }
        if req.principal.is_some() {
            if let Some(action) = user_action(&req.command) {
                return action.to_string();
            }
        }
        match &req.command {
            Command::PolicyChanged { change } => change.action().to_string(),
            Command::AuditRefused { refusal } => refusal.action.clone(),
            Command::AuditTrimmed { .. } => "audit.trim".into(),
            Command::HistoryTrimmed { .. } => "conductor.history-trim".into(),
            Command::CloudCalled { .. } => "conductor.cloud-call".into(),
            Command::JobProgressed { .. } => "conductor.pass-planned".into(),
            Command::PassInterrupted { .. } => "conductor.pass-interrupted".into(),
            Command::BindingSet { .. } => "conductor.adopt".into(),
            Command::JobStarted { .. } => "conductor.job-start".into(),
            Command::JobFinished { .. } => "conductor.job-finish".into(),
            Command::DriftHealed { .. } => "conductor.heal".into(),
            Command::ProcessStateChanged { .. } => "conductor.process-state".into(),
            Command::ProcessDeleted { .. } => "conductor.process-delete".into(),
            Command::ProcessPropertySet { .. } => "conductor.process-property".into(),
            Command::RotationDone { .. } => "conductor.rotation-done".into(),
            Command::ClusterCreated { .. }
            | Command::MemberSet { .. }
            | Command::MemberRemoved { .. }
            | Command::ShardPlaced { .. } => "conductor.cluster".into(),
            Command::JoinTokenIssued { .. } | Command::JoinTokenRedeemed { .. } => {
                Action::ClusterJoin.to_string()
            }
            Command::ValidationSet { .. } => Action::ValidationAdd.to_string(),
            Command::ValidationRemoved { .. } => Action::ValidationRemove.to_string(),
            other => format!("conductor.{}", other.name()),
        }
    }

    /// What else a record says about its command.
    fn detail_of(&self, command: &Command) -> Option<String> {
        Some(match command {
            Command::JobStarted { job, kind, .. } => format!("job {job} ({kind})"),
            Command::JobFinished {
                job,
                status,
                message,
                ..
            } => format!("job {job}: {status}: {message}"),
            Command::DriftHealed { fid, drift } => {
                let d = self.processes.get(fid).and_then(|p| p.drift.get(drift));
                match d {
                    Some(d) => format!(
                        "drift {drift}: {} of {} ({})",
                        d.property,
                        d.cloud_id.as_deref().unwrap_or("?"),
                        d.kind
                    ),
                    None => format!("drift {drift}"),
                }
            }
            Command::ProcessStateChanged { state, .. } => format!("to {state}"),
            Command::ProcessPropertySet { property, .. } => property.to_string(),
            Command::RotationRequested { scope, .. } => format!("rotate {scope}"),
            Command::RolloutFailed { name, cloud_id, .. } => {
                format!("replacement {cloud_id} of {name} failed its checks")
            }
            Command::RotationDone { through, .. } => {
                format!("rotations requested up to {through} done")
            }
            Command::CloudCalled {
                job,
                request,
                resource,
                cloud_id,
                ..
            } => format!(
                "job {job}: {request} {} ({resource})",
                cloud_id.as_deref().unwrap_or("-")
            ),
            Command::JobProgressed { job, planned, .. } => format!(
                "job {job}: {} call(s) planned: {}",
                planned.len(),
                super::passes::call_list(planned)
            ),
            Command::PassInterrupted { job, .. } => format!("job {job}"),
            Command::BindingSet {
                resource, cloud_id, ..
            } => format!("{resource} adopted {cloud_id}, found by its ownership tag"),
            Command::AuditTrimmed { through } => format!("records up to {through} trimmed"),
            Command::HistoryTrimmed { limits } => limits.to_string(),
            Command::MemberSet { node, addr } => format!("member {node} at {addr}"),
            Command::MemberRemoved { node } => format!("member {node} removed"),
            Command::ShardPlaced { shard, replicas } => {
                format!("shard {shard} on {replicas:?}")
            }
            Command::ClusterCreated { shard_count } => format!("{shard_count} shards"),
            Command::JoinTokenIssued {
                hash,
                expires_at,
                node,
            } => format!(
                "join token {} for {} until {expires_at}",
                short_hash(hash),
                node.map_or("any node id".into(), |n| format!("node {n}"))
            ),
            Command::JoinTokenRedeemed { hash, node } => {
                format!("node {node} presented join token {}", short_hash(hash))
            }
            Command::ValidationSet { name, file, text } => {
                format!("validation module {name} ({file}, {} bytes)", text.len())
            }
            Command::ValidationRemoved { name } => format!("validation module {name} removed"),
            Command::ProcessCreated { imports, .. } if !imports.is_empty() => {
                import_detail(imports.values())
            }
            _ => return None,
        })
    }
}

/// What a `run --import` adopts, for its record: how many, and which (the
/// first few by id; the command's mapping has them all).
fn import_detail<'a>(adopted: impl Iterator<Item = &'a String>) -> String {
    const NAMED_MAX: usize = 8;
    let mut ids: Vec<&str> = adopted.map(String::as_str).collect();
    ids.sort_unstable();
    let n = ids.len();
    let named = &ids[..n.min(NAMED_MAX)];
    let more = if n > NAMED_MAX { ", …" } else { "" };
    format!("import adopts {n}: {}{more}", named.join(", "))
}

/// The policy action of a user's process command, when its request
/// carries no door context (written by a node from before the audit).
fn user_action(command: &Command) -> Option<Action> {
    Some(match command {
        Command::ProcessCreated { .. } => Action::ProcessRun,
        Command::ProcessUpdated { .. } => Action::ProcessUpdate,
        Command::ProcessStateChanged { state, .. } => match state {
            ProcessState::Suspended => Action::ProcessSuspend,
            ProcessState::Running => Action::ProcessResume,
            ProcessState::Releasing | ProcessState::Released => Action::ProcessRelease,
            _ => Action::ProcessKill,
        },
        Command::JobStarted { kind, .. } => match kind {
            JobKind::Run => Action::ProcessRun,
            JobKind::Update => Action::ProcessUpdate,
            JobKind::Kill => Action::ProcessKill,
            JobKind::Release => Action::ProcessRelease,
            JobKind::System => return None,
        },
        Command::ProcessPropertySet { .. } | Command::RotationRequested { .. } => {
            Action::ProcessUpdate
        }
        _ => return None,
    })
}

/// The first 12 hex digits of a token's hash: enough to tell tokens apart
/// in the audit, never the secret.
fn short_hash(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// The FID of an audit-only command about a process.
fn cloud_fid(command: &Command) -> Option<Fid> {
    match command {
        Command::CloudCalled { fid, .. } => Some(*fid),
        _ => None,
    }
}

fn rule_text(root: bool, matched: Option<String>) -> String {
    if root {
        "root key".into()
    } else {
        matched.unwrap_or_else(|| "no rule".into())
    }
}

/// The decision a record states: the state machine's own (policy
/// changes), a refusal's, the door's, or none (the conductor's work).
fn decision_of(
    req: &Request,
    decided: Option<AuditDecision>,
    response: &Response,
    strings: &mut Interner,
) -> AuditDecision {
    if let Some(d) = decided {
        // Authorised, but refused for escalation: a deny too.
        if let Response::Rejected(r @ Rejection::Escalation(_)) = response {
            return AuditDecision {
                effect: Effect::Deny,
                rule: Some(r.to_string().into()),
                ..d
            };
        }
        return d;
    }
    if let Command::AuditRefused { refusal } = &req.command {
        return AuditDecision {
            effect: Effect::Deny,
            rule: Some(refusal.reason.as_str().into()),
            policy_version: refusal.policy_version,
            by: Decider::Door,
        };
    }
    match (&req.door, &req.principal) {
        (Some(door), _) => AuditDecision {
            effect: Effect::Allow,
            rule: door.rule.as_deref().map(|r| strings.intern(r)),
            policy_version: door.policy_version,
            by: Decider::Door,
        },
        (None, Some(p)) => AuditDecision {
            effect: Effect::Allow,
            rule: p.root.then(|| strings.intern("root key")),
            policy_version: None,
            by: Decider::Door,
        },
        (None, None) => AuditDecision {
            effect: Effect::Allow,
            rule: None,
            policy_version: None,
            by: Decider::Conductor,
        },
    }
}

fn outcome_of(response: &Response, strings: &mut Interner) -> Text {
    match response {
        Response::Applied => strings.intern("applied"),
        Response::Rejected(r) => format!("rejected: {r}").into(),
    }
}

#[cfg(test)]
mod tests {
    use canon_model::{JobStatus, LogicalId};
    use canon_trust::audit::Channel;

    use super::*;
    use crate::audit::DoorContext;
    use crate::command::{Composition, DoorRefusal};
    use crate::policy::{PolicyChange, Principal};
    use crate::shard::{group_of_alias, META_GROUP};

    const SHARDS: u32 = 4;

    fn alice() -> Principal {
        Principal {
            user: "alice".into(),
            key_id: "k-alice".into(),
            root: false,
        }
    }

    fn door(action: &str) -> DoorContext {
        DoorContext {
            action: action.into(),
            channel: Channel::Grpc,
            request_hash: Some("ab".repeat(32).into()),
            rule: Some("role web rule 1 (allow process.* on accounts web-*)".into()),
            policy_version: Some(3),
            region: Some("us-east-1".into()),
            ..DoorContext::default()
        }
    }

    /// A user's run (create + job), the conductor's work on it (a job
    /// start, a cloud call, bookkeeping, a heal, the job's end), and a kill.
    fn shard_log(fid: Fid) -> Vec<Request> {
        let user = |at, action: &str, command| {
            Request::new(at, command)
                .by(alice())
                .with_door(door(action))
        };
        let lid = LogicalId::new(fid, "vpc");
        vec![
            user(
                1,
                "process.run",
                Command::ProcessCreated {
                    imports: Default::default(),
                    fid,
                    alias: "web".into(),
                    account: "web-dev".into(),
                    composition: Composition {
                        bytes: vec![1],
                        source_hash: "h".into(),
                    },
                    tick_interval_ms: None,
                },
            ),
            user(
                2,
                "process.run",
                Command::JobStarted {
                    fid,
                    job: 2,
                    kind: JobKind::Run,
                    message: String::new(),
                },
            ),
            Request::new(
                3,
                Command::CloudCalled {
                    fid,
                    job: 2,
                    request: "CreateVpc".into(),
                    resource: lid,
                    cloud_id: Some("vpc-1".into()),
                    region: "us-east-1".into(),
                    outcome: "ok".into(),
                    aws_request_ids: vec!["req-1".into()],
                },
            ),
            Request::new(
                3,
                Command::BindingSet {
                    resource: lid,
                    kind: canon_model::ResourceKind::Vpc,
                    cloud_id: "vpc-1".into(),
                    region: None,
                    adopted: false,
                },
            ),
            Request::new(
                4,
                Command::JobProgressed {
                    fid,
                    job: 2,
                    ticks: 1,
                    message: None,
                    opens_pass: false,
                    planned: Vec::new(),
                },
            ),
            Request::new(
                5,
                Command::JobFinished {
                    fid,
                    job: 2,
                    status: JobStatus::Succeeded,
                    message: "done".into(),
                },
            ),
            user(
                6,
                "process.kill",
                Command::ProcessStateChanged {
                    fid,
                    state: ProcessState::Killing,
                },
            ),
            // Rejected (bound resources): recorded with its outcome.
            Request::new(
                7,
                Command::ProcessStateChanged {
                    fid,
                    state: ProcessState::Killed,
                },
            ),
        ]
    }

    fn shard() -> CanonState {
        CanonState::new(group_of_alias("web", SHARDS), SHARDS)
    }

    #[test]
    fn replicas_compute_the_same_chain_of_what_matters() {
        let fid = Fid::random();
        let log = shard_log(fid);
        let (mut a, mut b) = (shard(), shard());
        for r in &log {
            a.apply(r);
            b.apply(r);
        }
        assert_eq!(a.audit, b.audit);
        let group = a.group;
        assert_eq!(a.audit.verify(group), Ok(6));
        let records: Vec<_> = a.audit.records.iter().map(|r| &r.entry).collect();
        let commands: Vec<&str> = records.iter().map(|e| e.command.as_str()).collect();
        assert_eq!(
            commands,
            [
                "ProcessCreated",
                "JobStarted",
                "CloudCalled",
                "JobFinished",
                "ProcessStateChanged",
                "ProcessStateChanged"
            ]
        );
        let run = records[0];
        assert_eq!(run.action, "process.run");
        let who = run.principal.as_ref().unwrap();
        assert_eq!((who.user.as_str(), who.root), ("alice", false));
        assert_eq!(who.key_id.as_deref(), Some("k-alice"));
        assert_eq!(run.target.account.as_deref(), Some("web-dev"));
        assert_eq!(run.target.alias.as_deref(), Some("web"));
        assert_eq!(run.target.region.as_deref(), Some("us-east-1"));
        assert_eq!(run.target.fid.as_deref(), Some(fid.to_string().as_str()));
        assert_eq!(run.decision.effect, Effect::Allow);
        assert_eq!(run.decision.policy_version, Some(3));
        assert_eq!(run.decision.by, Decider::Door);
        assert_eq!(
            run.request_hash.as_ref().map(ToString::to_string),
            Some("ab".repeat(32))
        );
        assert_eq!(run.command_id, log[0].id.to_string());
        assert_eq!(run.outcome, "applied");
        let call = records[2];
        assert_eq!(call.action, "conductor.cloud-call");
        assert!(call.principal.is_none());
        assert_eq!(call.decision.by, Decider::Conductor);
        assert_eq!(call.aws_request_ids, vec!["req-1".to_string()]);
        assert_eq!(call.target.alias.as_deref(), Some("web"));
        assert!(call.detail.as_deref().unwrap().contains("CreateVpc vpc-1"));
        let refused = records[5];
        assert!(refused.outcome.starts_with("rejected: "), "{refused:?}");
        // Sequence numbers count from 1 within the group.
        let seqs: Vec<u64> = records.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
        // A replayed command id adds nothing.
        a.apply(&log[0]);
        assert_eq!(a.audit.records.len(), 6);
    }

    #[test]
    fn an_import_says_what_it_adopts_and_a_plain_run_says_nothing() {
        let mapping = |n: usize| -> std::collections::BTreeMap<LogicalId, String> {
            (0..n)
                .map(|i| {
                    (
                        LogicalId::new(Fid::random(), &format!("r{i}")),
                        format!("sg-{i}"),
                    )
                })
                .collect()
        };
        assert_eq!(
            import_detail(mapping(2).values()),
            "import adopts 2: sg-0, sg-1"
        );
        let many = import_detail(mapping(10).values());
        assert!(many.starts_with("import adopts 10: sg-0"), "{many}");
        assert!(many.ends_with(", …"), "{many}");
        let fid = Fid::random();
        let run = |imports| Command::ProcessCreated {
            imports,
            fid,
            alias: "web".into(),
            account: "a".into(),
            composition: Composition {
                bytes: vec![1],
                source_hash: "h".into(),
            },
            tick_interval_ms: None,
        };
        let s = CanonState::new(META_GROUP, SHARDS);
        assert_eq!(s.detail_of(&run(Default::default())), None);
        let detail = s.detail_of(&run(mapping(1))).unwrap();
        assert_eq!(detail, "import adopts 1: sg-0");
    }

    #[test]
    fn a_tampered_record_is_named_by_its_sequence_number() {
        let mut s = shard();
        for r in shard_log(Fid::random()) {
            s.apply(&r);
        }
        let group = s.group;
        s.audit.records[3].entry.outcome = "applied".into();
        s.audit.records[3].entry.detail = Some("nothing to see".into());
        let e = s.audit.verify(group).unwrap_err();
        assert_eq!((e.group, e.seq), (group, 4));
        assert!(e.what.contains("changed"), "{e}");
    }

    #[test]
    fn the_chain_survives_snapshots_and_old_snapshots_load_without_one() {
        let mut s = shard();
        for r in shard_log(Fid::random()) {
            s.apply(&r);
        }
        let bytes = crate::codec::encode(&s).unwrap();
        let back = CanonState::decode(&bytes).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.audit.verify(back.group), Ok(6));
        // A snapshot written before the audit existed: the same state
        // without the field.
        let mut value: ciborium::Value = ciborium::from_reader(&bytes[1..]).unwrap();
        if let ciborium::Value::Map(fields) = &mut value {
            fields.retain(|(k, _)| k.as_text() != Some("audit"));
        }
        let mut old = vec![bytes[0]];
        ciborium::into_writer(&value, &mut old).unwrap();
        let loaded = CanonState::decode(&old).unwrap();
        assert!(loaded.audit.records.is_empty());
        assert_eq!(loaded.processes, s.processes);
    }

    #[test]
    fn trimming_keeps_the_chain_verifiable_from_its_anchor() {
        let mut s = shard();
        for r in shard_log(Fid::random()) {
            s.apply(&r);
        }
        let group = s.group;
        let fourth = s.audit.records[3].hash.clone();
        assert!(s
            .apply(&Request::new(8, Command::AuditTrimmed { through: 4 }))
            .is_applied());
        assert_eq!(s.audit.anchor.seq, 4);
        assert_eq!(s.audit.anchor.hash, fourth);
        // 5, 6 and the trim's own record.
        let seqs: Vec<u64> = s.audit.records.iter().map(|r| r.entry.seq).collect();
        assert_eq!(seqs, [5, 6, 7]);
        assert_eq!(s.audit.records[2].entry.action, "audit.trim");
        assert_eq!(s.audit.verify(group), Ok(3));
        // Trimming everything still leaves a chain that goes on.
        s.apply(&Request::new(9, Command::AuditTrimmed { through: 100 }));
        assert_eq!(s.audit.anchor.seq, 7);
        assert_eq!(s.audit.records.len(), 1);
        assert_eq!(s.audit.verify(group), Ok(1));
    }

    #[test]
    fn a_large_trim_keeps_the_newest_and_the_chain_verifies() {
        // More records than are freed in place: they go to a thread.
        let mut s = shard();
        for i in 0..2_500u64 {
            s.apply(&Request::new(i, Command::Noop).by(alice()));
        }
        let group = s.group;
        let kept_from = s.audit.records[2_000].entry.seq;
        let last_trimmed = s.audit.records[1_999].hash.clone();
        assert!(s
            .apply(&Request::new(
                9_000,
                Command::AuditTrimmed {
                    through: kept_from - 1
                }
            ))
            .is_applied());
        assert_eq!(s.audit.anchor.seq, kept_from - 1);
        assert_eq!(s.audit.anchor.hash, last_trimmed);
        assert_eq!(s.audit.records[0].entry.seq, kept_from);
        // The 500 kept and the trim's own record.
        assert_eq!(s.audit.records.len(), 501);
        assert_eq!(s.audit.verify(group), Ok(501));
        // Through a record already gone: nothing more goes.
        s.apply(&Request::new(9_001, Command::AuditTrimmed { through: 1 }));
        assert_eq!(s.audit.records.len(), 502);
        assert_eq!(s.audit.anchor.seq, kept_from - 1);
        assert_eq!(s.audit.verify(group), Ok(502));
    }

    #[test]
    fn a_trim_point_keeps_the_newest_records_asked_for() {
        let mut s = shard();
        for r in shard_log(Fid::random()) {
            s.apply(&r);
        }
        // Six records, 1 to 6.
        assert_eq!(s.audit.trim_point_keeping(6), None);
        assert_eq!(s.audit.trim_point_keeping(100), None);
        assert_eq!(s.audit.trim_point_keeping(5), Some(1));
        assert_eq!(s.audit.trim_point_keeping(0), Some(6));
        let through = s.audit.trim_point_keeping(2).unwrap();
        assert!(s
            .apply(&Request::new(8, Command::AuditTrimmed { through }))
            .is_applied());
        // The two kept and the trim's own record.
        let seqs: Vec<u64> = s.audit.records.iter().map(|r| r.entry.seq).collect();
        assert_eq!(seqs, [5, 6, 7]);
        assert_eq!(s.audit.verify(s.group), Ok(3));
    }

    #[test]
    fn policy_changes_and_refusals_record_their_decision() {
        let mut m = CanonState::new(META_GROUP, SHARDS);
        let root = Principal {
            user: "admin".into(),
            key_id: "root".into(),
            root: true,
        };
        let add = |by: Principal| {
            Request::new(
                1,
                Command::PolicyChanged {
                    change: PolicyChange::AccountAdd {
                        account: canon_trust::Account {
                            name: format!("web-{}", by.user),
                            aws_account_id: "111111111111".into(),
                            role_arn: None,
                            external_id: None,
                            region: None,
                            events_queues: Default::default(),
                        },
                    },
                },
            )
            .by(by)
        };
        assert!(m.apply(&add(root)).is_applied());
        assert!(!m.apply(&add(alice())).is_applied());
        m.apply(&Request::new(
            2,
            Command::AuditRefused {
                refusal: Box::new(DoorRefusal {
                    user: "mallory".into(),
                    key_id: None,
                    root: false,
                    channel: Channel::Grpc,
                    action: "process.kill".into(),
                    account: None,
                    alias: Some("web".into()),
                    reason: "bad signature".into(),
                    policy_version: None,
                    request_hash: Some("cd".repeat(32)),
                    dropped: 7,
                    cert_fingerprint: Some("ef".repeat(32)),
                }),
            },
        ));
        let e: Vec<_> = m.audit.records.iter().map(|r| &r.entry).collect();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].action, "account.add");
        assert_eq!(e[0].decision.effect, Effect::Allow);
        assert_eq!(e[0].decision.rule.as_deref(), Some("root key"));
        assert_eq!(e[0].decision.policy_version, Some(0));
        assert_eq!(e[0].decision.by, Decider::StateMachine);
        assert!(e[0].principal.as_ref().unwrap().root);
        assert_eq!(e[1].decision.effect, Effect::Deny);
        assert!(e[1].outcome.starts_with("rejected: refused"), "{:?}", e[1]);
        assert_eq!(e[2].command, "AuditRefused");
        assert_eq!(e[2].decision.effect, Effect::Deny);
        assert_eq!(e[2].decision.by, Decider::Door);
        assert_eq!(e[2].outcome, "refused: bad signature");
        assert_eq!(e[2].dropped, 7);
        let mallory = e[2].principal.as_ref().unwrap();
        assert_eq!(mallory.user, "mallory");
        assert_eq!(
            mallory.cert_fingerprint.as_deref(),
            Some("ef".repeat(32).as_str())
        );
        assert_eq!(m.audit.verify(META_GROUP), Ok(3));
        // Audit-only commands change nothing else.
        assert_eq!(m.meta.policy.version, 1);
    }
}
