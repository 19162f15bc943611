//! Distributed mode's task queue on RabbitMQ (lapin), with the names of ARCHITECTURE.md, "Names".
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
//! - A lost connection is replaced ([`crate::rabbitmq_link`]); a publish is retried on the new
//!   one, consumers resume there, and tasks delivered on the dead one are left to the broker's
//!   redelivery (nothing is acked that was not done).
//!
//! Reports are acked on receipt, so a collector crash between receipt and persistence can lose
//! one; the long-running coordinator of the fleet issue will ack after persisting.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties, Consumer};
use mailfleet_shared::messages::{FolderOutcome, Report, Task};
use mailfleet_shared::queue::{Delivery, TaskQueue};
use mailfleet_shared::store_error::StoreError;
use tokio::sync::Mutex as AsyncMutex;

use crate::error::{broker_error, decode_json, encode_json};
use crate::rabbitmq_link::{Link, Links};

/// Redeliveries before RabbitMQ dead-letters a task. Above the worker's own limit, so the
/// worker reports a failing task itself; the broker's limit catches workers that die on it.
/// Every process declaring the queues must use the same value (queue arguments must match).
pub const DELIVERY_LIMIT: u32 = 10;

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

/// A consumer and the link generation it belongs to.
type ConsumerSlot = AsyncMutex<Option<(u64, Consumer)>>;

/// Publishes retried on a new link before an error is returned.
const PUBLISH_ATTEMPTS: u32 = 3;

pub struct RabbitMqQueue {
    links: Arc<Links>,
    tasks: ConsumerSlot,
    reports: ConsumerSlot,
    dead: ConsumerSlot,
    /// Our delivery tags (unique across links) → (link generation, the broker's delivery).
    unacked: Mutex<HashMap<u64, (u64, lapin::message::Delivery)>>,
    next_tag: AtomicU64,
    prefetch: u16,
    closed: AtomicBool,
    closing: tokio::sync::Notify,
    /// (generation, tag) of our consumers, kept apart from the consumers (which a waiting reader
    /// holds) so that `close` can cancel them.
    consumer_tags: Mutex<Vec<(u64, String)>>,
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
        let connection_name = format!("mailfleet {} pid {}", names.tasks, std::process::id());
        let links = Links::open(url, names, delivery_limit, prefetch, connection_name).await?;
        Ok(RabbitMqQueue {
            links: Arc::new(links),
            tasks: AsyncMutex::new(None),
            reports: AsyncMutex::new(None),
            dead: AsyncMutex::new(None),
            unacked: Mutex::new(HashMap::new()),
            next_tag: AtomicU64::new(1),
            prefetch,
            closed: AtomicBool::new(false),
            closing: tokio::sync::Notify::new(),
            consumer_tags: Mutex::new(Vec::new()),
        })
    }

    fn names(&self) -> &QueueNames {
        self.links.names()
    }

    async fn publish(&self, queue: &str, body: &[u8]) -> Result<(), StoreError> {
        let mut attempt = 1;
        loop {
            let link = self.links.current().await;
            match publish_on(&link, queue, body).await {
                Ok(()) => return Ok(()),
                Err(error) if attempt < PUBLISH_ATTEMPTS => {
                    tracing::warn!(%error, queue, "publish failed; reconnecting");
                    self.links.replace(link.generation).await?;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// The next message of `queue` with its link generation, consuming through `slot`; a broken
    /// consumer is replaced on a new link. `None` once closed.
    async fn next_message(
        &self,
        slot: &ConsumerSlot,
        queue: &str,
    ) -> Result<Option<(u64, lapin::message::Delivery)>, StoreError> {
        // Registered before the flag is read, so a `close` in between still wakes us.
        let closing = self.closing.notified();
        tokio::pin!(closing);
        closing.as_mut().enable();
        let mut slot = tokio::select! {
            slot = slot.lock() => slot,
            () = &mut closing => return Ok(None),
        };
        loop {
            if self.closed.load(Ordering::SeqCst) {
                return Ok(None);
            }
            let link = self.links.current().await;
            if slot
                .as_ref()
                .is_none_or(|(generation, _)| *generation != link.generation)
            {
                match self.consume(&link, queue).await {
                    Ok(consumer) => *slot = Some((link.generation, consumer)),
                    Err(error) => {
                        tracing::warn!(%error, queue, "cannot consume; reconnecting");
                        self.links.replace(link.generation).await?;
                        continue;
                    }
                }
            }
            let (generation, consumer) = slot.as_mut().expect("a consumer was just set");
            let generation = *generation;
            let next = tokio::select! {
                next = consumer.next() => next,
                () = &mut closing => return Ok(None),
            };
            match next {
                Some(Ok(message)) => return Ok(Some((generation, message))),
                Some(Err(_)) | None if self.closed.load(Ordering::SeqCst) => return Ok(None),
                Some(Err(error)) => tracing::warn!(%error, queue, "consumer failed; reconnecting"),
                None => tracing::warn!(queue, "consumer ended; reconnecting"),
            }
            *slot = None;
            self.links.replace(generation).await?;
        }
    }

    async fn consume(&self, link: &Link, queue: &str) -> Result<Consumer, StoreError> {
        let consumer = link
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
            .push((link.generation, consumer.tag().to_string()));
        Ok(consumer)
    }

    /// A task the broker gave up on after its delivery limit, as the failure report of its user.
    pub async fn next_dead_task(&self) -> Result<Option<Report>, StoreError> {
        let names = self.names().clone();
        let Some((_, message)) = self.next_message(&self.dead, &names.dead).await? else {
            return Ok(None);
        };
        let report = serde_json::from_slice::<Task>(&message.data)
            .ok()
            .map(|task| Report::Failed {
                task_id: task.task_id(),
                batch: task.batch().to_owned(),
                pass: task.pass().to_owned(),
                user: task.user().email.clone(),
                folder: match &task {
                    Task::SyncFolder { folder, .. } => Some(folder.display_name.clone()),
                    Task::DiscoverUser { .. } => None,
                },
                error: format!(
                    "{}: task failed on every delivery and was dead-lettered",
                    task.user().email
                ),
                outcome: FolderOutcome::default(),
            });
        // If this ack is lost with its link, the task comes back and is reported twice: the
        // collector counts a task's report once.
        if let Err(error) = message.ack(BasicAckOptions::default()).await {
            tracing::warn!(%error, "ack of a dead-lettered task failed");
        }
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

    /// Tasks waiting in the broker (not counting those delivered and unacked): the queue depth
    /// that metrics and autoscalers watch.
    pub async fn pending_tasks(&self) -> Result<u32, StoreError> {
        let link = self.links.current().await;
        let options = lapin::options::QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let queue = link
            .channel
            .queue_declare(
                self.names().tasks.as_str().into(),
                options,
                lapin::types::FieldTable::default(),
            )
            .await
            .map_err(broker_error)?;
        Ok(queue.message_count())
    }

    pub fn prefetch(&self) -> u16 {
        self.prefetch
    }

    /// Settles a task delivery with `settle`, unless it came over a link that is gone: the
    /// broker has already put it back for redelivery, so there is nothing left to settle.
    async fn settle(
        &self,
        delivery: &Delivery,
        what: &str,
        settle: SettleAction,
    ) -> Result<(), StoreError> {
        let found = self
            .unacked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&delivery.tag);
        let Some((generation, message)) = found else {
            return Err(StoreError::not_found(format!(
                "no unacked delivery {}",
                delivery.tag
            )));
        };
        if generation != self.links.current().await.generation {
            tracing::info!(task = %delivery.task.task_id(), "{what} skipped: delivered on a lost connection, the broker redelivers it");
            return Ok(());
        }
        let result = match settle {
            SettleAction::Ack => message.ack(BasicAckOptions::default()).await,
            SettleAction::Requeue => {
                message
                    .nack(BasicNackOptions {
                        requeue: true,
                        ..Default::default()
                    })
                    .await
            }
        };
        if let Err(error) = result {
            // The link broke under us; the broker redelivers the task, which is harmless.
            tracing::warn!(%error, task = %delivery.task.task_id(), "{what} failed");
        }
        Ok(())
    }
}

enum SettleAction {
    Ack,
    Requeue,
}

async fn publish_on(link: &Link, queue: &str, body: &[u8]) -> Result<(), StoreError> {
    let properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into());
    let confirm = link
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
        // The broker nacks when a queue process failed or the queue is full: both pass.
        Err(StoreError::unavailable(format!(
            "rabbitmq refused a message for {queue}"
        )))
    }
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
        let body = encode_json(task, "task")?;
        let queue = self.names().tasks.clone();
        self.publish(&queue, body.as_bytes()).await
    }

    async fn next_task(&self) -> Result<Option<Delivery>, StoreError> {
        let queue = self.names().tasks.clone();
        loop {
            let Some((generation, message)) = self.next_message(&self.tasks, &queue).await? else {
                return Ok(None);
            };
            let attempt = attempt_of(&message);
            match serde_json::from_slice::<Task>(&message.data) {
                Ok(task) => {
                    let tag = self.next_tag.fetch_add(1, Ordering::SeqCst);
                    self.unacked
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(tag, (generation, message));
                    return Ok(Some(Delivery { tag, attempt, task }));
                }
                Err(error) => {
                    // Not a task of ours: straight to the dead-letter queue for a person to see.
                    tracing::error!(%error, "undecodable task dead-lettered");
                    let options = BasicNackOptions {
                        requeue: false,
                        ..Default::default()
                    };
                    if let Err(error) = message.nack(options).await {
                        tracing::warn!(%error, "dead-lettering an undecodable task failed");
                    }
                }
            }
        }
    }

    async fn ack(&self, delivery: &Delivery) -> Result<(), StoreError> {
        self.settle(delivery, "ack", SettleAction::Ack).await
    }

    async fn requeue(&self, delivery: &Delivery) -> Result<(), StoreError> {
        self.settle(delivery, "requeue", SettleAction::Requeue)
            .await
    }

    async fn publish_report(&self, report: &Report) -> Result<(), StoreError> {
        let body = encode_json(report, "report")?;
        let queue = self.names().reports.clone();
        self.publish(&queue, body.as_bytes()).await
    }

    async fn next_report(&self) -> Result<Option<Report>, StoreError> {
        let queue = self.names().reports.clone();
        let Some((_, message)) = self.next_message(&self.reports, &queue).await? else {
            return Ok(None);
        };
        let report = decode_json(&message.data, "report")?;
        if let Err(error) = message.ack(BasicAckOptions::default()).await {
            // Redelivered on the next link; the collector counts each task's report once.
            tracing::warn!(%error, "ack of a report failed");
        }
        Ok(Some(report))
    }

    /// Stops consuming: `next_task`, `next_report` and `next_dead_task` return `None` from now
    /// on (messages not yet delivered stay in the broker for other consumers).
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.closing.notify_waiters();
        // Cancelling hands prefetched messages back to the broker at once.
        let tags =
            std::mem::take(&mut *self.consumer_tags.lock().unwrap_or_else(|p| p.into_inner()));
        let links = self.links.clone();
        tokio::spawn(async move {
            let link = links.current().await;
            for (_, tag) in tags
                .into_iter()
                .filter(|(generation, _)| *generation == link.generation)
            {
                let _ = link
                    .channel
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
    async fn an_unreachable_broker_is_unavailable() {
        let Err(error) =
            RabbitMqQueue::connect("amqp://guest:guest@127.0.0.1:1/%2f", names("down"), 10, 1)
                .await
        else {
            panic!("connected to a closed port");
        };
        assert_eq!(
            error.kind(),
            mailfleet_shared::store_error::StoreErrorKind::Unavailable,
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_task_failing_on_every_delivery_is_dead_lettered_and_reported() {
        let queue = queue("poison", 2).await;
        let task = Task::DiscoverUser {
            batch: "b".into(),
            pass: "p1".into(),
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
            Report::Failed {
                user, error, pass, ..
            } => {
                assert_eq!(user, "poison@example.com");
                assert_eq!(pass, "p1", "reported to the pass that published it");
                assert!(error.contains("dead-lettered"), "{error}");
            }
            other => panic!("unexpected {other:?}"),
        }
        delete_queues(names("poison")).await;
    }

    fn discover(email: &str) -> Task {
        Task::DiscoverUser {
            batch: "b".into(),
            pass: "p1".into(),
            user: mailfleet_shared::messages::MailboxUser {
                email: email.into(),
                user_name: email.into(),
                user_root: None,
            },
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_closed_by_the_broker_is_replaced_and_nothing_is_lost() {
        let queue = queue("reconnect", 10).await;
        queue
            .publish_task(&discover("before@example.com"))
            .await
            .unwrap();
        let in_flight = queue.next_task().await.unwrap().unwrap();

        let closed =
            mailfleet_testkit::broker::close_rabbitmq_connections(&names("reconnect").tasks);
        assert_eq!(closed, 1);
        // Its link is gone: the ack cannot reach the broker, which redelivers the task instead.
        queue.ack(&in_flight).await.unwrap();
        queue
            .publish_task(&discover("after@example.com"))
            .await
            .unwrap();

        let mut seen = Vec::new();
        for _ in 0..2 {
            let delivery = queue.next_task().await.unwrap().unwrap();
            seen.push(delivery.task.user().email.clone());
            queue.ack(&delivery).await.unwrap();
        }
        seen.sort();
        assert_eq!(seen, ["after@example.com", "before@example.com"]);
        delete_queues(names("reconnect")).await;
    }
}
