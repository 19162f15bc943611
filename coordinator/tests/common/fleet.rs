//! One test's share of the machine's real RabbitMQ and Redis: its own queue prefix and Redis
//! tenant (both named after the test and process), mailfleet processes configured for them,
//! and the means to break, inspect and finally remove them.

use std::process::{Command, Stdio};

use mailfleet_stores::crypto::SecretBox;
use mailfleet_stores::rabbitmq_queue::{QueueNames, RabbitMqQueue};
use mailfleet_stores::redis_store::RedisStore;

use super::{Running, mailfleet};

pub const KEY: &str = "ZmxlZXQtdGVzdC1rZXktMzItYnl0ZXMtbG9uZy0hIT8="; // 32 bytes, tests only
const BROKER: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const REDIS: &str = "redis://127.0.0.1:6379";

pub struct Fleet {
    pub isolation: String,
    /// The broker (`amqp://…`) and Redis (`redis://…`) this fleet runs on.
    broker: String,
    redis: String,
}

impl Fleet {
    /// A fleet on the machine's shared RabbitMQ and Redis.
    pub fn new(test: &str) -> Self {
        Self::on(test, BROKER, REDIS)
    }

    /// A fleet on other servers (a test's private RabbitMQ node and Redis, say).
    pub fn on(test: &str, broker: &str, redis: &str) -> Self {
        Fleet {
            isolation: format!("mf-test-{test}-{}", std::process::id()),
            broker: broker.to_owned(),
            redis: redis.to_owned(),
        }
    }

    /// The `queue` setting of this test: the fleet's broker, the test's queue prefix.
    pub fn queue_url(&self) -> String {
        let broker = self.broker.replacen("amqp://", "rabbitmq://", 1);
        format!("{broker}?prefix={}", self.isolation)
    }

    /// The `checkpoints` setting of this test: the fleet's Redis, the test's tenant.
    pub fn checkpoints_url(&self) -> String {
        format!("{}?tenant={}", self.redis, self.isolation)
    }

    /// The `MAILFLEET_*` settings that point a process at this test's queues and tenant.
    pub fn settings_env(&self) -> [(&'static str, String); 3] {
        [
            ("MAILFLEET_QUEUE", self.queue_url()),
            ("MAILFLEET_CHECKPOINTS", self.checkpoints_url()),
            ("MAILFLEET_SECRET_KEY", KEY.to_owned()),
        ]
    }

    /// Points `command` at this test's queues and tenant.
    pub fn configure(&self, command: &mut Command) {
        command.envs(self.settings_env());
    }

    /// `mailfleet worker --concurrency 3`, configured, output not yet directed.
    pub fn worker_command(&self) -> Command {
        let mut command = mailfleet();
        command.args(["worker", "--concurrency", "3"]);
        self.configure(&mut command);
        command
    }

    /// A quiet worker with `/metrics` on a port of its own (returned with it).
    pub fn worker(&self) -> (Running, u16) {
        let metrics_port = free_port();
        let mut command = self.worker_command();
        command
            .arg("--metrics-listen")
            .arg(format!("127.0.0.1:{metrics_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        (Running::new(command.spawn().unwrap()), metrics_port)
    }

    pub async fn redis(&self) -> RedisStore {
        RedisStore::connect(
            &self.redis,
            &self.isolation,
            SecretBox::from_base64(KEY).unwrap(),
        )
        .await
        .unwrap()
    }

    /// Closes, from the broker's side, every connection of this run (workers and coordinator).
    pub fn close_broker_connections(&self) {
        let closed = mailfleet_testkit::broker::close_rabbitmq_connections(&self.isolation);
        assert!(closed > 0, "no connection of this run found");
    }

    /// Deletes every checkpoint of the tenant, as a Redis failover without persistence would.
    pub async fn wipe_checkpoints(&self) {
        let keys = self.redis().await.keys().await.unwrap();
        let mut connection = connection(&self.redis).await;
        for key in keys.into_iter().filter(|k| k.contains(":checkpoints:")) {
            let _: () = redis::cmd("DEL")
                .arg(key)
                .query_async(&mut connection)
                .await
                .unwrap();
        }
    }

    /// Every key of the tenant with its value, hashes and strings alike, as text.
    pub async fn redis_values(&self) -> Vec<(String, String)> {
        let keys = self.redis().await.keys().await.unwrap();
        let mut connection = connection(&self.redis).await;
        let mut values = Vec::new();
        for key in keys {
            let kind: String = redis::cmd("TYPE")
                .arg(&key)
                .query_async(&mut connection)
                .await
                .unwrap();
            let read = if kind == "hash" { "HGETALL" } else { "GET" };
            let value: redis::Value = redis::cmd(read)
                .arg(&key)
                .query_async(&mut connection)
                .await
                .unwrap();
            values.push((key, format!("{value:?}")));
        }
        values
    }

    /// Up to `max` task messages waiting in this test's task queue, left in place.
    pub async fn peek_tasks(&self, max: usize) -> Vec<Vec<u8>> {
        let names = QueueNames::with_prefix(&self.isolation);
        mailfleet_testkit::broker::peek_messages(&self.broker, &names.tasks, max).await
    }

    /// Removes the test's queues and Redis keys.
    pub async fn clean_up(&self) {
        clean_up(&self.isolation, &self.broker, &self.redis)
            .await
            .unwrap();
    }
}

impl Drop for Fleet {
    /// A test that failed half-way still removes what it made (best effort, on a runtime of
    /// its own: drop cannot await). Its processes are gone by now: declared later, dropped
    /// earlier.
    fn drop(&mut self) {
        let (isolation, broker, redis) = (
            self.isolation.clone(),
            self.broker.clone(),
            self.redis.clone(),
        );
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for clean-up");
            runtime.block_on(clean_up(&isolation, &broker, &redis))
        })
        .join();
    }
}

async fn clean_up(isolation: &str, broker: &str, redis: &str) -> Result<(), String> {
    let secrets = SecretBox::from_base64(KEY).map_err(|e| e.to_string())?;
    RedisStore::connect(redis, isolation, secrets)
        .await
        .map_err(|e| e.to_string())?
        .clear_tenant()
        .await
        .map_err(|e| e.to_string())?;
    let names = QueueNames::with_prefix(isolation);
    RabbitMqQueue::delete_queues(broker, &names)
        .await
        .map_err(|e| e.to_string())
}

async fn connection(redis: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
