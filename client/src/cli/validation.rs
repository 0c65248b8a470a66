//! `canon validation add NAME FILE.lw | list | remove NAME | report`: the
//! organisation's validation modules (issue #20 §4), stored in the cluster
//! and evaluated by every node before it takes a run or an update;
//! authorised by `validation.add`, `validation.remove` and
//! `validation.list`. The module is checked here first, so a mistake shows
//! as the compiler's diagnostics without a round trip.

use std::path::PathBuf;

use canon_client::pb;
use canon_lang::validation::{check, ValidationSource};
use clap::{Args, Subcommand};
use serde_json::json;

use super::common::{self, Conn, Failure, Outcome};

#[derive(Debug, Args)]
pub struct ValidationArgs {
    #[command(subcommand)]
    pub verb: ValidationVerb,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Subcommand)]
pub enum ValidationVerb {
    /// Store a validation module (replacing one of that name).
    Add {
        /// What its failures are named by (`NAME.validation`).
        name: String,
        /// The module (it imports the standard library only).
        file: PathBuf,
        #[arg(long)]
        dry_run: bool,
    },
    /// The stored modules and their validations.
    List,
    /// Drop a stored module.
    Remove {
        name: String,
        #[arg(long)]
        dry_run: bool,
    },
    /// The live processes that fail the stored validations (they go on
    /// running: a validation refuses new runs and updates only).
    Report,
}

pub async fn run(args: ValidationArgs) -> Outcome {
    let json = args.conn.json;
    match args.verb {
        ValidationVerb::Add {
            name,
            file,
            dry_run,
        } => {
            let source = read_module(&name, &file)?;
            let client = common::connect(&args.conn)?;
            let reply = client
                .validation_add(&source.name, &source.file, &source.text, dry_run)
                .await?;
            print_message(&reply, dry_run, json);
            Ok(())
        }
        ValidationVerb::Remove { name, dry_run } => {
            let client = common::connect(&args.conn)?;
            let reply = client.validation_remove(&name, dry_run).await?;
            print_message(&reply, dry_run, json);
            Ok(())
        }
        ValidationVerb::List => list(&common::connect(&args.conn)?, json).await,
        ValidationVerb::Report => report(&common::connect(&args.conn)?, json).await,
    }
}

/// The module at `path`, checked as the node will check it.
fn read_module(name: &str, path: &PathBuf) -> Result<ValidationSource, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::new(1, format!("{}: {e}", path.display())))?;
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("{name}.lw"));
    let source = ValidationSource::new(name, file, text);
    let checked = check(&source);
    if !checked.compiles() {
        return Err(Failure::new(1, checked.render()));
    }
    Ok(source)
}

fn print_message(reply: &pb::CommandReply, dry_run: bool, json: bool) {
    if json {
        common::print_json(&json!({"dry_run": dry_run, "message": reply.message}));
    } else {
        say!("{}", reply.message);
    }
}

async fn list(client: &canon_client::Client, json: bool) -> Outcome {
    let r = client.validations(false).await?;
    if json {
        let rows: Vec<serde_json::Value> = r
            .validations
            .iter()
            .map(|v| {
                json!({"name": v.name, "file": v.file, "validations": v.validations,
                       "added_by": v.added_by, "added_ms": v.added_ms})
            })
            .collect();
        common::print_json(&json!({ "validations": rows }));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = r
        .validations
        .iter()
        .map(|v| {
            vec![
                v.name.clone(),
                v.file.clone(),
                v.validations.join(", "),
                if v.added_by.is_empty() {
                    "root".into()
                } else {
                    v.added_by.clone()
                },
            ]
        })
        .collect();
    let header = ["NAME", "FILE", "VALIDATIONS", "ADDED BY"];
    say!("{}", super::table::render(&header, &rows));
    Ok(())
}

async fn report(client: &canon_client::Client, json: bool) -> Outcome {
    let r = client.validations(true).await?;
    if json {
        let rows: Vec<serde_json::Value> = r
            .report
            .iter()
            .map(|p| {
                let failures: Vec<serde_json::Value> = p
                    .failures
                    .iter()
                    .map(|f| {
                        json!({"validation": f.validation, "message": f.message,
                               "file": f.file, "line": f.line, "column": f.column})
                    })
                    .collect();
                json!({"alias": p.alias, "failures": failures})
            })
            .collect();
        common::print_json(&json!({"processes_checked": r.processes_checked, "failing": rows}));
        return Ok(());
    }
    say!(
        "{} of {} live process(es) fail the stored validations",
        r.report.len(),
        r.processes_checked
    );
    for p in &r.report {
        say!("{}:", p.alias);
        for f in &p.failures {
            say!(
                "  {}: {} ({}:{}:{})",
                f.validation,
                f.message,
                f.file,
                f.line,
                f.column
            );
        }
    }
    Ok(())
}
