//! One drill from start to end: check the steady state, plan the fault,
//! start the load and the leader watch, inject, hold, heal (always, even
//! after an error, Ctrl-C or `canon drill abort`), wait for the cluster
//! to converge, check that no acknowledged command was lost, clean up the
//! load's processes and judge. The running drill's undo steps are kept in
//! the state directory so that `canon drill abort` can heal from another
//! shell even if this process died.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use canon_client::Client;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::catalogue::{Fault, Target};
use super::inject::{self, Plan, Step};
use super::inventory::Inventory;
use super::probe::{self, ms, Sample};
use super::report::{between, unavailable_ms_max, Hypothesis, Report, Stats};
use super::{cloud, fencing};

/// The least time between the end of one drill and the start of the next:
/// the cluster gets to settle, and a drill never runs over another's tail.
pub const DRILL_INTERVAL_MIN: Duration = Duration::from_secs(5);

/// How long a drill waits for the steady state before it gives up.
const STEADY_WAIT_MAX: Duration = Duration::from_secs(30);

/// How a drill runs.
#[derive(Debug, Clone)]
pub struct DrillOptions {
    pub fault: Fault,
    pub target: Target,
    pub duration: Duration,
    pub baseline: Duration,
    pub after: Duration,
    pub seed: u64,
    pub allow_quorum_loss: bool,
    /// `clock-skew`: how far the target's clock goes, in seconds.
    pub skew_s: i64,
    /// `delay-peers` and `loss-peers`: what each does to a message.
    pub link: LinkFaults,
    pub every: Duration,
    pub hypothesis: Hypothesis,
}

/// What `delay-peers` and `loss-peers` do to each message.
#[derive(Debug, Clone, Copy)]
pub struct LinkFaults {
    pub delay: super::link::LinkFault,
    pub loss: super::link::LinkFault,
}

/// The drill in progress, as `drill abort` finds it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Running {
    pub drill: String,
    pub pid: u32,
    pub undo: Vec<Step>,
}

const RUNNING_FILE: &str = "drill-running.json";
const ABORT_FILE: &str = "drill-abort";
const LAST_FILE: &str = "drill-last";

fn running_path(inv: &Inventory) -> PathBuf {
    inv.state_dir().join(RUNNING_FILE)
}

/// What a drill needs before it starts: the client, the roles and a plan.
pub struct Prepared {
    pub client: Client,
    pub cluster: String,
    pub plan: Plan,
    pub drill: String,
}

/// Checks the steady state and plans the fault (what `--dry-run` shows).
pub async fn prepare(inv: &Inventory, opts: &DrillOptions) -> Result<Prepared, String> {
    refuse_overlap(inv)?;
    let client = super::connect(inv)?;
    // A cluster that just started (or just healed) gets a moment to settle.
    probe::converge(&client, STEADY_WAIT_MAX)
        .await
        .map_err(|why| format!("the steady state does not hold before the fault: {why}"))?;
    let status = tokio::time::timeout(Duration::from_secs(10), client.cluster_status())
        .await
        .map_err(|_| "cluster status did not answer".to_string())?
        .map_err(|e| e.to_string())?;
    let roles = probe::roles_of(&status);
    let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed);
    let victim = roles.resolve(opts.target, &mut |n| rng.random_range(0..n))?;
    let drill = format!("{:x}", rng.random::<u32>());
    let tag = format!("canon-drill-{drill}");
    let plan = inject::plan(
        opts.fault,
        victim,
        &roles,
        inv,
        &inject::PlanOptions {
            tag,
            allow_quorum_loss: opts.allow_quorum_loss,
            skew_s: opts.skew_s,
            link: opts.link,
        },
    )?;
    Ok(Prepared {
        client,
        cluster: status.cluster_id,
        plan,
        drill,
    })
}

/// Refuses to start over a running drill or too soon after the last.
fn refuse_overlap(inv: &Inventory) -> Result<(), String> {
    if let Ok(text) = std::fs::read_to_string(running_path(inv)) {
        let id = serde_json::from_str::<Running>(&text).map_or("?".into(), |r| r.drill);
        return Err(format!(
            "drill {id} is running (or died without healing): wait for it, or `canon drill abort`"
        ));
    }
    let last = std::fs::read_to_string(inv.state_dir().join(LAST_FILE))
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok());
    if let Some(last) = last {
        let since = canon_node_clock_ms().saturating_sub(last);
        let min = ms(DRILL_INTERVAL_MIN);
        if since < min {
            return Err(format!(
                "the last drill ended {since} ms ago: drills are at least {min} ms apart"
            ));
        }
    }
    Ok(())
}

fn canon_node_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, ms)
}

/// Runs a prepared drill: the report (judged), or why it could not run.
pub async fn run(inv: &Inventory, opts: &DrillOptions, p: Prepared) -> Result<Report, String> {
    let composition = probe::load_composition()?;
    let running = Running {
        drill: p.drill.clone(),
        pid: std::process::id(),
        undo: p.plan.undo.clone(),
    };
    write_json(&running_path(inv), &running)?;
    let _ = std::fs::remove_file(inv.state_dir().join(ABORT_FILE));
    let prefix = format!("drill-{}", p.drill);
    let mut drift = match &inv.cloud {
        Some(c) => {
            let alias = format!("{prefix}-drift");
            match cloud::Drift::prepare(&p.client, c, &alias, composition.clone()).await {
                Ok(d) => Some(d),
                Err(e) => {
                    let _ = std::fs::remove_file(running_path(inv));
                    let _ = p.client.kill(&alias, false).await;
                    return Err(format!(
                        "the steady state does not hold before the fault: {e}"
                    ));
                }
            }
        }
        None => None,
    };
    let begun = tokio::time::Instant::now();
    let calls = inv
        .cloud
        .as_ref()
        .and_then(|c| c.recording.as_deref())
        .map(|path| fencing::CallLog::from_end(path, canon_node_clock_ms()));
    let (stop_tx, stop) = watch::channel(false);
    // Their own clients (own connections), as separate users would be.
    let load = tokio::spawn(probe::load(
        super::connect(inv)?,
        composition,
        prefix,
        opts.every,
        begun,
        stop.clone(),
    ));
    let leaders = tokio::spawn(probe::watch_leaders(
        super::connect(inv)?,
        Duration::from_millis(250),
        begun,
        stop,
    ));
    let abort = inv.state_dir().join(ABORT_FILE);
    let mut violations = Vec::new();
    let mut injected_at_ms = ms(begun.elapsed());
    let faulted = async {
        hold(opts.baseline, &abort).await?;
        injected_at_ms = ms(begun.elapsed());
        inject::run_steps(inv, &p.plan.inject).await?;
        if let Some(d) = &drift {
            d.inject().await?;
        }
        hold(opts.duration, &abort).await
    }
    .await;
    if let Err(e) = faulted {
        violations.push(e);
    }
    violations.extend(inject::run_all(inv, &p.plan.undo).await);
    let healed_at_ms = ms(begun.elapsed());
    if let Some(d) = &mut drift {
        d.watch_rebuild(Duration::from_millis(opts.hypothesis.drift_heal_ms_max));
    }
    let converge_within = Duration::from_millis(opts.hypothesis.converge_ms_max.max(1)) * 2;
    let converged = probe::converge(&p.client, converge_within).await;
    let converged_after_ms = match converged {
        Ok(d) => Some(ms(d)),
        Err(e) => {
            violations.push(e);
            None
        }
    };
    if hold(opts.after, &abort).await.is_err() {
        violations.push("aborted after healing".into());
    }
    let watched_until_ms = ms(begun.elapsed());
    let _ = stop_tx.send(true);
    let samples = load.await.unwrap_or_default();
    let leader_changes = leaders.await.unwrap_or_default();
    let _ = std::fs::remove_file(running_path(inv));
    let _ = std::fs::write(
        inv.state_dir().join(LAST_FILE),
        canon_node_clock_ms().to_string(),
    );
    let lost = lost_commands(&p.client, &samples).await;
    let cloud = match drift {
        Some(d) => {
            let alias = d.alias().to_string();
            let (mut report, broken) = d.finish().await;
            violations.extend(broken);
            if let Some(log) = &calls {
                let watched = (leader_changes.as_slice(), watched_until_ms);
                let (fenced, broken) = check_fencing(log, watched, &p.plan);
                report.fencing = fenced;
                violations.extend(broken);
            }
            let _ =
                tokio::time::timeout(Duration::from_secs(5), p.client.kill(&alias, false)).await;
            Some(report)
        }
        None => None,
    };
    clean_up(&p.client, &samples).await;
    let end_ms = samples.last().map_or(healed_at_ms, |s| s.at_ms + 1);
    let targets: Vec<u64> = p.plan.targets.iter().map(|t| t.0).collect();
    let mut report = Report {
        drill: p.drill,
        seed: opts.seed,
        cluster: p.cluster,
        version: env!("CARGO_PKG_VERSION").into(),
        hypothesis: opts.hypothesis.clone(),
        baseline: Stats::of(&between(&samples, 0, injected_at_ms)),
        during: Stats::of(&between(&samples, injected_at_ms, healed_at_ms)),
        after: Stats::of(&between(&samples, healed_at_ms, end_ms)),
        first_write_after_ms: samples
            .iter()
            .find(|s| s.ok && s.at_ms > injected_at_ms)
            .map(|s| s.at_ms - injected_at_ms),
        new_leader_after_ms: new_leader_after(&p.plan, &targets, &leader_changes, injected_at_ms),
        unavailable_ms_max: unavailable_ms_max(&samples, injected_at_ms, healed_at_ms),
        converged_after_ms,
        leader_changes,
        injected_at_ms,
        healed_at_ms,
        lost,
        cloud,
        plan: p.plan,
        violations,
        passed: false,
    };
    report.judge();
    Ok(report)
}

/// From the injection until every group the targets led had a leader
/// outside them.
fn new_leader_after(
    plan: &Plan,
    targets: &[u64],
    changes: &[probe::LeaderChange],
    injected_at_ms: u64,
) -> Option<u64> {
    // Each group's leader when the fault went in: its last change before.
    let mut at_injection = std::collections::BTreeMap::new();
    for c in changes.iter().filter(|c| c.at_ms <= injected_at_ms) {
        at_injection.insert(c.group, c.leader);
    }
    let led: Vec<u64> = at_injection
        .iter()
        .filter(|(_, l)| targets.contains(l))
        .map(|(g, _)| *g)
        .collect();
    if led.is_empty() || plan.inject.is_empty() {
        return None;
    }
    led.iter()
        .map(|g| {
            changes
                .iter()
                .find(|c| {
                    c.group == *g
                        && c.at_ms > injected_at_ms
                        && c.leader != 0
                        && !targets.contains(&c.leader)
                })
                .map(|c| c.at_ms - injected_at_ms)
        })
        .collect::<Option<Vec<u64>>>()
        .and_then(|v| v.into_iter().max())
}

/// Waits `d`, or fails at Ctrl-C or `canon drill abort`.
async fn hold(d: Duration, abort: &Path) -> Result<(), String> {
    let until = tokio::time::Instant::now() + d;
    loop {
        if abort.exists() {
            return Err("aborted (`canon drill abort`)".into());
        }
        let now = tokio::time::Instant::now();
        if now >= until {
            return Ok(());
        }
        let nap = (until - now).min(Duration::from_millis(200));
        tokio::select! {
            _ = tokio::time::sleep(nap) => {}
            _ = tokio::signal::ctrl_c() => return Err("aborted (Ctrl-C)".into()),
        }
    }
}

/// Acknowledged commands whose process the cluster does not know.
async fn lost_commands(client: &Client, samples: &[Sample]) -> Vec<String> {
    let Ok(Ok(status)) =
        tokio::time::timeout(Duration::from_secs(10), client.status("", false)).await
    else {
        return vec!["(status did not answer: not checked)".into()];
    };
    let known: std::collections::BTreeSet<&str> =
        status.processes.iter().map(|p| p.alias.as_str()).collect();
    samples
        .iter()
        .filter(|s| s.ok && !known.contains(s.alias.as_str()))
        .map(|s| s.alias.clone())
        .collect()
}

/// Kills the load's processes (best effort: a drill leaves nothing behind
/// it can help).
async fn clean_up(client: &Client, samples: &[Sample]) {
    for s in samples {
        let _ = tokio::time::timeout(Duration::from_secs(5), client.kill(&s.alias, false)).await;
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// No mutation from a deposed term: the cloud's recorded calls since the
/// drill began, judged against the leadership it watched until
/// `watched.1` (a `clock-skew` victim's calls, dated by its moved clock,
/// are not judged).
fn check_fencing(
    log: &fencing::CallLog,
    watched: (&[probe::LeaderChange], u64),
    plan: &Plan,
) -> (Option<fencing::FencingReport>, Vec<String>) {
    let calls = match log.calls() {
        Ok(c) => c,
        Err(e) => return (None, vec![format!("cannot read the cloud's calls: {e}")]),
    };
    let skewed: BTreeSet<u64> = if plan.fault == Fault::ClockSkew.name() {
        plan.targets.iter().map(|t| t.0).collect()
    } else {
        BTreeSet::new()
    };
    let report = fencing::judge(&calls, watched.0, watched.1, &skewed);
    let broken = report
        .deposed
        .iter()
        .map(|d| format!("a mutation came from a deposed term: {d}"))
        .collect();
    (Some(report), broken)
}

/// `canon drill abort`: asks the running drill to stop and heal; if it
/// does not within `within` (or died), heals from its recorded undo steps.
pub async fn abort(inv: &Inventory, within: Duration) -> Result<String, String> {
    let path = running_path(inv);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok("no drill is running".into());
    };
    let running: Running = serde_json::from_str(&text)
        .map_err(|e| format!("{} does not read: {e}", path.display()))?;
    std::fs::write(inv.state_dir().join(ABORT_FILE), &running.drill)
        .map_err(|e| format!("cannot ask drill {} to stop: {e}", running.drill))?;
    let started = tokio::time::Instant::now();
    while started.elapsed() < within {
        if !path.exists() {
            return Ok(format!("drill {} stopped and healed", running.drill));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let failed = inject::run_all(inv, &running.undo).await;
    let _ = std::fs::remove_file(&path);
    if failed.is_empty() {
        Ok(format!(
            "drill {} did not stop; its fault was healed here",
            running.drill
        ))
    } else {
        Err(format!(
            "drill {}: healing failed: {}",
            running.drill,
            failed.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::drill::probe::LeaderChange;

    fn change(at_ms: u64, group: u64, leader: u64) -> LeaderChange {
        LeaderChange {
            at_ms,
            group,
            leader,
            term: 1,
        }
    }

    #[test]
    fn a_new_leader_is_timed_for_every_group_the_target_led() {
        let plan = Plan {
            fault: "kill-leader".into(),
            targets: vec![(2, "leader".into())],
            inject: vec![Step {
                what: "x".into(),
                command: "true".into(),
                builtin: None,
            }],
            undo: Vec::new(),
        };
        let changes = vec![
            change(0, 0, 1),
            change(0, 1, 2),
            change(0, 2, 2),
            change(1_000, 1, 0),
            change(1_400, 1, 3),
            change(1_900, 2, 1),
            // Group 3 moved to the target before the fault, then away.
            change(0, 3, 1),
            change(500, 3, 2),
            change(1_200, 3, 1),
        ];
        assert_eq!(new_leader_after(&plan, &[2], &changes, 1_000), Some(900));
        assert_eq!(
            new_leader_after(&plan, &[2], &changes[..5], 1_000),
            None,
            "group 2 never moved"
        );
        assert_eq!(
            new_leader_after(&plan, &[3], &changes, 1_000),
            None,
            "node 3 led nothing"
        );
    }

    #[tokio::test]
    async fn abort_heals_a_dead_drills_fault_from_its_record() {
        let dir = tempfile::tempdir().unwrap();
        let healed = dir.path().join("healed");
        let inv = Inventory {
            dir: Some(dir.path().to_path_buf()),
            client_config: dir.path().join("client.toml"),
            nodes: Vec::new(),
            spare: None,
            cloud: None,
        };
        assert_eq!(
            abort(&inv, Duration::ZERO).await.unwrap(),
            "no drill is running"
        );
        let running = Running {
            drill: "d1".into(),
            pid: 0,
            undo: vec![Step {
                what: "heal".into(),
                command: format!("touch {}", healed.display()),
                builtin: None,
            }],
        };
        write_json(&running_path(&inv), &running).unwrap();
        assert!(refuse_overlap(&inv)
            .unwrap_err()
            .contains("drill d1 is running"));
        let said = abort(&inv, Duration::from_millis(300)).await.unwrap();
        assert!(said.contains("healed here"), "{said}");
        assert!(healed.exists());
        assert!(!running_path(&inv).exists());
        std::fs::write(
            dir.path().join(LAST_FILE),
            canon_node_clock_ms().to_string(),
        )
        .unwrap();
        assert!(refuse_overlap(&inv).unwrap_err().contains("at least"));
    }
}
