//! Embedded mode's task queue: a broker in miniature, inside the process.
//!
//! It keeps the broker's contract so the worker cannot tell the difference: messages go through
//! serde_json (nothing unsendable slips in), delivery is at-least-once (a requeued task comes
//! back with its attempt count raised), and "drained" means no task waiting *and* none in
//! flight — a running discovery may still publish folder tasks.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;
use mailfleet_shared::messages::{Report, Task};
use mailfleet_shared::queue::{Delivery, TaskQueue};
use mailfleet_shared::store_error::StoreError;
use tokio::sync::Notify;

use crate::error::{decode_json, encode_json};

#[derive(Default)]
struct State {
    tasks: VecDeque<(String, u32)>,
    in_flight: HashMap<u64, (String, u32)>,
    reports: VecDeque<String>,
    next_tag: u64,
    closed: bool,
}

#[derive(Default)]
pub struct InProcessQueue {
    state: Mutex<State>,
    changed: Notify,
}

impl InProcessQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// No task waiting and none in flight.
    pub fn is_idle(&self) -> bool {
        let state = self.lock();
        state.tasks.is_empty() && state.in_flight.is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn update(&self, change: impl FnOnce(&mut State)) {
        change(&mut self.lock());
        self.changed.notify_waiters();
    }

    /// Waits until `take` finds something (`Some(Some)`) or says the wait is over (`Some(None)`).
    async fn wait_for<T>(
        &self,
        mut take: impl FnMut(&mut State) -> Option<Option<T>>,
    ) -> Option<T> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(result) = take(&mut self.lock()) {
                return result;
            }
            notified.await;
        }
    }
}

#[async_trait]
impl TaskQueue for InProcessQueue {
    async fn publish_task(&self, task: &Task) -> Result<(), StoreError> {
        let body = encode_json(task, "task")?;
        self.update(|state| state.tasks.push_back((body, 1)));
        Ok(())
    }

    async fn next_task(&self) -> Result<Option<Delivery>, StoreError> {
        let taken = self
            .wait_for(|state| {
                if let Some((body, attempt)) = state.tasks.pop_front() {
                    state.next_tag += 1;
                    let tag = state.next_tag;
                    state.in_flight.insert(tag, (body.clone(), attempt));
                    Some(Some((tag, attempt, body)))
                } else if state.closed && state.in_flight.is_empty() {
                    Some(None)
                } else {
                    None
                }
            })
            .await;
        taken
            .map(|(tag, attempt, body)| {
                Ok(Delivery {
                    tag,
                    attempt,
                    task: decode_json(&body, "task")?,
                })
            })
            .transpose()
    }

    async fn ack(&self, delivery: &Delivery) -> Result<(), StoreError> {
        self.update(|state| {
            state.in_flight.remove(&delivery.tag);
        });
        Ok(())
    }

    async fn requeue(&self, delivery: &Delivery) -> Result<(), StoreError> {
        self.update(|state| {
            if let Some((body, attempt)) = state.in_flight.remove(&delivery.tag) {
                state.tasks.push_back((body, attempt + 1));
            }
        });
        Ok(())
    }

    async fn publish_report(&self, report: &Report) -> Result<(), StoreError> {
        let body = encode_json(report, "report")?;
        self.update(|state| state.reports.push_back(body));
        Ok(())
    }

    async fn next_report(&self) -> Result<Option<Report>, StoreError> {
        let taken = self
            .wait_for(|state| match state.reports.pop_front() {
                Some(body) => Some(Some(body)),
                None if state.closed && state.tasks.is_empty() && state.in_flight.is_empty() => {
                    Some(None)
                }
                None => None,
            })
            .await;
        taken.map(|body| decode_json(&body, "report")).transpose()
    }

    /// Consumers stop once the queue is idle.
    fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_waiters();
    }
}
