//! "No mutation comes from a deposed term", checked on the cloud's side:
//! the one steady-state check that needs to know who made each call.
//!
//! canond names itself in the SDK's user agent (`app/canon-node-ID`, as
//! CloudTrail records it on AWS), and deploy/netns's moto records every
//! request it serves (`[cloud] recording` in the inventory, moto's
//! recorder). After healing, the drill reads the calls made since the
//! fault's baseline began, keeps EC2's mutating ones (not `Describe*`,
//! `Get*`, `List*`), and judges each against the leadership it watched: a
//! node that made one while every group had a known leader, none of them
//! that node, made it from a deposed term. The request's time has a
//! second's resolution and the watch looks every 250 ms, so a call is
//! judged only when the node led nothing for [`SLACK_MS`] either side of
//! its second; a call while some group had no known leader cannot be
//! judged and is counted as such. The node whose clock a `clock-skew`
//! drill moved dates its calls wrongly: its calls are not judged either.
//!
//! The check is per node, not per group: a node that still leads one
//! group but was deposed from another is not caught calling for the
//! second (the request does not say which process it serves).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::probe::LeaderChange;

/// How far either side of a call's second the node must have led nothing
/// for the call to count as deposed: four of the watch's polls.
pub const SLACK_MS: u64 = 1_000;

/// What the check found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FencingReport {
    /// Mutating EC2 calls by a node, made since the baseline began.
    pub mutations: usize,
    /// Of those, calls that could not be judged (a group without a known
    /// leader around them, or a node whose clock the drill moved).
    pub unjudged: usize,
    /// The calls made from a deposed term: `node N: Action at T ms`.
    pub deposed: Vec<String>,
}

/// The recording, from where it stood when the drill began.
#[derive(Debug, Clone)]
pub struct CallLog {
    path: PathBuf,
    offset: u64,
    /// The wall clock (Unix ms) at the drill's `begun`.
    begun_unix_ms: u64,
}

/// One mutating EC2 call by a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub node: u64,
    pub action: String,
    /// When, in the drill's ms (its second's start; may be negative).
    pub at_ms: i64,
}

impl CallLog {
    /// The recording at `path` from its present end; `begun_unix_ms` is
    /// the wall clock at the drill's start.
    pub fn from_end(path: &Path, begun_unix_ms: u64) -> CallLog {
        let offset = std::fs::metadata(path).map_or(0, |m| m.len());
        CallLog {
            path: path.to_path_buf(),
            offset,
            begun_unix_ms,
        }
    }

    /// The mutating calls recorded since, by nodes that named themselves.
    pub fn calls(&self) -> Result<Vec<Call>, String> {
        let mut file = std::fs::File::open(&self.path)
            .map_err(|e| format!("cannot read {}: {e}", self.path.display()))?;
        file.seek(SeekFrom::Start(self.offset))
            .map_err(|e| format!("cannot read {}: {e}", self.path.display()))?;
        let mut text = String::new();
        file.read_to_string(&mut text)
            .map_err(|e| format!("cannot read {}: {e}", self.path.display()))?;
        Ok(text
            .lines()
            .filter_map(|line| mutation(line, self.begun_unix_ms))
            .collect())
    }
}

/// One recorded request (moto's recorder's line), as far as the check
/// reads it.
#[derive(Deserialize)]
struct Recorded {
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    body_encoded: bool,
}

/// The mutating EC2 call a recorded line is, if it is one by a node.
fn mutation(line: &str, begun_unix_ms: u64) -> Option<Call> {
    let r: Recorded = serde_json::from_str(line).ok()?;
    let header = |name: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    // The SDK names the app in both of its user agents.
    let node = ["user-agent", "x-amz-user-agent"]
        .iter()
        .find_map(|h| node_of(header(h)?))?;
    let body = match (&r.body, r.body_encoded) {
        (Some(b), true) => {
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b).ok()?).ok()?
        }
        (Some(b), false) => b.clone(),
        (None, _) => return None,
    };
    let action = body
        .split('&')
        .find_map(|kv| kv.strip_prefix("Action="))?
        .to_string();
    if ["Describe", "Get", "List"]
        .iter()
        .any(|p| action.starts_with(p))
    {
        return None;
    }
    let at_unix_ms = amz_date_ms(header("x-amz-date")?)?;
    Some(Call {
        node,
        action,
        at_ms: at_unix_ms as i64 - begun_unix_ms as i64,
    })
}

/// The node a user agent names (`… app/canon-node-3`).
fn node_of(user_agent: &str) -> Option<u64> {
    user_agent
        .split_whitespace()
        .find_map(|part| part.strip_prefix("app/canon-node-"))?
        .parse()
        .ok()
}

/// `20261205T133500Z` as Unix ms.
fn amz_date_ms(date: &str) -> Option<u64> {
    let d = date.as_bytes();
    if d.len() != 16 || d[8] != b'T' || d[15] != b'Z' {
        return None;
    }
    let num = |from: usize, to: usize| date.get(from..to)?.parse::<i64>().ok();
    let (y, m, day) = (num(0, 4)?, num(4, 6)?, num(6, 8)?);
    let (h, min, s) = (num(9, 11)?, num(11, 13)?, num(13, 15)?);
    // Days from 1970-01-01 to the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(((days * 24 + h) * 60 + min) * 60 + s)
        .ok()
        .map(|secs| secs * 1_000)
}

/// The leadership the drill watched, as intervals: for each moment, each
/// group's leader (0: none known).
struct Timeline {
    /// (from ms, each group's leader from then on), in time order.
    steps: Vec<(u64, BTreeMap<u64, u64>)>,
    end_ms: u64,
}

impl Timeline {
    fn new(changes: &[LeaderChange], end_ms: u64) -> Timeline {
        let mut now: BTreeMap<u64, u64> = BTreeMap::new();
        let mut steps: Vec<(u64, BTreeMap<u64, u64>)> = Vec::new();
        let mut sorted: Vec<&LeaderChange> = changes.iter().collect();
        sorted.sort_by_key(|c| c.at_ms);
        for c in sorted {
            now.insert(c.group, c.leader);
            match steps.last_mut() {
                Some((at, leaders)) if *at == c.at_ms => *leaders = now.clone(),
                _ => steps.push((c.at_ms, now.clone())),
            }
        }
        Timeline { steps, end_ms }
    }

    /// The leaderships in force at some moment of [from, to].
    fn during(&self, from: u64, to: u64) -> impl Iterator<Item = &BTreeMap<u64, u64>> {
        self.steps
            .iter()
            .enumerate()
            .filter_map(move |(i, (at, leaders))| {
                let until = self.steps.get(i + 1).map_or(self.end_ms, |s| s.0);
                (*at <= to && until >= from).then_some(leaders)
            })
    }
}

/// Judges `calls` against the watched `changes` (the watch ended at
/// `end_ms`); calls of `unjudged_nodes` are not judged.
pub fn judge(
    calls: &[Call],
    changes: &[LeaderChange],
    end_ms: u64,
    unjudged_nodes: &BTreeSet<u64>,
) -> FencingReport {
    let timeline = Timeline::new(changes, end_ms);
    // Calls before the watch's first look, or after its last, are unjudged.
    let first = timeline.steps.first().map_or(i64::MAX, |s| s.0 as i64);
    let mut report = FencingReport::default();
    for c in calls {
        report.mutations += 1;
        let from = c.at_ms - SLACK_MS as i64;
        let to = c.at_ms + 1_000 + SLACK_MS as i64;
        if unjudged_nodes.contains(&c.node) || from < first || to > end_ms as i64 {
            report.unjudged += 1;
            continue;
        }
        let windows: Vec<&BTreeMap<u64, u64>> = timeline.during(from as u64, to as u64).collect();
        if windows.iter().any(|w| w.values().any(|l| *l == 0)) {
            report.unjudged += 1;
            continue;
        }
        if !windows.iter().any(|w| w.values().any(|l| *l == c.node)) {
            report
                .deposed
                .push(format!("node {}: {} at {} ms", c.node, c.action, c.at_ms));
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(at_ms: u64, group: u64, leader: u64) -> LeaderChange {
        LeaderChange {
            at_ms,
            group,
            leader,
            term: 1,
        }
    }

    fn call(node: u64, at_ms: i64) -> Call {
        Call {
            node,
            action: "CreateVpc".into(),
            at_ms,
        }
    }

    #[test]
    fn a_recorded_line_reads_as_the_call_it_is() {
        let body = base64::engine::general_purpose::STANDARD
            .encode("Action=CreateVpc&Version=2016-11-15&CidrBlock=10.0.0.0%2F16");
        let line = serde_json::json!({
            "headers": {
                "User-Agent": "aws-sdk-rust/1.3 os/linux lang/rust/1.90 app/canon-node-2",
                "X-Amz-Date": "20261205T133501Z",
            },
            "method": "POST",
            "url": "http://198.18.5.2:5000/",
            "body": body,
            "body_encoded": true,
        })
        .to_string();
        let begun = amz_date_ms("20261205T133500Z").unwrap();
        assert_eq!(
            mutation(&line, begun),
            Some(Call {
                node: 2,
                action: "CreateVpc".into(),
                at_ms: 1_000
            })
        );
        let describe = line.replace(
            &body,
            &base64::engine::general_purpose::STANDARD.encode("Action=DescribeVpcs"),
        );
        assert_eq!(mutation(&describe, begun), None, "a read");
        let other = line.replace("app/canon-node-2", "app/someone");
        assert_eq!(mutation(&other, begun), None, "not a node's");
        assert_eq!(mutation("not json", begun), None);
    }

    #[test]
    fn amz_dates_are_unix_time() {
        assert_eq!(amz_date_ms("19700101T000000Z"), Some(0));
        assert_eq!(amz_date_ms("20000301T000001Z"), Some(951_868_801_000));
        assert_eq!(amz_date_ms("2000-03-01"), None);
    }

    #[test]
    fn a_call_by_a_node_that_led_nothing_is_deposed_and_by_a_leader_is_not() {
        // Node 1 leads both groups until 3 s, then node 2 leads both.
        let changes = vec![
            change(0, 0, 1),
            change(0, 1, 1),
            change(3_000, 0, 2),
            change(3_000, 1, 2),
        ];
        let none = BTreeSet::new();
        let r = judge(&[call(1, 1_000), call(2, 5_000)], &changes, 10_000, &none);
        assert_eq!(r.mutations, 2);
        assert!(r.deposed.is_empty(), "{r:?}");
        // Node 1 calls at 6 s, long after it lost both groups: deposed.
        let r = judge(&[call(1, 6_000)], &changes, 10_000, &none);
        assert_eq!(r.deposed, vec!["node 1: CreateVpc at 6000 ms".to_string()]);
        // Within the slack of its last leadership: not judged deposed.
        let r = judge(&[call(1, 2_500)], &changes, 10_000, &none);
        assert!(r.deposed.is_empty(), "{r:?}");
        // A node whose clock the drill moved is not judged.
        let r = judge(&[call(1, 6_000)], &changes, 10_000, &BTreeSet::from([1]));
        assert_eq!((r.unjudged, r.deposed.len()), (1, 0));
    }

    #[test]
    fn a_call_while_a_group_had_no_known_leader_is_not_judged() {
        let changes = vec![
            change(0, 0, 2),
            change(0, 1, 2),
            change(4_000, 1, 0),
            change(9_000, 1, 2),
        ];
        let r = judge(&[call(1, 5_000)], &changes, 12_000, &BTreeSet::new());
        assert_eq!((r.unjudged, r.deposed.len()), (1, 0), "{r:?}");
        // Before the watch began or after it ended: not judged.
        let r = judge(
            &[call(1, -2_000), call(1, 11_500)],
            &changes,
            12_000,
            &BTreeSet::new(),
        );
        assert_eq!(r.unjudged, 2);
    }
}
