//! `canon status` (the table of processes) and `canon status ALIAS` (the
//! process and every resource with its cloud id and observed properties;
//! an instance with its age and, if it has a `maxAge`, its next rotation).

use canon_client::pb;
use canon_model::{format_secs, next_rotation, DesiredState, InstanceLife, Spec};
use clap::Args;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::common::{self, Conn, Outcome};
use super::table;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One process, with its resources.
    pub alias: Option<String>,
    /// Include killed and released processes.
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

pub fn print_summary_table(ps: &[pb::ProcessSummary]) {
    let rows: Vec<Vec<String>> = ps
        .iter()
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
