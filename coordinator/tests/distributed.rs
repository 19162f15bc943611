//! The same `migrate` on the distributed backends: tasks through the real RabbitMQ at
//! 127.0.0.1:5672, checkpoints and sealed credentials in the real Redis at 127.0.0.1:6379. Each
//! test has its own queue prefix and Redis tenant and removes them afterwards.

mod common;

use common::{Pair, run, user_result};
use mailfleet_stores::crypto::SecretBox;
use mailfleet_stores::rabbitmq_queue::{QueueNames, RabbitMqQueue};
use mailfleet_stores::redis_store::RedisStore;
use mailfleet_testkit::assert_same_mail;
use mailfleet_testkit::corpus::CorpusSpec;

const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes, tests only

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_over_rabbitmq_and_redis_copies_exactly_and_resumes() {
    let isolation = format!("mf-test-dist-{}", std::process::id());
    let pair = Pair::start(&[
        ("dist-a@example.com", "Dist-Secret-A1"),
        ("dist-b@example.com", "Dist-Secret-B2"),
    ]);
    pair.seed_all(&CorpusSpec {
        messages: 40,
        ..Default::default()
    })
    .await;
    let csv = pair.write_csv();
    let queue = format!("rabbitmq://guest:guest@127.0.0.1:5672/%2f?prefix={isolation}");
    let checkpoints = format!("redis://127.0.0.1:6379?tenant={isolation}");
    let distributed = [
        "--queue",
        queue.as_str(),
        "--checkpoints",
        checkpoints.as_str(),
    ];

    let mut command = pair.migrate_command(&csv, &distributed);
    let (code, json, stderr) = run(command.env("MAILFLEET_SECRET_KEY", KEY));
    assert_eq!(code, 0, "{stderr}\n{json}");
    for (i, (user, _)) in pair.users.iter().enumerate() {
        assert_eq!(user_result(&json, user)["status"], "Completed");
        assert_same_mail(
            &pair.source_snapshot(i).await,
            &pair.target_snapshot(i).await,
            str::to_owned,
        );
    }

    // Checkpoints live in Redis: a second run copies nothing, and the state dir was never used.
    let redis = RedisStore::connect(
        "redis://127.0.0.1:6379",
        &isolation,
        SecretBox::from_base64(KEY).unwrap(),
    )
    .await
    .unwrap();
    let keys = redis.keys().await.unwrap();
    assert!(keys.iter().any(|k| k.contains(":checkpoints:")), "{keys:?}");
    let mut command = pair.migrate_command(&csv, &distributed);
    let (code, json, stderr) = run(command.env("MAILFLEET_SECRET_KEY", KEY));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(user_result(&json, "dist-a@example.com")["items_copied"], 0);
    assert!(!pair.state_dir().join("state.db").exists());

    // Credentials were removed after the run; nothing left in Redis holds a password.
    let dump = format!("{:?}", redis_values(&isolation).await);
    assert!(
        dump.contains("imap://127.0.0.1"),
        "the job spec should be readable: {dump}"
    );
    assert!(!dump.contains("Dist-Secret"), "password in redis");

    redis.clear_tenant().await.unwrap();
    let names = QueueNames::with_prefix(&isolation);
    RabbitMqQueue::delete_queues("amqp://guest:guest@127.0.0.1:5672/%2f", &names)
        .await
        .unwrap();
}

/// Every value stored under the tenant's keys, hashes and strings alike, as text.
async fn redis_values(tenant: &str) -> Vec<String> {
    let client = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("mailfleet:{tenant}:*"))
        .query_async(&mut connection)
        .await
        .unwrap();
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
        values.push(format!("{value:?}"));
    }
    values
}
