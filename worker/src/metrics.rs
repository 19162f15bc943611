//! What the engine counts for Prometheus (`mailfleet_` prefix, ARCHITECTURE.md, "Names").
//!
//! One process-wide set, because a worker process runs many tasks of many batches and an
//! operator wants the process's totals; the process that serves `/metrics` registers it once
//! with [`EngineMetrics::register`].

use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    /// `discover` or `folder`.
    pub kind: &'static str,
    /// `synced`, `failed` or `requeued`.
    pub outcome: &'static str,
}

#[derive(Debug, Default)]
pub struct EngineMetrics {
    pub messages_copied: Counter,
    pub messages_already_present: Counter,
    pub messages_skipped: Counter,
    pub bytes_copied: Counter,
    pub tasks: Family<TaskLabels, Counter>,
    /// Transient failures retried after a backoff (throttles included).
    pub retries: Counter,
    /// Of those, the server asked us to slow down (`NO [THROTTLED]`, BYE busy, …).
    pub throttles: Counter,
}

/// The process's engine metrics.
pub fn engine() -> &'static EngineMetrics {
    static METRICS: OnceLock<EngineMetrics> = OnceLock::new();
    METRICS.get_or_init(EngineMetrics::default)
}

impl EngineMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "mailfleet_messages_copied",
            "Messages appended to targets",
            self.messages_copied.clone(),
        );
        registry.register(
            "mailfleet_messages_already_present",
            "Messages found on the target already (earlier run or checkpoint)",
            self.messages_already_present.clone(),
        );
        registry.register(
            "mailfleet_messages_skipped",
            "Messages deliberately not copied (size limit, refused by the target)",
            self.messages_skipped.clone(),
        );
        registry.register(
            "mailfleet_bytes_copied",
            "Message bytes appended to targets",
            self.bytes_copied.clone(),
        );
        registry.register(
            "mailfleet_tasks",
            "Tasks finished, by kind and outcome",
            self.tasks.clone(),
        );
        registry.register(
            "mailfleet_retries",
            "Transient IMAP failures retried after a backoff",
            self.retries.clone(),
        );
        registry.register(
            "mailfleet_throttles",
            "Retries the server asked for by throttling",
            self.throttles.clone(),
        );
    }

    pub fn task_finished(&self, kind: &'static str, outcome: &'static str) {
        self.tasks
            .get_or_create(&TaskLabels { kind, outcome })
            .inc();
    }
}
