//! What a running migration looks like from outside: every user's result for `/status`, and
//! the users-per-state and queue-depth gauges for `/metrics`.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use mailfleet_stores::rabbitmq_queue::RabbitMqQueue;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::collector::{UserResult, UserStatus};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

/// Shared between the collector (which updates it) and the HTTP server (which shows it).
#[derive(Debug, Default)]
pub struct StatusBoard {
    results: RwLock<Vec<UserResult>>,
    users: Family<StateLabel, Gauge>,
    pending_tasks: Gauge,
    last_update: Mutex<Option<Instant>>,
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

    /// `update` with `results()`, unless the board was updated less than a second ago.
    pub fn refresh(&self, results: impl FnOnce() -> Vec<UserResult>) {
        let mut last = self.last_update.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|at| at.elapsed() < REFRESH_INTERVAL) {
            return;
        }
        *last = Some(Instant::now());
        drop(last);
        self.update(results());
    }

    pub fn update(&self, results: Vec<UserResult>) {
        for status in [
            UserStatus::Queued,
            UserStatus::Syncing,
            UserStatus::Completed,
            UserStatus::CompletedWithWarnings,
            UserStatus::Failed,
        ] {
            let count = results.iter().filter(|r| r.status == status).count();
            self.users
                .get_or_create(&StateLabel {
                    state: format!("{status:?}"),
                })
                .set(count as i64);
        }
        *self.results.write().unwrap_or_else(|p| p.into_inner()) = results;
    }

    pub fn results(&self) -> Vec<UserResult> {
        self.results
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
