//! A shard's state filled with many processes by the commands the conductor
//! proposes (create, bind, jobs, drift), for the snapshot tests and the
//! snapshot bench: states of a known size without replicating millions of
//! commands through Raft first.

use canon_model::{Fid, JobKind, JobStatus, LogicalId, ResourceKind, UnixMillis};

use crate::command::{Command, Composition, Request};
use crate::shard::group_of_shard;
use crate::state::CanonState;

/// What each process holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FleetShape {
    /// Size of each process's compiled composition.
    pub composition_bytes: usize,
    /// Resources bound to cloud ids.
    pub resources: usize,
    /// Finished jobs in its history.
    pub jobs: u64,
    /// Healed drift events in its history.
    pub drift: u64,
}

impl FleetShape {
    /// The README's "default keep" row: a 1.9 KB composition of 11
    /// resources, 50 jobs and 10 healed drift events (about 16 KB of
    /// snapshot per process).
    pub const DEFAULT_KEEP: FleetShape = FleetShape {
        composition_bytes: 1900,
        resources: 11,
        jobs: 50,
        drift: 10,
    };
}

/// The state of shard 0 of a one-shard cluster holding `n` processes of
/// `shape`, commands 10 ms apart, so that it remembers the command ids of
/// a busy shard (every id of the last 20 minutes, 120,000 of them, once
/// there are that many), and its audit chain trimmed to the last
/// [`AUDIT_KEEP`] records, as the node's retention keeps it by default.
/// `seed` varies the processes' ids and contents.
/// Commands the state machine refuses are skipped (none are, for a fresh
/// state).
pub fn fleet_state(n: u64, shape: FleetShape, seed: u64) -> CanonState {
    let mut s = CanonState::new(group_of_shard(0), 1);
    let mut at: UnixMillis = 1_000;
    let mut apply = |s: &mut CanonState, command: Command| {
        // Ten milliseconds apart: the dedup window holds a bounded number.
        at += 10;
        s.apply(&Request::new(at, command));
    };
    let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for i in 0..n {
        let fid = Fid(uuid::Uuid::from_u128(
            u128::from(next()) << 64 | u128::from(i),
        ));
        let bytes = (0..shape.composition_bytes)
            .map(|_| next().to_le_bytes()[0])
            .collect();
        apply(
            &mut s,
            Command::ProcessCreated {
                imports: Default::default(),
                fid,
                alias: format!("process-{seed}-{i}"),
                account: "123456789012".into(),
                composition: Composition {
                    bytes,
                    source_hash: format!("{:016x}", next()),
                },
                tick_interval_ms: None,
            },
        );
        let bound: Vec<(String, ResourceKind, String)> = (0..shape.resources)
            .map(|k| {
                let cloud_id = format!("sg-{:08x}{k:09x}", next() as u32);
                (
                    format!("resource-{k}"),
                    ResourceKind::SecurityGroup,
                    cloud_id,
                )
            })
            .collect();
        let drifted = ("resource-0", ResourceKind::SecurityGroup);
        for command in history_commands(fid, &bound, shape.jobs, shape.drift, drifted) {
            apply(&mut s, command);
        }
    }
    if let Some(last) = s.audit.records.back().map(|r| r.entry.seq) {
        if let Some(through) = last.checked_sub(AUDIT_KEEP) {
            apply(&mut s, Command::AuditTrimmed { through });
        }
    }
    s
}

/// Audit records a group keeps by default.
pub const AUDIT_KEEP: u64 = 20_000;

/// What the conductor proposes for process `fid` after its creation, in
/// order: its `bound` resources (path, kind, cloud id) bound, `jobs`
/// finished jobs (the first a RUN, the rest ticks that healed a drift),
/// and `drift` healed drift events on `drifted` (a path and kind). Shared by the
/// fleets of the snapshot tests and bench and by the node's memory bench,
/// so they measure the same history.
pub fn history_commands(
    fid: Fid,
    bound: &[(String, ResourceKind, String)],
    jobs: u64,
    drift: u64,
    (drifted, drifted_kind): (&str, ResourceKind),
) -> Vec<Command> {
    let mut out = Vec::new();
    for (path, kind, cloud_id) in bound {
        out.push(Command::BindingSet {
            resource: LogicalId::new(fid, path),
            kind: *kind,
            cloud_id: cloud_id.clone(),
            region: None,
            adopted: false,
        });
    }
    for job in 1..=jobs {
        let kind = if job == 1 {
            JobKind::Run
        } else {
            JobKind::System
        };
        out.push(Command::JobStarted {
            fid,
            job,
            kind,
            message: "running".into(),
        });
        out.push(Command::JobFinished {
            fid,
            job,
            status: JobStatus::Succeeded,
            message: "1 drift event healed".into(),
        });
    }
    for drift in 1..=drift {
        out.push(drift_opened(fid, drift, drifted, drifted_kind));
        out.push(Command::DriftHealed { fid, drift });
    }
    out
}

/// A rogue all-traffic rule found on `path`.
fn drift_opened(fid: Fid, drift: u64, path: &str, kind: ResourceKind) -> Command {
    Command::DriftOpened {
        fid,
        drift,
        resource: LogicalId::new(fid, path),
        kind,
        cloud_id: Some("sg-0123456789abcdef0".into()),
        property: "ingress".into(),
        declared: Some(r#"[{"protocol":"tcp","from":443,"to":443,"cidr":"0.0.0.0/0"}]"#.into()),
        observed: Some(
            r#"[{"protocol":"-1","cidr":"0.0.0.0/0"},{"protocol":"tcp","from":443,"to":443,"cidr":"0.0.0.0/0"}]"#
                .into(),
        ),
        violates: Vec::new(),
        detected_by: Default::default(),
    }
}
