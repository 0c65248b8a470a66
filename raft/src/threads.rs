//! Where a node's Raft work runs: on threads of its own, apart from the
//! application that opened the node.
//!
//! Heartbeats, AppendEntries, elections and the watches that call them are
//! all timers: when they share a runtime with thousands of actors, a burst
//! of client calls or a task that does not yield for half a second, they
//! fire late, followers campaign, terms climb and writes fail with no
//! leader. So a node normally owns a small multi-thread runtime
//! ([`RaftThreads::Own`], threads named `canon-raft`) on which every
//! openraft core, batcher, election and failover watch, the balancer, the
//! peer channels and the peer server run. The application only awaits
//! answers (channels and oneshots work across runtimes).
//!
//! [`RaftThreads::Caller`] keeps everything on the runtime that opened the
//! node: turmoil simulations run every host on one thread and must stay
//! deterministic.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long stopping a node's own runtime waits for its tasks (blocking
/// ones: a snapshot being written) before leaving them behind.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// Which threads run a node's Raft work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaftThreads {
    /// A runtime of the node's own with this many worker threads.
    Own { workers: usize },
    /// The runtime that starts the node (simulations; some tests).
    Caller,
}

/// Most `canon-raft` workers a node starts by default.
const DEFAULT_WORKERS_MAX: usize = 4;

impl Default for RaftThreads {
    /// One `canon-raft` worker per two cores (at least one, at most
    /// [`DEFAULT_WORKERS_MAX`]): the node's application runtime needs the
    /// rest. Why not more: Raft's work per write is a chain of short tasks
    /// (batcher, core, replication, apply), and each hop between workers
    /// is a thread wake-up. On this 2-core machine, beside etcd
    /// (`bench --compare-etcd`, alternating), one worker instead of two
    /// took Canon from 0.81/0.89x to 0.99/0.98x etcd's rate at 1 client
    /// and the servers' CPU per write from 1.09/0.99 to 0.79/0.82 ms.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        RaftThreads::Own {
            workers: (cores / 2).clamp(1, DEFAULT_WORKERS_MAX),
        }
    }
}

/// The runtime a node's Raft work is spawned on, owned or borrowed.
#[derive(Debug)]
pub(crate) struct RaftRuntime {
    handle: Handle,
    /// The node's own runtime (`None` with [`RaftThreads::Caller`], or
    /// once stopped).
    owned: Mutex<Option<Runtime>>,
    /// Whether `owned` was given a runtime ([`RaftThreads::Own`]).
    owned_at_start: bool,
}

impl RaftRuntime {
    /// The runtime `threads` asks for. With [`RaftThreads::Caller`] this
    /// must be called from within a Tokio runtime.
    pub(crate) fn start(threads: RaftThreads) -> std::io::Result<RaftRuntime> {
        match threads {
            RaftThreads::Own { workers } => {
                let runtime = Builder::new_multi_thread()
                    .worker_threads(workers.max(1))
                    .thread_name("canon-raft")
                    .enable_all()
                    .build()?;
                Ok(RaftRuntime {
                    handle: runtime.handle().clone(),
                    owned: Mutex::new(Some(runtime)),
                    owned_at_start: true,
                })
            }
            RaftThreads::Caller => {
                let handle = Handle::try_current().map_err(std::io::Error::other)?;
                Ok(RaftRuntime {
                    handle,
                    owned: Mutex::new(None),
                    owned_at_start: false,
                })
            }
        }
    }

    /// The handle to spawn Raft work with.
    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Spawns `task` on the Raft runtime.
    pub(crate) fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(task)
    }

    /// Runs `task` on the Raft runtime and waits for its output (what must
    /// be *created* there: openraft spawns its core on the runtime it is
    /// started from). `None` if the runtime stopped before it finished.
    /// With [`RaftThreads::Caller`] `task` is simply awaited: it is on the
    /// right runtime already, and a simulation's schedule stays as it was.
    pub(crate) async fn run<F>(&self, task: F) -> Option<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if self.is_callers() {
            return Some(task.await);
        }
        self.handle.spawn(task).await.ok()
    }

    /// Whether this is the caller's runtime ([`RaftThreads::Caller`]).
    fn is_callers(&self) -> bool {
        !self.owned_at_start
    }

    /// Stops an owned runtime and waits (up to [`STOP_WAIT`]) until its
    /// tasks are dropped, so that nothing of the node (its groups' cores,
    /// their storage) runs once this returns. Nothing to do with
    /// [`RaftThreads::Caller`]. Must not be awaited from a task on this
    /// runtime: that task would be dropped with the rest.
    pub(crate) async fn stop(&self) {
        let Some(runtime) = self.take() else { return };
        let (done, stopped) = oneshot::channel();
        shut_down_elsewhere(runtime, Some(done));
        // The thread could not be started (or died): nothing to wait for.
        let _ = stopped.await;
    }

    fn take(&self) -> Option<Runtime> {
        self.owned.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl Drop for RaftRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.take() {
            shut_down_elsewhere(runtime, None);
        }
    }
}

/// Shuts `runtime` down on a thread of its own, telling `done` when it is.
/// Dropping (or shutting down) a runtime blocks, and Tokio panics when that
/// happens inside an async context, which is where the last handle on a
/// node is usually dropped (possibly on one of this runtime's own workers).
fn shut_down_elsewhere(runtime: Runtime, done: Option<oneshot::Sender<()>>) {
    let slot = Arc::new(Mutex::new(Some(runtime)));
    let theirs = slot.clone();
    let spawned = std::thread::Builder::new()
        .name("canon-raft-stop".into())
        .spawn(move || {
            let runtime = theirs.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(runtime) = runtime {
                runtime.shutdown_timeout(STOP_WAIT);
            }
            if let Some(done) = done {
                let _ = done.send(());
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "no thread to stop the Raft runtime on: stopping it unwaited");
        // Does not block, so it is safe anywhere.
        if let Some(runtime) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own() -> RaftRuntime {
        RaftRuntime::start(RaftThreads::default()).unwrap()
    }

    #[tokio::test]
    async fn stop_returns_once_the_tasks_are_gone() {
        let rt = own();
        let held = Arc::new(());
        let theirs = held.clone();
        rt.spawn(async move {
            let _held = theirs;
            std::future::pending::<()>().await;
        });
        assert_eq!(rt.run(async { 1 }).await, Some(1));
        rt.stop().await;
        assert_eq!(Arc::strong_count(&held), 1, "a task outlived stop");
        assert_eq!(rt.run(async { 1 }).await, None);
    }

    #[tokio::test]
    async fn an_own_runtime_may_be_dropped_anywhere() {
        // Here, inside the test's runtime...
        drop(own());
        // ...and on one of its own workers.
        let rt = Arc::new(own());
        let inside = rt.clone();
        let (go, wait) = oneshot::channel::<()>();
        let (dropped, done) = oneshot::channel();
        rt.spawn(async move {
            let _ = wait.await;
            drop(inside);
            let _ = dropped.send(());
        });
        drop(rt);
        go.send(()).unwrap();
        done.await.unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn caller_spawns_on_the_callers_runtime() {
        let rt = RaftRuntime::start(RaftThreads::Caller).unwrap();
        let name = rt.run(async { std::thread::current().name().map(String::from) });
        assert_eq!(
            name.await.flatten(),
            std::thread::current().name().map(String::from)
        );
        rt.stop().await;
    }
}
