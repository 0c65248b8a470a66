//! `canon cluster status`: members (and whether they answered), and every
//! group's leader, term, log position, recorded placement and each
//! follower's lag, as the group's leader reports them (the answering node
//! asks every member). `canon cluster remove NODE_ID`: takes a member out
//! (asks for confirmation without `-y`, like `canon kill`).
//! `canon cluster join-token`: a one-time token that admits one new node
//! to a cluster without TLS.

use clap::{Args, Subcommand};
use serde_json::json;

use canon_client::pb;

use super::common::{self, Conn, Failure, Outcome};
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
    /// Take a node out of the cluster: its shard replicas move to the other
    /// members, then it leaves every group and stops serving (canond
    /// exits). Refused if fewer members than replicas per shard would
    /// remain (exit 1), if no member has that id (exit 4), or if the
    /// cluster does not know the signing key (exit 6).
    Remove(RemoveArgs),
    /// Make a one-time join token (needs cluster.join): the new node
    /// presents it with `canond --join ADDR --join-token TOKEN`. Only for
    /// clusters without TLS (with TLS, a node joins with its own
    /// certificate). The token is shown once; the cluster keeps its hash.
    JoinToken(JoinTokenArgs),
}

#[derive(Debug, Args)]
pub struct JoinTokenArgs {
    /// How long it admits a node (e.g. 30m, 2h; at most 7 days).
    #[arg(long, default_value = "1h")]
    pub ttl: String,
    /// Admit only this node id (default: any id).
    #[arg(long, value_name = "NODE_ID")]
    pub node: Option<u64>,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The node id to remove (as `canon cluster status` lists it).
    #[arg(value_name = "NODE_ID")]
    pub node: u64,
    /// Show the placement the removal would make; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long = "yes")]
    pub yes: bool,
    #[command(flatten)]
    pub conn: Conn,
}

pub async fn run(args: ClusterArgs) -> Outcome {
    match args.command {
        ClusterCommand::Status { conn } => status(conn).await,
        ClusterCommand::Remove(args) => remove(args).await,
        ClusterCommand::JoinToken(args) => join_token(args).await,
    }
}

async fn join_token(args: JoinTokenArgs) -> Outcome {
    let ttl = canon_model::parse_duration(&args.ttl)
        .map_err(|e| Failure::new(2, format!("--ttl: {e}")))?;
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
    if args.node == Some(0) {
        return Err(Failure::new(2, "--node: node id 0 is reserved"));
    }
    let client = common::connect(&args.conn)?;
    let r = client
        .create_join_token(ttl_ms, args.node.unwrap_or(0))
        .await?;
    if args.conn.json {
        common::print_json(&json!({
            "token": r.token, "expires_ms": r.expires_ms,
            "token_hash": r.token_hash, "node": args.node,
        }));
        return Ok(());
    }
    println!("{}", r.token);
    let whom = args
        .node
        .map_or("one node".to_string(), |n| format!("node {n}"));
    eprintln!(
        "admits {whom} once, until {} (UTC): canond --join ADDR --join-token TOKEN",
        common::date_time(r.expires_ms)
    );
    Ok(())
}

async fn remove(args: RemoveArgs) -> Outcome {
    let client = common::connect(&args.conn)?;
    if !args.dry_run
        && !args.yes
        && !super::lifecycle::confirm(&format!(
            "Remove node {} from the cluster (its replicas move to the other members)?",
            args.node
        ))
    {
        return Err(Failure::new(
            1,
            "not confirmed; nothing was done (use -y to skip the question)",
        ));
    }
    let r = client.remove_member(args.node, args.dry_run).await?;
    if args.conn.json {
        let placement: Vec<_> = r
            .placement
            .iter()
            .map(|p| json!({"shard": p.shard, "group": p.group, "replicas": p.replicas}))
            .collect();
        common::print_json(&json!({
            "node": args.node, "dry_run": args.dry_run, "message": r.message,
            "members": r.members, "placement": placement,
        }));
        return Ok(());
    }
    say!("[ Done ] {}", r.message);
    say!(
        "Members: {}",
        r.members
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

async fn status(conn: Conn) -> Outcome {
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
        let placement: Vec<_> = s
            .placement
            .iter()
            .map(|p| json!({"shard": p.shard, "group": p.group, "replicas": p.replicas}))
            .collect();
        common::print_json(&json!({"cluster_id": s.cluster_id, "node": s.node,
            "shard_count": s.shard_count, "members": members, "groups": groups, "placement": placement}));
        return Ok(());
    }
    say!(
        "Canon cluster {} ({} shards), asked through node {}\n",
        s.cluster_id,
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
                ids(&g.voters),
                s.placement
                    .iter()
                    .find(|p| p.group == g.group)
                    .map_or_else(|| "-".into(), |p| ids(&p.replicas)),
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
                "Placed",
                "Follower Lag"
            ],
            &rows
        )
    );
    Ok(())
}

fn ids(v: &[u64]) -> String {
    v.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
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
