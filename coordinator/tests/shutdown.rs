//! The one shutdown path (ARCHITECTURE.md, "Shutdown"): SIGTERM in the middle of a run stops
//! `migrate`, `coordinator` and `worker` gracefully — running tasks finish or are handed back,
//! the process exits 130 saying it was interrupted — and running the same command again
//! leaves the target exactly the source, with nothing copied twice.

mod common;

use std::fs::File;
use std::process::Stdio;
use std::time::Duration;

use common::fleet::Fleet;
use common::{Pair, Running, run, user_result};
use mailfleet_testkit::corpus::CorpusSpec;
use mailfleet_testkit::{assert_same_mail, connect_login};

/// How long a stop may take before the test calls it hung: the grace period (set short below)
/// plus the time to close connections.
const STOP_BOUND: Duration = Duration::from_secs(60);

/// A source mailbox big enough that a run is still copying when the signal comes; its INBOX
/// travels in parts of 150 messages.
async fn seeded_pair(name: &str) -> Pair {
    let pair = Pair::start(&[(name, "stop-pw")]);
    pair.seed_all(&CorpusSpec {
        messages: 1200,
        ..Default::default()
    })
    .await;
    pair
}

/// Waits until the target's INBOX holds some mail (the run is copying), or the run ended.
/// Returns whether it is still running.
async fn wait_until_copying(pair: &Pair, run: &mut Running) -> bool {
    let (user, password) = &pair.users[0];
    let mut session = connect_login(pair.target.port(), user, password)
        .await
        .unwrap();
    for _ in 0..6000 {
        if run.has_exited() {
            return false;
        }
        let copied = session
            .status("INBOX", "(MESSAGES)")
            .await
            .map(|m| m.exists)
            .unwrap_or(0);
        if copied >= 20 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("nothing arrived on the target");
}

fn stderr_file(dir: &tempfile::TempDir, name: &str) -> (File, std::path::PathBuf) {
    let path = dir.path().join(name);
    (File::create(&path).unwrap(), path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_coordinator_and_worker_mid_run_then_rerun_leaves_the_target_exact() {
    let fleet = Fleet::new("sigterm");
    let pair = seeded_pair("stop-fleet@example.com").await;
    let csv = pair.write_csv();
    let logs = tempfile::tempdir().unwrap();
    let parts = ["--folder-part-messages", "150"];

    let (worker_err, worker_log) = stderr_file(&logs, "worker.err");
    let worker = Running::new(
        fleet
            .worker_command()
            .env("MAILFLEET_SHUTDOWN_GRACE_SECONDS", "5")
            .stdout(Stdio::null())
            .stderr(worker_err)
            .spawn()
            .unwrap(),
    );
    let (coordinator_err, coordinator_log) = stderr_file(&logs, "coordinator.err");
    let mut coordinator = pair.run_command("coordinator", &csv, &parts);
    fleet.configure(&mut coordinator);
    let mut coordinator = Running::new(
        coordinator
            .stdout(Stdio::null())
            .stderr(coordinator_err)
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_until_copying(&pair, &mut coordinator).await,
        "the run finished before the signal; the test proved nothing"
    );

    let coordinator_status = coordinator.terminate_within(STOP_BOUND);
    let worker_status = worker.terminate_within(STOP_BOUND);
    let said = |path| std::fs::read_to_string(path).unwrap();
    assert_eq!(
        coordinator_status.code(),
        Some(130),
        "{}",
        said(&coordinator_log)
    );
    assert!(
        said(&coordinator_log).contains("interrupted"),
        "{}",
        said(&coordinator_log)
    );
    assert_eq!(worker_status.code(), Some(130), "{}", said(&worker_log));
    let partial = pair.target_snapshot(0).await;
    assert!(
        partial.message_count() < pair.source_snapshot(0).await.message_count(),
        "everything was copied before the signal; the test proved nothing"
    );

    // The same command again, with a fresh worker: the rest arrives, nothing twice.
    let (worker, _) = fleet.worker();
    let mut again = pair.run_command("coordinator", &csv, &parts);
    fleet.configure(&mut again);
    let (code, json, stderr) = run(&mut again);
    worker.terminate();
    assert_eq!(code, 0, "{stderr}\n{json}");
    assert_eq!(
        user_result(&json, "stop-fleet@example.com")["status"],
        "Completed"
    );
    assert_same_mail(
        &pair.source_snapshot(0).await,
        &pair.target_snapshot(0).await,
        str::to_owned,
    );
    fleet.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_migrate_mid_run_then_rerun_leaves_the_target_exact() {
    let pair = seeded_pair("stop-embedded@example.com").await;
    let csv = pair.write_csv();
    let logs = tempfile::tempdir().unwrap();
    let (err, log) = stderr_file(&logs, "migrate.err");
    let mut migrate = Running::new(
        pair.migrate_command(&csv, &["--folder-part-messages", "150", "--workers", "3"])
            .env("MAILFLEET_SHUTDOWN_GRACE_SECONDS", "5")
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_until_copying(&pair, &mut migrate).await,
        "the run finished before the signal; the test proved nothing"
    );
    let status = migrate.terminate_within(STOP_BOUND);
    let said = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(130), "{said}");
    assert!(said.contains("interrupted"), "{said}");

    let (code, json, stderr) = run(&mut pair.migrate_command(&csv, &[]));
    assert_eq!(code, 0, "{stderr}\n{json}");
    assert_same_mail(
        &pair.source_snapshot(0).await,
        &pair.target_snapshot(0).await,
        str::to_owned,
    );
}
