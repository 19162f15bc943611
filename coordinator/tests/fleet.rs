//! Distributed mode as deployed: a coordinator-only `migrate --workers 0` and separate
//! `mailfleet worker` processes on the real RabbitMQ and Redis. One worker is `kill -9`ed while
//! it works and a fresh one joins; every mailbox still arrives exactly.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Pair, mailfleet, user_result};
use mailfleet_stores::crypto::SecretBox;
use mailfleet_stores::rabbitmq_queue::{QueueNames, RabbitMqQueue};
use mailfleet_stores::redis_store::RedisStore;
use mailfleet_testkit::corpus::CorpusSpec;
use mailfleet_testkit::{assert_same_mail, connect_login};

const KEY: &str = "ZmxlZXQtdGVzdC1rZXktMzItYnl0ZXMtbG9uZy0hIT8="; // 32 bytes, tests only

struct Fleet {
    queue: String,
    checkpoints: String,
}

impl Fleet {
    fn configure(&self, command: &mut Command) {
        command
            .env("MAILFLEET_QUEUE", &self.queue)
            .env("MAILFLEET_CHECKPOINTS", &self.checkpoints)
            .env("MAILFLEET_SECRET_KEY", KEY);
    }

    fn worker(&self) -> Child {
        let mut command = mailfleet();
        command
            .args(["worker", "--concurrency", "3"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.configure(&mut command);
        command.spawn().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_and_worker_processes_survive_a_killed_worker() {
    let isolation = format!("mf-test-fleet-{}", std::process::id());
    let fleet = Fleet {
        queue: format!("rabbitmq://guest:guest@127.0.0.1:5672/%2f?prefix={isolation}"),
        checkpoints: format!("redis://127.0.0.1:6379?tenant={isolation}"),
    };
    let users = [
        ("fleet-a@example.com", "fa"),
        ("fleet-b@example.com", "fb"),
        ("fleet-c@example.com", "fc"),
    ];
    let pair = Pair::start(&users);
    pair.seed_all(&CorpusSpec {
        messages: 400,
        ..Default::default()
    })
    .await;
    let csv = pair.write_csv();

    let mut workers = vec![fleet.worker(), fleet.worker(), fleet.worker()];
    let mut coordinator = pair.migrate_command(&csv, &["--workers", "0"]);
    fleet.configure(&mut coordinator);
    let coordinator = coordinator
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Kill a worker once mail is flowing, then let a new one join.
    let mut session = connect_login(pair.target.port(), users[0].0, users[0].1)
        .await
        .unwrap();
    let mut killed = false;
    for _ in 0..20_000 {
        let copied = session
            .status("INBOX", "(MESSAGES)")
            .await
            .map(|m| m.exists)
            .unwrap_or(0);
        if copied >= 20 {
            workers[0].kill().unwrap();
            workers[0].wait().unwrap();
            killed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    workers.push(fleet.worker());

    let output = tokio::task::spawn_blocking(move || coordinator.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
    for worker in &mut workers[1..] {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(worker.id().to_string())
            .status();
        worker.wait().unwrap();
    }
    assert!(killed, "no mail arrived to trigger the kill");
    assert_eq!(output.status.code(), Some(0), "{stderr}\n{json}");
    for (i, (user, _)) in users.iter().enumerate() {
        assert_eq!(user_result(&json, user)["status"], "Completed", "{json}");
        assert_same_mail(
            &pair.source_snapshot(i).await,
            &pair.target_snapshot(i).await,
            str::to_owned,
        );
    }

    let redis = RedisStore::connect(
        "redis://127.0.0.1:6379",
        &isolation,
        SecretBox::from_base64(KEY).unwrap(),
    )
    .await
    .unwrap();
    redis.clear_tenant().await.unwrap();
    RabbitMqQueue::delete_queues(
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        &QueueNames::with_prefix(&isolation),
    )
    .await
    .unwrap();
}
