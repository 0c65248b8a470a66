//! `canon user add NAME --key PUBHEX [--groups a,b]` and `canon user remove
//! NAME`: changes to the policy's users, authorised by `user.add` and
//! `user.remove` (and the no-escalation rule: a new member of a group gets
//! that group's roles). Each prints what changed.

use clap::{Args, Subcommand};

use super::common::{self, Conn, Outcome};

#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub verb: UserVerb,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Subcommand)]
pub enum UserVerb {
    /// Add a user who signs with KEY (hex ed25519 public key, as `canon
    /// keygen` prints it).
    Add {
        name: String,
        /// Repeat for several keys (a rotation under way).
        #[arg(long = "key", value_name = "PUBHEX", required = true)]
        keys: Vec<String>,
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove a user (and their place in bindings).
    Remove {
        name: String,
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn run(args: UserArgs) -> Outcome {
    let client = common::connect(&args.conn)?;
    let (reply, dry_run) = match args.verb {
        UserVerb::Add {
            name,
            keys,
            groups,
            dry_run,
        } => (
            client.user_add(&name, keys, groups, dry_run).await?,
            dry_run,
        ),
        UserVerb::Remove { name, dry_run } => (client.user_remove(&name, dry_run).await?, dry_run),
    };
    common::print_change(&reply, dry_run, args.conn.json);
    Ok(())
}
