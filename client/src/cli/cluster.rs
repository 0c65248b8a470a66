//! `canon cluster status`: members, and every group's leader, term and log
//! position as the answering node sees them.

use clap::{Args, Subcommand};
use serde_json::json;

use super::common::{self, Conn, Outcome};
use super::table;

#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Members, groups, leaders, terms, log positions.
    Status {
        #[command(flatten)]
        conn: Conn,
    },
}

pub async fn run(args: ClusterArgs) -> Outcome {
    let ClusterCommand::Status { conn } = args.command;
    let client = common::connect(&conn)?;
    let s = client.cluster_status().await?;
    if conn.json {
        let members: Vec<_> = s
            .members
            .iter()
            .map(|m| json!({"node": m.node, "addr": m.addr}))
            .collect();
        let groups: Vec<_> = s
            .groups
            .iter()
            .map(|g| {
                json!({"group": g.group, "leader": g.leader, "term": g.term,
                       "last_log_index": g.last_log_index, "applied_index": g.applied_index, "voters": g.voters})
            })
            .collect();
        common::print_json(
            &json!({"node": s.node, "shard_count": s.shard_count, "members": members, "groups": groups}),
        );
        return Ok(());
    }
    say!(
        "Canon cluster, as node {} sees it ({} shards)\n",
        s.node,
        s.shard_count
    );
    let rows: Vec<Vec<String>> = s
        .members
        .iter()
        .map(|m| vec![m.node.to_string(), m.addr.clone()])
        .collect();
    say!("{}\n", table::render(&["Node", "Address"], &rows));
    let rows: Vec<Vec<String>> = s
        .groups
        .iter()
        .map(|g| {
            vec![
                if g.group == 0 {
                    "meta".into()
                } else {
                    format!("shard {}", g.group)
                },
                if g.leader == 0 {
                    "-".into()
                } else {
                    g.leader.to_string()
                },
                g.term.to_string(),
                g.last_log_index.to_string(),
                g.applied_index.to_string(),
                g.voters
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ]
        })
        .collect();
    say!(
        "{}",
        table::render(
            &["Group", "Leader", "Term", "Last Log", "Applied", "Voters"],
            &rows
        )
    );
    Ok(())
}
