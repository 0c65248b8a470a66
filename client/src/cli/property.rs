//! `canon property ALIAS NAME on|off`: a process's properties.
//! `enforcement off` records and alerts drift without healing it
//! (detect-only; `canon suspend` instead stops ticks altogether); `lock
//! on` makes the process refuse update and kill until `lock off`.

use canon_model::properties::Switch;
use clap::{Args, ValueEnum};
use serde_json::json;

use super::common::{self, Conn, Outcome};

/// The properties a process has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PropertyName {
    /// on: drift is healed (the default); off: detected, recorded and
    /// alerted, not healed.
    Enforcement,
    /// on: update and kill are refused until it is off (the default).
    Lock,
}

impl PropertyName {
    fn name(self) -> &'static str {
        match self {
            PropertyName::Enforcement => "enforcement",
            PropertyName::Lock => "lock",
        }
    }
}

#[derive(Debug, Args)]
pub struct PropertyArgs {
    /// The process.
    pub alias: String,
    /// The property to set.
    pub name: PropertyName,
    /// on or off.
    #[arg(value_parser = parse_switch)]
    pub value: Switch,
    /// Show what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub conn: Conn,
}

fn parse_switch(s: &str) -> Result<Switch, String> {
    s.parse::<Switch>().map_err(|e| e.to_string())
}

pub async fn run(args: PropertyArgs) -> Outcome {
    let client = common::connect(&args.conn)?;
    let r = client
        .set_property(&args.alias, args.name.name(), args.value.0, args.dry_run)
        .await?;
    if args.conn.json {
        common::print_json(&json!({
            "message": r.message,
            "log_index": r.log_index,
            "properties": r.process.as_ref().map(super::status::properties_json),
        }));
    } else {
        say!("[ Done ] {}", r.message);
    }
    Ok(())
}
