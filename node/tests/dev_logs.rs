//! ERROR means something an operator must act on, so a healthy `canon dev`
//! prints none: neither when it creates its cluster, nor when it restarts
//! on the same data dir, nor when it stops. Captures every ERROR event of
//! the process through the filter `canon dev` logs with (its own test
//! binary, so the global subscriber is this test's alone).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use canon_node::dev::{DevCluster, DevOptions};
use tracing_subscriber::layer::SubscriberExt;

/// Where the subscriber writes: one buffer the test reads back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn take(&self) -> String {
        let mut buf = self.0.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&std::mem::take(&mut *buf)).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut buf = self.0.lock().unwrap_or_else(|p| p.into_inner());
        buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What `canon dev` starts with by default.
fn options(dir: &std::path::Path) -> DevOptions {
    DevOptions {
        signed_reads: false,
        tls: false,
        ..DevOptions::new(dir)
    }
}

/// Starts a dev cluster (its nodes one after another, as `canon dev`
/// does), lets it run a little, stops it, and returns the ERROR lines
/// logged meanwhile.
async fn errors_of_one_run(dir: &std::path::Path, captured: &Captured) -> String {
    let cluster = DevCluster::start(options(dir)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.shutdown().await;
    captured.take()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_dev_cluster_and_its_restart_log_no_errors() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::ERROR)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish()
        .with(canon_node::logs::without_peer_call_errors());
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let tmp = tempfile::tempdir().unwrap();

    let first = errors_of_one_run(tmp.path(), &captured).await;
    assert!(first.is_empty(), "a fresh start logged errors:\n{first}");

    let restart = errors_of_one_run(tmp.path(), &captured).await;
    assert!(restart.is_empty(), "a restart logged errors:\n{restart}");
}
