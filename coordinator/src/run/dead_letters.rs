//! The fleet side of poison tasks (ARCHITECTURE.md, rule 3): a task RabbitMQ dead-lettered
//! (every delivery crashed or timed out its worker) becomes a failure report, so its user
//! finishes as Failed, naming the task, instead of the pass waiting for it forever.
//!
//! The coordinating process (`migrate`, `coordinator`, `run`) drains the dead-letter queue for
//! as long as it runs; workers never read it.

use std::sync::Arc;

use mailfleet_shared::queue::TaskQueue;
use mailfleet_stores::rabbitmq_queue::RabbitMqQueue;

/// Starts draining `broker`'s dead-letter queue into failure reports, in the background.
pub fn report_as_failures(broker: Arc<RabbitMqQueue>) {
    tokio::spawn(drain(broker));
}

async fn drain(queue: Arc<RabbitMqQueue>) {
    loop {
        match queue.next_dead_task().await {
            Ok(Some(report)) => {
                if let Err(error) = queue.publish_report(&report).await {
                    tracing::error!(%error, "cannot report a dead-lettered task");
                }
            }
            Ok(None) => return,
            Err(error) => {
                tracing::error!(%error, "reading dead-lettered tasks failed");
                return;
            }
        }
    }
}
