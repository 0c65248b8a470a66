//! `canon history ALIAS [--start T] [--end T]`: the jobs table (Row Id,
//! Started, Last Updated, Job Type, Jobs Ran, Job Status, Description) and
//! the drift events.

use canon_client::job_status::status_words;
use canon_client::pb;
use clap::Args;
use serde_json::json;

use super::common::{self, Conn, Outcome};
use super::table;

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The process: the live one of this alias, else the newest killed or
    /// released one the cluster still keeps.
    pub alias: String,
    /// Only what happened at or after this time: 2026-11-22T06:30:00Z,
    /// 2026-11-22 06:30 (UTC unless an offset is given), 06:30 (today, UTC,
    /// as the tables print times), -10m / -2h / -1d (before now), now, or
    /// Unix milliseconds. Also `--since` (as `canon audit` spells it).
    #[arg(long, visible_alias = "since", allow_hyphen_values = true)]
    pub start: Option<String>,
    /// Only what started at or before this time (same forms as --start).
    #[arg(long, visible_alias = "until", allow_hyphen_values = true)]
    pub end: Option<String>,
    #[command(flatten)]
    pub conn: Conn,
}

pub async fn run(args: HistoryArgs) -> Outcome {
    let start = args
        .start
        .as_deref()
        .map(common::parse_time)
        .transpose()?
        .unwrap_or(0);
    let end = args
        .end
        .as_deref()
        .map(common::parse_time)
        .transpose()?
        .unwrap_or(0);
    if start > 0 && end > 0 && end < start {
        return Err(common::Failure::new(
            2,
            format!(
                "--end ({}) is before --start ({}): nothing can match",
                args.end.as_deref().unwrap_or_default(),
                args.start.as_deref().unwrap_or_default()
            ),
        ));
    }
    let client = common::connect(&args.conn)?;
    let h = client.history(&args.alias, start, end).await?;
    if args.conn.json {
        let jobs: Vec<_> = h
            .jobs
            .iter()
            .map(|j| {
                json!({"id": j.id, "kind": j.kind, "status": status_words(j), "started": j.started_ms,
                       "updated": j.updated_ms, "ticks": j.ticks, "message": j.message})
            })
            .collect();
        let drift: Vec<_> = h
            .drift
            .iter()
            .map(|d| {
                json!({"id": d.id, "logical_id": d.logical_id, "kind": d.kind, "cloud_id": d.cloud_id,
                       "property": d.property, "declared": d.declared, "observed": d.observed,
                       "detected": d.detected_ms, "healed": if d.healed_ms == 0 { None } else { Some(d.healed_ms) },
                       "violates": d.violates, "detected_by": d.detected_by,
                       "changed_by": if d.changed_by.is_empty() { None } else { Some(&d.changed_by) },
                       "event": if d.event_ms == 0 { None } else { Some(d.event_ms) }})
            })
            .collect();
        common::print_json(&json!({
            "process": h.process.as_ref().map(super::status::summary_json),
            "jobs": jobs,
            "drift": drift,
            "replacements": h.replacements.iter().map(replacement_json).collect::<Vec<_>>(),
            "folded": h.folded.as_ref().map(|f| json!({
                "jobs": f.jobs, "jobs_failed": f.jobs_failed, "drift": f.drift,
                "through": if f.through_ms == 0 { None } else { Some(f.through_ms) },
            })),
        }));
        return Ok(());
    }
    let (account, fid) = h
        .process
        .as_ref()
        .map(|p| (p.account.clone(), p.fid.clone()))
        .unwrap_or_default();
    say!(
        "Jobs History Report for {account} - {}",
        common::date_time(canon_client::sign::now_ms())
    );
    say!("{} ({fid})\n", args.alias);
    let rows: Vec<Vec<String>> = h
        .jobs
        .iter()
        .map(|j| {
            vec![
                j.id.to_string(),
                common::clock(j.started_ms),
                common::clock(j.updated_ms),
                j.kind.clone(),
                j.ticks.to_string(),
                status_words(j),
                j.message.clone(),
            ]
        })
        .collect();
    say!(
        "{}",
        table::render(
            &[
                "Row Id",
                "Started",
                "Last Updated",
                "Job Type",
                "Jobs Ran",
                "Job Status",
                "Description"
            ],
            &rows
        )
    );
    if !h.drift.is_empty() {
        say!("\nDrift");
        let rows: Vec<Vec<String>> = h
            .drift
            .iter()
            .map(|d| {
                vec![
                    common::clock(d.detected_ms),
                    detected_by(d),
                    if d.healed_ms == 0 {
                        "open".into()
                    } else {
                        format!("healed {}", common::clock(d.healed_ms))
                    },
                    d.kind.clone(),
                    d.cloud_id.clone(),
                    d.property.clone(),
                    if d.declared.is_empty() {
                        "(absent)".into()
                    } else {
                        d.declared.clone()
                    },
                    if d.observed.is_empty() {
                        "(absent)".into()
                    } else {
                        d.observed.clone()
                    },
                    d.violates.join(", "),
                ]
            })
            .collect();
        say!(
            "{}",
            table::render(
                &[
                    "Detected", "By", "Status", "Kind", "Cloud Id", "Property", "Declared",
                    "Observed", "Violates",
                ],
                &rows
            )
        );
    }
    print_replacements(&h.replacements);
    if let Some(line) = h.folded.as_ref().and_then(folded_line) {
        say!("\n{line}");
    }
    Ok(())
}

/// An instance replacement as `canon history --json` and `canon events
/// --json` show it.
pub(super) fn replacement_json(r: &pb::ReplacementView) -> serde_json::Value {
    json!({"id": r.id, "logical_id": r.logical_id, "cloud_id": r.cloud_id, "reason": r.reason,
           "detail": r.detail, "job": r.job, "at": r.at_ms})
}

/// The Replacements table: each instance replaced, when, by which job, why.
fn print_replacements(replacements: &[pb::ReplacementView]) {
    if replacements.is_empty() {
        return;
    }
    say!("\nReplacements");
    let rows: Vec<Vec<String>> = replacements
        .iter()
        .map(|r| {
            vec![
                common::clock(r.at_ms),
                r.job.to_string(),
                r.cloud_id.clone(),
                r.reason.clone(),
                r.detail.clone(),
            ]
        })
        .collect();
    say!(
        "{}",
        table::render(&["At", "Job", "Instance", "Reason", "Detail"], &rows)
    );
}

/// The line that says what retention folded into counts, if anything.
fn folded_line(f: &canon_proto::canon::api::v1::FoldedHistory) -> Option<String> {
    if f.jobs == 0 && f.drift == 0 {
        return None;
    }
    Some(format!(
        "Older history folded by retention (through {}): {} jobs ({} failed), {} healed drift events",
        common::date_time(f.through_ms),
        f.jobs,
        f.jobs_failed,
        f.drift
    ))
}

/// What found a drift: `tick`, or `event` with the cloud's time of the
/// change (so detection latency reads off the row).
fn detected_by(d: &pb::DriftView) -> String {
    match (d.detected_by.as_str(), d.event_ms) {
        ("event", at) if at != 0 && !d.changed_by.is_empty() => {
            // The ARN's last part names the user or the role session.
            let who = d.changed_by.rsplit('/').next().unwrap_or(&d.changed_by);
            format!("event {} by {who}", common::clock(at))
        }
        ("event", at) if at != 0 => format!("event {}", common::clock(at)),
        ("", _) => "tick".into(),
        (by, _) => by.to_string(),
    }
}
