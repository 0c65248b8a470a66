//! What a CloudTrail event, as EventBridge delivers it to the events queue
//! ("AWS API Call via CloudTrail" from `ec2.amazonaws.com`), says to the
//! conductor: which call, when, by whom, whether it failed, and which
//! cloud resources it names. Anything else in the body is ignored; a body
//! that is not such an event is an error the consumer logs and drops.

use std::collections::BTreeSet;

use canon_model::UnixMillis;
use serde_json::Value;

/// The prefixes of the EC2 ids of the kinds Canon manages.
const ID_PREFIXES: [&str; 17] = [
    "vpc-",
    "subnet-",
    "sg-",
    "sgr-",
    "igw-",
    "eigw-",
    "rtb-",
    "rtbassoc-",
    "acl-",
    "aclassoc-",
    "nat-",
    "pcx-",
    "vpce-",
    "eipalloc-",
    "dopt-",
    "i-",
    "vol-",
];

/// The role session name the conductor's AWS adapter assumes account
/// roles under (`cloud::aws`): calls made under it are Canon's own.
pub const OWN_SESSION_NAME: &str = "canon";

/// One EC2 API call as CloudTrail reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiCall {
    /// `AuthorizeSecurityGroupIngress`, …
    pub name: String,
    /// When the call was made (CloudTrail's `eventTime`).
    pub at: UnixMillis,
    /// The caller's ARN (`userIdentity.arn`), if given.
    pub caller: Option<String>,
    /// The call failed (`errorCode` set): it changed nothing.
    pub failed: bool,
    /// Every resource id its parameters and response name.
    pub ids: BTreeSet<String>,
}

impl ApiCall {
    /// Reads an EventBridge-wrapped CloudTrail event (or a bare CloudTrail
    /// record, whose fields are at the top).
    pub fn parse(body: &str) -> Result<ApiCall, String> {
        let v: Value =
            serde_json::from_str(body).map_err(|e| format!("not JSON ({e}): {}", clip(body)))?;
        let detail = v.get("detail").unwrap_or(&v);
        let name = detail
            .get("eventName")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("no detail.eventName: {}", clip(body)))?
            .to_string();
        let time = detail
            .get("eventTime")
            .or_else(|| v.get("time"))
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{name}: no eventTime"))?;
        let at = parse_utc(time)
            .ok_or_else(|| format!("{name}: eventTime {time:?} is not UTC ISO 8601"))?;
        let caller = detail
            .pointer("/userIdentity/arn")
            .and_then(Value::as_str)
            .map(str::to_string);
        let failed = detail.get("errorCode").is_some_and(|e| !e.is_null());
        let mut ids = BTreeSet::new();
        for part in ["requestParameters", "responseElements"] {
            if let Some(p) = detail.get(part) {
                collect_ids(p, &mut ids);
            }
        }
        Ok(ApiCall {
            name,
            at,
            caller,
            failed,
            ids,
        })
    }

    /// Whether the conductor made this call: under its role session name,
    /// or as one of `own` (ARNs of its own identity).
    pub fn is_own(&self, own: &[String]) -> bool {
        let Some(caller) = &self.caller else {
            return false;
        };
        let session = caller
            .contains(":assumed-role/")
            .then(|| caller.rsplit('/').next())
            .flatten();
        session == Some(OWN_SESSION_NAME) || own.iter().any(|o| o == caller)
    }

    /// Whether the call is worth a look: it succeeded and names something.
    pub fn may_drift(&self) -> bool {
        !self.failed && !self.ids.is_empty() && !self.name.starts_with("Describe")
    }
}

/// Every string in `v` that looks like an id of a kind Canon manages.
fn collect_ids(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::String(s) if is_id(s) => {
            out.insert(s.clone());
        }
        Value::Array(items) => items.iter().for_each(|i| collect_ids(i, out)),
        Value::Object(fields) => fields.values().for_each(|f| collect_ids(f, out)),
        _ => {}
    }
}

fn is_id(s: &str) -> bool {
    ID_PREFIXES.iter().any(|p| {
        s.strip_prefix(p).is_some_and(|hex| {
            !hex.is_empty() && hex.len() <= 17 && hex.bytes().all(|b| b.is_ascii_hexdigit())
        })
    })
}

/// The first 200 characters of a body, for an error message.
fn clip(body: &str) -> String {
    body.chars().take(200).collect()
}

/// Milliseconds since the epoch of `YYYY-MM-DDTHH:MM:SS[.fff]Z`.
fn parse_utc(t: &str) -> Option<UnixMillis> {
    let t = t.strip_suffix('Z')?;
    let (date, clock) = t.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (clock, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut c = clock.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, min, s) = (c.next()??, c.next()??, c.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || s > 60 {
        return None;
    }
    let ms: i64 = match frac {
        "" => 0,
        f if f.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{:0<3}", &f[..f.len().min(3)]).parse().ok()?
        }
        _ => return None,
    };
    let days = days_from_civil(y, m, day);
    let total = ((days * 24 + h) * 60 + min) * 60 + s;
    u64::try_from(total * 1000 + ms).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rogue_ingress(caller: &str) -> String {
        serde_json::json!({
            "version": "0",
            "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.ec2",
            "time": "2026-12-04T06:00:01Z",
            "detail": {
                "eventName": "AuthorizeSecurityGroupIngress",
                "eventTime": "2026-12-04T06:00:00Z",
                "eventSource": "ec2.amazonaws.com",
                "userIdentity": {"type": "AssumedRole", "arn": caller},
                "requestParameters": {
                    "groupId": "sg-0123456789abcdef0",
                    "ipPermissions": {"items": [{"ipProtocol": "-1",
                        "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}
                },
                "responseElements": {"_return": true,
                    "securityGroupRuleSet": {"items": [{"securityGroupRuleId": "sgr-0aa1"}]}}
            }
        })
        .to_string()
    }

    #[test]
    fn a_rogue_rule_names_its_group_and_time() {
        let call =
            ApiCall::parse(&rogue_ingress("arn:aws:iam::111111111111:user/mallory")).unwrap();
        assert_eq!(call.name, "AuthorizeSecurityGroupIngress");
        assert_eq!(call.at, 1_796_364_000_000);
        let ids: Vec<&str> = call.ids.iter().map(String::as_str).collect();
        assert_eq!(ids, ["sg-0123456789abcdef0", "sgr-0aa1"]);
        assert!(call.may_drift());
        assert!(!call.is_own(&[]));
    }

    #[test]
    fn canons_own_calls_are_known_by_session_or_arn() {
        let by_role = ApiCall::parse(&rogue_ingress(
            "arn:aws:sts::222222222222:assumed-role/canon/canon",
        ))
        .unwrap();
        assert!(by_role.is_own(&[]));
        let other_session = ApiCall::parse(&rogue_ingress(
            "arn:aws:sts::222222222222:assumed-role/admin/canonical",
        ))
        .unwrap();
        assert!(!other_session.is_own(&[]));
        let own = "arn:aws:iam::111111111111:user/conductor".to_string();
        let by_arn = ApiCall::parse(&rogue_ingress(&own)).unwrap();
        assert!(by_arn.is_own(&[own]));
    }

    #[test]
    fn failed_calls_and_garbage_are_told_apart() {
        let mut v: Value = serde_json::from_str(&rogue_ingress("arn:aws:iam::1:user/x")).unwrap();
        v["detail"]["errorCode"] = "Client.UnauthorizedOperation".into();
        let failed = ApiCall::parse(&v.to_string()).unwrap();
        assert!(failed.failed && !failed.may_drift());
        for bad in [
            "",
            "{",
            "[]",
            r#"{"detail":{}}"#,
            r#"{"detail":{"eventName":"X","eventTime":"yesterday"}}"#,
        ] {
            assert!(ApiCall::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn utc_times_read_as_cloudtrail_writes_them() {
        assert_eq!(parse_utc("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_utc("2000-03-01T00:00:00.5Z"), Some(951_868_800_500));
        assert_eq!(parse_utc("2026-12-04T06:00:00Z"), Some(1_796_364_000_000));
        for bad in [
            "2026-13-01T00:00:00Z",
            "2026-12-04 06:00:00Z",
            "2026-12-04T06:00:00",
            "x",
        ] {
            assert_eq!(parse_utc(bad), None, "{bad}");
        }
    }
}
