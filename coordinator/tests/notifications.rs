//! Batch notifications reach a real SMTP server (aiosmtpd, delivering into a maildir) and a
//! webhook: initial sync finished, a user failed, batch completed — each naming the batch and
//! the failed user, never a password.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use common::Pair;
use common::fleet::free_port;
use common::service::ServiceCli;
use mailfleet_testkit::corpus::CorpusSpec;
use serde_json::Value;

/// A real SMTP server on loopback that stores every message in `maildir`.
struct SmtpSink {
    process: Child,
    port: u16,
}

impl SmtpSink {
    fn start(maildir: &Path) -> Self {
        let port = free_port();
        let process = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd (deploy/dev/install-deps.sh installs it)");
        // Owned (and so killed on drop) before anything can panic.
        let sink = SmtpSink { process, port };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return sink;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("aiosmtpd did not listen on {port}");
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Every delivered message as text, header lines unfolded and quoted-printable soft line
/// breaks removed, so that assertions read the words that were sent.
fn delivered_mail(maildir: &Path) -> Vec<String> {
    let mut mail = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(entries) = std::fs::read_dir(maildir.join(sub)) {
            for entry in entries.flatten() {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                mail.push(text.replace("=\n", "").replace("\n ", " "));
            }
        }
    }
    mail
}

async fn start_webhook() -> (String, Arc<Mutex<Vec<Value>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let app = axum::Router::new()
        .route(
            "/hook",
            post(
                |State(received): State<Arc<Mutex<Vec<Value>>>>, Json(event): Json<Value>| async move {
                    received.lock().unwrap().push(event);
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}/hook"), received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_sync_failures_and_completion_are_mailed_and_posted() {
    let source = mailfleet_testkit::StartOptions::users(&[
        ("note-a@example.com", "note-pw-a"),
        ("note-bad@example.com", "note-pw-right"),
    ]);
    let csv_users = [
        ("note-a@example.com", "note-pw-a"),
        ("note-bad@example.com", "note-pw-wrong"),
    ];
    let pair = Pair::from_servers(source.clone(), source, &csv_users);
    mailfleet_testkit::seed(
        pair.source.port(),
        "note-a@example.com",
        "note-pw-a",
        &CorpusSpec {
            messages: 10,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let csv = pair.write_csv();
    let maildir = pair.dir.path().join("maildir");
    let smtp = SmtpSink::start(&maildir);
    let (webhook, events) = start_webhook().await;
    let service = ServiceCli::new(pair.state_dir())
        .with_env(
            "MAILFLEET_SMTP_URL",
            format!("smtp://127.0.0.1:{}", smtp.port),
        )
        .with_env("MAILFLEET_NOTIFY_FROM", "mailfleet@example.com")
        .with_env("MAILFLEET_NOTIFY_WEBHOOK", webhook);
    service.create_endpoints(&pair);
    let timing = ["--complete-after", "+1s", "--completion-window", "1s"];
    let notify = ["--autostart", "--notify", "ops@example.com"];
    service.create_batch("notified", &csv, &[&notify[..], &timing[..]].concat());

    let running = service.start(&[], &pair.dir.path().join("service.log"));
    let mut kinds = Vec::new();
    for _ in 0..600 {
        kinds = events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e["event"].as_str().unwrap_or_default().to_owned())
            .collect();
        if kinds.iter().any(|k| k == "batch_completed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.terminate();

    assert_eq!(
        kinds.first().map(String::as_str),
        Some("initial_sync_finished"),
        "{kinds:?}"
    );
    assert!(kinds.iter().any(|k| k == "users_failed"), "{kinds:?}");
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("batch_completed"),
        "{kinds:?}"
    );
    let events = events.lock().unwrap().clone();
    let completed = events.last().unwrap();
    assert_eq!(completed["batch"], "notified");
    assert_eq!(completed["state"], "CompletedWithErrors");
    assert_eq!(
        completed["failed_users"][0]["email"],
        "note-bad@example.com"
    );

    let mail = delivered_mail(&maildir);
    assert_eq!(mail.len(), kinds.len(), "one mail per event: {mail:?}");
    assert!(mail.iter().all(|m| m.contains("To: ops@example.com") && m.contains("From: mailfleet@example.com")));
    assert!(
        mail.iter()
            .any(|m| m.contains("Subject: mailfleet: batch notified initial sync finished"))
    );
    assert!(
        mail.iter()
            .any(|m| m.contains("Subject: mailfleet: batch notified completed"))
    );
    assert!(
        mail.iter()
            .any(|m| m.contains("login rejected for note-bad@example.com")),
        "{mail:?}"
    );
    let everything = format!("{mail:?}{events:?}");
    assert!(
        !everything.contains("note-pw"),
        "a password in a notification"
    );
}
