//! The migration service end to end with seconds-scale intervals: endpoints and a batch are
//! created with the CLI, `mailfleet run` syncs it, new mail is picked up by incremental syncs,
//! `batch complete` opens the completion window (which survives a restart of the service),
//! the final sync takes the mail sent during the window, and after completion nothing more is
//! copied. The users report tells the same numbers in CSV, JSON and HTML.

mod common;

use std::time::Duration;

use chrono::{FixedOffset, TimeZone};
use common::service::{ServiceCli, batch_state, html_report_row, user};
use common::{Pair, Running};
use mailfleet_shared::checkpoint::CheckpointStore;
use mailfleet_stores::crypto::SecretBox;
use mailfleet_stores::sqlite::SqliteStore;
use mailfleet_testkit::corpus::CorpusSpec;
use mailfleet_testkit::{NewMessage, append_all, assert_same_mail, client, connect_login};
use serde_json::Value;

fn stop(service: Running) {
    service.terminate();
}

/// `mailfleet verify wave-1 --json`: exit code and document.
fn verify(service: &ServiceCli) -> (Option<i32>, Value) {
    let output = service.cli(&["verify", "wave-1", "--json"]);
    let json = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("verify: {}", String::from_utf8_lossy(&output.stderr)));
    (output.status.code(), json)
}

/// Appends one message with a unique subject to the user's source INBOX.
async fn new_mail(pair: &Pair, user: usize, subject: &str) {
    let (login, password) = &pair.users[user];
    let mut session = connect_login(pair.source.port(), login, password)
        .await
        .unwrap();
    let message = NewMessage {
        bytes: format!(
            "From: a@example.org\r\nTo: {login}\r\nSubject: {subject}\r\nMessage-ID: <{subject}@lifecycle>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n\r\n{subject}\r\n"
        )
        .into_bytes(),
        flags: vec![],
        internal_date: FixedOffset::east_opt(0)
            .unwrap()
            .with_ymd_and_hms(2026, 11, 24, 10, 0, 0)
            .unwrap(),
    };
    append_all(&mut session, "INBOX", &[message]).await.unwrap();
    session.logout().await.unwrap();
}

async fn target_has(pair: &Pair, user: usize, subject: &str) -> bool {
    let snapshot = pair.target_snapshot(user).await;
    snapshot.folder("INBOX").is_some_and(|inbox| {
        inbox
            .messages
            .iter()
            .any(|m| String::from_utf8_lossy(&m.bytes).contains(subject))
    })
}

/// Deletes the first message of the user's target INBOX and appends the second one again;
/// returns their subjects.
async fn tamper_with_target(pair: &Pair, user: usize) -> (String, String) {
    let inbox = pair
        .target_snapshot(user)
        .await
        .folder("INBOX")
        .unwrap()
        .clone();
    let subject = |bytes: &[u8]| {
        mailfleet_shared::fingerprint::header_value(bytes, "SUBJECT")
            .map(|v| String::from_utf8_lossy(&v).trim().to_owned())
            .unwrap()
    };
    let (first, second) = (&inbox.messages[0], &inbox.messages[1]);
    let (login, password) = &pair.users[user];
    let mut session = connect_login(pair.target.port(), login, password)
        .await
        .unwrap();
    session.select("INBOX").await.unwrap();
    client::delete_uids(&mut session, &first.uid.to_string())
        .await
        .unwrap();
    let again = NewMessage {
        bytes: second.bytes.clone(),
        flags: vec![],
        internal_date: second.internal_date.unwrap(),
    };
    append_all(&mut session, "INBOX", &[again]).await.unwrap();
    session.logout().await.unwrap();
    (subject(&first.bytes), subject(&second.bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_syncs_incrementally_completes_after_its_window_and_then_stops() {
    let alice = "life-a@example.com";
    let pair = Pair::start(&[(alice, "life-pw-a"), ("life-b@example.com", "life-pw-b")]);
    pair.seed_all(&CorpusSpec {
        messages: 30,
        ..Default::default()
    })
    .await;
    let csv = pair.write_csv();
    let service = ServiceCli::new(pair.state_dir());
    let log = pair.dir.path().join("service.log");

    // Names and transitions are checked before anything runs.
    service.create_endpoints(&pair);
    let error = service.refused(&[
        "endpoint",
        "create",
        "old-imap",
        "--server",
        &pair.source.url(),
    ]);
    assert!(error.contains("exists already"), "{error}");
    let tested = service.ok(&["endpoint", "test", "--endpoint", "old-imap"]);
    assert!(
        tested.starts_with("ok   connect to imap://127.0.0.1"),
        "{tested}"
    );
    let batch_args = |name: &str| {
        let timing = [
            "--autostart",
            "--incremental-interval",
            "3s",
            "--completion-window",
            "25s",
        ];
        ServiceCli::batch_args(name, &csv, &timing)
    };
    let args = batch_args("wave 1");
    let error = service.refused(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(error.contains("use only letters, digits"), "{error}");
    let error = service.refused(&["batch", "complete", "nothing-here"]);
    assert!(error.contains("no batch named nothing-here"), "{error}");
    let args = batch_args("wave-1");
    service.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let error = service.refused(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(error.contains("exists already"), "{error}");
    let error = service.refused(&["batch", "complete", "wave-1"]);
    assert!(
        error.contains("before the initial sync has finished"),
        "{error}"
    );

    // Initial sync.
    let running = service.start(&["--workers", "4", "--log", "info"], &log);
    let status = service
        .wait_for("wave-1", "Synced", |s| batch_state(s) == "Synced")
        .await;
    for (i, (email, _)) in pair.users.iter().enumerate() {
        assert_eq!(user(&status, email)["state"], "Synced");
        assert_same_mail(
            &pair.source_snapshot(i).await,
            &pair.target_snapshot(i).await,
            str::to_owned,
        );
    }
    let copied_initially = user(&status, alice)["items_copied_total"].as_u64().unwrap();
    let error = service.refused(&["endpoint", "remove", "old-imap"]);
    assert!(error.contains("used by batch wave-1"), "{error}");

    // New mail arrives: an incremental sync copies exactly it.
    new_mail(&pair, 0, "after-initial-sync").await;
    let status = service
        .wait_for("wave-1", "the new message counted", |s| {
            user(s, alice)["items_copied_total"].as_u64() == Some(copied_initially + 1)
        })
        .await;
    assert!(target_has(&pair, 0, "after-initial-sync").await);
    assert_eq!(user(&status, alice)["state"], "IncrementalSynced");

    // MX switched: complete. The window outlives a restart of the service.
    let said = service.ok(&["batch", "complete", "wave-1"]);
    // Completing, or IncrementalSyncing when a pass was running: the window has begun either way.
    assert!(said.contains("syncing goes on until"), "{said}");
    let deadline = service.status("wave-1")["batch"]["completion_deadline"].clone();
    stop(running);
    let running = service.start(&["--workers", "4", "--log", "info"], &log);
    new_mail(&pair, 0, "during-the-window").await;
    assert_eq!(
        service.status("wave-1")["batch"]["completion_deadline"],
        deadline
    );
    let error = service.refused(&["batch", "start", "wave-1"]);
    assert!(error.contains("cannot start a batch that is"), "{error}");

    let status = service
        .wait_for("wave-1", "Completed", |s| batch_state(s) == "Completed")
        .await;
    for (i, (email, _)) in pair.users.iter().enumerate() {
        assert_eq!(user(&status, email)["state"], "Completed", "{status}");
        assert_same_mail(
            &pair.source_snapshot(i).await,
            &pair.target_snapshot(i).await,
            str::to_owned,
        );
    }
    assert!(target_has(&pair, 0, "during-the-window").await);
    assert_eq!(status["batch"]["completion_deadline"], deadline);
    let (exit, verified) = verify(&service);
    assert_eq!(exit, Some(0), "{verified}");
    assert!(
        verified["users"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["exact"] == true)
    );

    // After completion nothing is copied any more.
    new_mail(&pair, 0, "after-completion").await;
    let error = service.refused(&["batch", "sync-now", "wave-1"]);
    assert!(
        error.contains("cannot sync-now a batch that is Completed"),
        "{error}"
    );
    tokio::time::sleep(Duration::from_secs(4)).await; // longer than the incremental interval
    assert!(!target_has(&pair, 0, "after-completion").await);
    stop(running);

    // Verify finds what is not right: the message that came too late, one deleted from the
    // target, one appended to it twice.
    let (deleted, duplicated) = tamper_with_target(&pair, 1).await;
    let (exit, verified) = verify(&service);
    assert_eq!(exit, Some(1), "{verified}");
    let subjects = |email: &str, list: &str| -> Vec<String> {
        user(&verified, email)[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                d["message"]["subject"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(subjects(alice, "missing"), ["after-completion"]);
    assert_eq!(subjects("life-b@example.com", "missing"), [deleted]);
    assert_eq!(subjects("life-b@example.com", "duplicated"), [duplicated]);

    // The report in three formats, with the same numbers.
    let json: Value =
        serde_json::from_str(&service.ok(&["report", "users", "wave-1", "--format", "json"]))
            .unwrap();
    let csv_report = service.ok(&["report", "users", "wave-1", "--format", "csv"]);
    let html = service.ok(&["report", "users", "wave-1", "--format", "html"]);
    let mut csv_rows = csv::Reader::from_reader(csv_report.as_bytes());
    let headers = csv_rows.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    for (row, reported) in csv_rows.records().zip(json["users"].as_array().unwrap()) {
        let row = row.unwrap();
        assert_eq!(
            row[column("EmailAddress")],
            reported["email"].as_str().unwrap().to_owned()
        );
        assert_eq!(row[column("Status")], *"Completed");
        let synced = reported["items_synced"].as_u64().unwrap();
        assert_eq!(row[column("ItemsSynced")], synced.to_string());
        assert_eq!(row[column("DataConsistencyScore")], *"Perfect");
        let html_row = html_report_row(&html, reported["email"].as_str().unwrap());
        assert_eq!(html_row["Items synced"], synced.to_string(), "{html}");
        assert_eq!(html_row["Data consistency"], "Perfect", "{html}");
    }
    assert!(html.starts_with("<!DOCTYPE html>") && !html.contains("<script"));

    // Removing the batch takes its users' checkpoints and maps of copies with it.
    let checkpoints = SqliteStore::open(
        &pair.state_dir(),
        SecretBox::from_key_bytes(&[0u8; 32]).unwrap(),
    )
    .unwrap();
    let mapped = || async {
        let mut folders = Vec::new();
        for (user, _) in &pair.users {
            folders.extend(
                checkpoints
                    .mapped_folders("batch:wave-1", user)
                    .await
                    .unwrap(),
            );
        }
        folders
    };
    assert!(!mapped().await.is_empty(), "the passes left checkpoints");
    service.ok(&["batch", "remove", "wave-1"]);
    assert_eq!(mapped().await, Vec::<String>::new());
    service.ok(&["endpoint", "remove", "old-imap"]);
    let listed = service.ok(&["batch", "list"]);
    assert!(!listed.contains("wave-1"), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_added_to_a_synced_batch_get_their_initial_sync_at_once() {
    let pair = Pair::start(&[
        ("add-a@example.com", "add-pw-a"),
        ("add-b@example.com", "add-pw-b"),
    ]);
    pair.seed_all(&CorpusSpec {
        messages: 12,
        ..Default::default()
    })
    .await;
    let first = pair.dir.path().join("first.csv");
    std::fs::write(
        &first,
        "EmailAddress,UserName,Password\nadd-a@example.com,add-a@example.com,add-pw-a\n",
    )
    .unwrap();
    let second = pair.dir.path().join("second.csv");
    std::fs::write(
        &second,
        "EmailAddress,UserName,Password\nadd-b@example.com,add-b@example.com,add-pw-b\n",
    )
    .unwrap();
    let service = ServiceCli::new(pair.state_dir());
    service.create_endpoints(&pair);
    service.create_batch("wave-1", &first, &["--autostart"]);
    let running = service.start(&["--workers", "4"], &pair.dir.path().join("service.log"));
    service
        .wait_for("wave-1", "Synced", |s| batch_state(s) == "Synced")
        .await;

    let error = service.refused(&[
        "batch",
        "add-users",
        "wave-1",
        "--csv",
        first.to_str().unwrap(),
    ]);
    assert!(
        error.contains("add-a@example.com is in batch wave-1 already"),
        "{error}"
    );
    service.ok(&[
        "batch",
        "add-users",
        "wave-1",
        "--csv",
        second.to_str().unwrap(),
    ]);
    // The next incremental sync is due at once (not in 24 h) and gives the new user its first.
    let status = service
        .wait_for("wave-1", "the added user synced", |s| {
            s["users"].as_array().is_some_and(|users| {
                users
                    .iter()
                    .any(|u| u["email"] == "add-b@example.com" && u["state"] == "Synced")
            })
        })
        .await;
    assert!(user(&status, "add-b@example.com")["initial_sync_seconds"].is_number());
    stop(running);
    for i in 0..2 {
        assert_same_mail(
            &pair.source_snapshot(i).await,
            &pair.target_snapshot(i).await,
            str::to_owned,
        );
    }
}
