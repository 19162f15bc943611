//! The service with its state store in PostgreSQL (`state = postgres://…`, here through
//! `MAILFLEET_STATE`), end to end with the real binary and real Dovecot servers: endpoints and
//! a batch created with the CLI, `mailfleet run` syncs it, `batch status` shows the users —
//! and all of it lives in the database (a second state dir sees it; the first state dir's
//! SQLite holds nothing), as a fleet of services and operators sharing one database needs; a
//! second service stands by. Commands in a tight loop while passes run lose no update.

mod common;

use common::Pair;
use common::service::{ServiceCli, batch_state, user};
use mailfleet_testkit::assert_same_mail;
use mailfleet_testkit::corpus::CorpusSpec;
use mailfleet_testkit::postgres::TestDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_kept_in_postgres_syncs_and_shows_its_users() {
    let pair = Pair::start(&[
        ("pg-a@example.com", "pg-pw-a"),
        ("pg-b@example.com", "pg-pw-b"),
    ]);
    pair.seed_all(&CorpusSpec {
        messages: 15,
        ..Default::default()
    })
    .await;
    let csv = pair.write_csv();
    let database = TestDatabase::create().await;
    let service = ServiceCli::new(pair.state_dir()).with_env("MAILFLEET_STATE", database.url());
    service.create_endpoints(&pair);
    service.create_batch("pg-wave", &csv, &["--autostart"]);

    let running = service.start(&["--workers", "4"], &pair.dir.path().join("service.log"));
    let status = service
        .wait_for("pg-wave", "Synced", |s| batch_state(s) == "Synced")
        .await;
    for email in ["pg-a@example.com", "pg-b@example.com"] {
        let entry = user(&status, email);
        assert_eq!(entry["state"], "Synced", "{entry}");
        assert!(entry["items_synced"].as_u64().unwrap() > 0, "{entry}");
    }
    let text = service.ok(&["batch", "status", "pg-wave"]);
    assert!(text.contains("batch pg-wave: Synced"), "{text}");
    assert!(
        text.contains("pg-a@example.com") && text.contains("pg-b@example.com"),
        "{text}"
    );

    // Another operator's machine (another state dir) sees the same batch; the state dir's own
    // SQLite was never used for it.
    let elsewhere = ServiceCli::new(pair.dir.path().join("other-state"))
        .with_env("MAILFLEET_STATE", database.url());
    // A second service on that machine stands by while the first schedules (see failover.rs).
    let standby_log = pair.dir.path().join("standby.log");
    let standby = ServiceCli::new(pair.dir.path().join("standby-state"))
        .with_env("MAILFLEET_STATE", database.url())
        .with_env("MAILFLEET_LOG", "warn,mailfleet::service=info")
        .start(&[], &standby_log);
    for _ in 0..600 {
        if std::fs::read_to_string(&standby_log).is_ok_and(|log| log.contains("standing by")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let waited = std::fs::read_to_string(&standby_log).unwrap();
    assert!(
        waited.contains("standing by") && !waited.contains("pass started"),
        "{waited}"
    );
    standby.terminate();
    let listed = elsewhere.ok(&["batch", "list"]);
    assert!(
        listed.contains("pg-wave") && listed.contains("Synced"),
        "{listed}"
    );
    let embedded = ServiceCli::new(pair.state_dir()).ok(&["batch", "list"]);
    assert!(!embedded.contains("pg-wave"), "{embedded}");

    // A command from there takes effect on the running service's batch.
    let stopped = elsewhere.ok(&["batch", "stop", "pg-wave"]);
    assert!(stopped.contains("batch pg-wave is Stopped"), "{stopped}");
    running.terminate();
    assert_eq!(batch_state(&service.status("pg-wave")), "Stopped");
    for i in 0..2 {
        assert_same_mail(
            &pair.source_snapshot(i).await,
            &pair.target_snapshot(i).await,
            str::to_owned,
        );
    }
    service.ok(&["batch", "remove", "pg-wave"]);
    assert!(!service.ok(&["batch", "list"]).contains("pg-wave"));
}

/// No lost update between the service and `batch` commands: with an incremental pass due every
/// second, `batch stop` and `batch resume` alternate as fast as the CLI runs while passes start
/// and finish. Every command's effect lands and stays: a stop always ends Stopped (the pass it
/// caught does not turn it back into Synced), a resume is never undone by a pass that read the
/// batch before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_commands_in_a_loop_while_passes_run_are_never_lost() {
    let pair = Pair::start(&[("lu-a@example.com", "lu-pw-a")]);
    pair.seed_all(&CorpusSpec {
        messages: 20,
        ..Default::default()
    })
    .await;
    let csv = pair.write_csv();
    let database = TestDatabase::create().await;
    let service = ServiceCli::new(pair.state_dir()).with_env("MAILFLEET_STATE", database.url());
    service.create_endpoints(&pair);
    service.create_batch(
        "lu-wave",
        &csv,
        &["--autostart", "--incremental-interval", "1s"],
    );
    let running = service.start(&["--workers", "2"], &pair.dir.path().join("service.log"));
    service
        .wait_for("lu-wave", "Synced", |s| batch_state(s) == "Synced")
        .await;

    for _ in 0..8 {
        let stopped = service.ok(&["batch", "stop", "lu-wave"]);
        assert!(
            stopped.contains("is Stopping") || stopped.contains("is Stopped"),
            "{stopped}"
        );
        // A pass the stop caught finishes into Stopped; nothing starts a Stopped batch.
        service
            .wait_for("lu-wave", "Stopped", |s| batch_state(s) == "Stopped")
            .await;
        let resumed = service.ok(&["batch", "resume", "lu-wave"]);
        assert!(!resumed.contains("Stopped"), "{resumed}");
        assert_ne!(batch_state(&service.status("lu-wave")), "Stopped");
    }
    // The last command wins over whatever pass ran at that moment.
    service.ok(&["batch", "stop", "lu-wave"]);
    let status = service
        .wait_for("lu-wave", "Stopped", |s| batch_state(s) == "Stopped")
        .await;
    let synced = &user(&status, "lu-a@example.com")["state"];
    assert!(
        synced == "Synced" || synced == "IncrementalSynced",
        "{status}"
    );
    running.terminate();
    assert_eq!(batch_state(&service.status("lu-wave")), "Stopped");
    assert_same_mail(
        &pair.source_snapshot(0).await,
        &pair.target_snapshot(0).await,
        str::to_owned,
    );
}
