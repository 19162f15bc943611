//! The servers mailfleet depends on fail while a batch runs: Redis restarted empty, RabbitMQ
//! restarted, the source Dovecot restarted mid-folder, the target refusing logins for a while,
//! the state directory's disk full, PostgreSQL restarted under the service. Each ends with the
//! target holding exactly the source's mail (nothing missing, nothing twice) and the batch or
//! run complete.
//!
//! Redis, RabbitMQ and PostgreSQL here are private instances (`testkit::private`) started for
//! the test on free ports: the machine's shared servers are never stopped, other tests use
//! them.

mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::fleet::Fleet;
use common::service::{ServiceCli, batch_state};
use common::{Pair, Running, mailfleet, run, user_result, wait_for_target_inbox};
use mailfleet_testkit::assert_same_mail;
use mailfleet_testkit::corpus::CorpusSpec;
use mailfleet_testkit::fault_proxy::{Action, FaultProxy};
use mailfleet_testkit::private::{PrivatePostgres, PrivateRabbitMq, PrivateRedis, SmallFilesystem};

/// Source and target with `users`, each seeded with `messages` (INBOX about 40 % of them).
async fn seeded_pair(users: &[(&str, &str)], messages: usize) -> Pair {
    let pair = Pair::start(users);
    pair.seed_all(&CorpusSpec {
        messages,
        ..Default::default()
    })
    .await;
    pair
}

/// Every user's target holds exactly its source's mail.
async fn assert_every_target_exact(pair: &Pair) {
    for i in 0..pair.users.len() {
        assert_same_mail(
            &pair.source_snapshot(i).await,
            &pair.target_snapshot(i).await,
            str::to_owned,
        );
    }
}

/// Starts `command` with its stdout piped (the `--json` result, written at the end) and its
/// stderr in `pair`'s directory (a pipe nobody reads could fill and stall it).
fn spawn(pair: &Pair, command: &mut std::process::Command) -> Running {
    let log = std::fs::File::create(pair.dir.path().join("stderr.log")).unwrap();
    Running::new(command.stdout(Stdio::piped()).stderr(log).spawn().unwrap())
}

/// Waits for a process [`spawn`]ed for `pair` to end by itself; returns its exit code, its
/// `--json` result and its stderr.
async fn finish(pair: &Pair, running: Running) -> (i32, serde_json::Value, String) {
    let output = tokio::task::spawn_blocking(move || running.wait_with_output())
        .await
        .unwrap();
    let json = serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
    let stderr = std::fs::read_to_string(pair.dir.path().join("stderr.log")).unwrap_or_default();
    (output.status.code().unwrap_or(-1), json, stderr)
}

/// `mailfleet coordinator` for `fleet` (small folder parts, so tasks keep flowing through the
/// queue while the fault strikes).
fn start_coordinator(pair: &Pair, fleet: &Fleet, csv: &std::path::Path) -> Running {
    let mut command = pair.run_command("coordinator", csv, &["--folder-part-messages", "40"]);
    fleet.configure(&mut command);
    spawn(pair, &mut command)
}

/// Distributed: checkpoints, sealed passwords and job specs in a private Redis that is killed
/// and started again empty once mail is flowing. The passwords go with it, so users whose
/// logins come after the restart fail, each saying its password is missing (nothing else can
/// fail them); the run still ends with its results, and the same command run again copies
/// the rest: exact, nothing twice, although every checkpoint was lost too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_mid_batch_loses_and_duplicates_nothing() {
    let mut redis = PrivateRedis::start();
    let fleet = Fleet::on(
        "redis-restart",
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        &redis.url(),
    );
    let pair = seeded_pair(
        &[
            ("redis-a@example.com", "redis-pw-a"),
            ("redis-b@example.com", "redis-pw-b"),
        ],
        400,
    )
    .await;
    let csv = pair.write_csv();
    let (worker, _) = fleet.worker();
    let mut coordinator = start_coordinator(&pair, &fleet, &csv);
    assert!(
        wait_for_target_inbox(&pair, &mut coordinator, 20).await,
        "the batch ended before Redis was restarted"
    );
    redis.restart_empty();
    let (code, json, stderr) = finish(&pair, coordinator).await;
    assert!(code == 0 || code == 1, "{stderr}\n{json}");
    for (user, _) in &pair.users {
        let result = user_result(&json, user);
        eprintln!(
            "after the restart: {user} {} {}",
            result["status"], result["errors"]
        );
        if result["status"] == "Failed" {
            assert!(
                result["errors"].to_string().contains("missing credentials"),
                "{result}"
            );
        }
    }

    let (code, json, stderr) = finish(&pair, start_coordinator(&pair, &fleet, &csv)).await;
    worker.terminate();
    assert_eq!(code, 0, "{stderr}\n{json}");
    for (user, _) in &pair.users {
        assert_eq!(user_result(&json, user)["status"], "Completed", "{json}");
    }
    assert_every_target_exact(&pair).await;
    fleet.clean_up().await;
}

/// Distributed: tasks and reports through a private RabbitMQ node that is stopped and started
/// (`rabbitmqctl stop_app` / `start_app`) once mail is flowing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_restarted_mid_batch_loses_and_duplicates_nothing() {
    let broker = PrivateRabbitMq::start();
    let fleet = Fleet::on(
        "rabbit-restart",
        &broker.amqp_url(),
        "redis://127.0.0.1:6379",
    );
    let pair = seeded_pair(
        &[
            ("rabbit-a@example.com", "rabbit-pw-a"),
            ("rabbit-b@example.com", "rabbit-pw-b"),
        ],
        400,
    )
    .await;
    let csv = pair.write_csv();
    let (worker, _) = fleet.worker();
    let mut coordinator = start_coordinator(&pair, &fleet, &csv);
    assert!(
        wait_for_target_inbox(&pair, &mut coordinator, 20).await,
        "the batch ended before RabbitMQ was restarted"
    );
    broker.restart_app();
    let (code, json, stderr) = finish(&pair, coordinator).await;
    worker.terminate();
    assert_eq!(code, 0, "{stderr}\n{json}");
    for (user, _) in &pair.users {
        assert_eq!(user_result(&json, user)["status"], "Completed", "{json}");
    }
    assert_every_target_exact(&pair).await;
    fleet.clean_up().await;
}

/// The source Dovecot is stopped while INBOX is being copied (every connection drops) and
/// started again on the same port a moment later; the run carries on by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_restarted_mid_folder_is_reconnected_to_an_exact_copy() {
    let mut pair = seeded_pair(&[("restart-src@example.com", "restart-pw")], 600).await;
    let csv = pair.write_csv();
    let mut migrate = spawn(
        &pair,
        &mut pair.migrate_command(&csv, &["--folder-part-messages", "100"]),
    );
    assert!(
        wait_for_target_inbox(&pair, &mut migrate, 30).await,
        "the run ended before the source was restarted"
    );
    pair.source.stop();
    tokio::time::sleep(Duration::from_secs(1)).await;
    pair.source.start_again().unwrap();
    let (code, json, stderr) = finish(&pair, migrate).await;
    assert_eq!(code, 0, "{stderr}\n{json}");
    assert_eq!(
        user_result(&json, "restart-src@example.com")["status"],
        "Completed"
    );
    assert_every_target_exact(&pair).await;
}

/// For its first seconds the target answers every login `NO [UNAVAILABLE] Temporary
/// authentication failure.` (Dovecot's words when its password backend is down): the logins
/// are retried, not failed as wrong passwords, and every user completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_refusing_logins_for_a_while_is_retried_until_it_accepts() {
    let pair = seeded_pair(
        &[
            ("refuse-a@example.com", "refuse-pw-a"),
            ("refuse-b@example.com", "refuse-pw-b"),
        ],
        40,
    )
    .await;
    let csv = pair.write_csv();
    let refused = Arc::new(AtomicUsize::new(0));
    let counter = refused.clone();
    let refuse_until = Instant::now() + Duration::from_secs(6);
    let proxy = FaultProxy::start(([127, 0, 0, 1], pair.target.port()).into(), move |_| {
        if Instant::now() < refuse_until {
            counter.fetch_add(1, Ordering::SeqCst);
            Action::RefuseLogins
        } else {
            Action::Pass
        }
    })
    .await
    .unwrap();
    let mut command = mailfleet();
    command
        .args(["migrate", "--json", "--csv"])
        .arg(&csv)
        .args(["--source", &pair.source.url(), "--target", &proxy.url()])
        .arg("--state-dir")
        .arg(pair.state_dir());
    let (code, json, stderr) = run(&mut command);
    assert_eq!(code, 0, "{stderr}\n{json}");
    assert!(
        refused.load(Ordering::SeqCst) > 0,
        "no login was refused; the test proved nothing"
    );
    for (user, _) in &pair.users {
        assert_eq!(user_result(&json, user)["status"], "Completed", "{json}");
    }
    assert_every_target_exact(&pair).await;
}

/// The state directory sits on a small tmpfs that is filled to the last byte while INBOX is
/// being copied: the run ends with an error saying the disk is full; once space is freed,
/// `state.db` passes SQLite's integrity check and the same command finishes exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_state_disk_fails_clearly_and_resumes_once_space_is_freed() {
    let disk = SmallFilesystem::mount(16 * 1024)
        .unwrap_or_else(|why| panic!("this test needs a tmpfs mount: {why}"));
    let pair = seeded_pair(&[("disk-full@example.com", "disk-pw")], 600).await;
    let csv = pair.write_csv();
    let state_dir = disk.path().join("state");
    let state_arg = state_dir.display().to_string();
    let migrate_command = || {
        let mut command = mailfleet();
        command
            .args(["migrate", "--json", "--csv"])
            .arg(&csv)
            .args([
                "--source",
                &pair.source.url(),
                "--target",
                &pair.target.url(),
            ])
            .args(["--state-dir", &state_arg, "--folder-part-messages", "50"])
            .env("MAILFLEET_RETRY_ATTEMPTS", "2");
        command
    };
    let mut migrate = spawn(&pair, &mut migrate_command());
    assert!(
        wait_for_target_inbox(&pair, &mut migrate, 30).await,
        "the run ended before the disk was filled"
    );
    disk.fill();
    let (code, json, stderr) = finish(&pair, migrate).await;
    assert_ne!(code, 0, "the run ignored a full disk: {json}");
    let said = format!("{stderr}{json}");
    eprintln!("with the disk full, exit {code}: {said}");
    assert!(
        said.contains("disk is full") || said.contains("No space left"),
        "the error does not say the disk is full: {said}"
    );

    disk.free();
    let integrity = std::process::Command::new("sqlite3")
        .arg(state_dir.join("state.db"))
        .arg("PRAGMA integrity_check;")
        .output()
        .expect("sqlite3 runs");
    assert_eq!(
        String::from_utf8_lossy(&integrity.stdout).trim(),
        "ok",
        "{}",
        String::from_utf8_lossy(&integrity.stderr)
    );
    let (code, json, stderr) = run(&mut migrate_command());
    assert_eq!(code, 0, "{stderr}\n{json}");
    assert_eq!(
        user_result(&json, "disk-full@example.com")["status"],
        "Completed"
    );
    assert_every_target_exact(&pair).await;
}

/// The service keeps its state in a private PostgreSQL that is stopped at once (`-m
/// immediate`) and started again while the batch's initial pass copies: the pass finishes, the
/// batch reaches Synced, the target is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_during_a_service_pass_loses_and_duplicates_nothing() {
    let database = PrivatePostgres::start();
    let pair = seeded_pair(
        &[
            ("pg-restart-a@example.com", "pgr-pw-a"),
            ("pg-restart-b@example.com", "pgr-pw-b"),
        ],
        400,
    )
    .await;
    let csv = pair.write_csv();
    let service = ServiceCli::new(pair.state_dir()).with_env("MAILFLEET_STATE", database.url());
    service.create_endpoints(&pair);
    service.create_batch("pg-restart", &csv, &["--autostart"]);
    let log = pair.dir.path().join("service.log");
    let mut running = service.start(&["--workers", "2"], &log);
    assert!(
        wait_for_target_inbox(&pair, &mut running, 20).await,
        "the service ended before PostgreSQL was restarted"
    );
    database.restart();
    let status = service
        .wait_for("pg-restart", "Synced", |s| batch_state(s) == "Synced")
        .await;
    running.terminate();
    for user in status["users"].as_array().unwrap() {
        assert_eq!(user["state"], "Synced", "{status}");
    }
    assert_every_target_exact(&pair).await;
}
