//! UTC times as ISO 8601 text, for the CloudTrail-shaped events the
//! simulated cloud and the tests write: one civil-from-days calculation
//! (Howard Hinnant's) behind both precisions.

/// `YYYY-MM-DDTHH:MM:SSZ` of `ms` since the epoch: CloudTrail's `eventTime`,
/// whole seconds.
pub fn iso_seconds(ms: u64) -> String {
    let (y, m, d, secs) = civil(ms);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// `YYYY-MM-DDTHH:MM:SS.fffZ` of `ms` since the epoch.
pub fn iso_millis(ms: u64) -> String {
    let (y, m, d, secs) = civil(ms);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        ms % 1000
    )
}

/// Year, month, day and seconds into the day of `ms` since the epoch.
fn civil(ms: u64) -> (i64, i64, i64, u64) {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, secs % 86_400)
}
