//! `canon release ALIAS`: stop managing a process without deleting
//! anything. Its resources lose Canon's ownership tag and stay in the
//! cloud; the process becomes Released and its alias is free. `--dry-run`
//! lists what would be released (kind, cloud id) and changes nothing;
//! `--wait` follows the RELEASE job to its end.

use clap::Args;
use serde_json::{json, Value};

use super::common::{self, Conn, Outcome};
use super::table;
use super::wait::{wait_job, Target, WaitArgs};

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// The process to release.
    pub alias: String,
    /// List the resources that would be released; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub wait: WaitArgs,
    #[command(flatten)]
    pub conn: Conn,
}

pub async fn release(args: ReleaseArgs) -> Outcome {
    let timeout = args.wait.timeout()?;
    let client = common::connect(&args.conn)?;
    if args.dry_run {
        let r = client.release(&args.alias, true).await?;
        let listed = common::plan_value(&r.plan_json);
        if args.conn.json {
            common::print_json(&listed);
        } else {
            print_released(&listed);
            say!("{}", r.message);
        }
        return Ok(());
    }
    let r = client.release(&args.alias, false).await?;
    if args.wait.wait {
        let target = Target::of(&args.alias, &r, "RELEASE");
        wait_job(&client, &target, timeout, args.conn.json).await?;
    }
    if args.conn.json {
        common::print_json(&json!({"job": r.job, "log_index": r.log_index, "message": r.message}));
    } else if args.wait.wait {
        say!(
            "[ Done ] The conductor released the process with Alias: {} (nothing was deleted)",
            args.alias
        );
    } else {
        say!("[ Done ] {}: {}", args.alias, r.message);
    }
    Ok(())
}

/// The table of a release's dry run: kind and cloud id of each resource.
fn print_released(listed: &Value) {
    let rows: Vec<Vec<String>> = listed
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|r| {
            ["kind", "cloud_id", "region"]
                .iter()
                .map(|k| r[k].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .collect();
    say!("{}", table::render(&["Kind", "Cloud Id", "Region"], &rows));
}
