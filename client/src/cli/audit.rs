//! `canon audit [--alias X] [--user U] [--since T] [--json]`: the audit
//! records of every Raft group, oldest first; `canon audit verify [--file
//! F]`: recomputes every group's hash chain, from the cluster or from an
//! exported file, and names the first broken record (exit 1); with
//! `--replicas`, every node's own replica, compared (`audit/replicas.rs`);
//! `canon audit
//! export [--out F]`: every record as JSON lines, the form `verify --file`
//! reads. The hashes are recomputed here, from the records as the node
//! holds them: the node's word is not taken for it.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use canon_client::audit::{AuditQuery, FetchedChain};
use canon_trust::audit::{verify, Anchor, AuditRecord, ChainBreak};
use clap::{Args, Subcommand};

use super::common::{self, Conn, Failure, Outcome};
use super::table;

mod replicas;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub verb: Option<AuditVerb>,
    /// Only records about this process alias.
    #[arg(long)]
    pub alias: Option<String>,
    /// Only records of commands this user sent.
    #[arg(long)]
    pub user: Option<String>,
    /// Only records at or after this time (2026-11-22T06:30:00Z, 06:30,
    /// -10m, -2h, -1d, now, or Unix milliseconds).
    #[arg(long, allow_hyphen_values = true)]
    pub since: Option<String>,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Subcommand)]
pub enum AuditVerb {
    /// Recompute every group's hash chain and name the first broken record
    /// (exit 1 if one is).
    Verify {
        /// Check an exported file (JSON lines) instead of the cluster.
        #[arg(long, conflicts_with = "replicas")]
        file: Option<PathBuf>,
        /// Ask every node for its own replica's chains, check each, and
        /// compare them: every replica must hold the same hash at the
        /// newest record all of them have (exit 1 if one differs).
        #[arg(long)]
        replicas: bool,
    },
    /// Write every record as JSON lines (to stdout, or FILE).
    Export {
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub async fn run(args: AuditArgs) -> Outcome {
    match &args.verb {
        None => list(&args).await,
        Some(AuditVerb::Verify {
            file: Some(file), ..
        }) => verify_file(file, args.conn.json),
        Some(AuditVerb::Verify {
            file: None,
            replicas: true,
        }) => replicas::verify_replicas(&args.conn).await,
        Some(AuditVerb::Verify { file: None, .. }) => verify_cluster(&args.conn).await,
        Some(AuditVerb::Export { out }) => export(&args.conn, out.as_deref()).await,
    }
}

async fn list(args: &AuditArgs) -> Outcome {
    let since_ms = args
        .since
        .as_deref()
        .map(common::parse_time)
        .transpose()?
        .unwrap_or(0);
    let query = AuditQuery {
        alias: args.alias.clone().unwrap_or_default(),
        user: args.user.clone().unwrap_or_default(),
        since_ms,
        ..AuditQuery::default()
    };
    let client = common::connect(&args.conn)?;
    let chains = client.audit_chains(&query).await?;
    let mut records = Vec::new();
    for chain in &chains {
        for line in &chain.records {
            records.push(parse(chain.head.group, line)?);
        }
    }
    records.sort_by_key(|r| (r.entry.at, r.entry.group, r.entry.seq));
    if args.conn.json {
        let values: Vec<serde_json::Value> = records
            .iter()
            .filter_map(|r| serde_json::to_value(r).ok())
            .collect();
        common::print_json(&serde_json::Value::Array(values));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = records.iter().map(row).collect();
    say!(
        "{}",
        table::render(
            &[
                "Time (UTC)",
                "Group/Seq",
                "Principal",
                "Action",
                "Target",
                "Decision",
                "Outcome",
                "Detail"
            ],
            &rows
        )
    );
    Ok(())
}

/// One record as a table row.
fn row(r: &AuditRecord) -> Vec<String> {
    let e = &r.entry;
    let (y, mo, d, h, mi, s) = common::civil(e.at);
    let principal = match &e.principal {
        Some(p) if p.root => format!("{} (root)", p.user),
        Some(p) => p.user.to_string(),
        None => "conductor".into(),
    };
    let target = e
        .target
        .alias
        .as_ref()
        .map(ToString::to_string)
        .or_else(|| e.target.account.as_ref().map(|a| format!("account {a}")))
        .unwrap_or_else(|| "-".into());
    // An outcome with its reason (`refused: user … may not …`) shows the
    // word in its column and the reason with the detail, so that one long
    // refusal does not push the detail column off the screen.
    let (outcome, reason) = e
        .outcome
        .split_once(": ")
        .unwrap_or((e.outcome.as_str(), ""));
    let mut detail = [reason, e.detail.as_deref().unwrap_or_default()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if e.dropped > 0 {
        detail = format!("{detail} ({} earlier refusals not recorded)", e.dropped);
    }
    vec![
        format!("{y}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"),
        format!("{}/{}", e.group, e.seq),
        principal,
        e.action.to_string(),
        target,
        e.decision.effect.to_string(),
        outcome.to_string(),
        detail.trim().to_string(),
    ]
}

/// A record's JSON line, or a failure naming where it came from.
fn parse(group: u64, line: &str) -> Result<AuditRecord, Failure> {
    AuditRecord::from_json_line(line).map_err(|e| {
        Failure::new(
            1,
            format!("group {group}: a record does not read as an audit record: {e}"),
        )
    })
}

/// The outcome of checking chains: records checked per group, or the
/// first break.
fn report(checked: &BTreeMap<u64, u64>, broken: Option<ChainBreak>, json: bool) -> Outcome {
    let total: u64 = checked.values().sum();
    if json {
        let v = serde_json::json!({
            "intact": broken.is_none(),
            "records": total,
            "groups": checked,
            "broken": broken.as_ref().map(|b| serde_json::json!({
                "group": b.group, "seq": b.seq, "what": b.what})),
        });
        common::print_json(&v);
    }
    match broken {
        None => {
            if !json {
                say!(
                    "[ OK ] {total} audit records in {} chains: every hash checks out",
                    checked.len()
                );
            }
            Ok(())
        }
        Some(b) => Err(Failure::new(1, format!("audit chain broken at {b}"))),
    }
}

async fn verify_cluster(conn: &Conn) -> Outcome {
    let client = common::connect(conn)?;
    let chains = client.audit_chains(&AuditQuery::default()).await?;
    let mut checked = BTreeMap::new();
    for chain in &chains {
        match verify_fetched(chain) {
            Ok(n) => {
                checked.insert(chain.head.group, n);
            }
            Err(b) => return report(&checked, Some(b), conn.json),
        }
    }
    report(&checked, None, conn.json)
}

/// Checks one fetched chain from its anchor, and that it reaches the head
/// the node announced.
pub(super) fn verify_fetched(chain: &FetchedChain) -> Result<u64, ChainBreak> {
    let group = chain.head.group;
    let mut records = Vec::new();
    for (i, line) in chain.records.iter().enumerate() {
        let r = AuditRecord::from_json_line(line).map_err(|e| ChainBreak {
            group,
            seq: chain.head.anchor_seq + i as u64 + 1,
            what: format!("does not read as an audit record: {e}"),
        })?;
        records.push(r);
    }
    let anchor = Anchor {
        seq: chain.head.anchor_seq,
        hash: chain.head.anchor_hash.clone(),
    };
    let n = verify(group, &anchor, &records)?;
    let head = records.iter().find(|r| r.entry.seq == chain.head.head_seq);
    match head {
        Some(r) if r.hash != chain.head.head_hash => Err(ChainBreak {
            group,
            seq: r.entry.seq,
            what: format!(
                "the node announced head hash {}, the record says {}",
                chain.head.head_hash, r.hash
            ),
        }),
        None if chain.head.head_seq > chain.head.anchor_seq => Err(ChainBreak {
            group,
            seq: chain.head.head_seq,
            what: "the node announced it as the head, but did not send it".into(),
        }),
        _ => Ok(n),
    }
}

fn verify_file(file: &Path, json: bool) -> Outcome {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::new(1, format!("cannot read {}: {e}", file.display())))?;
    let mut groups: BTreeMap<u64, Vec<AuditRecord>> = BTreeMap::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let r = AuditRecord::from_json_line(line).map_err(|e| {
            Failure::new(
                1,
                format!(
                    "{} line {}: not an audit record: {e}",
                    file.display(),
                    i + 1
                ),
            )
        })?;
        groups.entry(r.entry.group).or_default().push(r);
    }
    let mut checked = BTreeMap::new();
    for (group, records) in &groups {
        // A file alone starts where it starts: its first record's prev is
        // taken as the anchor.
        let anchor = records
            .first()
            .map(|r| Anchor {
                seq: r.entry.seq.saturating_sub(1),
                hash: r.prev.to_string(),
            })
            .unwrap_or_default();
        match verify(*group, &anchor, records) {
            Ok(n) => {
                checked.insert(*group, n);
            }
            Err(b) => return report(&checked, Some(b), json),
        }
    }
    report(&checked, None, json)
}

async fn export(conn: &Conn, out: Option<&Path>) -> Outcome {
    let client = common::connect(conn)?;
    let chains = client.audit_chains(&AuditQuery::default()).await?;
    let mut text = String::new();
    let mut n = 0;
    for chain in &chains {
        for line in &chain.records {
            text.push_str(line);
            text.push('\n');
            n += 1;
        }
    }
    match out {
        Some(path) => {
            std::fs::write(path, text)
                .map_err(|e| Failure::new(1, format!("cannot write {}: {e}", path.display())))?;
            eprintln!(
                "[ OK ] {n} audit records of {} groups written to {}",
                chains.len(),
                path.display()
            );
        }
        None => {
            // A closed stdout (`| head`) is not worth a failure.
            let _ = std::io::stdout().write_all(text.as_bytes());
        }
    }
    Ok(())
}
