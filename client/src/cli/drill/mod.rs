//! `canon drill`: Chaos Monkey and ChAP practice on a real deployment. A
//! drill checks the cluster's steady state, injects one fault from the
//! catalogue (`canon drill list`) into real processes or their network
//! namespaces — named by an inventory (`deploy/netns/up.sh` writes one) —
//! while a bounded load of signed commands runs, heals it, and reports
//! what the load and the cluster went through against the hypothesis.
//!
//! - `catalogue`: the faults and targets, and the blast radius;
//! - `inventory`: the deployment as drills see it;
//! - `inject`: a fault as inject and undo shell steps;
//! - `environment`: the environment faults' steps (a member replaced, a
//!   clock skewed) and the steps the drill carries out itself;
//! - `probe`: the load and the leader watch;
//! - `report`: the numbers and the verdict;
//! - `run`: one drill from start to end, and `abort`.

mod catalogue;
mod cloud;
mod environment;
mod fencing;
mod inject;
mod inventory;
mod link;
mod probe;
mod report;
mod run;

use std::path::PathBuf;
use std::time::Duration;

use canon_client::Client;
use clap::{Args, Subcommand};

use super::common::{self, Conn, Failure, Outcome};
use catalogue::{Fault, Target};
use inventory::Inventory;
use report::{Hypothesis, Report};
use run::{DrillOptions, DRILL_INTERVAL_MIN};

#[derive(Debug, Args)]
pub struct DrillArgs {
    #[command(subcommand)]
    pub command: DrillCommand,
}

#[derive(Debug, Subcommand)]
pub enum DrillCommand {
    /// The faults, each with what it does.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Inject one fault under load, heal it, and report.
    Run(RunArgs),
    /// Every fault of the catalogue, one at a time.
    Suite(SuiteArgs),
    /// Stop the running drill and heal its fault (from any shell).
    Abort {
        /// The deployment's inventory.toml.
        #[arg(long)]
        inventory: PathBuf,
    },
}

/// What every drill shares.
#[derive(Debug, Args)]
pub struct Common {
    /// The deployment's inventory.toml (deploy/netns/up.sh writes one).
    #[arg(long)]
    pub inventory: PathBuf,
    /// How long the fault lasts (e.g. 10s).
    #[arg(long, default_value = "8s")]
    pub duration: String,
    /// Load before the fault and after healing, each (the baseline).
    #[arg(long, default_value = "4s")]
    pub steady: String,
    /// Seed for random targets and the drill id (default: the clock).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Let a fault take more than a minority of the members.
    #[arg(long)]
    pub allow_quorum_loss: bool,
    /// clock-skew: how far the target's clock goes, whole seconds with a
    /// sign (e.g. +90s, -2m).
    #[arg(long, default_value = "+90s", allow_hyphen_values = true)]
    pub skew: String,
    /// delay-peers: how long each Raft message to or from the target
    /// waits (e.g. 200ms).
    #[arg(long, default_value = "200ms")]
    pub delay: String,
    /// delay-peers: up to how much more each message waits, drawn per
    /// message (e.g. 50ms).
    #[arg(long, default_value = "50ms")]
    pub jitter: String,
    /// loss-peers: the share of Raft messages to or from the target that
    /// are lost, in percent.
    #[arg(long, default_value_t = 20)]
    pub loss: u8,
    /// Least share of commands that succeed while the fault is on.
    #[arg(long, default_value_t = 0.5)]
    pub fault_success_min: f64,
    /// Least share of commands that succeed before and after it.
    #[arg(long, default_value_t = 0.95)]
    pub steady_success_min: f64,
    /// Most a successful command's p99 may be, in any phase (e.g. 5s).
    #[arg(long, default_value = "5s")]
    pub p99_max: String,
    /// Most the cluster may take to converge after healing (e.g. 30s).
    #[arg(long, default_value = "30s")]
    pub converge_max: String,
    /// With a `[cloud]` in the inventory: most a resource deleted while
    /// the fault is on may take to be back after healing (e.g. 30s).
    #[arg(long, default_value = "30s")]
    pub drift_heal_max: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The fault (`canon drill list`).
    #[arg(long)]
    pub fault: String,
    /// follower, leader, meta-leader, node=N or random (default: the
    /// fault's own).
    #[arg(long)]
    pub target: Option<String>,
    /// Print the plan (every command the fault and its undo run); change
    /// nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct SuiteArgs {
    #[command(flatten)]
    pub common: Common,
}

pub async fn run(args: DrillArgs) -> Outcome {
    match args.command {
        DrillCommand::List { json } => {
            list(json);
            Ok(())
        }
        DrillCommand::Run(a) => drill_one(a).await,
        DrillCommand::Suite(a) => suite(a).await,
        DrillCommand::Abort { inventory } => {
            let inv = Inventory::load(&inventory).map_err(fail)?;
            let said = run::abort(&inv, Duration::from_secs(20))
                .await
                .map_err(fail)?;
            println!("{said}");
            Ok(())
        }
    }
}

fn fail(e: String) -> Failure {
    Failure::new(1, e)
}

fn list(json: bool) {
    if json {
        let rows: Vec<serde_json::Value> = Fault::ALL
            .iter()
            .map(|f| serde_json::json!({"fault": f.name(), "does": f.describe(), "target": f.default_target().to_string()}))
            .collect();
        common::print_json(&serde_json::Value::Array(rows));
        return;
    }
    for f in Fault::ALL {
        println!("{:<18} {}", f.name(), f.describe());
    }
}

/// A client of the inventory's cluster, with its client.toml.
fn connect(inv: &Inventory) -> Result<Client, String> {
    let conn = Conn {
        endpoints: Vec::new(),
        config: Some(inv.client_config.clone()),
        json: false,
        via: None,
    };
    let client = common::connect(&conn).map_err(|f| f.message)?;
    Ok(client.with_attempt_timeout(ATTEMPT_TIMEOUT))
}

/// A client of one node only (`endpoint`), with the inventory's key.
fn connect_to(inv: &Inventory, endpoint: &str) -> Result<Client, String> {
    let conn = Conn {
        endpoints: vec![endpoint.to_string()],
        config: Some(inv.client_config.clone()),
        json: false,
        via: None,
    };
    let client = common::connect(&conn).map_err(|f| f.message)?;
    Ok(client.with_attempt_timeout(ATTEMPT_TIMEOUT))
}

/// How long a drill's client gives one node before trying the next, as a
/// demanding user's would: a paused or cut-off node holds calls, it does
/// not fail them.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);

fn duration(flag: &str, s: &str) -> Result<Duration, Failure> {
    canon_model::parse_duration(s).map_err(|e| Failure::new(2, format!("--{flag}: {e}")))
}

fn options(c: &Common, fault: Fault, target: Target) -> Result<DrillOptions, Failure> {
    for (flag, v) in [
        ("fault-success-min", c.fault_success_min),
        ("steady-success-min", c.steady_success_min),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return Err(Failure::new(
                2,
                format!("--{flag} is a share, 0 to 1, not {v}"),
            ));
        }
    }
    let steady = duration("steady", &c.steady)?;
    let seed = c.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    Ok(DrillOptions {
        fault,
        target,
        duration: duration("duration", &c.duration)?,
        baseline: steady,
        after: steady,
        seed,
        allow_quorum_loss: c.allow_quorum_loss,
        skew_s: environment::parse_skew(&c.skew).map_err(|e| Failure::new(2, e))?,
        link: link_fault(c)?,
        every: Duration::from_millis(250),
        hypothesis: Hypothesis {
            steady_success_ratio_min: c.steady_success_min,
            fault_success_ratio_min: c.fault_success_min,
            p99_ms_max: probe::ms(duration("p99-max", &c.p99_max)?),
            converge_ms_max: probe::ms(duration("converge-max", &c.converge_max)?),
            drift_heal_ms_max: probe::ms(duration("drift-heal-max", &c.drift_heal_max)?),
        },
    })
}

/// The link fault `--delay`, `--jitter` and `--loss` describe, for
/// delay-peers (the delay) and loss-peers (the loss).
fn link_fault(c: &Common) -> Result<run::LinkFaults, Failure> {
    let ms = |flag: &str, v: &str| duration(flag, v).map(probe::ms);
    let delay = link::LinkFault {
        delay_ms: ms("delay", &c.delay)?,
        jitter_ms: ms("jitter", &c.jitter)?,
        loss_percent: 0,
    };
    let loss = link::LinkFault {
        delay_ms: 0,
        jitter_ms: 0,
        loss_percent: c.loss,
    };
    let checked = |f: link::LinkFault| f.checked().map_err(|e| Failure::new(2, e));
    Ok(run::LinkFaults {
        delay: checked(delay)?,
        loss: checked(loss)?,
    })
}

async fn drill_one(a: RunArgs) -> Outcome {
    let fault = Fault::parse(&a.fault).map_err(|e| Failure::new(2, e))?;
    let target = match &a.target {
        Some(t) => Target::parse(t).map_err(|e| Failure::new(2, e))?,
        None => fault.default_target(),
    };
    let opts = options(&a.common, fault, target)?;
    let inv = Inventory::load(&a.common.inventory).map_err(fail)?;
    let prepared = run::prepare(&inv, &opts).await.map_err(fail)?;
    if a.dry_run {
        print_plan(&prepared, a.common.json);
        return Ok(());
    }
    let report = run::run(&inv, &opts, prepared).await.map_err(fail)?;
    print_report(&report, a.common.json);
    verdict(&[report])
}

fn print_plan(p: &run::Prepared, json: bool) {
    if json {
        common::print_json(&serde_json::json!({"drill": p.drill, "dry_run": true, "plan": p.plan}));
        return;
    }
    println!(
        "drill {} (dry run: nothing changes) — fault {}",
        p.drill, p.plan.fault
    );
    for (node, role) in &p.plan.targets {
        println!("  target node {node} ({role})");
    }
    for s in &p.plan.inject {
        println!("  inject: {}", plan_line(s));
    }
    for s in &p.plan.undo {
        println!("  heal:   {}", plan_line(s));
    }
}

/// A step as the dry run shows it: a shell command after `$`, a step the
/// drill carries out itself after `=` (its CLI equivalent).
fn plan_line(s: &inject::Step) -> String {
    let mark = if s.builtin.is_some() { "=" } else { "$" };
    format!("{}  {mark} {}", s.what, s.command)
}

fn print_report(r: &Report, json: bool) {
    if json {
        common::print_json(&serde_json::to_value(r).unwrap_or_default());
    } else {
        println!("{}", r.text());
    }
}

/// Exit 1 when any drill broke the steady state.
fn verdict(reports: &[Report]) -> Outcome {
    let failed: Vec<&str> = reports
        .iter()
        .filter(|r| !r.passed)
        .map(|r| r.plan.fault.as_str())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(
            1,
            format!("the steady state broke: {}", failed.join(", ")),
        ))
    }
}

/// Every fault in turn (network faults only where the inventory has
/// namespaces), DRILL_INTERVAL_MIN apart.
async fn suite(a: SuiteArgs) -> Outcome {
    let namespaces = Inventory::load(&a.common.inventory)
        .map_err(fail)?
        .nodes
        .iter()
        .all(|n| n.namespace.is_some());
    let mut reports = Vec::new();
    let mut not_run = Vec::new();
    for fault in Fault::ALL {
        if fault.mechanism() == catalogue::Mechanism::Network && !namespaces {
            eprintln!("[ drill ] {fault}: skipped (the inventory has no network namespaces)");
            continue;
        }
        let opts = options(&a.common, fault, fault.default_target())?;
        let report = async {
            // Read again for each drill: restarts change process ids.
            let inv = Inventory::load(&a.common.inventory)?;
            let prepared = run::prepare(&inv, &opts).await?;
            run::run(&inv, &opts, prepared).await
        }
        .await;
        match report {
            Ok(report) => {
                if !a.common.json {
                    println!("{}\n", report.text());
                }
                reports.push(report);
            }
            // One fault that cannot run does not stop the others.
            Err(e) => {
                eprintln!("[ drill ] {fault}: did not run: {e}");
                not_run.push(fault.name());
            }
        }
        tokio::time::sleep(DRILL_INTERVAL_MIN + Duration::from_millis(500)).await;
    }
    if a.common.json {
        common::print_json(&serde_json::to_value(&reports).unwrap_or_default());
    }
    if !not_run.is_empty() {
        return Err(Failure::new(
            1,
            format!("did not run: {}", not_run.join(", ")),
        ));
    }
    verdict(&reports)
}
