//! The events queues the trust policy's accounts name (`canon account add
//! … --events-queue [REGION=]URL`): one per account and region, read like
//! `--events-queue` while this node leads the meta group. The policy
//! changes while nodes run, so a watcher looks at it every
//! [`POLICY_LOOK`] and starts a reader for each queue it newly names and
//! stops the reader of each queue it no longer names (or whose account's
//! role changed). A queue in a team's account is read as the account's
//! role, the way the conductor acts there.

use std::collections::BTreeMap;
use std::time::Duration;

use canon_raft::{Consistency, Leadership, RaftNode, META_GROUP};
use canon_scheduler::SharedClock;
use canon_trust::PolicyDocument;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{EventsFrom, EventsQueue};

/// How often the watcher reads the policy for queues added or removed.
pub const POLICY_LOOK: Duration = Duration::from_secs(5);

/// One queue to read: where, in which region, and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted {
    region: String,
    /// The account's role and external id; none: the node's credentials.
    role: Option<(String, Option<String>)>,
}

/// What every queue's reader is started with.
struct Readers<'a> {
    node: &'a RaftNode,
    lead: &'a watch::Receiver<Leadership>,
    /// The ARNs whose calls are the conductor's own.
    own: &'a [String],
    clock: &'a SharedClock,
}

/// A queue's reader, stopped when the watcher drops it (the watcher is
/// aborted when the node stops, and its readers must stop with it).
struct Reader(JoinHandle<()>);

impl Drop for Reader {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the watcher; it ends when the node stops. `skip` is the queue
/// the node reads anyway (`--events-queue`), never read twice; `own` are
/// the ARNs whose calls are the conductor's own; the readers propose their
/// pokes at `clock`'s time (as [`super::spawn`]).
pub fn spawn(
    node: RaftNode,
    lead: watch::Receiver<Leadership>,
    skip: Option<String>,
    own: Vec<String>,
    clock: SharedClock,
) -> JoinHandle<()> {
    tokio::spawn(watch_policy(node, lead, skip, own, clock))
}

async fn watch_policy(
    node: RaftNode,
    mut lead: watch::Receiver<Leadership>,
    skip: Option<String>,
    own: Vec<String>,
    clock: SharedClock,
) {
    let mut running: BTreeMap<String, (Wanted, Reader)> = BTreeMap::new();
    loop {
        if lead.wait_for(|l| l.is_me).await.is_err() {
            break; // The node stopped.
        }
        let policy = node
            .read(META_GROUP, Consistency::Stale, |s| {
                s.meta.policy.document.clone()
            })
            .await;
        match policy {
            Ok(doc) => {
                let mut wanted = queues_of(&doc);
                if let Some(url) = &skip {
                    wanted.remove(url);
                }
                let readers = Readers {
                    node: &node,
                    lead: &lead,
                    own: &own,
                    clock: &clock,
                };
                reconcile(&readers, &mut running, wanted).await;
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the accounts' events queues"),
        }
        tokio::time::sleep(POLICY_LOOK).await;
    }
}

/// Stops the readers of queues no longer `wanted` (or wanted otherwise)
/// and starts one for each wanted queue without a reader.
async fn reconcile(
    readers: &Readers<'_>,
    running: &mut BTreeMap<String, (Wanted, Reader)>,
    wanted: BTreeMap<String, Wanted>,
) {
    running.retain(|url, (w, reader)| {
        let keep = wanted.get(url) == Some(w) && !reader.0.is_finished();
        if !keep {
            tracing::info!(queue = %url, "no longer reading this account's cloud events");
        }
        keep
    });
    for (url, w) in wanted {
        if running.contains_key(&url) {
            continue;
        }
        let role = w
            .role
            .as_ref()
            .map(|(arn, id)| (arn.as_str(), id.as_deref()));
        let client =
            crate::sqs::client_as(&w.region, role, super::cloudtrail::OWN_SESSION_NAME).await;
        tracing::info!(queue = %url, region = %w.region, "reading an account's cloud events");
        let q = EventsQueue {
            url: url.clone(),
            client,
            own: readers.own.to_vec(),
        };
        let reader = super::spawn(
            readers.node.clone(),
            readers.lead.clone(),
            &EventsFrom::Queue(q),
            readers.clock.clone(),
        );
        running.insert(url, (w, Reader(reader)));
    }
}

/// Every events queue the policy's accounts name, by URL (two accounts
/// naming one queue share its reader: the first one's role reads it).
fn queues_of(doc: &PolicyDocument) -> BTreeMap<String, Wanted> {
    let mut out = BTreeMap::new();
    for a in &doc.accounts {
        for (region, url) in &a.events_queues {
            out.entry(url.clone()).or_insert_with(|| Wanted {
                region: region.clone(),
                role: a.role_arn.clone().map(|arn| (arn, a.external_id.clone())),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_queue_is_read_once_as_the_first_account_naming_it() {
        let doc = PolicyDocument::from_toml(
            r#"
[[accounts]]
name = "a"
aws_account_id = "111111111111"
role_arn = "arn:aws:iam::111111111111:role/canon"
events_queues = { us-east-1 = "https://sqs.us-east-1.amazonaws.com/111111111111/e", eu-west-1 = "https://sqs.eu-west-1.amazonaws.com/111111111111/e" }

[[accounts]]
name = "b"
aws_account_id = "222222222222"
events_queues = { us-east-1 = "https://sqs.us-east-1.amazonaws.com/111111111111/e" }

[[accounts]]
name = "c"
aws_account_id = "333333333333"
"#,
        )
        .unwrap();
        let q = queues_of(&doc);
        assert_eq!(q.len(), 2, "{q:?}");
        let east = &q["https://sqs.us-east-1.amazonaws.com/111111111111/e"];
        assert_eq!(east.region, "us-east-1");
        assert_eq!(
            east.role,
            Some(("arn:aws:iam::111111111111:role/canon".into(), None))
        );
        assert_eq!(
            q["https://sqs.eu-west-1.amazonaws.com/111111111111/e"].region,
            "eu-west-1"
        );
    }
}
