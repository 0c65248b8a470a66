//! `canon fleet rotate ALIAS [--fleet NAME | --all] [--dry-run]`: a rolling
//! rotation on demand. Every fleet member (or those of one fleet, or with
//! `--all` every instance of the process) launched before the command is
//! replaced, surge first and rationed by its fleet's `maxSurge` and
//! `maxUnavailable`, like a rotation for age. `--dry-run` lists the
//! instances it would replace and in how many steps, and changes nothing.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::common::{self, Conn, Outcome};
use super::table;

#[derive(Debug, Args)]
pub struct FleetArgs {
    #[command(subcommand)]
    pub command: FleetCommand,
}

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Replace a process's fleet members (or every instance, --all)
    /// launched before now, rolling, with capacity held.
    Rotate(RotateArgs),
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The process.
    pub alias: String,
    /// Only the members of this fleet (its `name`); by default every
    /// fleet member of the process.
    #[arg(long, conflicts_with = "all")]
    pub fleet: Option<String>,
    /// Every instance of the process, in a fleet or not.
    #[arg(long)]
    pub all: bool,
    /// List the instances that would be replaced and in how many steps;
    /// change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub conn: Conn,
}

pub async fn run(args: FleetArgs) -> Outcome {
    match args.command {
        FleetCommand::Rotate(args) => rotate(args).await,
    }
}

async fn rotate(args: RotateArgs) -> Outcome {
    let client = common::connect(&args.conn)?;
    let fleet = args.fleet.as_deref().unwrap_or_default();
    let r = client
        .rotate_fleet(&args.alias, fleet, args.all, args.dry_run)
        .await?;
    if args.dry_run {
        let planned = common::plan_value(&r.plan_json);
        if args.conn.json {
            common::print_json(&planned);
        } else {
            print_replaced(&planned);
            say!("{}", r.message);
        }
        return Ok(());
    }
    if args.conn.json {
        common::print_json(&json!({"message": r.message, "log_index": r.log_index}));
    } else {
        say!("[ Done ] {}", r.message);
    }
    Ok(())
}

/// The table of a rotation's dry run: each instance it would replace.
fn print_replaced(planned: &Value) {
    let rows: Vec<Vec<String>> = planned["replace"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|r| {
            ["name", "cloud_id", "fleet"]
                .iter()
                .map(|k| r[k].as_str().unwrap_or("-").to_string())
                .collect()
        })
        .collect();
    say!("{}", table::render(&["Name", "Cloud Id", "Fleet"], &rows));
}
