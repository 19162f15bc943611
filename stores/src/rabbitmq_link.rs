//! The AMQP connection under [`crate::rabbitmq_queue`], and its replacement when it breaks.
//!
//! A broker restart or `rabbitmqctl close_all_connections` kills the connection and with it the
//! channel, its consumers and the delivery tags of unacked messages. Every such failure asks
//! for a new link; the first caller opens it (with backoff while the broker is away), the others
//! wait and share it. Each link has a generation, so deliveries of a dead link are recognised:
//! the broker redelivers those by itself, and acking them is neither possible nor needed.

use std::sync::Arc;
use std::time::Duration;

use lapin::options::{BasicQosOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties};
use mailfleet_shared::store_error::StoreError;
use tokio::sync::{Mutex, RwLock};

use crate::error::broker_error;
use crate::rabbitmq_queue::QueueNames;

/// How long a broker may stay away before operations fail: about three minutes.
const REPLACE_ATTEMPTS: u32 = 40;
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub(crate) struct Link {
    pub channel: Channel,
    pub generation: u64,
    // Held so the connection lives as long as its channel.
    _connection: Connection,
}

/// Everything needed to open a link again.
struct LinkConfig {
    url: String,
    names: QueueNames,
    delivery_limit: u32,
    prefetch: u16,
    /// Shown by `rabbitmqctl list_connections user_provided_name`.
    connection_name: String,
}

pub(crate) struct Links {
    config: LinkConfig,
    current: RwLock<Arc<Link>>,
    replacing: Mutex<()>,
}

impl Links {
    pub async fn open(
        url: &str,
        names: QueueNames,
        delivery_limit: u32,
        prefetch: u16,
        connection_name: String,
    ) -> Result<Self, StoreError> {
        let config = LinkConfig {
            url: url.to_owned(),
            names,
            delivery_limit,
            prefetch,
            connection_name,
        };
        let first = config.open(1).await.map_err(broker_error)?;
        Ok(Links {
            config,
            current: RwLock::new(Arc::new(first)),
            replacing: Mutex::new(()),
        })
    }

    pub fn names(&self) -> &QueueNames {
        &self.config.names
    }

    pub async fn current(&self) -> Arc<Link> {
        self.current.read().await.clone()
    }

    /// A working link instead of the `broken` generation: opened here, or by whoever asked
    /// first while this caller waited.
    pub async fn replace(&self, broken: u64) -> Result<Arc<Link>, StoreError> {
        let _one_at_a_time = self.replacing.lock().await;
        let current = self.current().await;
        if current.generation != broken {
            return Ok(current);
        }
        let mut delay = Duration::from_millis(200);
        let mut last_error = None;
        for _ in 0..REPLACE_ATTEMPTS {
            match self.config.open(broken + 1).await {
                Ok(link) => {
                    tracing::warn!(generation = link.generation, "reconnected to rabbitmq");
                    let link = Arc::new(link);
                    *self.current.write().await = link.clone();
                    return Ok(link);
                }
                Err(error) => {
                    tracing::warn!(%error, delay_ms = delay.as_millis() as u64, "rabbitmq unreachable; retrying");
                    last_error = Some(error);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_BACKOFF);
                }
            }
        }
        Err(last_error.map_or_else(
            || StoreError::unavailable("rabbitmq: cannot reconnect"),
            broker_error,
        ))
    }
}

impl LinkConfig {
    /// Connects, enables confirms and prefetch, and declares the queues (idempotent).
    async fn open(&self, generation: u64) -> Result<Link, lapin::Error> {
        let properties = ConnectionProperties::default()
            .with_connection_name(self.connection_name.as_str().into());
        let connection = Connection::connect(&self.url, properties).await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        channel
            .basic_qos(self.prefetch.max(1), BasicQosOptions::default())
            .await?;
        declare(&channel, &self.names.dead, quorum_arguments()).await?;
        declare(&channel, &self.names.reports, quorum_arguments()).await?;
        let mut task_arguments = quorum_arguments();
        task_arguments.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongInt(self.delivery_limit as i32),
        );
        task_arguments.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString("".into()),
        );
        task_arguments.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(self.names.dead.as_str().into()),
        );
        declare(&channel, &self.names.tasks, task_arguments).await?;
        Ok(Link {
            channel,
            generation,
            _connection: connection,
        })
    }
}

async fn declare(channel: &Channel, name: &str, arguments: FieldTable) -> Result<(), lapin::Error> {
    let options = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .queue_declare(name.into(), options, arguments)
        .await
        .map(drop)
}

fn quorum_arguments() -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    arguments
}
