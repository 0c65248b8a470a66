//! `canon events [ALIAS]`: follows the event stream (jobs, process states,
//! drift) until interrupted, reconnecting to another node if one goes away.
//! `--json` prints one JSON object per line.

use std::time::Duration;

use canon_client::job_status::status_words;
use canon_client::pb;
use clap::Args;
use serde_json::json;

use super::common::{self, Conn, Outcome};

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only this process.
    pub alias: Option<String>,
    /// Resume after this position (an event's `cursor`, printed by
    /// `--json`): the events the node still holds after it come first.
    #[arg(long, value_name = "CURSOR")]
    pub after: Option<String>,
    #[command(flatten)]
    pub conn: Conn,
}

/// One event as `canon events` prints it (also `--wait`'s lines).
pub(super) fn line(e: &pb::Event, as_json: bool) -> String {
    if as_json {
        let job = e.job.as_ref().map(|j| {
            json!({"id": j.id, "kind": j.kind, "status": status_words(j), "ticks": j.ticks, "message": j.message})
        });
        let drift = e.drift.as_ref().map(|d| {
            json!({"id": d.id, "kind": d.kind, "cloud_id": d.cloud_id, "property": d.property,
                   "declared": d.declared, "observed": d.observed, "healed": d.healed_ms})
        });
        let replacement = e.replacement.as_ref().map(super::history::replacement_json);
        return json!({"at": e.at_ms, "event": e.kind, "alias": e.alias, "fid": e.fid,
                      "state": e.state, "job": job, "drift": drift, "lost": e.lost,
                      "cursor": e.cursor, "replacement": replacement})
        .to_string();
    }
    let what = match (&e.job, &e.drift) {
        (Some(j), _) => format!("{} job {} {} {}", j.kind, j.id, status_words(j), j.message),
        (_, Some(d)) => format!(
            "{} {} {}: declared {} observed {}",
            d.kind,
            d.cloud_id,
            d.property,
            if d.declared.is_empty() {
                "(absent)"
            } else {
                &d.declared
            },
            if d.observed.is_empty() {
                "(absent)"
            } else {
                &d.observed
            }
        ),
        _ if e.replacement.is_some() => e.replacement.as_ref().map_or_else(String::new, |r| {
            format!("instance {} replaced ({}: {})", r.cloud_id, r.reason, r.detail)
        }),
        _ if e.kind == "events.lost" => format!(
            "{} events dropped: this terminal read too slowly (canon status shows the current state)",
            e.lost
        ),
        _ if e.kind == "events.gap" => "events missed while away are no longer held by the node \
             (canon status shows the current state); following from here"
            .to_string(),
        _ => e.state.clone(),
    };
    format!(
        "{} {:<14} {:<16} {what}",
        common::clock(e.at_ms),
        e.alias,
        e.kind
    )
}

pub async fn run(args: EventsArgs) -> Outcome {
    let client = common::connect(&args.conn)?;
    let alias = args.alias.unwrap_or_default();
    // Where the stream stands: a reconnect resumes after it, so nothing
    // that happened while it was away is missed while a node holds it.
    let mut cursor = args.after.unwrap_or_default();
    loop {
        let mut stream = client.events_after(&alias, &cursor).await?;
        loop {
            match stream.message().await {
                Ok(Some(e)) => {
                    if !e.cursor.is_empty() {
                        cursor.clone_from(&e.cursor);
                    }
                    say!("{}", line(&e, args.conn.json));
                }
                Ok(None) => break,
                Err(s) => {
                    eprintln!(
                        "[ note ] event stream interrupted ({}); reconnecting",
                        s.message()
                    );
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
