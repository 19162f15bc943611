//! The one shutdown path (ARCHITECTURE.md, "Shutdown"): SIGTERM in the middle of a run stops
//! `migrate`, `coordinator` and `worker` gracefully — running tasks finish or are handed back,
//! the process exits 130 saying it was interrupted — and running the same command again
//! leaves the target exactly the source, with nothing copied twice.

mod common;

use std::fs::File;
use std::process::Stdio;
use std::time::Duration;

use common::fleet::Fleet;
use common::{Pair, Running, run, user_result, wait_for_target_inbox};
use mailfleet_testkit::assert_same_mail;
use mailfleet_testkit::corpus::CorpusSpec;

/// How long a stop may take before the test calls it hung: the grace period (set short below)
/// plus the time to close connections.
const STOP_BOUND: Duration = Duration::from_secs(60);

/// A source mailbox big enough that a run is still copying when the signal comes; its INBOX
/// (about 480 messages) travels in parts of 50, one after another, so the signal lands with
/// most of it still to copy.
async fn seeded_pair(name: &str) -> Pair {
    let pair = Pair::start(&[(name, "stop-pw")]);
    pair.seed_all(&CorpusSpec {
        messages: 1200,
        ..Default::default()
    })
    .await;
    pair
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
    let parts = ["--folder-part-messages", "50"];

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
        wait_for_target_inbox(&pair, &mut coordinator, 20).await,
        "the run finished before the signal; the test proved nothing"
    );

    // Both at once, as an orchestrator stopping the whole deployment would.
    let worker_stopping = std::thread::spawn(move || worker.terminate_within(STOP_BOUND));
    let coordinator_status = coordinator.terminate_within(STOP_BOUND);
    let worker_status = worker_stopping.join().unwrap();
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
    let inbox = |snapshot: &mailfleet_testkit::MailboxSnapshot| {
        snapshot.folder("INBOX").map_or(0, |f| f.messages.len())
    };
    assert!(
        inbox(&pair.target_snapshot(0).await) < inbox(&pair.source_snapshot(0).await),
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
        pair.migrate_command(&csv, &["--folder-part-messages", "50", "--workers", "3"])
            .env("MAILFLEET_SHUTDOWN_GRACE_SECONDS", "5")
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_for_target_inbox(&pair, &mut migrate, 20).await,
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
