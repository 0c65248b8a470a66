//! `canon status` (the table of processes) and `canon status ALIAS` (the
//! process and every resource with its cloud id and observed properties;
//! an instance with its age and, if it has a `maxAge`, its next rotation).
//!
//! The table is read a page at a time (`--page-size`, in alias order) and
//! each page is printed as it arrives, so a large estate shows its first
//! rows at once; `--json` streams one JSON array the same way.

use canon_client::pb;
use canon_model::{format_secs, next_rotation, DesiredState, InstanceLife, Spec};
use clap::Args;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::common::{self, Conn, Outcome};
use super::table;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One process, with its resources: the live one of this alias, else
    /// the newest killed or released one the cluster still keeps.
    pub alias: Option<String>,
    /// Include killed and released processes.
    #[arg(long)]
    pub all: bool,
    /// Processes asked for per request; each page is printed as it
    /// arrives.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub page_size: u32,
    /// Show at most this many processes (the first, in alias order);
    /// without it, every one.
    #[arg(long, value_parser = at_least_one)]
    pub limit: Option<usize>,
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
        "properties": properties_json(p),
        "rotations": p
            .rotations
            .iter()
            .map(|r| json!({"requested": common::date_time(r.requested_ms), "scope": r.scope}))
            .collect::<Vec<_>>(),
        "rollout_parked": p.rollout_parked,
    })
}

/// A process's properties as `canon status --json` and `canon property
/// --json` show them.
pub fn properties_json(p: &pb::ProcessSummary) -> Value {
    let word = |on: bool| if on { "on" } else { "off" };
    json!({
        "enforcement": word(!p.enforcement_off),
        "lock": word(p.locked),
    })
}

/// The State column: the state, and the properties that are not the
/// default (`Running (enforcement off, locked)`).
fn state_text(p: &pb::ProcessSummary) -> String {
    let mut notes = Vec::new();
    if p.enforcement_off {
        notes.push("enforcement off");
    }
    if p.locked {
        notes.push("locked");
    }
    if !p.rotations.is_empty() {
        notes.push("rotating");
    }
    if !p.rollout_parked.is_empty() {
        notes.push("rollout parked");
    }
    if notes.is_empty() {
        p.state.clone()
    } else {
        format!("{} ({})", p.state, notes.join(", "))
    }
}

/// The table's header.
const HEADER: [&str; 6] = [
    "State",
    "Updated",
    "Created",
    "FID",
    "Alias",
    "Last Message",
];

/// The table's row of each process.
fn table_rows(ps: &[pb::ProcessSummary]) -> Vec<Vec<String>> {
    ps.iter()
        .map(|p| {
            vec![
                state_text(p),
                common::clock(p.updated_ms),
                common::clock(p.created_ms),
                p.fid.clone(),
                p.alias.clone(),
                p.last_message.clone(),
            ]
        })
        .collect()
}

/// The table of `ps` under its header, as `canon status` shows it.
pub fn print_summary_table(ps: &[pb::ProcessSummary]) {
    say!("{}", table::render(&HEADER, &table_rows(ps)));
}

/// Where the process list goes as pages arrive: a table under the report
/// line, or one JSON array, its elements as `--json` prints any value.
enum ListOut {
    Table(Option<table::Streamed>),
    Json { first: bool },
}

impl ListOut {
    fn new(json: bool) -> ListOut {
        if json {
            ListOut::Json { first: true }
        } else {
            ListOut::Table(None)
        }
    }

    /// The text that shows `rows` (ending in a newline, except inside the
    /// JSON array, which `finish` closes).
    fn page(&mut self, rows: &[pb::ProcessSummary]) -> String {
        match self {
            ListOut::Json { first } => {
                let mut text = String::new();
                for p in rows {
                    text.push_str(if *first { "[\n" } else { ",\n" });
                    *first = false;
                    text.push_str(&indented(&summary_json(p)));
                }
                text
            }
            ListOut::Table(None) => {
                let (table, text) = table::Streamed::start(&HEADER, &table_rows(rows));
                *self = ListOut::Table(Some(table));
                format!("{}\n{text}\n", report_line(rows))
            }
            ListOut::Table(Some(table)) => match table.more(&table_rows(rows)) {
                text if text.is_empty() => text,
                text => text + "\n",
            },
        }
    }

    /// Whether any page was shown.
    fn started(&self) -> bool {
        matches!(
            self,
            ListOut::Table(Some(_)) | ListOut::Json { first: false }
        )
    }

    /// The text that ends the output: the array's closing bracket; the
    /// report line and header of an empty table.
    fn finish(&mut self) -> String {
        match self {
            ListOut::Json { first: true } => "[]\n".to_string(),
            ListOut::Json { first: false } => "\n]\n".to_string(),
            ListOut::Table(None) => self.page(&[]),
            ListOut::Table(Some(_)) => String::new(),
        }
    }
}

/// `Canon Status Report for ACCOUNT - NOW`: the account of the rows (of
/// the first page), or `accounts A, B` when they run in several.
fn report_line(rows: &[pb::ProcessSummary]) -> String {
    let accounts: std::collections::BTreeSet<&str> = rows
        .iter()
        .map(|p| p.account.as_str())
        .filter(|a| !a.is_empty())
        .collect();
    let named = accounts.iter().copied().collect::<Vec<_>>().join(", ");
    format!(
        "Canon Status Report for {} - {}",
        match accounts.len() {
            0 => "(no processes)".to_string(),
            1 => named,
            _ => format!("accounts {named}"),
        },
        common::date_time(canon_client::sign::now_ms())
    )
}

/// `v` as `--json` prints it, every line indented by two spaces (an
/// element of a pretty-printed array).
fn indented(v: &Value) -> String {
    let text = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    let lines: Vec<String> = text.lines().map(|l| format!("  {l}")).collect();
    lines.join("\n")
}

/// Writes `text` to stdout at once; false if stdout is closed (`canon
/// status | head`), when asking for more pages is pointless.
fn emit(text: &str) -> bool {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .is_ok()
}

/// `--limit`'s value: a count of rows, at least one.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("at least 1 (leave --limit out for every process)".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// The process list, a page at a time, each printed as it arrives; at
/// most `--limit` rows. An error after some pages ends the output where it
/// is (a JSON array is still closed) and is then reported; an error before
/// the first prints nothing on stdout.
async fn list(client: &canon_client::Client, args: &StatusArgs) -> Outcome {
    let limit = args.limit.unwrap_or(usize::MAX);
    let page_size = args
        .page_size
        .min(u32::try_from(limit.max(1)).unwrap_or(u32::MAX));
    let mut out = ListOut::new(args.conn.json);
    let mut token = String::new();
    let mut shown = 0usize;
    let ended = loop {
        if shown >= limit {
            break Ok(!token.is_empty());
        }
        let reply = match client.status_page(args.all, page_size, &token).await {
            Ok(reply) => reply,
            Err(e) => break Err(e),
        };
        let mut rows = reply.processes;
        let cut = rows.len() > limit - shown;
        rows.truncate(limit - shown);
        shown += rows.len();
        if !emit(&out.page(&rows)) {
            return Ok(());
        }
        if cut || reply.next_page_token.is_empty() {
            break Ok(cut);
        }
        if reply.next_page_token == token {
            break Err(canon_client::ClientError::Rejected(format!(
                "the node answered page {token:?} with itself as the next page"
            )));
        }
        token = reply.next_page_token;
    };
    // A list cut short by an error still ends valid (a closed array);
    // a first page that never came prints nothing but the error.
    if ended.is_ok() || out.started() {
        emit(&out.finish());
    }
    if ended? {
        eprintln!("(the first {shown} processes; --limit shows more, or drop it for all)");
    }
    Ok(())
}

pub async fn run(args: StatusArgs) -> Outcome {
    let client = common::connect(&args.conn)?;
    let alias = args.alias.clone().unwrap_or_default();
    if alias.is_empty() {
        return list(&client, &args).await;
    }
    let reply = client.status(&alias, args.all).await?;
    // One process: the demo shows it as JSON, so text and --json agree.
    let desired: Option<DesiredState> = serde_json::from_str(&reply.desired_json).ok();
    let now = canon_client::sign::now_ms();
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
        let mut view = json!({
            "kind": r.kind,
            "logical_id": r.logical_id,
            "region": r.region,
            "cloud_id": r.cloud_id,
            "observed": observed,
        });
        let life = lifetime(&r.logical_id, &view["observed"], desired.as_ref(), now);
        if let (Value::Object(v), Some(life)) = (&mut view, life) {
            v.extend(life);
        }
        resources.insert(key, view);
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

/// An instance's age and, if it declares a `maxAge`, when it is next
/// replaced (`next_rotation`, by the planner's own rule), from the launch
/// time the cloud reports (the `life` of `observed`, the resource
/// `logical_id` as the status shows it).
fn lifetime(
    logical_id: &str,
    observed: &Value,
    desired: Option<&DesiredState>,
    now: u64,
) -> Option<Map<String, Value>> {
    let life = InstanceLife::deserialize(observed.get("life")?).ok()?;
    let mut out = Map::new();
    out.insert("age".into(), json!(format_secs(life.age_ms(now) / 1000)));
    let declared = desired.and_then(|d| d.resources.get(&logical_id.parse().ok()?));
    let next = declared.and_then(|d| match &d.spec {
        Spec::Instance(i) => {
            next_rotation(i.max_age_secs, i.fleet.as_ref(), life.launched_at, d.id.fid)
        }
        _ => None,
    });
    if let Some(next) = next {
        out.insert("next_rotation".into(), json!(common::date_time(next)));
        out.insert(
            "next_rotation_in".into(),
            json!(format_secs(next.saturating_sub(now) / 1000)),
        );
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(alias: &str) -> pb::ProcessSummary {
        pb::ProcessSummary {
            alias: alias.into(),
            account: "123456789012".into(),
            state: "Running".into(),
            fid: canon_model::Fid::random().to_string(),
            ..Default::default()
        }
    }

    #[test]
    fn the_report_names_the_account_or_each_of_them() {
        let mut rows: Vec<pb::ProcessSummary> = ["a", "b"].map(process).into();
        assert!(report_line(&rows).starts_with("Canon Status Report for 123456789012 - "));
        rows[1].account = "web-prod".into();
        assert!(report_line(&rows)
            .starts_with("Canon Status Report for accounts 123456789012, web-prod - "));
        assert!(report_line(&[]).starts_with("Canon Status Report for (no processes) - "));
    }

    #[test]
    fn json_pages_make_the_array_the_whole_list_prints() {
        let rows: Vec<pb::ProcessSummary> = ["a", "b", "c", "d", "e"].map(process).into();
        let whole = Value::Array(rows.iter().map(summary_json).collect());
        let mut out = ListOut::new(true);
        let mut text = String::new();
        for page in rows.chunks(2) {
            text.push_str(&out.page(page));
        }
        text.push_str(&out.page(&[]));
        text.push_str(&out.finish());
        assert_eq!(text, serde_json::to_string_pretty(&whole).unwrap() + "\n");
        let mut empty = ListOut::new(true);
        assert_eq!(empty.finish(), "[]\n");
    }

    #[test]
    fn table_pages_share_one_header_and_keep_their_columns() {
        let rows: Vec<pb::ProcessSummary> = ["web", "db", "cache-long-alias"].map(process).into();
        let mut out = ListOut::new(false);
        let text = out.page(&rows[..2]) + &out.page(&rows[2..]) + &out.finish();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("Canon Status Report for 123456789012 - "));
        assert_eq!(text.matches("Last Message").count(), 1, "{text}");
        assert_eq!(lines.len(), 3 + rows.len(), "{text}");
        // The first page is laid out as the whole table would be.
        let whole = table::render(&HEADER, &table_rows(&rows[..2]));
        assert_eq!(lines[1..5].join("\n"), whole);
        assert!(lines[5].contains("cache-long-alias"));
        // No processes: the report line and the header.
        let mut empty = ListOut::new(false);
        let text = empty.finish();
        assert!(text.contains("(no processes)") && text.contains("Last Message"));
    }
    use canon_model::{
        Fid, Health, InstanceSpec, InstanceState, LogicalId, ObservedResource, Ref, Region,
        Resource,
    };

    #[test]
    fn an_instance_shows_its_age_and_next_rotation() {
        let fid = Fid::random();
        let id = LogicalId::new(fid, "box");
        let spec = |max_age_secs| InstanceSpec {
            image_id: "ami-1".into(),
            instance_type: "t3.micro".into(),
            subnet: Ref::External("subnet-1".into()),
            key_name: None,
            user_data: None,
            security_groups: Default::default(),
            tags: Default::default(),
            max_age_secs,
            fleet: None,
            source_dest_check: true,
        };
        let mut desired = DesiredState::empty(fid);
        desired
            .insert(Resource {
                id,
                name: "box".into(),
                region: Region::new("eu-west-1"),
                spec: Spec::Instance(spec(Some(3600))),
            })
            .unwrap();
        let observed = ObservedResource {
            cloud_id: "i-1".into(),
            region: Region::new("eu-west-1"),
            spec: Spec::Instance(spec(None)).map_refs(|_| "subnet-1".to_string()),
            association_ids: Default::default(),
            pending: false,
            life: Some(InstanceLife {
                launched_at: 1_000_000,
                state: InstanceState::Running,
                health: Health::Ok,
                address: None,
            }),
        };
        let (id, observed) = (id.to_string(), serde_json::to_value(&observed).unwrap());
        let now = 1_000_000 + 600_000;
        let shown = lifetime(&id, &observed, Some(&desired), now).expect("an instance's lifetime");
        assert_eq!(shown["age"], "10m");
        assert_eq!(shown["next_rotation_in"], "50m");
        assert_eq!(
            shown["next_rotation"],
            common::date_time(1_000_000 + 3_600_000)
        );
        // Without a maxAge, only the age.
        let shown = lifetime(&id, &observed, None, now).unwrap();
        assert_eq!(shown.get("next_rotation"), None);
    }
}
