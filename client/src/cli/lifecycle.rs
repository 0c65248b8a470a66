//! `canon kill ALIAS` (asks for confirmation without `-y`; `--wait`
//! follows the KILL job to its end), `canon suspend ALIAS` and `canon
//! resume ALIAS`.

use std::io::{BufRead, Write};

use clap::Args;
use serde_json::json;

use super::common::{self, Conn, Failure, Outcome};
use super::wait::{wait_job, Target, WaitArgs};

#[derive(Debug, Args)]
pub struct KillArgs {
    /// The process to kill.
    pub alias: String,
    /// Print the delete requests the conductor would make; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long = "yes")]
    pub yes: bool,
    #[command(flatten)]
    pub wait: WaitArgs,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
pub struct StateArgs {
    /// The process.
    pub alias: String,
    /// Show what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub conn: Conn,
}

/// Asks `question` on the terminal; true only for a yes.
pub(super) fn confirm(question: &str) -> bool {
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(_) => matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes"),
        Err(_) => false,
    }
}

pub async fn kill(args: KillArgs) -> Outcome {
    let timeout = args.wait.timeout()?;
    let client = common::connect(&args.conn)?;
    if args.dry_run {
        let r = client.kill(&args.alias, true).await?;
        common::print_json(&common::plan_value(&r.plan_json));
        return Ok(());
    }
    if !args.yes
        && !confirm(&format!(
            "Kill process {:?} and delete everything it owns?",
            args.alias
        ))
    {
        return Err(Failure::new(
            1,
            "not confirmed; nothing was done (use -y to skip the question)",
        ));
    }
    if !args.conn.json {
        say!(
            "[ canon kill ] Killing running process with Alias: {}\n",
            args.alias
        );
        say!(
            "Requesting the Conductor to kill running composition with Alias: {}...",
            args.alias
        );
    }
    let r = client.kill(&args.alias, false).await?;
    if args.wait.wait {
        let target = Target::of(&args.alias, &r, "KILL");
        wait_job(&client, &target, timeout, args.conn.json).await?;
    }
    if args.conn.json {
        common::print_json(&json!({"job": r.job, "log_index": r.log_index, "message": r.message}));
    } else if args.wait.wait {
        say!(
            "[ Done ] The conductor killed the process with Alias: {}",
            args.alias
        );
    } else {
        say!(
            "[ Done ] The conductor is killing the process with Alias: {}",
            args.alias
        );
    }
    Ok(())
}

async fn set_state(args: StateArgs, suspend: bool) -> Outcome {
    let client = common::connect(&args.conn)?;
    let r = if suspend {
        client.suspend(&args.alias, args.dry_run).await?
    } else {
        client.resume(&args.alias, args.dry_run).await?
    };
    if args.conn.json {
        common::print_json(&json!({
            "message": r.message,
            "state": r.process.as_ref().map(|p| p.state.clone()),
        }));
    } else {
        say!("[ Done ] {}: {}", args.alias, r.message);
    }
    Ok(())
}

pub async fn suspend(args: StateArgs) -> Outcome {
    set_state(args, true).await
}

pub async fn resume(args: StateArgs) -> Outcome {
    set_state(args, false).await
}
