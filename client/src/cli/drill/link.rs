//! `delay-peers` and `loss-peers`: the target's Raft messages, to and from
//! every peer, delayed or lost. The kernels we drill on have no `netem`,
//! so the fault acts inside canond's Raft transport: a node started with
//! `--drill-faults` reads it from `drill-link-fault.json` in its data dir
//! and writes `drill-link-fault.applied` while it is on (canon_node's
//! `drill_link_fault`). The drill writes the file, waits for the node to
//! say it applied it, and removes it to heal.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::environment::Builtin;
use super::inject::{step, Step};
use super::inventory::Inventory;

/// The file canond reads the fault from, in its data dir.
const FAULT_FILE: &str = "drill-link-fault.json";
/// The file canond writes while the fault is on.
const APPLIED_FILE: &str = "drill-link-fault.applied";
/// How long a node may take to apply or clear the fault (it looks at the
/// file five times a second).
const APPLIED_WITHIN: Duration = Duration::from_secs(5);
/// The most a message may be delayed (canond refuses more: that is a
/// partition, which other faults drill).
const DELAY_MS_MAX: u64 = 10_000;

/// What the fault does to each message: canond's `LinkFault`, as JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkFault {
    pub delay_ms: u64,
    pub jitter_ms: u64,
    pub loss_percent: u8,
}

impl LinkFault {
    /// The fault, if canond would take it.
    pub fn checked(self) -> Result<LinkFault, String> {
        if self.loss_percent > 100 {
            return Err(format!(
                "--loss is a share of messages, 0 to 100 %, not {}",
                self.loss_percent
            ));
        }
        let delay = self.delay_ms.saturating_add(self.jitter_ms);
        if delay > DELAY_MS_MAX {
            return Err(format!(
                "--delay plus --jitter is {delay} ms: at most {DELAY_MS_MAX} ms (longer is a partition: drill partition-one)"
            ));
        }
        Ok(self)
    }

    fn describe(&self) -> String {
        match (self.loss_percent, self.delay_ms, self.jitter_ms) {
            (0, d, 0) => format!("delayed {d} ms"),
            (0, d, j) => format!("delayed {d} ms plus up to {j} ms"),
            (l, 0, 0) => format!("{l}% lost"),
            (l, d, j) => format!("{l}% lost, the rest delayed {d} ms plus up to {j} ms"),
        }
    }
}

/// Inject and undo steps for `fault` on `victim`'s links.
pub fn link_fault(
    victim: u64,
    inv: &Inventory,
    fault: LinkFault,
) -> Result<(Vec<Step>, Vec<Step>), String> {
    let node = inv.node(victim)?;
    let data = node.data_dir.as_deref().ok_or_else(|| {
        format!("a link fault is set through node {victim}'s data dir: give its `data_dir` in the inventory (deploy/netns/up.sh writes it)")
    })?;
    if data.is_empty()
        || !data
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
    {
        return Err(format!(
            "node {victim}'s data dir {data:?} needs quoting in a shell: move it"
        ));
    }
    let file = Path::new(data).join(FAULT_FILE).display().to_string();
    let applied = Path::new(data).join(APPLIED_FILE).display().to_string();
    let json = serde_json::to_string(&fault.checked()?)
        .map_err(|e| format!("cannot write the link fault: {e}"))?;
    let applied_step = |on: bool| Step {
        what: if on {
            format!("node {victim} applied it (canond --drill-faults)")
        } else {
            format!("node {victim} cleared it")
        },
        command: if on {
            format!("test -e {applied}")
        } else {
            format!("test ! -e {applied}")
        },
        builtin: Some(Builtin::LinkFault {
            node: victim,
            applied: applied.clone(),
            on,
        }),
    };
    let inject = vec![
        step(
            format!(
                "node {victim}'s Raft messages to and from its peers: {}",
                fault.describe()
            ),
            &format!("printf '%s\\n' '{json}' > {file}"),
        ),
        applied_step(true),
    ];
    let undo = vec![
        step(
            format!("node {victim}'s links are whole again"),
            &format!("rm -f {file}"),
        ),
        applied_step(false),
    ];
    Ok((inject, undo))
}

/// Waits until `node` says the link fault is `on` (its applied file is
/// there) or off (gone).
pub async fn wait_applied(node: u64, applied: &str, on: bool) -> Result<(), String> {
    let started = tokio::time::Instant::now();
    while Path::new(applied).exists() != on {
        if started.elapsed() > APPLIED_WITHIN {
            return Err(if on {
                format!(
                    "node {node} did not apply the link fault within {APPLIED_WITHIN:?}: start its canond with --drill-faults (CANON_DRILL_FAULTS=true)"
                )
            } else {
                format!("node {node} still had the link fault on after {APPLIED_WITHIN:?}: is it running?")
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::drill::inject::tests::inv;

    #[test]
    fn the_fault_is_written_where_canond_reads_it_and_removed_to_heal() {
        let mut inv = inv(3);
        inv.nodes[1].data_dir = Some("/srv/canon/node-2".into());
        let fault = LinkFault {
            delay_ms: 200,
            jitter_ms: 50,
            loss_percent: 0,
        };
        let (inject, undo) = link_fault(2, &inv, fault).unwrap();
        assert_eq!(
            inject[0].command,
            r#"printf '%s\n' '{"delay_ms":200,"jitter_ms":50,"loss_percent":0}' > /srv/canon/node-2/drill-link-fault.json"#
        );
        assert!(
            inject[0].what.contains("delayed 200 ms plus up to 50 ms"),
            "{}",
            inject[0].what
        );
        assert_eq!(
            inject[1].builtin,
            Some(Builtin::LinkFault {
                node: 2,
                applied: "/srv/canon/node-2/drill-link-fault.applied".into(),
                on: true
            })
        );
        assert_eq!(
            undo[0].command,
            "rm -f /srv/canon/node-2/drill-link-fault.json"
        );
        assert!(matches!(
            undo[1].builtin,
            Some(Builtin::LinkFault { on: false, .. })
        ));
    }

    #[test]
    fn a_fault_canond_would_refuse_or_a_node_without_a_data_dir_is_refused_before_anything_runs() {
        let mut inv = inv(3);
        let fault = LinkFault {
            delay_ms: 0,
            jitter_ms: 0,
            loss_percent: 20,
        };
        inv.nodes[0].data_dir = None;
        assert!(link_fault(1, &inv, fault).unwrap_err().contains("data_dir"));
        inv.nodes[0].data_dir = Some("/srv/my data".into());
        assert!(link_fault(1, &inv, fault).unwrap_err().contains("quoting"));
        inv.nodes[0].data_dir = Some("/srv/n1".into());
        let too_lossy = LinkFault {
            loss_percent: 120,
            ..fault
        };
        assert!(link_fault(1, &inv, too_lossy)
            .unwrap_err()
            .contains("0 to 100"));
        let too_slow = LinkFault {
            delay_ms: 9_000,
            jitter_ms: 2_000,
            loss_percent: 0,
        };
        assert!(link_fault(1, &inv, too_slow)
            .unwrap_err()
            .contains("partition"));
    }

    #[tokio::test]
    async fn the_drill_waits_for_the_node_to_say_it_applied_the_fault() {
        let dir = tempfile::tempdir().unwrap();
        let applied = dir.path().join(APPLIED_FILE);
        let path = applied.display().to_string();
        let writer = {
            let applied = applied.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                std::fs::write(applied, "{}").unwrap();
            })
        };
        wait_applied(1, &path, true).await.unwrap();
        writer.await.unwrap();
        std::fs::remove_file(&applied).unwrap();
        wait_applied(1, &path, false).await.unwrap();
    }
}
