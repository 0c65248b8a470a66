//! An audit entry's canonical bytes — what its chain hash covers — written
//! by hand.
//!
//! The bytes are, and must stay, exactly what `serde_json` writes for an
//! [`AuditEntry`]: fields in declaration order, absent options and empty
//! or zero fields left out as the entry's `skip_serializing_if` says,
//! strings escaped as `serde_json` escapes them. Every replica hashes
//! every audited request, so this is on the write path of every user
//! command (issue #13's benchmark): `serde_json`'s generic serializer
//! spent about as long writing an entry as SHA-256 did hashing it.
//! `tests` compares the two writers on generated entries; the golden
//! chain (`raft/tests/audit_bytes.rs`) pins the hashes.

use super::{
    AuditDecision, AuditEntry, AuditPrincipal, AuditTarget, Channel, Decider, Packed, Text,
};
use crate::document::Effect;

/// Appends `entry`'s canonical bytes to `out`. (The entry is taken apart
/// field by field, so that a field added to it does not compile until it
/// is written here too.)
pub fn write_entry(out: &mut Vec<u8>, e: &AuditEntry) {
    let AuditEntry {
        group: _,
        seq: _,
        at: _,
        command_id: _,
        command: _,
        principal: _,
        action: _,
        target:
            AuditTarget {
                account: _,
                region: _,
                alias: _,
                fid: _,
            },
        decision:
            AuditDecision {
                effect: _,
                rule: _,
                policy_version: _,
                by: _,
            },
        outcome: _,
        detail: _,
        request_hash: _,
        aws_request_ids: _,
        dropped: _,
    } = e;
    out.extend_from_slice(b"{\"group\":");
    uint(out, e.group);
    out.extend_from_slice(b",\"seq\":");
    uint(out, e.seq);
    out.extend_from_slice(b",\"at\":");
    uint(out, e.at);
    out.extend_from_slice(b",\"command_id\":");
    packed(out, &e.command_id);
    out.extend_from_slice(b",\"command\":");
    string(out, &e.command);
    if let Some(p) = &e.principal {
        let AuditPrincipal {
            user: _,
            key_id: _,
            cert_fingerprint: _,
            channel: _,
            root: _,
        } = p;
        out.extend_from_slice(b",\"principal\":{\"user\":");
        string(out, &p.user);
        opt_text(out, b",\"key_id\":", p.key_id.as_ref());
        opt_text(out, b",\"cert_fingerprint\":", p.cert_fingerprint.as_ref());
        out.extend_from_slice(match p.channel {
            Channel::Grpc => b",\"channel\":\"grpc\"",
            Channel::Sqs => b",\"channel\":\"sqs\"",
        });
        out.extend_from_slice(if p.root {
            b",\"root\":true}"
        } else {
            b",\"root\":false}"
        });
    }
    out.extend_from_slice(b",\"action\":");
    string(out, &e.action);
    out.extend_from_slice(b",\"target\":{");
    let mut first = true;
    let t = &e.target;
    for (name, value) in [
        ("account", &t.account),
        ("region", &t.region),
        ("alias", &t.alias),
        ("fid", &t.fid),
    ] {
        if let Some(v) = value {
            if !first {
                out.push(b',');
            }
            first = false;
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
            string(out, v);
        }
    }
    out.extend_from_slice(match e.decision.effect {
        Effect::Allow => b"},\"decision\":{\"effect\":\"allow\"",
        Effect::Deny => b"},\"decision\":{\"effect\":\"deny\"",
    });
    opt_text(out, b",\"rule\":", e.decision.rule.as_ref());
    if let Some(v) = e.decision.policy_version {
        out.extend_from_slice(b",\"policy_version\":");
        uint(out, v);
    }
    out.extend_from_slice(match e.decision.by {
        Decider::Door => b",\"by\":\"door\"}",
        Decider::StateMachine => b",\"by\":\"state-machine\"}",
        Decider::Conductor => b",\"by\":\"conductor\"}",
    });
    out.extend_from_slice(b",\"outcome\":");
    string(out, &e.outcome);
    if let Some(d) = &e.detail {
        out.extend_from_slice(b",\"detail\":");
        string(out, d);
    }
    if let Some(h) = &e.request_hash {
        out.extend_from_slice(b",\"request_hash\":");
        packed(out, h);
    }
    if !e.aws_request_ids.is_empty() {
        out.extend_from_slice(b",\"aws_request_ids\":[");
        for (i, id) in e.aws_request_ids.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            string(out, id);
        }
        out.push(b']');
    }
    if e.dropped != 0 {
        out.extend_from_slice(b",\"dropped\":");
        uint(out, e.dropped);
    }
    out.push(b'}');
}

fn opt_text(out: &mut Vec<u8>, key: &[u8], value: Option<&Text>) {
    if let Some(v) = value {
        out.extend_from_slice(key);
        string(out, v);
    }
}

fn packed(out: &mut Vec<u8>, p: &Packed) {
    if p.is_text() {
        return p.with_str(|s| string(out, s));
    }
    // Hex digits and hyphens: nothing to escape.
    p.with_str(|s| {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    });
}

/// `v` in decimal.
fn uint(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        // A remainder mod 10 is a digit: the cast cannot truncate.
        digits[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// `s` as a JSON string, escaped as `serde_json` escapes: `"` and `\`,
/// the five short escapes, other control characters as `\u00XX` in
/// lowercase hex; everything else (DEL and non-ASCII too) as it is.
fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    if !needs_escape(bytes) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => &[],
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            let mut hex = [0u8; 2];
            super::hex_into(&[b], &mut hex);
            out.extend_from_slice(b"\\u00");
            out.extend_from_slice(&hex);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Whether any byte of `bytes` is escaped. Most text escapes nothing, and
/// this test of whole blocks (no exit within one) the compiler turns into
/// a few vector instructions a block, where a loop that stops at the
/// first escape goes byte by byte.
fn needs_escape(bytes: &[u8]) -> bool {
    const BLOCK: usize = 16;
    bytes.chunks(BLOCK).any(|block| {
        block.iter().fold(false, |any, &b| {
            any | (b < 0x20) | (b == b'"') | (b == b'\\')
        })
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Text with what JSON escapes: quotes, backslashes, every control
    /// character, DEL, non-ASCII.
    fn text() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                Just('"'),
                Just('\\'),
                (0u8..0x20).prop_map(char::from),
                Just('\u{7f}'),
                Just('é'),
                Just('\u{1f600}'),
                prop::char::range('a', 'z'),
            ],
            0..12,
        )
        .prop_map(|c| c.into_iter().collect())
    }

    fn opt_text() -> impl Strategy<Value = Option<Text>> {
        prop::option::of(text().prop_map(Text::from))
    }

    /// A hash, a UUID or any text, as a packed field holds them.
    fn packed() -> impl Strategy<Value = Packed> {
        prop_oneof![
            any::<[u8; 32]>().prop_map(Packed::sha256),
            any::<[u8; 16]>().prop_map(Packed::uuid),
            text().prop_map(|t| Packed::new(&t)),
        ]
    }

    fn principal() -> impl Strategy<Value = AuditPrincipal> {
        (text(), opt_text(), opt_text(), any::<bool>(), any::<bool>()).prop_map(
            |(user, key_id, cert_fingerprint, sqs, root)| AuditPrincipal {
                user: user.into(),
                key_id,
                cert_fingerprint,
                channel: if sqs { Channel::Sqs } else { Channel::Grpc },
                root,
            },
        )
    }

    fn decision() -> impl Strategy<Value = AuditDecision> {
        (any::<bool>(), opt_text(), any::<Option<u64>>(), 0..3u8).prop_map(
            |(deny, rule, policy_version, by)| AuditDecision {
                effect: if deny { Effect::Deny } else { Effect::Allow },
                rule,
                policy_version,
                by: [Decider::Door, Decider::StateMachine, Decider::Conductor][usize::from(by)],
            },
        )
    }

    fn entry() -> impl Strategy<Value = AuditEntry> {
        let head = (
            any::<[u64; 3]>(),
            packed(),
            text(),
            prop::option::of(principal()),
        );
        let target = (opt_text(), opt_text(), opt_text(), opt_text());
        let tail = (
            text(),
            decision(),
            text(),
            prop::option::of(text()),
            prop::option::of(packed()),
            prop::collection::vec(text(), 0..3),
            prop_oneof![Just(0u64), any::<u64>()],
        );
        (head, target, tail).prop_map(
            |(
                ([group, seq, at], command_id, command, principal),
                (account, region, alias, fid),
                (action, decision, outcome, detail, request_hash, aws_request_ids, dropped),
            )| AuditEntry {
                group,
                seq,
                at,
                command_id,
                command: command.into(),
                principal,
                action: action.into(),
                target: AuditTarget {
                    account,
                    region,
                    alias,
                    fid,
                },
                decision,
                outcome: outcome.into(),
                detail,
                request_hash,
                aws_request_ids,
                dropped,
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn writes_what_serde_json_writes(e in entry()) {
            let mut ours = Vec::new();
            write_entry(&mut ours, &e);
            let theirs = serde_json::to_vec(&e).unwrap();
            prop_assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs));
        }
    }

    #[test]
    fn every_control_character_and_the_integer_extremes() {
        let all: String = (0u8..0x80).map(char::from).collect();
        let mut ours = Vec::new();
        string(&mut ours, &all);
        assert_eq!(ours, serde_json::to_vec(&all).unwrap());
        for v in [0, 9, 10, 99, 100, u64::MAX - 1, u64::MAX] {
            let mut ours = Vec::new();
            uint(&mut ours, v);
            assert_eq!(ours, v.to_string().as_bytes());
        }
    }
}
