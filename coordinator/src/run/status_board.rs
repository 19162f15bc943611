//! What a running migration looks like from outside: every user's result for `/status` (of
//! every pass running, by batch), how full the admission limits are, and the users-per-state
//! and queue-depth gauges for `/metrics`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use mailfleet_stores::rabbitmq_queue::RabbitMqQueue;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::collector::{UserResult, UserStatus};
use super::slots::Usage;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

/// Shared between the collector (which updates it) and the HTTP server (which shows it).
#[derive(Debug, Default)]
pub struct StatusBoard {
    /// By batch: passes of several batches run at once.
    results: RwLock<BTreeMap<String, Vec<UserResult>>>,
    admission: RwLock<Vec<Usage>>,
    users: Family<StateLabel, Gauge>,
    pending_tasks: Gauge,
    last_update: Mutex<HashMap<String, Instant>>,
}

/// How stale `/status` and the user gauges may be. Building every user's result is linear in
/// the batch, so doing it per report would make a 50,000-user run quadratic.
const REFRESH_INTERVAL: Duration = Duration::from_secs(1);

impl StatusBoard {
    pub fn new() -> Arc<Self> {
        Arc::new(StatusBoard::default())
    }

    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "mailfleet_users",
            "Users of the running migration, by state",
            self.users.clone(),
        );
        registry.register(
            "mailfleet_pending_tasks",
            "Tasks waiting in the broker's task queue",
            self.pending_tasks.clone(),
        );
    }

    /// `update` with `results()`, unless the batch's entry was updated less than a second ago.
    pub fn refresh(&self, batch: &str, results: impl FnOnce() -> Vec<UserResult>) {
        let mut last = self.last_update.lock().unwrap_or_else(|p| p.into_inner());
        if last
            .get(batch)
            .is_some_and(|at| at.elapsed() < REFRESH_INTERVAL)
        {
            return;
        }
        last.insert(batch.to_owned(), Instant::now());
        drop(last);
        self.update(batch, results());
    }

    /// The users of `batch`'s pass (the last pass's stay until the batch's next pass).
    pub fn update(&self, batch: &str, results: Vec<UserResult>) {
        let mut all = self.results.write().unwrap_or_else(|p| p.into_inner());
        all.insert(batch.to_owned(), results);
        for status in [
            UserStatus::Queued,
            UserStatus::Syncing,
            UserStatus::Completed,
            UserStatus::CompletedWithWarnings,
            UserStatus::Failed,
        ] {
            let count = all
                .values()
                .flatten()
                .filter(|r| r.status == status)
                .count();
            self.users
                .get_or_create(&StateLabel {
                    state: format!("{status:?}"),
                })
                .set(count as i64);
        }
    }

    /// Every batch's users, batch by batch.
    pub fn results(&self) -> Vec<UserResult> {
        let all = self.results.read().unwrap_or_else(|p| p.into_inner());
        all.values().flatten().cloned().collect()
    }

    pub fn set_admission(&self, usage: Vec<Usage>) {
        *self.admission.write().unwrap_or_else(|p| p.into_inner()) = usage;
    }

    /// The admission limits passes named, with their users in sync now and at the most.
    pub fn admission(&self) -> Vec<Usage> {
        self.admission
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Keeps the queue-depth gauge current while the run lasts.
    pub fn watch_queue_depth(self: &Arc<Self>, broker: Arc<RabbitMqQueue>) {
        let board = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(board) = board.upgrade() {
                match broker.pending_tasks().await {
                    Ok(depth) => {
                        board.pending_tasks.set(i64::from(depth));
                    }
                    Err(error) => tracing::debug!(%error, "cannot read the queue depth"),
                }
                drop(board);
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        });
    }
}
