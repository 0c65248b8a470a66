//! `canon auth can-i ACTION [--account A] [--alias X] [--as USER]`: asks the
//! cluster whether a user may do an action, under the policy it holds now.
//! Prints allow or deny and the rule that decided; exits 0 for allow and 6
//! for deny, so scripts can branch on it.

use canon_client::pb;
use clap::{Args, Subcommand};
use serde_json::json;

use super::common::{self, Conn, Failure, Outcome};

#[derive(Debug, Args)]
pub struct AuthArgs {
    #[command(subcommand)]
    pub verb: AuthVerb,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Subcommand)]
pub enum AuthVerb {
    /// May I (or USER) do ACTION? Exit 0: allow; 6: deny.
    CanI {
        /// process.run, process.kill, policy.put, account.add, ...
        action: String,
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        alias: Option<String>,
        /// Ask about another user (needs policy.get).
        #[arg(long = "as", value_name = "USER")]
        as_user: Option<String>,
    },
}

pub async fn run(args: AuthArgs) -> Outcome {
    let AuthVerb::CanI {
        action,
        account,
        alias,
        as_user,
    } = args.verb;
    let client = common::connect(&args.conn)?;
    let reply = client
        .can_i(pb::CanIRequest {
            action,
            account: account.unwrap_or_default(),
            alias: alias.unwrap_or_default(),
            user: as_user.unwrap_or_default(),
        })
        .await?;
    if args.conn.json {
        common::print_json(&json!({
            "user": reply.user,
            "allowed": reply.allowed,
            "rule": reply.rule,
            "root": reply.root,
            "policy_version": reply.policy_version,
            "message": reply.message,
        }));
    } else {
        say!("{}", if reply.allowed { "allow" } else { "deny" });
        say!("{}", reply.message);
    }
    if reply.allowed {
        Ok(())
    } else {
        Err(Failure::new(6, ""))
    }
}
