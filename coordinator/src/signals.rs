//! The signals that ask a long-running process to stop: SIGTERM (orchestrators, `kill`) and
//! Ctrl-C. Processes finish or hand back their running work before they exit.

/// Resolves on SIGTERM or Ctrl-C.
pub async fn stop_requested() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => return std::future::pending().await,
        };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
