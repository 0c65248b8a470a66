//! Accounts in use: a change to the policy must not strand live processes.
//!
//! The conductor reaches a process's account through the account's role
//! (`role_arn`), or with its own credentials when the account has none or
//! is no longer in the policy. So removing an account, or changing the AWS
//! account its role lives in (or adding or dropping the role), would make
//! the conductor look for a process's resources elsewhere, find none and
//! build them again there, leaving the real ones unmanaged. Such a change is
//! refused at the door while live processes (including those being killed or
//! released) run in the account, naming them. The check reads every shard
//! before the change is proposed, so a process created while the change
//! commits is not seen, as with any check before a write.

use std::collections::BTreeSet;

use canon_raft::{authorise, PolicyChange, Principal};
use canon_trust::{AccessRequest, Account, Action, PolicyDocument};
use tonic::Status;

use super::Api;

/// Most processes a refusal names.
const NAMED_MAX: usize = 10;

impl Api {
    /// The account and why `change` must be refused, if it strands live
    /// processes there (module docs). Only for a caller the policy lets
    /// make the change: anyone else is refused (and audited) by the state
    /// machine, and learns nothing here. The reason names only the processes the caller may
    /// `process.status`. An error only when the shards could not be read.
    pub(super) async fn stranding(
        &self,
        principal: &Principal,
        change: &PolicyChange,
        current: &PolicyDocument,
    ) -> Result<Option<(String, String)>, Status> {
        let account = match change {
            PolicyChange::Put { .. } => None,
            PolicyChange::AccountRemove { name } => Some(name.as_str()),
            PolicyChange::AccountUpdate { account } => Some(account.name.as_str()),
            _ => return Ok(None),
        };
        let request = AccessRequest {
            action: change.action(),
            account,
            alias: None,
        };
        if authorise(current, principal, &request).is_err() {
            return Ok(None);
        }
        let moved = moved_accounts(current, &after(current, change));
        if moved.is_empty() {
            return Ok(None);
        }
        let names: BTreeSet<&str> = moved.iter().map(|m| m.name.as_str()).collect();
        let mut live = self
            .each_process(|p| {
                (p.state.is_live() && names.contains(p.account.as_str()))
                    .then(|| (p.account.clone(), p.alias.clone()))
            })
            .await?;
        live.sort();
        for m in &moved {
            let aliases: Vec<&str> = live
                .iter()
                .filter(|(account, _)| *account == m.name)
                .map(|(_, alias)| alias.as_str())
                .collect();
            if aliases.is_empty() {
                continue;
            }
            let may_see = |alias: &&&str| {
                let see = AccessRequest {
                    action: Action::ProcessStatus,
                    account: Some(&m.name),
                    alias: Some(alias),
                };
                authorise(current, principal, &see).is_ok()
            };
            let named: Vec<&str> = aliases.iter().filter(may_see).copied().collect();
            return Ok(Some((m.name.clone(), m.refusal(&named, aliases.len()))));
        }
        Ok(None)
    }
}

/// The policy `change` would make of `current` (what the state machine's
/// rule does, for the accounts only).
fn after(current: &PolicyDocument, change: &PolicyChange) -> PolicyDocument {
    if let PolicyChange::Put { document, .. } = change {
        return document.clone();
    }
    let mut d = current.clone();
    match change {
        PolicyChange::AccountRemove { name } => d.accounts.retain(|a| &a.name != name),
        PolicyChange::AccountUpdate { account } => {
            d.accounts.retain(|a| a.name != account.name);
            d.accounts.push(account.clone());
        }
        _ => {}
    }
    d
}

/// Where the conductor acts for an account: the AWS account of its role,
/// or its own (`None`).
fn target(a: &Account) -> Option<&str> {
    a.role_arn.as_ref().map(|_| a.aws_account_id.as_str())
}

/// An account `after` removes or points elsewhere.
#[derive(Debug, PartialEq, Eq)]
struct Moved {
    name: String,
    how: String,
}

fn moved_accounts(current: &PolicyDocument, after: &PolicyDocument) -> Vec<Moved> {
    let shown = |t: Option<&str>| t.map_or("the conductor's own".to_string(), |id| id.to_string());
    current
        .accounts
        .iter()
        .filter_map(|old| {
            let how = match after.account(&old.name) {
                None => "removed".to_string(),
                Some(new) if target(new) != target(old) => format!(
                    "moved from AWS account {} to {}",
                    shown(target(old)),
                    shown(target(new))
                ),
                Some(_) => return None,
            };
            Some(Moved {
                name: old.name.clone(),
                how,
            })
        })
        .collect()
}

impl Moved {
    /// Why the change is refused: `total` live processes, of which the
    /// caller may see `named` (the first [`NAMED_MAX`] are named).
    fn refusal(&self, named: &[&str], total: usize) -> String {
        let mut list = named
            .iter()
            .take(NAMED_MAX)
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        let unnamed = total - named.len().min(NAMED_MAX);
        if unnamed > 0 && !list.is_empty() {
            list.push_str(&format!(" and {unnamed} more"));
        }
        let list = if list.is_empty() {
            String::new()
        } else {
            format!(" ({list})")
        };
        let (s, them) = if total == 1 {
            ("process runs", "it")
        } else {
            ("processes run", "them")
        };
        format!(
            "account {} would be {}, but {total} live {s} in it{list}: kill or release {them} \
             first (or wait for a kill or release under way to finish)",
            self.name, self.how
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(accounts: &[(&str, &str, bool)]) -> PolicyDocument {
        PolicyDocument {
            accounts: accounts
                .iter()
                .map(|(name, id, role)| Account {
                    name: name.to_string(),
                    aws_account_id: id.to_string(),
                    role_arn: role.then(|| format!("arn:aws:iam::{id}:role/canon")),
                    external_id: None,
                    region: None,
                    events_queues: Default::default(),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn what_moves_is_where_the_conductor_acts() {
        let current = doc(&[
            ("prod", "222222222222", true),
            ("dev", "333333333333", false),
        ]);
        // The role's account changes: moved. No role either side: the
        // conductor's own account both times, whatever the id says.
        let after = doc(&[
            ("prod", "444444444444", true),
            ("dev", "555555555555", false),
        ]);
        let moved = moved_accounts(&current, &after);
        assert_eq!(moved.len(), 1, "{moved:?}");
        assert_eq!(
            moved[0].how,
            "moved from AWS account 222222222222 to 444444444444"
        );
        // Dropping the role moves it to the conductor's own; removing it
        // is a move too.
        let after = doc(&[("prod", "222222222222", false)]);
        let moved = moved_accounts(&current, &after);
        assert_eq!(
            moved[0].how,
            "moved from AWS account 222222222222 to the conductor's own"
        );
        assert_eq!(moved[1].how, "removed");
        assert!(moved_accounts(&current, &current).is_empty());
    }

    #[test]
    fn a_refusal_names_only_what_the_caller_may_see() {
        let m = Moved {
            name: "prod".into(),
            how: "removed".into(),
        };
        let all: Vec<String> = (0..12).map(|i| format!("p{i:02}")).collect();
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let text = m.refusal(&all, 12);
        assert!(
            text.contains("12 live processes run in it (p00, "),
            "{text}"
        );
        assert!(text.contains("p09 and 2 more)"), "{text}");
        let text = m.refusal(&[], 1);
        assert!(
            text.contains("1 live process runs in it: kill or release it first"),
            "{text}"
        );
    }
}
