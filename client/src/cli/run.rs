//! `canon run FILE -a ALIAS` and `canon update ALIAS FILE`: compile locally
//! (a compile error prints its diagnostic and nothing is sent), then send
//! the signed command. `--dry-run` prints the requests the conductor would
//! make; `--wait` follows the job until it ends ([`super::wait`]).

use std::path::{Path, PathBuf};

use canon_client::{pb, Client, ProcessOptions};
use canon_lang::{compile_file, Options};
use clap::Args;
use serde_json::json;

use super::common::{self, Conn, Failure, Outcome};
use super::status::{print_summary_table, summary_json};
use super::wait::{wait_job, Target, WaitArgs};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The composition (`.lw` file).
    pub file: PathBuf,
    /// The new process's alias.
    #[arg(short = 'a', long)]
    pub alias: String,
    /// The account to run in (see `canon account list`). Default: the
    /// cluster's default account.
    #[arg(long)]
    pub account: Option<String>,
    /// Print the requests the conductor would make; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Adopt existing resources that match the declaration (its importId,
    /// else its identifying properties) instead of creating them; with
    /// --dry-run, print what each declaration adopts.
    #[arg(long)]
    pub import: bool,
    /// Accepted for scripts (run and update never ask; see --dry-run).
    #[arg(short = 'y', long = "yes")]
    pub yes: bool,
    #[command(flatten)]
    pub wait: WaitArgs,
    /// Time between the process's enforcement ticks (e.g. 5s, 2m; at least
    /// 1s). Default: the cluster's.
    #[arg(long, value_name = "DURATION")]
    pub tick: Option<String>,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The process to update.
    pub alias: String,
    /// The new composition (`.lw` file).
    pub file: PathBuf,
    /// Print the requests the conductor would make; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Accepted for scripts (run and update never ask; see --dry-run).
    #[arg(short = 'y', long = "yes")]
    pub yes: bool,
    #[command(flatten)]
    pub wait: WaitArgs,
    /// A new time between the process's enforcement ticks (e.g. 5s; at
    /// least 1s). Default: keep the current one.
    #[arg(long, value_name = "DURATION")]
    pub tick: Option<String>,
    #[command(flatten)]
    pub conn: Conn,
}

/// The options of a run or update from its flags.
fn options(tick: Option<&str>, dry_run: bool) -> Result<ProcessOptions, Failure> {
    let tick_interval = tick
        .map(canon_model::parse_duration)
        .transpose()
        .map_err(|e| Failure::new(2, format!("--tick: {e}")))?;
    if let Some(d) = tick_interval {
        // The cluster refuses anything else too; say so before sending.
        if !(canon_model::MIN_TICK_INTERVAL..=canon_model::MAX_TICK_INTERVAL).contains(&d) {
            return Err(Failure::new(
                2,
                format!("--tick {d:?} is out of range: use 1s to 24h"),
            ));
        }
    }
    Ok(ProcessOptions {
        tick_interval,
        dry_run,
        account: None,
        import: false,
    })
}

/// Compiles `file`, printing what the compiler says (unless `json`).
pub fn compile(file: &Path, json: bool) -> Result<pb::CompiledComposition, Failure> {
    let shown = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    if !json {
        say!("Compiling composition {}", shown.display());
    }
    let out = compile_file(file, Options::default())
        .map_err(|e| Failure::new(1, format!("cannot read {}: {e}", file.display())))?;
    match &out.compiled {
        Some(c) => {
            if !json {
                if !out.diagnostics.is_empty() {
                    eprintln!("{}", out.render());
                }
                say!("[ OK ] Successfully compiled. No errors.\n");
            }
            Ok(pb::CompiledComposition {
                bytes: c.encode(),
                source_hash: c.source_hash.clone(),
            })
        }
        None => {
            if json {
                common::print_json(&json!({"ok": false, "diagnostics": out.to_json()}));
                Err(Failure::new(1, ""))
            } else {
                eprintln!("[ ERROR ] Error compiling Canon composition:\n");
                eprintln!("{}", out.render());
                Err(Failure::new(1, ""))
            }
        }
    }
}

pub async fn run(args: RunArgs) -> Outcome {
    let shown = std::fs::canonicalize(&args.file).unwrap_or_else(|_| args.file.clone());
    if !args.conn.json {
        say!(
            "[ canon run ] Running {} with the alias {:?}\n",
            shown.display(),
            args.alias
        );
    }
    let mut opts = options(args.tick.as_deref(), args.dry_run)?;
    opts.account = args.account.clone();
    opts.import = args.import;
    let timeout = args.wait.timeout()?;
    let composition = compile(&args.file, args.conn.json)?;
    let client = common::connect(&args.conn)?;
    if args.dry_run {
        let r = client.run_with(&args.alias, composition, &opts).await?;
        common::print_json(&common::plan_value(&r.plan_json));
        return Ok(());
    }
    if !args.conn.json {
        say!("Requesting the Conductor to create and run corresponding process...");
    }
    let r = client.run_with(&args.alias, composition, &opts).await?;
    if args.wait.wait {
        let target = Target::of(&args.alias, &r, "RUN");
        wait_job(&client, &target, timeout, args.conn.json).await?;
    }
    print_reply(
        &client,
        &args.alias,
        &r,
        args.conn.json,
        "Process created and running",
    )
    .await
}

async fn print_reply(
    client: &Client,
    alias: &str,
    r: &pb::CommandReply,
    json: bool,
    done: &str,
) -> Outcome {
    // After --wait the summary has moved on: show it as it is now.
    let now = client.status(alias, false).await.ok();
    let p = now
        .and_then(|s| s.processes.into_iter().next())
        .or_else(|| r.process.clone());
    if json {
        common::print_json(&json!({
            "job": r.job,
            "log_index": r.log_index,
            "message": r.message,
            "process": p.as_ref().map(summary_json),
        }));
        return Ok(());
    }
    say!("[ DONE ] {done}. Details:\n");
    if let Some(p) = p {
        print_summary_table(&[p]);
    }
    say!("\n[ HELP ] Run the 'canon status' command to view details and status for all Canon processes.");
    Ok(())
}

pub async fn update(args: UpdateArgs) -> Outcome {
    if !args.conn.json && !args.dry_run {
        say!(
            "[ canon update ] Updating process {:?} with {}\n",
            args.alias,
            args.file.display()
        );
    }
    let opts = options(args.tick.as_deref(), args.dry_run)?;
    let timeout = args.wait.timeout()?;
    let composition = compile(&args.file, args.conn.json || args.dry_run)?;
    let client = common::connect(&args.conn)?;
    if args.dry_run {
        let r = client.update_with(&args.alias, composition, &opts).await?;
        let fid = r
            .process
            .as_ref()
            .map(|p| p.fid.clone())
            .unwrap_or_default();
        common::print_json(&json!({
            "fid": fid,
            "job_id": r.job.to_string(),
            "requests": common::plan_value(&r.plan_json),
        }));
        return Ok(());
    }
    let r = client.update_with(&args.alias, composition, &opts).await?;
    if args.wait.wait {
        let target = Target::of(&args.alias, &r, "UPDATE");
        wait_job(&client, &target, timeout, args.conn.json).await?;
    }
    print_reply(&client, &args.alias, &r, args.conn.json, "Process updated").await
}
