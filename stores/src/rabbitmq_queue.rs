//! Distributed mode's task queue on RabbitMQ (lapin), with the names of design.md §5.
//!
//! - Durable **quorum** queues `{prefix}.tasks`, `{prefix}.reports` and `{prefix}.dead`.
//! - Every publish waits for the broker's **confirm**: a task is never believed queued when it
//!   is not.
//! - Tasks are acked manually, after their report was published (the worker's job); a task
//!   handed back (`requeue`) or left unacked by a dead worker is delivered again, and the broker
//!   counts deliveries (`x-delivery-count`), which becomes [`Delivery::attempt`].
//! - After `x-delivery-limit` redeliveries the broker dead-letters a task to `{prefix}.dead`
//!   instead of looping forever; [`RabbitMqQueue::next_dead_task`] turns those into errors.
//! - Prefetch equals the worker's concurrency, so a worker holds no more tasks than it runs.
//!
//! Not here yet: reconnecting after a broker restart (the fleet issue); reports are acked on
//! receipt, so a collector crash between receipt and persistence can lose one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};
use mailfleet_shared::checkpoint::StoreError;
use mailfleet_shared::messages::{Report, Task};
use mailfleet_shared::queue::{Delivery, TaskQueue};
use tokio::sync::Mutex as AsyncMutex;

/// Queue names: `mailfleet.tasks`, `mailfleet.reports`, `mailfleet.dead` for prefix `mailfleet`.
#[derive(Debug, Clone)]
pub struct QueueNames {
    pub tasks: String,
    pub reports: String,
    pub dead: String,
}

impl QueueNames {
    pub fn with_prefix(prefix: &str) -> Self {
        QueueNames {
            tasks: format!("{prefix}.tasks"),
            reports: format!("{prefix}.reports"),
            dead: format!("{prefix}.dead"),
        }
    }
}

impl Default for QueueNames {
    fn default() -> Self {
        Self::with_prefix("mailfleet")
    }
}

pub struct RabbitMqQueue {
    _connection: Connection,
    channel: Channel,
    names: QueueNames,
    tasks: AsyncMutex<Option<Consumer>>,
    reports: AsyncMutex<Option<Consumer>>,
    dead: AsyncMutex<Option<Consumer>>,
    unacked: Mutex<HashMap<u64, lapin::message::Delivery>>,
    prefetch: u16,
    closed: AtomicBool,
    closing: tokio::sync::Notify,
    /// Tags of our consumers, kept apart from the consumers (which a waiting reader holds) so
    /// that `close` can cancel them and wake that reader.
    consumer_tags: Mutex<Vec<String>>,
}

fn broker_error(error: lapin::Error) -> StoreError {
    StoreError(format!("rabbitmq: {error}"))
}

impl RabbitMqQueue {
    /// Connects to `url` (`amqp://guest:guest@127.0.0.1:5672/%2f`) and declares the queues.
    /// `delivery_limit` redeliveries before a task is dead-lettered; `prefetch` tasks at most
    /// delivered to this process at once.
    pub async fn connect(
        url: &str,
        names: QueueNames,
        delivery_limit: u32,
        prefetch: u16,
    ) -> Result<Self, StoreError> {
        let connection = Connection::connect(url, ConnectionProperties::default())
            .await
            .map_err(broker_error)?;
        let channel = connection.create_channel().await.map_err(broker_error)?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(broker_error)?;
        channel
            .basic_qos(prefetch.max(1), BasicQosOptions::default())
            .await
            .map_err(broker_error)?;
        let queue = RabbitMqQueue {
            _connection: connection,
            channel,
            names,
            tasks: AsyncMutex::new(None),
            reports: AsyncMutex::new(None),
            dead: AsyncMutex::new(None),
            unacked: Mutex::new(HashMap::new()),
            prefetch,
            closed: AtomicBool::new(false),
            closing: tokio::sync::Notify::new(),
            consumer_tags: Mutex::new(Vec::new()),
        };
        queue.declare(&queue.names.dead, quorum_arguments()).await?;
        queue
            .declare(&queue.names.reports, quorum_arguments())
            .await?;
        let mut task_arguments = quorum_arguments();
        task_arguments.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongInt(delivery_limit as i32),
        );
        task_arguments.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString("".into()),
        );
        task_arguments.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(queue.names.dead.as_str().into()),
        );
        queue.declare(&queue.names.tasks, task_arguments).await?;
        Ok(queue)
    }

    async fn declare(&self, name: &str, arguments: FieldTable) -> Result<(), StoreError> {
        let options = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        self.channel
            .queue_declare(name.into(), options, arguments)
            .await
            .map_err(broker_error)?;
        Ok(())
    }

    async fn publish(&self, queue: &str, body: &[u8]) -> Result<(), StoreError> {
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into());
        let confirm = self
            .channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                body,
                properties,
            )
            .await
            .map_err(broker_error)?
            .await
            .map_err(broker_error)?;
        if confirm.is_ack() {
            Ok(())
        } else {
            Err(StoreError(format!(
                "rabbitmq refused a message for {queue}"
            )))
        }
    }

    /// The next message of `queue`, consuming through the consumer kept in `slot`.
    async fn next_message(
        &self,
        slot: &AsyncMutex<Option<Consumer>>,
        queue: &str,
    ) -> Result<Option<lapin::message::Delivery>, StoreError> {
        // Registered before the flag is read, so a `close` in between still wakes us.
        let closing = self.closing.notified();
        tokio::pin!(closing);
        closing.as_mut().enable();
        if self.closed.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let mut slot = tokio::select! {
            slot = slot.lock() => slot,
            () = &mut closing => return Ok(None),
        };
        if slot.is_none() {
            let consumer = self
                .channel
                .basic_consume(
                    queue.into(),
                    "".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(broker_error)?;
            self.consumer_tags
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(consumer.tag().to_string());
            *slot = Some(consumer);
        }
        let consumer = slot.as_mut().expect("consumer was just created");
        tokio::select! {
            message = consumer.next() => message.transpose().map_err(broker_error),
            () = &mut closing => Ok(None),
        }
    }

    /// A task the broker gave up on after its delivery limit, as the failure report of its user.
    pub async fn next_dead_task(&self) -> Result<Option<Report>, StoreError> {
        let Some(message) = self.next_message(&self.dead, &self.names.dead).await? else {
            return Ok(None);
        };
        let report = serde_json::from_slice::<Task>(&message.data)
            .ok()
            .map(|task| Report::Failed {
                task_id: task.task_id(),
                batch: task.batch().to_owned(),
                user: task.user().email.clone(),
                folder: match &task {
                    Task::SyncFolder { folder, .. } => Some(folder.display_name.clone()),
                    Task::DiscoverUser { .. } => None,
                },
                error: format!(
                    "{}: task failed on every delivery and was dead-lettered",
                    task.user().email
                ),
            });
        message
            .ack(BasicAckOptions::default())
            .await
            .map_err(broker_error)?;
        Ok(report)
    }

    /// Deletes the three queues of `names` (tests, and removing a finished tenant), over a
    /// connection of its own and without declaring them first (their arguments may differ).
    pub async fn delete_queues(url: &str, names: &QueueNames) -> Result<(), StoreError> {
        let connection = Connection::connect(url, ConnectionProperties::default())
            .await
            .map_err(broker_error)?;
        let channel = connection.create_channel().await.map_err(broker_error)?;
        for name in [&names.tasks, &names.reports, &names.dead] {
            channel
                .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                .await
                .map_err(broker_error)?;
        }
        connection
            .close(200, "queues deleted".into())
            .await
            .map_err(broker_error)
    }

    pub fn prefetch(&self) -> u16 {
        self.prefetch
    }
}

fn quorum_arguments() -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    arguments
}

/// Deliveries so far: quorum queues count earlier deliveries in `x-delivery-count`.
fn attempt_of(message: &lapin::message::Delivery) -> u32 {
    let earlier = message
        .properties
        .headers()
        .as_ref()
        .and_then(|headers| headers.inner().get("x-delivery-count").cloned())
        .and_then(|value| match value {
            AMQPValue::LongInt(n) => u32::try_from(n).ok(),
            AMQPValue::LongLongInt(n) => u32::try_from(n).ok(),
            AMQPValue::LongUInt(n) => Some(n),
            AMQPValue::ShortInt(n) => u32::try_from(n).ok(),
            _ => None,
        })
        .unwrap_or(0);
    earlier + 1
}

#[async_trait]
impl TaskQueue for RabbitMqQueue {
    async fn publish_task(&self, task: &Task) -> Result<(), StoreError> {
        let body = serde_json::to_vec(task).map_err(|e| StoreError(e.to_string()))?;
        self.publish(&self.names.tasks, &body).await
    }

    async fn next_task(&self) -> Result<Option<Delivery>, StoreError> {
        loop {
            let Some(message) = self.next_message(&self.tasks, &self.names.tasks).await? else {
                return Ok(None);
            };
            let attempt = attempt_of(&message);
            match serde_json::from_slice::<Task>(&message.data) {
                Ok(task) => {
                    let tag = message.delivery_tag;
                    self.unacked
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(tag, message);
                    return Ok(Some(Delivery { tag, attempt, task }));
                }
                Err(error) => {
                    // Not a task of ours: straight to the dead-letter queue for a person to see.
                    tracing::error!(%error, "undecodable task dead-lettered");
                    let options = BasicNackOptions {
                        requeue: false,
                        ..Default::default()
                    };
                    message.nack(options).await.map_err(broker_error)?;
                }
            }
        }
    }

    async fn ack(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let message = self
            .unacked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&delivery.tag);
        match message {
            Some(message) => message
                .ack(BasicAckOptions::default())
                .await
                .map(drop)
                .map_err(broker_error),
            None => Err(StoreError(format!("no unacked delivery {}", delivery.tag))),
        }
    }

    async fn requeue(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let message = self
            .unacked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&delivery.tag);
        if let Some(message) = message {
            let options = BasicNackOptions {
                requeue: true,
                ..Default::default()
            };
            message.nack(options).await.map_err(broker_error)?;
        }
        Ok(())
    }

    async fn publish_report(&self, report: &Report) -> Result<(), StoreError> {
        let body = serde_json::to_vec(report).map_err(|e| StoreError(e.to_string()))?;
        self.publish(&self.names.reports, &body).await
    }

    async fn next_report(&self) -> Result<Option<Report>, StoreError> {
        let Some(message) = self
            .next_message(&self.reports, &self.names.reports)
            .await?
        else {
            return Ok(None);
        };
        let report = serde_json::from_slice(&message.data)
            .map_err(|e| StoreError(format!("bad report: {e}")))?;
        message
            .ack(BasicAckOptions::default())
            .await
            .map_err(broker_error)?;
        Ok(Some(report))
    }

    /// Stops consuming: `next_task`, `next_report` and `next_dead_task` return `None` from now
    /// on (messages not yet delivered stay in the broker for other consumers).
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.closing.notify_waiters();
        // Cancelling ends the consumer streams, which wakes readers blocked on them.
        let tags =
            std::mem::take(&mut *self.consumer_tags.lock().unwrap_or_else(|p| p.into_inner()));
        let channel = self.channel.clone();
        tokio::spawn(async move {
            for tag in tags {
                let _ = channel
                    .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
                    .await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::contract::task_queue_contract;

    const BROKER: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

    fn names(test: &str) -> QueueNames {
        QueueNames::with_prefix(&format!("mailfleet-test-{test}-{}", std::process::id()))
    }

    async fn delete_queues(names: QueueNames) {
        RabbitMqQueue::delete_queues(BROKER, &names).await.unwrap();
    }

    /// A queue under test, starting empty even if a crashed earlier run left messages behind.
    async fn queue(test: &str, delivery_limit: u32) -> Arc<RabbitMqQueue> {
        delete_queues(names(test)).await;
        Arc::new(
            RabbitMqQueue::connect(BROKER, names(test), delivery_limit, 4)
                .await
                .unwrap(),
        )
    }

    #[tokio::test]
    async fn rabbitmq_queue_keeps_the_contract() {
        let queue = queue("contract", 10).await;
        let closer = queue.clone();
        task_queue_contract(queue.as_ref(), "contract-rabbitmq", move || closer.close()).await;
        delete_queues(names("contract")).await;
    }

    #[tokio::test]
    async fn a_task_failing_on_every_delivery_is_dead_lettered_and_reported() {
        let queue = queue("poison", 2).await;
        let task = Task::DiscoverUser {
            batch: "b".into(),
            user: mailfleet_shared::messages::MailboxUser {
                email: "poison@example.com".into(),
                user_name: "poison".into(),
                user_root: None,
            },
        };
        queue.publish_task(&task).await.unwrap();
        // Delivered, handed back, delivered again... until the broker's limit.
        for attempt in 1..=3 {
            let delivery = queue.next_task().await.unwrap().unwrap();
            assert_eq!(delivery.attempt, attempt);
            queue.requeue(&delivery).await.unwrap();
        }
        let report = queue.next_dead_task().await.unwrap().unwrap();
        match report {
            Report::Failed { user, error, .. } => {
                assert_eq!(user, "poison@example.com");
                assert!(error.contains("dead-lettered"), "{error}");
            }
            other => panic!("unexpected {other:?}"),
        }
        delete_queues(names("poison")).await;
    }
}
