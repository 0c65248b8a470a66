//! What every cluster verb shares: the connection options, turning errors
//! into messages and exit codes, and printing.

use std::path::PathBuf;
use std::process::ExitCode;

use canon_client::config;
use canon_client::sqs::SqsTransport;
use canon_client::{Client, ClientError, Signer};
use clap::Args;

/// Where the cluster is.
#[derive(Debug, Clone, Args)]
pub struct Conn {
    /// Cluster nodes (https://host:port; http:// for a plaintext cluster), comma separated.
    #[arg(long, env = "CANON_ENDPOINTS", value_delimiter = ',', global = true)]
    pub endpoints: Vec<String>,
    /// A client.toml (endpoints, user, key).
    #[arg(long = "client-config", env = "CANON_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// How commands travel: grpc, or sqs (client.toml's intake_queue,
    /// reply_queue and reply_key). Default: client.toml's transport, else
    /// grpc.
    #[arg(long, env = "CANON_VIA", global = true, value_parser = config::TRANSPORTS)]
    pub via: Option<String>,
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
            ClientError::Unreachable { .. } | ClientError::Config(_) | ClientError::NoReply(_) => 3,
            ClientError::NotFound(_) => 4,
            ClientError::AlreadyExists(_) => 5,
            ClientError::Unauthenticated(_) | ClientError::Forbidden(_) => 6,
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

/// A synchronous verb's outcome as an exit code.
pub fn exit(outcome: Outcome) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("[ ERROR ] {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// A client for the configured cluster, signing as the configured user.
pub fn connect(conn: &Conn) -> Result<Client, Failure> {
    connect_configured(conn).map(|(client, _)| client)
}

/// [`connect`], and the configuration it resolved (for commands that
/// build on it, such as `canon user create`).
pub fn connect_configured(conn: &Conn) -> Result<(Client, config::ClientConfig), Failure> {
    let cfg =
        config::resolve(&conn.endpoints, conn.config.as_deref()).map_err(|e| Failure::new(3, e))?;
    let over_sqs = cfg
        .over_sqs(conn.via.as_deref())
        .map_err(|e| Failure::new(2, e))?;
    let sqs = match over_sqs {
        true => {
            let settings = cfg.sqs_settings().map_err(|e| Failure::new(3, e))?;
            Some(SqsTransport::new(settings).map_err(ClientError::from)?)
        }
        false => None,
    };
    let tls = cfg.tls.as_ref().map(config::TlsPaths::to_client_tls);
    let client = match (sqs, cfg.endpoints.is_empty()) {
        (Some(t), true) => Client::over_sqs(t),
        (Some(t), false) => Client::connect_with(&cfg.endpoints, tls.as_ref())?.with_sqs(t),
        (None, _) => Client::connect_with(&cfg.endpoints, tls.as_ref())?,
    };
    Ok((as_configured(client, &cfg)?, cfg))
}

/// `client` addressed to the configured cluster and signing with the
/// configured key, if there is one.
fn as_configured(mut client: Client, cfg: &config::ClientConfig) -> Result<Client, Failure> {
    if let Some(id) = &cfg.cluster_id {
        client = client.with_audience(id.clone());
    }
    if let Some(key) = &cfg.key {
        let user = cfg.user.clone().unwrap_or_else(|| "admin".into());
        let signer = Signer::from_file(user, key).map_err(|e| Failure::new(6, e))?;
        client = client.with_signer(signer);
    }
    Ok(client)
}

/// One gRPC client per configured endpoint, each talking to that node
/// only (for commands that compare what each node holds).
pub fn connect_each(conn: &Conn) -> Result<Vec<(String, Client)>, Failure> {
    let cfg =
        config::resolve(&conn.endpoints, conn.config.as_deref()).map_err(|e| Failure::new(3, e))?;
    if cfg.endpoints.is_empty() {
        return Err(Failure::new(
            2,
            "this needs the nodes' gRPC endpoints (client.toml's endpoints or --endpoints)",
        ));
    }
    let tls = cfg.tls.as_ref().map(config::TlsPaths::to_client_tls);
    let mut out = Vec::with_capacity(cfg.endpoints.len());
    for endpoint in &cfg.endpoints {
        let client = Client::connect_with(std::slice::from_ref(endpoint), tls.as_ref())?;
        out.push((endpoint.clone(), as_configured(client, &cfg)?));
    }
    Ok(out)
}

/// Prints what a policy change did (or, for a dry run, would do).
pub fn print_change(reply: &canon_client::pb::CommandReply, dry_run: bool, json: bool) {
    if json {
        let changes: Vec<&str> = reply.message.lines().collect();
        print_json(&serde_json::json!({
            "dry_run": dry_run,
            "version": reply.policy_version,
            "changes": changes,
        }));
        return;
    }
    say!("{}", reply.message);
    if dry_run {
        say!(
            "dry run: the cluster would accept this (policy version {}); nothing changed",
            reply.policy_version
        );
    } else {
        say!("[ OK ] policy version {}", reply.policy_version);
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

/// Unix days of a UTC calendar date (Howard Hinnant's days-from-civil);
/// `None` for a date that does not exist (`2026-02-30`).
fn days_from_civil(y: i64, m: u32, d: u32) -> Option<i64> {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d == 0 || d > month_days[(m - 1) as usize] {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// `HH:MM[:SS[.fff]]` as milliseconds into the day.
fn parse_clock(s: &str) -> Option<u64> {
    let mut parts = s.splitn(3, ':');
    let h: u64 = parts.next()?.parse().ok()?;
    let m: u64 = parts.next()?.parse().ok()?;
    let (sec, ms) = match parts.next() {
        None => (0, 0),
        Some(rest) => {
            let (whole, frac) = rest.split_once('.').unwrap_or((rest, ""));
            let sec: u64 = whole.parse().ok()?;
            let frac: String = frac.chars().chain("000".chars()).take(3).collect();
            (sec, frac.parse::<u64>().ok()?)
        }
    };
    (h < 24 && m < 60 && sec < 60).then_some(((h * 60 + m) * 60 + sec) * 1000 + ms)
}

/// `YYYY-MM-DD`, optionally followed by `T` or a space and a time of day
/// (`HH:MM[:SS[.fff]]`), then `Z`, `UTC`, `+HH:MM` or `-HH:MM` (UTC when
/// no zone is given), as Unix milliseconds.
fn parse_calendar(s: &str) -> Option<u64> {
    let s = s.trim();
    let (date, rest) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], s[i + 1..].trim()),
        None => (s, ""),
    };
    let mut ymd = date.splitn(3, '-');
    let y: i64 = ymd.next()?.parse().ok()?;
    let m: u32 = ymd.next()?.parse().ok()?;
    let d: u32 = ymd.next()?.parse().ok()?;
    let days = days_from_civil(y, m, d)?;
    // The zone: a trailing Z / UTC, or a ±HH:MM offset after the clock.
    let (clock, offset_ms) = if let Some(c) = rest
        .strip_suffix('Z')
        .or_else(|| rest.strip_suffix('z'))
        .or_else(|| rest.strip_suffix("UTC"))
    {
        (c.trim(), 0i64)
    } else if let Some(i) = rest.rfind(['+', '-']).filter(|i| *i > 0) {
        let sign = if rest[i..].starts_with('-') { -1 } else { 1 };
        let off = parse_clock(&rest[i + 1..])?;
        (&rest[..i], sign * i64::try_from(off).ok()?)
    } else {
        (rest, 0)
    };
    let in_day = if clock.is_empty() {
        0
    } else {
        parse_clock(clock)?
    };
    let ms = days.checked_mul(86_400_000)? + i64::try_from(in_day).ok()? - offset_ms;
    u64::try_from(ms).ok()
}

/// Parses a time bound as users write it: an RFC 3339 / ISO 8601 time
/// (`2026-11-22T06:30:00Z`, `2026-11-22 06:30`, `2026-11-22`), a time of
/// day today in UTC as the tables print it (`06:30`, `06:30:15`), a span
/// before now (`-90s`, `-10m`, `-2h`, `-1d`; also `10m` and `10m ago`),
/// `now`, or Unix milliseconds.
pub fn parse_time(s: &str) -> Result<u64, Failure> {
    parse_time_at(s, canon_client::sign::now_ms())
}

fn parse_time_at(s: &str, now: u64) -> Result<u64, Failure> {
    let s = s.trim();
    let bad = || {
        Failure::new(
            2,
            format!(
                "bad time {s:?}: use e.g. 2026-11-22T06:30:00Z, 06:30 (UTC today), -10m or 10m \
                 ago, -2h, -1d, now or Unix milliseconds"
            ),
        )
    };
    if s.eq_ignore_ascii_case("now") {
        return Ok(now);
    }
    if let Some(rel) = s.strip_prefix('-') {
        return span_ms(rel)
            .map(|ms| now.saturating_sub(ms))
            .ok_or_else(bad);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|_| bad());
    }
    if let Some(in_day) = parse_clock(s) {
        return Ok(now - now % 86_400_000 + in_day);
    }
    // `10m` and `10m ago` mean what `-10m` does, as `docker logs --since`
    // and `journalctl` read them.
    let ago = s.strip_suffix("ago").map_or(s, str::trim_end);
    if let Some(ms) = span_ms(ago) {
        return Ok(now.saturating_sub(ms));
    }
    parse_calendar(s).ok_or_else(bad)
}

/// A span with its unit (`90s`, `10m`, `2h`, `1d`), in milliseconds.
fn span_ms(rel: &str) -> Option<u64> {
    match rel.strip_suffix('d') {
        Some(days) => days
            .parse::<u64>()
            .ok()
            .and_then(|d| d.checked_mul(86_400_000)),
        None => canon_model::parse_duration(rel)
            .ok()
            .filter(|_| rel.ends_with(|c: char| c.is_ascii_alphabetic()))
            .and_then(|d| u64::try_from(d.as_millis()).ok()),
    }
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

    #[test]
    fn times_as_users_write_them() {
        let now = 1_795_329_161_450; // 2026-11-22 06:32:41.450 UTC
        let at = |s: &str| parse_time_at(s, now).map_err(|f| f.message);
        let demo = 1_479_675_576_000; // 2016-11-20 20:59:36 UTC
        for s in [
            "2016-11-20T20:59:36Z",
            "2016-11-20T20:59:36.000Z",
            "2016-11-20 20:59:36",
            "2016-11-20 20:59:36 UTC",
            "2016-11-20T21:59:36+01:00",
            "2016-11-20T15:59:36-05:00",
            "1479675576000",
        ] {
            assert_eq!(at(s), Ok(demo), "{s}");
        }
        assert_eq!(
            at("2016-11-20"),
            Ok(demo - (20 * 3600 + 59 * 60 + 36) * 1000)
        );
        assert_eq!(at("2024-02-29T00:00Z"), Ok(1_709_164_800_000));
        assert_eq!(
            at("06:30"),
            Ok(now - now % 86_400_000 + 6 * 3_600_000 + 30 * 60_000)
        );
        assert_eq!(at("06:32:41"), Ok(now - 450));
        assert_eq!(at("now"), Ok(now));
        assert_eq!(at("-10m"), Ok(now - 600_000));
        assert_eq!(at("-90s"), Ok(now - 90_000));
        assert_eq!(at("-2h"), Ok(now - 7_200_000));
        assert_eq!(at("-1d"), Ok(now - 86_400_000));
        assert_eq!(at("10m"), Ok(now - 600_000));
        assert_eq!(at("2h ago"), Ok(now - 7_200_000));
        assert_eq!(at("1d"), Ok(now - 86_400_000));
        for s in [
            "yesterday",
            "2026-02-30",
            "2026-13-01",
            "25:00",
            "06:61",
            "-10",
            "-d",
            "-99999999999999999999d",
            "ago",
            "10 ago",
            "m",
            "2026-11-22T06:30:00+25:00",
            "",
        ] {
            let e = at(s).expect_err(s);
            assert!(e.contains("bad time"), "{s}: {e}");
        }
    }
}
