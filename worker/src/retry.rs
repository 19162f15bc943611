//! Exponential backoff for transient failures (ARCHITECTURE.md, rule 5).
//!
//! A throttled, dropped or timed-out operation is retried after a pause that doubles each time
//! (capped), or after the server's own "Suggested Backoff Time". Only when the attempts run out
//! does the last error reach the user's report.

use std::future::Future;
use std::time::Duration;

use crate::error::{WorkerError, suggested_backoff_ms};

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Total attempts, the first one included.
    pub attempts: u32,
    pub initial_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 8,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    fn delay_before(&self, retry: u32, error: &WorkerError) -> Duration {
        if let WorkerError::Throttled { reason, .. } = error
            && let Some(ms) = suggested_backoff_ms(reason)
        {
            return Duration::from_millis(ms).min(self.max_delay);
        }
        self.initial_delay
            .saturating_mul(1 << retry.min(16))
            .min(self.max_delay)
    }

    /// Runs `operation` until it succeeds, fails permanently, or the attempts are used up.
    /// `what` names the operation (user and folder) in the warnings logged between attempts.
    pub async fn run<T, F, Fut>(&self, what: &str, mut operation: F) -> Result<T, WorkerError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, WorkerError>>,
    {
        let mut attempt = 1;
        loop {
            match operation().await {
                Err(error) if self.backoff(what, attempt, &error).await => attempt += 1,
                result => return result,
            }
        }
    }

    /// After failed attempt number `attempt`: waits and returns `true` when another attempt is
    /// worth making, `false` when the error is permanent or the attempts are used up. For loops
    /// that keep state across attempts, which a closure passed to [`RetryPolicy::run`] cannot.
    pub async fn backoff(&self, what: &str, attempt: u32, error: &WorkerError) -> bool {
        if !error.is_transient() || attempt >= self.attempts.min(error.attempt_limit()) {
            return false;
        }
        let delay = self.delay_before(attempt - 1, error);
        crate::metrics::engine().retries.inc();
        if matches!(error, WorkerError::Throttled { .. }) {
            crate::metrics::engine().throttles.inc();
        }
        tracing::warn!(%error, attempt, delay_ms = delay.as_millis() as u64, "{what}: retrying");
        tokio::time::sleep(delay).await;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lost() -> WorkerError {
        WorkerError::ConnectionLost {
            server: "imap://x".into(),
            reason: "reset".into(),
        }
    }

    #[tokio::test]
    async fn transient_errors_are_retried_until_success() {
        let policy = RetryPolicy {
            attempts: 4,
            initial_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
        };
        let mut calls = 0;
        let result = policy
            .run("test", || {
                calls += 1;
                let result = if calls < 3 { Err(lost()) } else { Ok(calls) };
                async move { result }
            })
            .await;
        assert_eq!(result.unwrap(), 3);
    }

    #[tokio::test]
    async fn permanent_errors_are_not_retried() {
        let policy = RetryPolicy {
            attempts: 4,
            initial_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
        };
        let mut calls = 0;
        let result: Result<(), _> = policy
            .run("test", || {
                calls += 1;
                async { Err(WorkerError::MissingCredentials("x".into())) }
            })
            .await;
        assert!(result.is_err());
        assert_eq!(calls, 1);
    }

    #[test]
    fn delay_doubles_and_honours_server_suggestion() {
        let policy = RetryPolicy {
            attempts: 9,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(10),
        };
        assert_eq!(policy.delay_before(0, &lost()), Duration::from_secs(1));
        assert_eq!(policy.delay_before(3, &lost()), Duration::from_secs(8));
        assert_eq!(policy.delay_before(5, &lost()), Duration::from_secs(10));
        let throttled = WorkerError::Throttled {
            server: "x".into(),
            reason: "Request is throttled. Suggested Backoff Time: 2500 milliseconds".into(),
        };
        assert_eq!(
            policy.delay_before(0, &throttled),
            Duration::from_millis(2500)
        );
    }
}
