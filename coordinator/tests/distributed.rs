//! The same `migrate` on the distributed backends: tasks through the real RabbitMQ at
//! 127.0.0.1:5672, checkpoints and sealed credentials in the real Redis at 127.0.0.1:6379. Each
//! test has its own queue prefix and Redis tenant and removes them afterwards.

mod common;

use std::fs::File;
use std::process::Stdio;
use std::time::Duration;

use common::fleet::{Fleet, KEY};
use common::service::{ServiceCli, batch_state};
use common::{ADMIN, Pair, Running, run, user_result};
use mailfleet_testkit::corpus::CorpusSpec;
use mailfleet_testkit::{StartOptions, assert_same_mail};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_over_rabbitmq_and_redis_copies_exactly_and_resumes() {
    let fleet = Fleet::new("dist");
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
    let queue = fleet.queue_url();
    let checkpoints = fleet.checkpoints_url();
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
    let keys = fleet.redis().await.keys().await.unwrap();
    assert!(keys.iter().any(|k| k.contains(":checkpoints:")), "{keys:?}");
    let mut command = pair.migrate_command(&csv, &distributed);
    let (code, json, stderr) = run(command.env("MAILFLEET_SECRET_KEY", KEY));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(user_result(&json, "dist-a@example.com")["items_copied"], 0);
    assert!(!pair.state_dir().join("state.db").exists());

    // Credentials were removed after the run; nothing left in Redis holds a password.
    let dump = format!("{:?}", fleet.redis_values().await);
    assert!(
        dump.contains("imap://127.0.0.1"),
        "the job spec should be readable: {dump}"
    );
    assert!(!dump.contains("Dist-Secret"), "password in redis");

    fleet.clean_up().await;
}

/// Every place a password could leak in distributed mode, read while it is there: task messages
/// waiting in RabbitMQ, Redis values while the sealed credentials exist, the coordinator's and
/// a worker's debug logs, the results printed (including a failed login's error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_reaches_queue_messages_redis_or_logs() {
    const SECRET: &str = "Leak-Probe-";
    let fleet = Fleet::new("secrets");
    let servers = [
        ("leak-a@example.com", "Leak-Probe-A1"),
        ("leak-b@example.com", "Leak-Probe-B2"),
        ("leak-bad@example.com", "Leak-Probe-Right3"),
    ];
    let options = StartOptions::users(&servers).with_master(ADMIN.0, ADMIN.1);
    // The CSV holds a wrong password for the last user: its target login fails.
    let mut csv_users = servers;
    csv_users[2].1 = "Leak-Probe-Wrong4";
    let pair = Pair::from_servers(options.clone(), options, &csv_users);
    for (user, _) in servers {
        let spec = CorpusSpec {
            messages: 15,
            ..Default::default()
        };
        let admin_login = format!("{user}*{}", ADMIN.0);
        mailfleet_testkit::seed(pair.source.port(), &admin_login, ADMIN.1, &spec)
            .await
            .unwrap();
    }
    let csv = pair.write_csv();
    let logs = tempfile::tempdir().unwrap();
    let log_file = |name: &str| File::create(logs.path().join(name)).unwrap();

    let mut coordinator = pair.run_command(
        "coordinator",
        &csv,
        &[
            "--source-admin",
            "admin",
            "--source-admin-format",
            "dovecot",
            "--log",
            "debug",
        ],
    );
    fleet.configure(&mut coordinator);
    let coordinator = Running::new(
        coordinator
            .env("MAILFLEET_SOURCE_ADMIN_PASSWORD", ADMIN.1)
            .stdout(log_file("coordinator.out"))
            .stderr(log_file("coordinator.err"))
            .spawn()
            .unwrap(),
    );

    // No worker yet: the discovery tasks and the sealed credentials wait for one.
    let mut tasks = Vec::new();
    for _ in 0..400 {
        tasks = fleet.peek_tasks(10).await;
        if tasks.len() == servers.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        tasks.len(),
        servers.len(),
        "the discovery tasks were not published"
    );
    let redis_during_the_run = fleet.redis_values().await;
    assert!(
        redis_during_the_run
            .iter()
            .any(|(key, _)| key.contains(":credentials:")),
        "{redis_during_the_run:?}"
    );

    let worker = Running::new(
        fleet
            .worker_command()
            .args(["--log", "debug"])
            .stdout(Stdio::null())
            .stderr(log_file("worker.err"))
            .spawn()
            .unwrap(),
    );
    let status = tokio::task::spawn_blocking(move || coordinator.wait_with_output().status)
        .await
        .unwrap();
    worker.terminate();

    let read = |name: &str| std::fs::read_to_string(logs.path().join(name)).unwrap();
    let json: serde_json::Value = serde_json::from_str(&read("coordinator.out")).unwrap();
    assert_eq!(status.code(), Some(1), "{}", read("coordinator.err"));
    assert_eq!(
        user_result(&json, "leak-a@example.com")["status"],
        "Completed"
    );
    let failed = user_result(&json, "leak-bad@example.com");
    assert_eq!(failed["status"], "Failed", "{json}");
    assert!(
        failed["errors"]
            .to_string()
            .contains("leak-bad@example.com"),
        "{failed}"
    );
    assert!(
        read("worker.err").contains("small folders copied"),
        "the worker logged no task"
    );

    let places = [
        (
            "task messages",
            format!(
                "{:?}",
                tasks
                    .iter()
                    .map(|t| String::from_utf8_lossy(t))
                    .collect::<Vec<_>>()
            ),
        ),
        (
            "Redis values during the run",
            format!("{redis_during_the_run:?}"),
        ),
        ("the coordinator's results", read("coordinator.out")),
        ("the coordinator's debug log", read("coordinator.err")),
        ("the worker's debug log", read("worker.err")),
    ];
    for (place, text) in places {
        assert!(!text.contains(SECRET), "a user's password in {place}");
        assert!(!text.contains(ADMIN.1), "the admin password in {place}");
        assert!(!text.contains(KEY), "the secret key in {place}");
    }
    fleet.clean_up().await;
}

/// The service on the distributed backends: `mailfleet run --workers 0` schedules the batch,
/// a `mailfleet worker` process copies it, passwords and checkpoints live in Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_schedules_a_batch_for_worker_processes() {
    let fleet = Fleet::new("service");
    let pair = Pair::start(&[
        ("svc-a@example.com", "svc-pw-a"),
        ("svc-b@example.com", "svc-pw-b"),
    ]);
    pair.seed_all(&CorpusSpec {
        messages: 20,
        ..Default::default()
    })
    .await;
    let csv = pair.write_csv();
    let service = fleet
        .settings_env()
        .into_iter()
        .fold(ServiceCli::new(pair.state_dir()), |cli, (name, value)| {
            cli.with_env(name, value)
        });
    service.create_endpoints(&pair);
    service.create_batch("fleet-batch", &csv, &["--autostart"]);
    let (worker, _) = fleet.worker();
    let running = service.start(&["--workers", "0"], &pair.dir.path().join("service.log"));
    service
        .wait_for("fleet-batch", "Synced", |s| batch_state(s) == "Synced")
        .await;
    running.terminate();
    worker.terminate();
    for i in 0..pair.users.len() {
        assert_same_mail(
            &pair.source_snapshot(i).await,
            &pair.target_snapshot(i).await,
            str::to_owned,
        );
    }
    assert!(
        !pair.state_dir().join("secret.key").exists(),
        "distributed passwords are sealed in Redis with the shared key, not a local one"
    );
    fleet.clean_up().await;
}
