//! canond's side of the drills' link faults (`canon drill run --fault
//! delay-peers|loss-peers`). On a node started with `--drill-faults`, the
//! file [`FAULT_FILE`] in the data dir sets the fault on its Raft links
//! ([`canon_raft::link_fault`]); removing it clears the fault. The node
//! answers with [`APPLIED_FILE`] (the fault it applied, as JSON) so the
//! drill knows the fault is on, and removes it once the fault is off.
//!
//! A file, not an API call: whoever can write a node's data dir owns the
//! node already, so the switch gives no one a power they lacked, and a
//! node without `--drill-faults` never looks at it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use canon_raft::link_fault::{LinkFault, LinkFaults};
use tokio::task::JoinHandle;

/// The file a drill writes the fault to, in the node's data dir.
pub const FAULT_FILE: &str = "drill-link-fault.json";
/// The file the node writes the fault it applied to.
pub const APPLIED_FILE: &str = "drill-link-fault.applied";
/// How often the node looks at the fault file: a drill waits for the
/// applied file a few of these at most.
const POLL_EVERY: Duration = Duration::from_millis(200);

/// Watches `data_dir`'s fault file for `faults` (`None`: the node was not
/// started with `--drill-faults`; a fault file is then only reported, as
/// ignored).
pub fn watch(data_dir: &Path, faults: Option<LinkFaults>) -> Option<JoinHandle<()>> {
    let file = data_dir.join(FAULT_FILE);
    let Some(faults) = faults else {
        if file.exists() {
            tracing::warn!(file = %file.display(),
                "ignoring a drill link fault file: canond was not started with --drill-faults");
        }
        return None;
    };
    tracing::info!(file = %file.display(),
        "drills may delay and drop this node's Raft messages (--drill-faults)");
    let applied = data_dir.join(APPLIED_FILE);
    Some(tokio::spawn(follow(file, applied, faults)))
}

/// What the fault file asks for now.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Asked {
    Nothing,
    Fault(LinkFault),
    /// A file that does not read as a fault: named in the log, no fault.
    Unreadable(String),
}

fn read_asked(file: &Path) -> Asked {
    match std::fs::read(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Asked::Nothing,
        Err(e) => Asked::Unreadable(format!("cannot read it: {e}")),
        Ok(bytes) => match serde_json::from_slice::<LinkFault>(&bytes) {
            Ok(f) => f.validated().map_or_else(Asked::Unreadable, Asked::Fault),
            Err(e) => Asked::Unreadable(format!(
                "{e}; write {{\"delay_ms\": N, \"jitter_ms\": N, \"loss_percent\": N}}"
            )),
        },
    }
}

async fn follow(file: PathBuf, applied: PathBuf, faults: LinkFaults) {
    let mut last: Option<Asked> = None;
    loop {
        let asked = read_asked(&file);
        if last.as_ref() != Some(&asked) {
            apply(&asked, &file, &applied, &faults);
            last = Some(asked);
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Sets the fault `asked` for and says so, in the log and in the applied
/// file.
fn apply(asked: &Asked, file: &Path, applied: &Path, faults: &LinkFaults) {
    match asked {
        Asked::Fault(f) => {
            faults.set(Some(*f));
            tracing::warn!(fault = %f, "drill link fault on");
            if let Err(e) = write_applied(applied, f) {
                tracing::error!(file = %applied.display(), error = %e,
                    "cannot say the drill link fault is on");
            }
        }
        Asked::Nothing | Asked::Unreadable(_) => {
            let was = faults.current();
            faults.set(None);
            if let Asked::Unreadable(why) = asked {
                tracing::error!(file = %file.display(), error = %why,
                    "ignoring the drill link fault file");
            } else if was.is_some() {
                tracing::warn!("drill link fault off");
            }
            match std::fs::remove_file(applied) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::error!(file = %applied.display(), error = %e,
                    "cannot say the drill link fault is off"),
            }
        }
    }
}

/// Writes `fault` to `applied` whole (a reader never sees half of it).
fn write_applied(applied: &Path, fault: &LinkFault) -> std::io::Result<()> {
    let json = serde_json::to_vec(fault).map_err(std::io::Error::other)?;
    let partial = applied.with_extension("partial");
    std::fs::write(&partial, json)?;
    std::fs::rename(&partial, applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
        for _ in 0..50 {
            if ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("not within 2.5 s: {what}");
    }

    #[tokio::test]
    async fn the_file_turns_the_fault_on_and_off_and_the_node_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let faults = LinkFaults::default();
        let task = watch(dir.path(), Some(faults.clone())).unwrap();
        let (file, applied) = (dir.path().join(FAULT_FILE), dir.path().join(APPLIED_FILE));

        std::fs::write(&file, r#"{"delay_ms": 200, "jitter_ms": 50}"#).unwrap();
        let want = LinkFault {
            delay_ms: 200,
            jitter_ms: 50,
            loss_percent: 0,
        };
        wait_for("the fault is on", || faults.current() == Some(want)).await;
        wait_for("the node says so", || applied.exists()).await;
        let said: LinkFault = serde_json::from_slice(&std::fs::read(&applied).unwrap()).unwrap();
        assert_eq!(said, want);

        // A fault a drill may not set clears the fault, and is not applied.
        std::fs::write(&file, r#"{"loss_percent": 250}"#).unwrap();
        wait_for("a bad file clears the fault", || faults.current().is_none()).await;
        assert!(!applied.exists());

        std::fs::write(&file, r#"{"loss_percent": 20}"#).unwrap();
        wait_for("on again", || applied.exists()).await;
        std::fs::remove_file(&file).unwrap();
        wait_for("off", || faults.current().is_none() && !applied.exists()).await;
        task.abort();
    }

    #[tokio::test]
    async fn a_node_without_the_switch_ignores_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FAULT_FILE), r#"{"delay_ms": 200}"#).unwrap();
        assert!(watch(dir.path(), None).is_none());
        assert!(!dir.path().join(APPLIED_FILE).exists());
    }
}
