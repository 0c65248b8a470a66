//! `canon cluster status`: members (and whether they answered), and every
//! group's leader, term, log position and each follower's lag, as the
//! group's leader reports them (the answering node asks every member).

use clap::{Args, Subcommand};
use serde_json::json;

use canon_client::pb;

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
            .map(|m| json!({"node": m.node, "addr": m.addr, "reachable": m.reachable, "error": m.error}))
            .collect();
        let groups: Vec<_> = s
            .groups
            .iter()
            .map(|g| {
                let followers: Vec<_> = g
                    .followers
                    .iter()
                    .map(|f| {
                        json!({"node": f.node, "matched_index": f.matched_index,
                                    "matched_known": f.matched_known, "lag": f.lag})
                    })
                    .collect();
                json!({"group": g.group, "leader": g.leader, "term": g.term,
                       "last_log_index": g.last_log_index, "applied_index": g.applied_index,
                       "voters": g.voters, "learners": g.learners,
                       "reported_by": g.reported_by, "followers": followers})
            })
            .collect();
        common::print_json(
            &json!({"node": s.node, "shard_count": s.shard_count, "members": members, "groups": groups}),
        );
        return Ok(());
    }
    say!(
        "Canon cluster ({} shards), asked through node {}\n",
        s.shard_count,
        s.node
    );
    let rows: Vec<Vec<String>> = s
        .members
        .iter()
        .map(|m| {
            vec![
                m.node.to_string(),
                m.addr.clone(),
                if m.reachable {
                    "up".into()
                } else {
                    format!("unreachable: {}", m.error)
                },
            ]
        })
        .collect();
    say!("{}\n", table::render(&["Node", "Address", "State"], &rows));
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
                lag(g),
            ]
        })
        .collect();
    say!(
        "{}",
        table::render(
            &[
                "Group",
                "Leader",
                "Term",
                "Last Log",
                "Applied",
                "Voters",
                "Follower Lag"
            ],
            &rows
        )
    );
    Ok(())
}

/// Each follower's lag as the leader reports it (`node:entries`), or why
/// it is unknown.
fn lag(g: &pb::GroupView) -> String {
    if g.leader == 0 || g.reported_by != g.leader {
        return "unknown (leader did not answer)".into();
    }
    g.followers
        .iter()
        .map(|f| {
            if f.matched_known {
                format!("{}:{}", f.node, f.lag)
            } else {
                format!("{}:?", f.node)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
