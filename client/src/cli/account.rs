//! `canon account add|update|remove|list`: the AWS accounts processes run
//! in, kept in the cluster's policy and authorised by `account.add`,
//! `account.update`, `account.remove` and `account.list`.

use canon_client::{pb, ClientError};
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

/// `canon account add`: a new account.
#[derive(Debug, Args)]
pub struct AccountSpec {
    pub name: String,
    /// The 12-digit AWS account id.
    #[arg(long = "aws-account", value_name = "ID")]
    pub aws_account: String,
    #[command(flatten)]
    pub settings: AccountSettings,
    #[arg(long)]
    pub dry_run: bool,
}

/// The settings `add` and `update` share. With `update`, each one given
/// replaces the account's, and `""` clears it.
#[derive(Debug, Args)]
pub struct AccountSettings {
    /// The role the conductor assumes in the account (none: the node's
    /// own credentials).
    #[arg(long)]
    pub role_arn: Option<String>,
    /// The external id the role's trust policy asks of the conductor.
    #[arg(long)]
    pub external_id: Option<String>,
    /// The default region of processes in the account.
    #[arg(long)]
    pub region: Option<String>,
    /// The SQS queue an EventBridge rule fills with the account's EC2
    /// calls (`deploy/aws/events.yaml`), as `REGION=URL`, or `URL` for the
    /// account's `--region`; once per region. The cluster reads it and
    /// heals drift seconds after the call, before the next tick. With
    /// `update`, the queues given replace the account's.
    #[arg(long = "events-queue", value_name = "[REGION=]URL")]
    pub events_queues: Vec<String>,
}

/// `canon account update`: only the settings given change.
#[derive(Debug, Args)]
pub struct AccountChanges {
    pub name: String,
    /// The 12-digit AWS account id.
    #[arg(long = "aws-account", value_name = "ID")]
    pub aws_account: Option<String>,
    #[command(flatten)]
    pub settings: AccountSettings,
    /// Remove the account's events queues.
    #[arg(long, conflicts_with = "events_queues")]
    pub no_events_queues: bool,
    #[arg(long)]
    pub dry_run: bool,
}

impl AccountChanges {
    /// `current` with these changes made.
    fn apply_to(self, mut current: pb::AccountView) -> Result<pb::AccountView, String> {
        let given = self.settings;
        let region = given.region.as_deref().unwrap_or(&current.region);
        let region = Some(region).filter(|r| !r.is_empty());
        if self.no_events_queues {
            current.events_queues.clear();
        } else if !given.events_queues.is_empty() {
            current.events_queues = events_queues(&given.events_queues, region)?;
        }
        let set = |field: &mut String, given: Option<String>| {
            if let Some(v) = given {
                *field = v;
            }
        };
        set(&mut current.aws_account_id, self.aws_account);
        set(&mut current.role_arn, given.role_arn);
        set(&mut current.external_id, given.external_id);
        set(&mut current.region, given.region);
        Ok(current)
    }
}

#[derive(Debug, Subcommand)]
pub enum AccountVerb {
    /// Add an account.
    Add(AccountSpec),
    /// Change an account's settings: those given, the rest kept.
    Update(AccountChanges),
    /// Remove an account.
    Remove {
        name: String,
        #[arg(long)]
        dry_run: bool,
    },
    /// The accounts.
    List,
}

/// The account `add` makes: `spec`'s settings on an empty account.
fn view(spec: AccountSpec) -> Result<pb::AccountView, String> {
    let empty = pb::AccountView {
        name: spec.name.clone(),
        ..Default::default()
    };
    AccountChanges {
        name: spec.name,
        aws_account: Some(spec.aws_account),
        settings: spec.settings,
        no_events_queues: false,
        dry_run: spec.dry_run,
    }
    .apply_to(empty)
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
        AccountVerb::Update(changes) => {
            let dry_run = changes.dry_run;
            let current = current_account(&client, &changes).await?;
            let updated = changes.apply_to(current).map_err(|e| Failure::new(2, e))?;
            (client.account_put(updated, true, dry_run).await?, dry_run)
        }
        AccountVerb::Remove { name, dry_run } => {
            (client.account_remove(&name, dry_run).await?, dry_run)
        }
    };
    common::print_change(&reply, dry_run, json);
    Ok(())
}

/// The account `changes` names as the cluster holds it. A user who may
/// update accounts but not list them replaces the account whole: they
/// must give its AWS account id, and unset settings clear.
async fn current_account(
    client: &canon_client::Client,
    changes: &AccountChanges,
) -> Result<pb::AccountView, Failure> {
    let name = changes.name.as_str();
    let accounts = match client.list_accounts().await {
        Ok(listed) => listed.accounts,
        Err(ClientError::Forbidden(_)) if changes.aws_account.is_some() => {
            return Ok(pb::AccountView {
                name: name.to_string(),
                ..Default::default()
            })
        }
        Err(ClientError::Forbidden(e)) => {
            return Err(Failure::new(
                6,
                format!(
                    "{e}: without account.list, an update cannot keep the settings it does not \
                     name; give them all (--aws-account ID …) to replace the account whole"
                ),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let known: Vec<&str> = accounts.iter().map(|a| a.name.as_str()).collect();
    let missing = format!(
        "no account named `{name}` (the accounts: {})",
        if known.is_empty() {
            "none yet".to_string()
        } else {
            known.join(", ")
        }
    );
    accounts
        .into_iter()
        .find(|a| a.name == name)
        .ok_or_else(|| Failure::new(1, missing))
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
    fn an_update_changes_only_what_it_names() {
        let current = pb::AccountView {
            name: "web-prod".into(),
            aws_account_id: "222222222222".into(),
            role_arn: "arn:aws:iam::222222222222:role/canon".into(),
            external_id: "x-1".into(),
            region: "us-west-2".into(),
            events_queues: [("us-west-2".to_string(), "https://q/1/a".to_string())].into(),
        };
        let changes = |region: Option<&str>, queues: &[&str], none: bool| AccountChanges {
            name: "web-prod".into(),
            aws_account: None,
            settings: AccountSettings {
                role_arn: None,
                external_id: Some(String::new()),
                region: region.map(String::from),
                events_queues: queues.iter().map(|q| q.to_string()).collect(),
            },
            no_events_queues: none,
            dry_run: false,
        };
        let v = changes(Some("eu-west-1"), &[], false)
            .apply_to(current.clone())
            .unwrap();
        assert_eq!(v.region, "eu-west-1");
        assert_eq!(v.role_arn, current.role_arn);
        assert_eq!(v.aws_account_id, current.aws_account_id);
        assert_eq!(v.external_id, "", "\"\" clears");
        assert_eq!(v.events_queues, current.events_queues);
        // A bare queue URL takes the region the update gives.
        let v = changes(Some("eu-west-1"), &["https://q/1/b"], false)
            .apply_to(current.clone())
            .unwrap();
        assert_eq!(v.events_queues.len(), 1);
        assert_eq!(v.events_queues["eu-west-1"], "https://q/1/b");
        let v = changes(None, &[], true).apply_to(current).unwrap();
        assert!(v.events_queues.is_empty());
    }

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
