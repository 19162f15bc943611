//! One shutdown path for every long-running command (`migrate`, `coordinator`, `worker`, `run`),
//! described in ARCHITECTURE.md, "Shutdown".
//!
//! SIGTERM (orchestrators, `kill`) or Ctrl-C fires one [`Shutdown`] token, handed down to
//! whatever runs: admission stops, the task loops finish the tasks they are on (reported,
//! acked, checkpointed) and take no more, tasks still running after the grace period (setting
//! `shutdown_grace_seconds`) are cancelled unacked, and the loops are awaited before the
//! process exits with status 130 ([`CliError::Interrupted`](crate::error::CliError)). A second
//! signal changes nothing: the grace period is the bound.

use std::time::Duration;

pub use mailfleet_worker::shutdown::{Shutdown, ShutdownTrigger, shutdown_pair};

/// What a long-running command is handed: the token that fires when it should stop, and how
/// long its running tasks may take to finish then.
#[derive(Clone)]
pub struct StopSignal {
    pub token: Shutdown,
    pub grace: Duration,
}

impl StopSignal {
    /// A signal that fires on the first SIGTERM or Ctrl-C this process receives.
    pub fn on_sigterm_or_ctrl_c(grace: Duration) -> Self {
        let (trigger, token) = shutdown_pair();
        tokio::spawn(async move {
            stop_requested().await;
            tracing::info!(
                grace_seconds = grace.as_secs(),
                "stop requested: finishing running tasks"
            );
            trigger.trigger();
        });
        StopSignal { token, grace }
    }

    pub fn is_requested(&self) -> bool {
        self.token.is_triggered()
    }

    /// Completes once the stop is requested.
    pub async fn requested(&self) {
        self.token.clone().triggered().await;
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn stop_requested() {
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
