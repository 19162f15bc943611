//! The task queue seam: in-process (embedded mode) or RabbitMQ (distributed mode).
//!
//! Delivery is at-least-once. A consumer acks a task only after the task's report has been
//! published (correctness rule 3); a task that is never acked is delivered again, to this or
//! another worker, and the fingerprint guard makes the repeat harmless.

use async_trait::async_trait;

use crate::messages::{Report, Task};
use crate::store_error::StoreError;

/// One delivered task. `tag` is the backend's handle for ack/requeue; `attempt` counts deliveries
/// (1 on first delivery) so poison tasks can be recognised.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub tag: u64,
    pub attempt: u32,
    pub task: Task,
}

#[async_trait]
pub trait TaskQueue: Send + Sync {
    async fn publish_task(&self, task: &Task) -> Result<(), StoreError>;
    /// Waits for the next task; `Ok(None)` once the queue is closed and drained.
    async fn next_task(&self) -> Result<Option<Delivery>, StoreError>;
    async fn ack(&self, delivery: &Delivery) -> Result<(), StoreError>;
    /// Hands the task back for another delivery (worker shutting down, transient failure).
    async fn requeue(&self, delivery: &Delivery) -> Result<(), StoreError>;
    async fn publish_report(&self, report: &Report) -> Result<(), StoreError>;
    /// Waits for the next report; `Ok(None)` once the queue is closed and drained.
    async fn next_report(&self) -> Result<Option<Report>, StoreError>;
    /// This process publishes no more work: consumers stop once what is in flight is done
    /// (in-process) or at once (a broker keeps undelivered tasks for other workers).
    fn close(&self);
}
