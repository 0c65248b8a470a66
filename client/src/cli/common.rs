//! What every cluster verb shares: the connection options, turning errors
//! into messages and exit codes, and printing.

use std::path::PathBuf;
use std::process::ExitCode;

use canon_client::config;
use canon_client::{Client, ClientError, Signer};
use clap::Args;

/// Where the cluster is.
#[derive(Debug, Clone, Args)]
pub struct Conn {
    /// Cluster nodes (http://host:port), comma separated.
    #[arg(long, env = "CANON_ENDPOINTS", value_delimiter = ',', global = true)]
    pub endpoints: Vec<String>,
    /// A client.toml (endpoints, user, key).
    #[arg(long = "client-config", env = "CANON_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A verb's failure: a message and its exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

pub type Outcome = Result<(), Failure>;

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        let code = match &e {
            ClientError::Unreachable { .. } | ClientError::Config(_) => 3,
            ClientError::NotFound(_) => 4,
            ClientError::AlreadyExists(_) => 5,
            ClientError::Unauthenticated(_) => 6,
            ClientError::Invalid(_) | ClientError::Rejected(_) => 1,
        };
        Failure::new(code, e.to_string())
    }
}

/// Runs a verb on a fresh runtime and turns its outcome into an exit code.
pub fn block_on(f: impl std::future::Future<Output = Outcome>) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("[ ERROR ] cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(f) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("[ ERROR ] {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

/// A client for the configured cluster, signing as the configured user.
pub fn connect(conn: &Conn) -> Result<Client, Failure> {
    let cfg =
        config::resolve(&conn.endpoints, conn.config.as_deref()).map_err(|e| Failure::new(3, e))?;
    let client = Client::connect(&cfg.endpoints)?;
    match cfg.key {
        Some(key) => {
            let user = cfg.user.unwrap_or_else(|| "admin".into());
            let signer = Signer::from_file(user, &key).map_err(|e| Failure::new(6, e))?;
            Ok(client.with_signer(signer))
        }
        None => Ok(client),
    }
}

/// Prints a JSON value, pretty.
pub fn print_json(v: &serde_json::Value) {
    say!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

/// Parses a dry run's request list.
pub fn plan_value(plan_json: &str) -> serde_json::Value {
    serde_json::from_str(plan_json).unwrap_or(serde_json::Value::Array(Vec::new()))
}

/// A UTC calendar date and time from Unix milliseconds.
pub fn civil(ms: u64) -> (i64, u32, u32, u32, u32, u32) {
    let secs = (ms / 1000) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days-from-civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        ((rem % 3600) / 60) as u32,
        (rem % 60) as u32,
    )
}

/// `2026-11-22 13:58 UTC`.
pub fn date_time(ms: u64) -> String {
    let (y, mo, d, h, mi, _) = civil(ms);
    format!("{y}-{mo:02}-{d:02} {h:02}:{mi:02} UTC")
}

/// `13:58:07` (UTC), for table columns.
pub fn clock(ms: u64) -> String {
    if ms == 0 {
        return "-".into();
    }
    let (_, _, _, h, mi, s) = civil(ms);
    format!("{h:02}:{mi:02}:{s:02}")
}

/// Parses a time bound: Unix ms, or `-10m` / `-2h` / `-1d` before now.
pub fn parse_time(s: &str) -> Result<u64, Failure> {
    let bad = || {
        Failure::new(
            2,
            format!("bad time {s:?}: use Unix milliseconds or -10m, -2h, -1d"),
        )
    };
    if let Some(rel) = s.strip_prefix('-') {
        let (num, unit) = rel.split_at(rel.len().saturating_sub(1));
        let n: u64 = num.parse().map_err(|_| bad())?;
        let ms = match unit {
            "s" => n * 1000,
            "m" => n * 60_000,
            "h" => n * 3_600_000,
            "d" => n * 86_400_000,
            _ => return Err(bad()),
        };
        return Ok(canon_client::sign::now_ms().saturating_sub(ms));
    }
    s.parse().map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(date_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(date_time(1_479_675_576_000), "2016-11-20 20:59 UTC");
        assert_eq!(clock(1_479_675_576_000), "20:59:36");
    }
}
