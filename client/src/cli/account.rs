//! `canon account add|update|remove|list`: the AWS accounts processes run
//! in, kept in the cluster's policy and authorised by `account.add`,
//! `account.update`, `account.remove` and `account.list`.

use canon_client::pb;
use clap::{Args, Subcommand};
use serde_json::json;

use super::common::{self, Conn, Outcome};

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

fn view(spec: AccountSpec) -> pb::AccountView {
    pb::AccountView {
        name: spec.name,
        aws_account_id: spec.aws_account,
        role_arn: spec.role_arn.unwrap_or_default(),
        external_id: spec.external_id.unwrap_or_default(),
        region: spec.region.unwrap_or_default(),
    }
}

pub async fn run(args: AccountArgs) -> Outcome {
    let client = common::connect(&args.conn)?;
    let json = args.conn.json;
    let (reply, dry_run) = match args.verb {
        AccountVerb::List => return list(&client, json).await,
        AccountVerb::Add(spec) => {
            let dry_run = spec.dry_run;
            (
                client.account_put(view(spec), false, dry_run).await?,
                dry_run,
            )
        }
        AccountVerb::Update(spec) => {
            let dry_run = spec.dry_run;
            (
                client.account_put(view(spec), true, dry_run).await?,
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
                       "region": a.region})
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
            ]
        })
        .collect();
    let header = ["NAME", "AWS ACCOUNT", "REGION", "ROLE"];
    say!("{}", super::table::render(&header, &rows));
    Ok(())
}
