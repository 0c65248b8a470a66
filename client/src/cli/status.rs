//! `canon status` (the table of processes) and `canon status ALIAS` (the
//! process and every resource with its cloud id and observed properties).

use canon_client::pb;
use clap::Args;
use serde_json::{json, Map, Value};

use super::common::{self, Conn, Outcome};
use super::table;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One process, with its resources.
    pub alias: Option<String>,
    /// Include killed processes.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub conn: Conn,
}

pub fn summary_json(p: &pb::ProcessSummary) -> Value {
    json!({
        "state": p.state,
        "updated": p.updated_ms,
        "created": p.created_ms,
        "fid": p.fid,
        "alias": p.alias,
        "account": p.account,
        "last_message": p.last_message,
        "source_hash": p.source_hash,
        "group": p.group,
        "tick_interval_ms": p.tick_interval_ms,
    })
}

pub fn print_summary_table(ps: &[pb::ProcessSummary]) {
    let rows: Vec<Vec<String>> = ps
        .iter()
        .map(|p| {
            vec![
                p.state.clone(),
                common::clock(p.updated_ms),
                common::clock(p.created_ms),
                p.fid.clone(),
                p.alias.clone(),
                p.last_message.clone(),
            ]
        })
        .collect();
    say!(
        "{}",
        table::render(
            &[
                "State",
                "Updated",
                "Created",
                "FID",
                "Alias",
                "Last Message"
            ],
            &rows
        )
    );
}

pub async fn run(args: StatusArgs) -> Outcome {
    let client = common::connect(&args.conn)?;
    let alias = args.alias.clone().unwrap_or_default();
    let reply = client.status(&alias, args.all).await?;
    if alias.is_empty() {
        if args.conn.json {
            common::print_json(&Value::Array(
                reply.processes.iter().map(summary_json).collect(),
            ));
            return Ok(());
        }
        let account = reply
            .processes
            .first()
            .map(|p| p.account.clone())
            .unwrap_or_default();
        say!(
            "Canon Status Report for {} - {}",
            if account.is_empty() {
                "(no processes)"
            } else {
                &account
            },
            common::date_time(canon_client::sign::now_ms())
        );
        print_summary_table(&reply.processes);
        return Ok(());
    }
    // One process: the demo shows it as JSON, so text and --json agree.
    let mut resources = Map::new();
    for r in &reply.resources {
        let observed: Value = if r.observed_json.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&r.observed_json).unwrap_or(Value::Null)
        };
        let key = if r.name.is_empty() {
            r.logical_id.clone()
        } else {
            r.name.clone()
        };
        resources.insert(
            key,
            json!({
                "kind": r.kind,
                "logical_id": r.logical_id,
                "region": r.region,
                "cloud_id": r.cloud_id,
                "observed": observed,
            }),
        );
    }
    let p = reply.processes.first();
    let mut out = p.map(summary_json).unwrap_or_else(|| json!({}));
    if let Value::Object(o) = &mut out {
        o.insert("resources".into(), Value::Object(resources));
        if !reply.observe_error.is_empty() {
            o.insert(
                "observe_error".into(),
                Value::String(reply.observe_error.clone()),
            );
        }
    }
    common::print_json(&out);
    Ok(())
}
