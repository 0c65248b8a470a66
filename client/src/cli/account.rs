//! `canon account add|update|remove|list`: the AWS accounts processes run
//! in, kept in the cluster's policy and authorised by `account.add`,
//! `account.update`, `account.remove` and `account.list`.

use canon_client::pb;
use clap::{Args, Subcommand};
use serde_json::json;

use super::common::{self, Conn, Failure, Outcome};

#[derive(Debug, Args)]
pub struct AccountArgs {
    #[command(subcommand)]
    pub verb: AccountVerb,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
pub struct AccountSpec {
    pub name: String,
    /// The 12-digit AWS account id.
    #[arg(long = "aws-account", value_name = "ID")]
    pub aws_account: String,
    /// The role the conductor assumes in the account.
    #[arg(long)]
    pub role_arn: Option<String>,
    #[arg(long)]
    pub external_id: Option<String>,
    /// The default region of processes in the account.
    #[arg(long)]
    pub region: Option<String>,
    /// The SQS queue an EventBridge rule fills with the account's EC2
    /// calls (`deploy/aws/events.yaml`), as `REGION=URL`, or `URL` for the
    /// account's `--region`; once per region. The cluster reads it and
    /// heals drift seconds after the call, before the next tick.
    #[arg(long = "events-queue", value_name = "[REGION=]URL")]
    pub events_queues: Vec<String>,
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum AccountVerb {
    /// Add an account.
    Add(AccountSpec),
    /// Replace an account's settings (all of them: unset flags clear).
    Update(AccountSpec),
    /// Remove an account.
    Remove {
        name: String,
        #[arg(long)]
        dry_run: bool,
    },
    /// The accounts.
    List,
}

fn view(spec: AccountSpec) -> Result<pb::AccountView, String> {
    let events_queues = events_queues(&spec.events_queues, spec.region.as_deref())?;
    Ok(pb::AccountView {
        name: spec.name,
        aws_account_id: spec.aws_account,
        role_arn: spec.role_arn.unwrap_or_default(),
        external_id: spec.external_id.unwrap_or_default(),
        region: spec.region.unwrap_or_default(),
        events_queues,
    })
}

/// The `--events-queue` flags as region → URL: `REGION=URL`, or a bare
/// URL for the account's `region`. Two queues for one region are refused
/// (the cluster reads one per region); what a URL must look like the
/// cluster checks.
fn events_queues(
    flags: &[String],
    region: Option<&str>,
) -> Result<std::collections::HashMap<String, String>, String> {
    let mut out = std::collections::HashMap::new();
    for flag in flags {
        let (r, url) = match flag.split_once('=') {
            Some((r, url)) if !r.contains('/') && !r.contains(':') => (r.to_string(), url),
            _ => {
                let r = region.ok_or_else(|| {
                    format!("--events-queue {flag}: which region's queue is it? Write REGION={flag}, or give the account a --region")
                })?;
                (r.to_string(), flag.as_str())
            }
        };
        if let Some(first) = out.insert(r.clone(), url.to_string()) {
            return Err(format!(
                "--events-queue: two queues for {r} ({first} and {url}); the cluster reads one per region"
            ));
        }
    }
    Ok(out)
}

pub async fn run(args: AccountArgs) -> Outcome {
    let client = common::connect(&args.conn)?;
    let json = args.conn.json;
    let (reply, dry_run) = match args.verb {
        AccountVerb::List => return list(&client, json).await,
        AccountVerb::Add(spec) => {
            let dry_run = spec.dry_run;
            (
                client
                    .account_put(view(spec).map_err(|e| Failure::new(2, e))?, false, dry_run)
                    .await?,
                dry_run,
            )
        }
        AccountVerb::Update(spec) => {
            let dry_run = spec.dry_run;
            (
                client
                    .account_put(view(spec).map_err(|e| Failure::new(2, e))?, true, dry_run)
                    .await?,
                dry_run,
            )
        }
        AccountVerb::Remove { name, dry_run } => {
            (client.account_remove(&name, dry_run).await?, dry_run)
        }
    };
    common::print_change(&reply, dry_run, json);
    Ok(())
}

async fn list(client: &canon_client::Client, json: bool) -> Outcome {
    let r = client.list_accounts().await?;
    if json {
        let rows: Vec<serde_json::Value> = r
            .accounts
            .iter()
            .map(|a| {
                json!({"name": a.name, "aws_account_id": a.aws_account_id,
                       "role_arn": a.role_arn, "external_id_set": !a.external_id.is_empty(),
                       "region": a.region, "events_queues": a.events_queues})
            })
            .collect();
        common::print_json(&json!({"version": r.version, "accounts": rows}));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = r
        .accounts
        .iter()
        .map(|a| {
            vec![
                a.name.clone(),
                a.aws_account_id.clone(),
                a.region.clone(),
                a.role_arn.clone(),
                events_text(&a.events_queues),
            ]
        })
        .collect();
    let header = ["NAME", "AWS ACCOUNT", "REGION", "ROLE", "EVENTS"];
    say!("{}", super::table::render(&header, &rows));
    Ok(())
}

/// An account's events queues as the table shows them: `REGION=URL`,
/// sorted, comma-separated.
fn events_text(queues: &std::collections::HashMap<String, String>) -> String {
    let sorted: std::collections::BTreeMap<_, _> = queues.iter().collect();
    let parts: Vec<String> = sorted.iter().map(|(r, u)| format!("{r}={u}")).collect();
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_events_queue_names_its_region_or_takes_the_accounts() {
        let url = "https://sqs.eu-west-1.amazonaws.com/222222222222/events";
        let q =
            events_queues(&[url.into(), format!("us-east-1={url}")], Some("eu-west-1")).unwrap();
        assert_eq!(q["eu-west-1"], url);
        assert_eq!(q["us-east-1"], url);
        let e = events_queues(&[url.into()], None).unwrap_err();
        assert!(
            e.contains("which region") && e.contains(&format!("REGION={url}")),
            "{e}"
        );
        let e = events_queues(&[url.into(), format!("eu-west-1={url}")], Some("eu-west-1"))
            .unwrap_err();
        assert!(e.contains("two queues for eu-west-1"), "{e}");
        // A URL with `=` in its query is still a bare URL.
        let odd = "http://127.0.0.1:5000/123456789012/q?x=1";
        assert_eq!(
            events_queues(&[odd.into()], Some("us-west-2")).unwrap()["us-west-2"],
            odd
        );
    }
}
