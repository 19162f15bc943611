//! What an operator sees of a run besides its result: JSON log lines when asked for, and
//! OpenTelemetry traces at the configured OTLP endpoint (here a local HTTP sink that keeps
//! every export it receives).

mod common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use common::{Pair, run, user_result};
use mailfleet_testkit::corpus::CorpusSpec;

/// One OTLP/HTTP export: its content type and protobuf body.
type Export = (String, Vec<u8>);

/// Listens on a free loopback port and records every POST to `/v1/traces`.
async fn start_otlp_sink() -> (String, Arc<Mutex<Vec<Export>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route(
            "/v1/traces",
            post(
                |State(received): State<Arc<Mutex<Vec<Export>>>>,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    let content_type = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    received.lock().unwrap().push((content_type, body.to_vec()));
                    ""
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}"), received)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_exports_its_task_spans_over_otlp_and_logs_json_lines() {
    let user = "otel-1@example.com";
    let pair = Pair::start(&[(user, "otel-pw-1")]);
    pair.seed_all(&CorpusSpec {
        messages: 20,
        ..Default::default()
    })
    .await;
    let csv = pair.write_csv();
    let (endpoint, received) = start_otlp_sink().await;

    let mut command = pair.migrate_command(&csv, &["--log", "info", "--log-json"]);
    command.env("MAILFLEET_OTLP_ENDPOINT", &endpoint);
    let (code, json, stderr) = tokio::task::spawn_blocking(move || run(&mut command))
        .await
        .unwrap();

    assert_eq!(code, 0, "{stderr}");
    assert_eq!(user_result(&json, user)["status"], "Completed");
    let log_lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!log_lines.is_empty(), "no log lines at level info");
    for line in log_lines {
        let parsed: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(parsed["level"].is_string(), "{line}");
    }
    // The exporter flushes when the process exits, so every export has arrived by now.
    let exports = received.lock().unwrap().clone();
    assert!(!exports.is_empty(), "no trace export reached {endpoint}");
    assert!(
        exports
            .iter()
            .all(|(content_type, _)| content_type == "application/x-protobuf")
    );
    let spans: Vec<u8> = exports.into_iter().flat_map(|(_, body)| body).collect();
    for expected in [
        "mailfleet-coordinator",
        "migrate",
        "task",
        &format!("{user}/discover"),
    ] {
        assert!(
            contains(&spans, expected),
            "no {expected:?} in the exported spans"
        );
    }
    assert!(
        !contains(&spans, "otel-pw-1"),
        "a password reached the traces"
    );
}
