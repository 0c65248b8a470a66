//! `canon policy get [--json]` and `canon policy apply FILE.toml
//! [--dry-run]`: the file is read and checked here first (a syntax error
//! names its line, and nothing is sent), then sent against the version
//! just read, so a change made meanwhile by someone else is refused rather
//! than overwritten. Both print the diff; `--dry-run` changes nothing.

use std::path::PathBuf;

use canon_client::ClientError;
use canon_trust::PolicyDocument;
use clap::{Args, Subcommand};
use serde_json::json;

use super::common::{self, Conn, Failure, Outcome};

#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub verb: PolicyVerb,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Subcommand)]
pub enum PolicyVerb {
    /// Print the policy (TOML; with --json, JSON) and its version.
    Get,
    /// Replace the policy with FILE; prints what changes.
    Apply {
        /// The policy document (TOML: users, accounts, roles, bindings).
        file: PathBuf,
        /// Print the diff and whether the cluster would accept it; change
        /// nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn run(args: PolicyArgs) -> Outcome {
    match &args.verb {
        PolicyVerb::Get => get(&args.conn).await,
        PolicyVerb::Apply { file, dry_run } => apply(&args.conn, file, *dry_run).await,
    }
}

async fn get(conn: &Conn) -> Outcome {
    let client = common::connect(conn)?;
    let p = client.policy_get().await?;
    if conn.json {
        let document: serde_json::Value =
            serde_json::from_str(&p.json).unwrap_or(serde_json::Value::Null);
        common::print_json(&json!({"version": p.version, "policy": document}));
    } else if p.version == 0 {
        say!("# no policy yet: only the cluster's root key is accepted");
    } else {
        say!("# policy version {}\n{}", p.version, p.toml);
    }
    Ok(())
}

/// Reads and checks a policy file as the cluster will.
fn read_file(file: &PathBuf) -> Result<String, Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::new(1, format!("cannot read {}: {e}", file.display())))?;
    let doc = PolicyDocument::from_toml(&text)
        .map_err(|e| Failure::new(1, format!("{}: {e}", file.display())))?;
    for note in doc.notes() {
        eprintln!("[ WARN ] {}: {note}", file.display());
    }
    Ok(text)
}

async fn apply(conn: &Conn, file: &PathBuf, dry_run: bool) -> Outcome {
    let text = read_file(file)?;
    let client = common::connect(conn)?;
    // The version to write against; a user who may not read the policy
    // writes against whatever is there.
    let base = match client.policy_get().await {
        Ok(p) => Some(p.version),
        Err(ClientError::Forbidden(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let reply = client.policy_put(&text, base, dry_run).await?;
    common::print_change(&reply, dry_run, conn.json);
    Ok(())
}
