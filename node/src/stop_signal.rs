//! Waiting for the operator to stop a foreground node: SIGTERM (what
//! service managers and `kill` send) or Ctrl-C. Shared by `canond` and
//! `canon dev`, which both stop cleanly on either.

/// Returns when SIGTERM or Ctrl-C arrives. Without a SIGTERM handler,
/// Ctrl-C still stops the node; if even that cannot be installed, it never
/// returns (the process runs until killed).
pub async fn wait_for_stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
