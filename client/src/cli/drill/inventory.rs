//! A deployment as a drill sees it: `inventory.toml`, written by
//! `deploy/netns/up.sh` (or by hand for other hosts): the client
//! configuration, and for each node its id, address, process id, network
//! namespace and the shell commands that stop, kill and restart it (and,
//! for the environment faults, wipe it, join it afresh and restart it with
//! extra environment), plus an optional spare node that a replacement
//! borrows when the cluster is too small to remove a member. It is read
//! again before each use, because restarts change process ids.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// One deployment.
#[derive(Debug, Clone, Deserialize)]
pub struct Inventory {
    /// The directory drills keep their state in (default: the file's).
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// The `client.toml` drills connect with.
    pub client_config: PathBuf,
    #[serde(default, rename = "node")]
    pub nodes: Vec<NodeEntry>,
    /// A node that is no member, for `replace-member` on a cluster too
    /// small to lose one (the runbook adds one before removing).
    #[serde(default)]
    pub spare: Option<SpareEntry>,
    /// Where the deployment's cloud is, for the drift and duplicate checks.
    #[serde(default)]
    pub cloud: Option<super::cloud::CloudEntry>,
}

/// A node outside the cluster that can join it for a while.
#[derive(Debug, Clone, Deserialize)]
pub struct SpareEntry {
    pub id: u64,
    /// Starts it empty, joining through the member whose id is appended.
    pub join: String,
    pub stop: String,
    /// Deletes its data dir (it must be stopped).
    pub wipe: String,
}

/// One node of a deployment.
#[derive(Debug, Clone, Deserialize)]
pub struct NodeEntry {
    pub id: u64,
    /// host:port, as peers reach it.
    pub address: String,
    /// 0 when it is not running.
    #[serde(default)]
    pub pid: u32,
    /// Its network namespace, when it has its own (network faults need
    /// one).
    #[serde(default)]
    pub namespace: Option<String>,
    pub stop: String,
    pub kill: String,
    pub restart: String,
    /// Deletes its data dir (it must be stopped).
    #[serde(default)]
    pub wipe: Option<String>,
    /// Starts it empty, joining through the member whose id is appended
    /// (a one-time join token made for it).
    #[serde(default)]
    pub join: Option<String>,
    /// Restarts it with extra environment: `KEY=VALUE` words appended.
    #[serde(default)]
    pub restart_with_env: Option<String>,
    /// Its data dir, on the host the drill runs on (`disk-full`).
    #[serde(default)]
    pub data_dir: Option<String>,
    /// Its log file, on the host the drill runs on (`disk-full`).
    #[serde(default)]
    pub log: Option<String>,
}

impl Inventory {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Inventory, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the inventory {}: {e}", path.display()))?;
        let mut inv: Inventory = toml::from_str(&text)
            .map_err(|e| format!("the inventory {} does not read: {e}", path.display()))?;
        if inv.nodes.is_empty() {
            return Err(format!(
                "the inventory {} lists no [[node]]",
                path.display()
            ));
        }
        let mut ids: Vec<u64> = inv.nodes.iter().map(|n| n.id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(format!(
                "the inventory {} lists a node id twice",
                path.display()
            ));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        if inv.dir.is_none() {
            inv.dir = Some(base.to_path_buf());
        }
        if inv.client_config.is_relative() {
            inv.client_config = base.join(&inv.client_config);
        }
        Ok(inv)
    }

    /// The node with id `id`.
    pub fn node(&self, id: u64) -> Result<&NodeEntry, String> {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .ok_or_else(|| format!("the inventory has no node {id}"))
    }

    /// Where drills keep their state (the running drill, the last end).
    pub fn state_dir(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| PathBuf::from("."))
    }
}

/// Runs `command` with `sh -c`; its output on failure.
pub async fn sh(command: &str) -> Result<(), String> {
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .output()
        .await
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: &str = "address = \"10.0.0.1:7700\"\nstop = \"s\"\nkill = \"k\"\nrestart = \"r\"\n";

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inventory.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn an_inventory_reads_and_bad_ones_are_named() {
        let text = format!("client_config = \"client.toml\"\n[[node]]\nid = 1\npid = 42\n{NODE}");
        let (dir, path) = write(&text);
        let inv = Inventory::load(&path).unwrap();
        assert_eq!(inv.client_config, dir.path().join("client.toml"));
        assert_eq!(inv.node(1).unwrap().pid, 42);
        assert!(inv.node(2).unwrap_err().contains("no node 2"));

        let (_d, path) = write("client_config = \"c\"\n");
        assert!(Inventory::load(&path).unwrap_err().contains("no [[node]]"));
        let twice =
            format!("client_config = \"c\"\n[[node]]\nid = 1\n{NODE}[[node]]\nid = 1\n{NODE}");
        let (_d, path) = write(&twice);
        assert!(Inventory::load(&path).unwrap_err().contains("twice"));
        let (_d, path) = write("client_config = [");
        assert!(Inventory::load(&path)
            .unwrap_err()
            .contains("does not read"));
    }
}
