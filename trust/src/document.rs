//! The policy document: users (with their keys and groups), accounts, roles
//! and bindings — the one description of who may do what, replicated in the
//! meta group and written by people as TOML:
//!
//! ```toml
//! [[users]]
//! name = "alice"
//! keys = ["<hex ed25519 public key>"]
//! groups = ["web"]
//!
//! [[accounts]]
//! name = "web-prod"
//! aws_account_id = "222222222222"
//! role_arn = "arn:aws:iam::222222222222:role/canon"   # optional
//! external_id = "…"                                   # optional
//! region = "us-west-2"                                # optional default
//! events_queues = { us-west-2 = "https://sqs.us-west-2.amazonaws.com/222222222222/canon-events" }  # optional
//!
//! [[roles]]
//! name = "web-deployer"
//! rules = [
//!   { effect = "allow", actions = ["process.*"], accounts = ["web-*"] },
//!   { effect = "deny",  actions = ["process.kill"], accounts = ["web-prod"], aliases = ["*"] },
//! ]
//!
//! [[bindings]]
//! role = "web-deployer"
//! subjects = ["group:web", "user:bob"]
//! ```
//!
//! [`PolicyDocument::from_toml`] refuses anything a reader could misread: an
//! unknown field, a duplicate name, a binding to a role that does not exist,
//! a malformed key, account id or pattern — each error naming the entry. A
//! binding may name a user not listed yet (the example's `user:bob`): it
//! grants nothing until one is added ([`PolicyDocument::notes`] says so), and
//! writing it is checked for escalation as if that user existed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::action::ActionPattern;
use crate::pattern::Pattern;

/// Who may do what. See the module documentation for the TOML shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<User>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<Account>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Role>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bindings: Vec<Binding>,
}

/// A person or program that signs commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    /// Ed25519 public keys; any of them signs as this user.
    pub keys: Vec<PublicKey>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// An AWS account processes run in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub name: String,
    pub aws_account_id: String,
    /// The role the conductor assumes in the account; none: its own
    /// credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The region processes use when their composition names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Per region, the SQS queue an EventBridge rule fills with the
    /// account's EC2 calls (`deploy/aws/events.yaml`): the meta leader
    /// reads each one and heals what they drift before the tick.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub events_queues: BTreeMap<String, String>,
}

/// A named list of rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    pub name: String,
    pub rules: Vec<Rule>,
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Allow,
    Deny,
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        })
    }
}

/// One rule of a role: an effect on actions, narrowed to accounts and
/// aliases (absent: any, including actions on no account or alias).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub effect: Effect,
    pub actions: Vec<ActionPattern>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts: Option<Vec<Pattern>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aliases: Option<Vec<Pattern>>,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |ps: &[String]| ps.join(", ");
        let actions: Vec<String> = self.actions.iter().map(ToString::to_string).collect();
        write!(f, "{} {}", self.effect, list(&actions))?;
        if let Some(accounts) = &self.accounts {
            let a: Vec<String> = accounts.iter().map(ToString::to_string).collect();
            write!(f, " on accounts {}", list(&a))?;
        }
        if let Some(aliases) = &self.aliases {
            let a: Vec<String> = aliases.iter().map(ToString::to_string).collect();
            write!(f, " for aliases {}", list(&a))?;
        }
        Ok(())
    }
}

/// A role given to users and groups, optionally only on some accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    pub role: String,
    pub subjects: Vec<Subject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts: Option<Vec<Pattern>>,
}

/// `user:NAME` or `group:NAME`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subject {
    User(String),
    Group(String),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::User(u) => write!(f, "user:{u}"),
            Subject::Group(g) => write!(f, "group:{g}"),
        }
    }
}

impl Serialize for Subject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Subject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.split_once(':') {
            Some(("user", name)) if !name.is_empty() => Ok(Subject::User(name.to_string())),
            Some(("group", name)) if !name.is_empty() => Ok(Subject::Group(name.to_string())),
            _ => Err(serde::de::Error::custom(format!(
                "subject `{text}` is neither `user:NAME` nor `group:NAME`"
            ))),
        }
    }
}

/// An ed25519 public key, written as 64 hex characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// Parses 64 hex characters.
    pub fn from_hex(text: &str) -> Result<Self, String> {
        let bytes = hex::decode(text.trim())
            .map_err(|e| format!("key `{}` is not hex: {e}", abbreviate(text)))?;
        let array: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            format!(
                "key `{}` has {} bytes; an ed25519 public key has 32 (64 hex characters)",
                abbreviate(text),
                b.len()
            )
        })?;
        Ok(PublicKey(array))
    }

    /// The key's id: the first 16 hex characters of its SHA-256. Envelopes
    /// name the key they were signed with by this id, so a user may hold
    /// several keys while rotating.
    pub fn id(&self) -> KeyId {
        let digest = Sha256::digest(self.0);
        KeyId(hex::encode(&digest[..8]))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        PublicKey::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

/// The id of a public key (16 hex characters).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyId(pub String);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn abbreviate(text: &str) -> String {
    if text.chars().count() > 20 {
        format!("{}…", text.chars().take(16).collect::<String>())
    } else {
        text.to_string()
    }
}

/// Why a policy document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not TOML, or not of the document's shape (the message has the line).
    #[error("{0}")]
    Syntax(String),
    /// Well-formed but inconsistent; the message names the entry.
    #[error("{0}")]
    Invalid(String),
}

impl PolicyDocument {
    /// Reads and validates a document written as TOML.
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        let doc: PolicyDocument =
            toml::from_str(text).map_err(|e| PolicyError::Syntax(e.to_string()))?;
        doc.validate()?;
        Ok(doc)
    }

    /// The document as TOML, in the shape [`PolicyDocument::from_toml`] reads.
    pub fn to_toml(&self) -> String {
        // Serialising plain strings, vectors and options into TOML cannot
        // fail: every field has a TOML form.
        toml::to_string(self).unwrap_or_default()
    }

    /// Checks what the TOML shape alone cannot: names, references,
    /// uniqueness.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let invalid = |m: String| Err(PolicyError::Invalid(m));
        let mut user_names = BTreeSet::new();
        let mut keys = BTreeSet::new();
        for (i, u) in self.users.iter().enumerate() {
            check_name("users", i, &u.name)?;
            if !user_names.insert(u.name.as_str()) {
                return invalid(format!("users[{i}]: a second user named `{}`", u.name));
            }
            if u.keys.is_empty() {
                return invalid(format!(
                    "users[{i}] ({}): no keys; a user signs with at least one ed25519 key",
                    u.name
                ));
            }
            for k in &u.keys {
                if !keys.insert(*k) {
                    return invalid(format!(
                        "users[{i}] ({}): key {} (id {}) is already another user's or listed twice",
                        u.name,
                        abbreviate(&k.to_string()),
                        k.id()
                    ));
                }
            }
            for g in &u.groups {
                check_name("users.groups", i, g)?;
            }
        }
        let mut account_names = BTreeSet::new();
        for (i, a) in self.accounts.iter().enumerate() {
            check_name("accounts", i, &a.name)?;
            if !account_names.insert(a.name.as_str()) {
                return invalid(format!(
                    "accounts[{i}]: a second account named `{}`",
                    a.name
                ));
            }
            check_account(i, a)?;
        }
        let mut role_names = BTreeSet::new();
        for (i, r) in self.roles.iter().enumerate() {
            check_name("roles", i, &r.name)?;
            if !role_names.insert(r.name.as_str()) {
                return invalid(format!("roles[{i}]: a second role named `{}`", r.name));
            }
            for (j, rule) in r.rules.iter().enumerate() {
                if rule.actions.is_empty() {
                    return invalid(format!(
                        "roles[{i}] ({}) rule {}: no actions",
                        r.name,
                        j + 1
                    ));
                }
                for list in [&rule.accounts, &rule.aliases].into_iter().flatten() {
                    if list.is_empty() {
                        return invalid(format!("roles[{i}] ({}) rule {}: an empty accounts or aliases list matches nothing; leave it out to match any", r.name, j + 1));
                    }
                }
            }
        }
        for (i, b) in self.bindings.iter().enumerate() {
            if !role_names.contains(b.role.as_str()) {
                return invalid(format!("bindings[{i}]: no role named `{}`", b.role));
            }
            if b.subjects.is_empty() {
                return invalid(format!("bindings[{i}] (role {}): no subjects", b.role));
            }
            if b.accounts.as_ref().is_some_and(Vec::is_empty) {
                return invalid(format!("bindings[{i}] (role {}): an empty accounts list matches nothing; leave it out to match any", b.role));
            }
        }
        Ok(())
    }

    /// What a valid document says that its author may not mean, one line
    /// each: a binding naming a user the document does not list (a typo, or
    /// a teammate not added yet). Such a binding grants nothing until a
    /// user of that name is added, and adding one is then checked like any
    /// other grant (no escalation), so it is allowed, but said.
    pub fn notes(&self) -> Vec<String> {
        self.unlisted_subjects()
            .map(|(i, b, u)| {
                format!(
                    "bindings[{i}] (role {}): no user named `{u}` yet; \
                     the binding grants nothing until one is added",
                    b.role
                )
            })
            .collect()
    }

    /// Each `user:NAME` subject that names no user of this document, with
    /// its binding and the binding's index.
    pub fn unlisted_subjects(&self) -> impl Iterator<Item = (usize, &Binding, &str)> {
        self.bindings.iter().enumerate().flat_map(move |(i, b)| {
            b.subjects.iter().filter_map(move |s| match s {
                Subject::User(u) if self.user(u).is_none() => Some((i, b, u.as_str())),
                _ => None,
            })
        })
    }

    /// The user named `name`.
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    /// The user holding the key with id `key`, and that key.
    pub fn key(&self, key: &KeyId) -> Option<(&User, &PublicKey)> {
        self.users
            .iter()
            .find_map(|u| u.keys.iter().find(|k| &k.id() == key).map(|k| (u, k)))
    }

    /// The account named `name`.
    pub fn account(&self, name: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// The role named `name`.
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.name == name)
    }
}

/// Names are what people type on command lines: letters, digits, `.`, `_`,
/// `-`, `@`, at most 64 characters.
fn check_name(section: &str, index: usize, name: &str) -> Result<(), PolicyError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(PolicyError::Invalid(format!(
            "{section}[{index}]: `{}` is not a valid name (letters, digits, `.`, `_`, `-`, `@`; at most 64)",
            name.escape_debug()
        )))
    }
}

fn check_account(index: usize, a: &Account) -> Result<(), PolicyError> {
    let invalid = |m: String| {
        Err(PolicyError::Invalid(format!(
            "accounts[{index}] ({}): {m}",
            a.name
        )))
    };
    if a.aws_account_id.len() != 12 || !a.aws_account_id.chars().all(|c| c.is_ascii_digit()) {
        return invalid(format!(
            "aws_account_id `{}` is not 12 digits",
            a.aws_account_id
        ));
    }
    if let Some(arn) = &a.role_arn {
        let expected = format!(":iam::{}:role/", a.aws_account_id);
        if !(arn.starts_with("arn:aws") && arn.contains(&expected)) {
            return invalid(format!(
                "role_arn `{arn}` is not a role of account {} (arn:aws:iam::{}:role/NAME)",
                a.aws_account_id, a.aws_account_id
            ));
        }
    }
    if a.external_id
        .as_ref()
        .is_some_and(|x| x.is_empty() || x.len() > 1224)
    {
        return invalid("external_id must have 1 to 1224 characters".into());
    }
    for region in a.region.iter().chain(a.events_queues.keys()) {
        if !is_region_code(region) {
            return invalid(format!(
                "region `{region}` is not a region code (us-west-2)"
            ));
        }
    }
    for (region, url) in &a.events_queues {
        if !is_queue_url(url) {
            return invalid(format!(
                "the events queue of {region}, `{url}`, is not an SQS queue URL (https://sqs.{region}.amazonaws.com/{}/NAME)",
                a.aws_account_id
            ));
        }
    }
    Ok(())
}

/// Whether `region` reads like a region code: lower-case letters, digits
/// and dashes.
fn is_region_code(region: &str) -> bool {
    !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Whether `url` reads like a queue URL: http(s), a host, and a path (the
/// account and the queue's name); no spaces.
fn is_queue_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return false;
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    !host.is_empty()
        && !path.trim_matches('/').is_empty()
        && url.len() <= 1024
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const ALICE_KEY: &str =
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    const BOB_KEY: &str = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";

    fn example() -> String {
        format!(
            r#"
[[users]]
name = "alice"
keys = ["{ALICE_KEY}"]
groups = ["web"]

[[users]]
name = "bob"
keys = ["{BOB_KEY}"]

[[accounts]]
name = "web-prod"
aws_account_id = "222222222222"
role_arn = "arn:aws:iam::222222222222:role/canon"
external_id = "x-1"
region = "us-west-2"
events_queues = {{ us-west-2 = "https://sqs.us-west-2.amazonaws.com/222222222222/canon-events" }}

[[roles]]
name = "web-deployer"
rules = [
  {{ effect = "allow", actions = ["process.*"], accounts = ["web-*"] }},
  {{ effect = "deny",  actions = ["process.kill"], accounts = ["web-prod"], aliases = ["*"] }},
]

[[bindings]]
role = "web-deployer"
subjects = ["group:web", "user:bob"]
"#
        )
    }

    /// The issue's own example binds `user:bob` and lists only alice: a
    /// binding may name a user not added yet. It grants nothing until then,
    /// and the document says so.
    #[test]
    fn a_binding_may_name_a_user_not_added_yet() {
        let only_alice = example().replace(
            &format!("[[users]]\nname = \"bob\"\nkeys = [\"{BOB_KEY}\"]\n"),
            "",
        );
        let doc = PolicyDocument::from_toml(&only_alice).unwrap();
        assert_eq!(doc.users.len(), 1);
        let notes = doc.notes();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("no user named `bob` yet"), "{notes:?}");
        assert!(PolicyDocument::from_toml(&example())
            .unwrap()
            .notes()
            .is_empty());
        let bob = crate::evaluate::AccessRequest {
            action: crate::action::Action::ProcessRun,
            account: Some("web-prod"),
            alias: None,
        };
        assert!(!crate::evaluate::evaluate(&doc, "bob", &bob).is_allowed());
    }

    #[test]
    fn reads_the_documented_shape_and_writes_it_back() {
        let doc = PolicyDocument::from_toml(&example()).unwrap();
        assert_eq!(doc.users.len(), 2);
        assert_eq!(doc.roles[0].rules[1].effect, Effect::Deny);
        assert_eq!(
            doc.bindings[0].subjects,
            vec![Subject::Group("web".into()), Subject::User("bob".into())]
        );
        let again = PolicyDocument::from_toml(&doc.to_toml()).unwrap();
        assert_eq!(again, doc);
        let key = PublicKey::from_hex(ALICE_KEY).unwrap();
        assert_eq!(doc.key(&key.id()).unwrap().0.name, "alice");
        assert_eq!(key.id().0.len(), 16);
        assert_eq!(
            doc.accounts[0].events_queues["us-west-2"],
            "https://sqs.us-west-2.amazonaws.com/222222222222/canon-events"
        );
    }

    fn refused(text: &str) -> String {
        PolicyDocument::from_toml(text).unwrap_err().to_string()
    }

    #[test]
    fn refuses_what_a_reader_could_misread() {
        let base = example();
        let cases = [
            (
                base.replace("groups = [\"web\"]", "group = [\"web\"]"),
                "unknown field",
            ),
            (
                base.replace("web-deployer\"\nsubjects", "web-deployr\"\nsubjects"),
                "no role named `web-deployr`",
            ),
            (base.replace("user:bob", "usr:bob"), "neither `user:NAME`"),
            (
                base.replace("\"222222222222\"\nrole_arn", "\"2222\"\nrole_arn"),
                "not 12 digits",
            ),
            (
                base.replace("iam::222222222222:role", "iam::333333333333:role"),
                "is not a role of account",
            ),
            (
                base.replace("\"process.kill\"", "\"process.kil\""),
                "perhaps you mean process.kill",
            ),
            (
                base.replace("[\"web-*\"]", "[\"w*b\"]"),
                "only a trailing `*`",
            ),
            (base.replace(BOB_KEY, ALICE_KEY), "already another user's"),
            (base.replace(BOB_KEY, "abc"), "not hex"),
            (base.replace(BOB_KEY, "abcd"), "has 2 bytes"),
            (
                base.replace("name = \"bob\"", "name = \"alice\""),
                "a second user named `alice`",
            ),
            (
                base.replace("effect = \"allow\"", "effect = \"permit\""),
                "unknown variant",
            ),
            (
                base.replace("{ us-west-2 = \"https://sqs", "{ US-West = \"https://sqs"),
                "region `US-West` is not a region code",
            ),
            (
                base.replace(
                    "\"https://sqs.us-west-2.amazonaws.com/222222222222/canon-events\"",
                    "\"sqs/canon-events\"",
                ),
                "the events queue of us-west-2, `sqs/canon-events`, is not an SQS queue URL",
            ),
            (
                base.replace("/222222222222/canon-events\"", "/\""),
                "is not an SQS queue URL",
            ),
        ];
        for (text, expected) in cases {
            let e = refused(&text);
            assert!(e.contains(expected), "expected {expected:?} in {e:?}");
        }
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = refused("[[users]]\nname = \"alice\nkeys = []\n");
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn an_empty_document_is_valid() {
        assert_eq!(
            PolicyDocument::from_toml("").unwrap(),
            PolicyDocument::default()
        );
    }
}
