//! `mailfleet serve` and its HTTP API, driven as the dashboard and scripts drive it: the real
//! binary on a free port, tokens made through the store and the API, real Dovecot servers.
//!
//! The isolation test walks every route of the OpenAPI document the service publishes, so a
//! route added later is checked without anyone remembering to.

mod common;

use std::time::Duration;

use common::Pair;
use common::api::{Service, provider_token};
use mailfleet_testkit::assert_same_mail;
use mailfleet_testkit::corpus::CorpusSpec;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const CSV_HEADER: &str = "EmailAddress,UserName,Password\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_keeps_tenants_apart_and_roles_and_revocation_hold() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    let provider = provider_token(&state_dir).await;
    let api = Service::start(&state_dir, &["--rate-limit", "0"]).await;

    for tenant in ["acme", "globex"] {
        api.expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/tenants",
            &provider,
            Some(json!({ "name": tenant })),
        )
        .await;
    }
    let (_, acme_admin) = api.token(&provider, "acme", "admin").await;
    let (viewer_id, acme_viewer) = api.token(&provider, "acme", "viewer").await;
    let (_, globex_admin) = api.token(&provider, "globex", "admin").await;
    let (revoked_id, revoked) = api.token(&provider, "acme", "admin").await;
    api.expect(
        StatusCode::NO_CONTENT,
        Method::DELETE,
        &format!("/api/v1/tokens/{revoked_id}"),
        &acme_admin,
        None,
    )
    .await;

    // Tenant acme's resources: two endpoints (nothing listens there: nothing is started) and
    // a batch with one user.
    for name in ["src", "dst"] {
        api.expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/endpoints",
            &acme_admin,
            Some(json!({ "name": name, "url": "imap://127.0.0.1:9" })),
        )
        .await;
    }
    let user = "iso-user@example.com";
    api.expect(
        StatusCode::CREATED,
        Method::POST,
        "/api/v1/batches",
        &acme_admin,
        Some(
            json!({ "name": "wave", "source_endpoint": "src", "target_endpoint": "dst",
            "csv": format!("{CSV_HEADER}{user},{user},pw\n") }),
        ),
    )
    .await;
    let whoami = api
        .expect(
            StatusCode::OK,
            Method::GET,
            "/api/v1/whoami",
            &acme_viewer,
            None,
        )
        .await;
    assert_eq!(
        whoami,
        json!({ "token_id": viewer_id, "tenant": "acme", "role": "viewer" })
    );
    // A provider acts in the tenant its header names, and must name one.
    let (status, _) = api
        .call(Method::GET, "/api/v1/batches", &provider, None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, listed) = api
        .as_provider_in(
            "acme",
            Method::GET,
            "/api/v1/batches",
            &provider,
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed[0]["name"], "wave");
    assert_eq!(listed[0]["counts"]["total"], 1);
    // A tenant's token naming another tenant is refused, not quietly kept in its own; naming
    // its own is what it does anyway.
    for (named, expected) in [("acme", StatusCode::FORBIDDEN), ("globex", StatusCode::OK)] {
        let (status, answer) = api
            .as_provider_in(
                named,
                Method::GET,
                "/api/v1/batches",
                &globex_admin,
                Value::Null,
            )
            .await;
        assert_eq!(status, expected, "{named}: {answer}");
    }

    // The document lists every route; each is tried with three tokens that must not get in.
    let document: Value = reqwest::get(format!("{}/api/v1/openapi.json", api.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        document["openapi"]
    );
    let acme_names = ["\"wave\"", "\"src\"", "\"dst\"", user, &viewer_id];
    let mut tried = 0;
    for (template, operations) in document["paths"].as_object().unwrap() {
        let path = template
            .replace(
                "{name}",
                if template.starts_with("/api/v1/endpoints") {
                    "src"
                } else if template.starts_with("/api/v1/tenants") {
                    "acme"
                } else {
                    "wave"
                },
            )
            .replace("{email}", user)
            .replace("{id}", &viewer_id);
        let has_resource = template.contains('{');
        let provider_only = template.starts_with("/api/v1/tenants");
        for method in operations.as_object().unwrap().keys() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let changes = method != Method::GET;
            let stream = template == "/api/v1/events";
            let label = format!("{method} {path}");
            tried += 1;
            // Revoked: 401 everywhere.
            let response = api
                .request(method.clone(), &path, &revoked)
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{label} with a revoked token"
            );
            // Acme's viewer: no change anywhere, nothing of the provider's.
            let response = api
                .request(method.clone(), &path, &acme_viewer)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            let status = response.status();
            if changes || provider_only {
                assert_eq!(status, StatusCode::FORBIDDEN, "{label} by a viewer");
            } else if template != "/api/v1/tokens" {
                assert_eq!(status, StatusCode::OK, "{label} by a viewer");
            }
            drop(response);
            // Globex's admin on acme's resources: as if they did not exist.
            let response = api
                .request(method.clone(), &path, &globex_admin)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            let status = response.status();
            if provider_only {
                assert_eq!(status, StatusCode::FORBIDDEN, "{label} by another tenant");
            } else if has_resource {
                assert_eq!(status, StatusCode::NOT_FOUND, "{label} by another tenant");
            } else if changes {
                assert!(
                    status.is_client_error(),
                    "{label} with an empty body by another tenant: {status}"
                );
            } else if !stream {
                assert_eq!(status, StatusCode::OK, "{label} by another tenant");
                let text = response.text().await.unwrap();
                for name in acme_names {
                    assert!(
                        !text.contains(name),
                        "{label} by another tenant shows {name}: {text}"
                    );
                }
            }
        }
    }
    assert!(tried >= 25, "the document lists only {tried} operations");

    // Nothing of acme's changed.
    let batch = api
        .expect(
            StatusCode::OK,
            Method::GET,
            "/api/v1/batches/wave",
            &acme_admin,
            None,
        )
        .await;
    assert_eq!(batch["state"], "Created");
    api.expect(
        StatusCode::OK,
        Method::GET,
        "/api/v1/endpoints/src",
        &acme_admin,
        None,
    )
    .await;
    let whoami = api
        .expect(
            StatusCode::OK,
            Method::GET,
            "/api/v1/whoami",
            &acme_viewer,
            None,
        )
        .await;
    assert_eq!(whoami["role"], "viewer");
    // Acme's audit names who did what; globex's has none of it.
    let audit = api
        .expect(
            StatusCode::OK,
            Method::GET,
            "/api/v1/audit",
            &acme_admin,
            None,
        )
        .await;
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "batch.create" && e["subject"] == "wave"),
        "{audit}"
    );
}

/// A tenant (not the default one) runs a whole batch over HTTP: CSV refused by line, fixed,
/// started, synced by the service's scheduler, completed, reported; the target is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_created_started_completed_and_reported_through_the_api_alone() {
    let alice = "api-a@example.com";
    let pair = Pair::start(&[(alice, "api-pw-a"), ("api-b@example.com", "api-pw-b")]);
    pair.seed_all(&CorpusSpec {
        messages: 20,
        ..Default::default()
    })
    .await;
    let state_dir = pair.state_dir();
    let provider = provider_token(&state_dir).await;
    let api = Service::start(&state_dir, &["--workers", "4"]).await;
    api.expect(
        StatusCode::CREATED,
        Method::POST,
        "/api/v1/tenants",
        &provider,
        Some(json!({ "name": "initech" })),
    )
    .await;
    let (_, operator) = api.token(&provider, "initech", "admin").await;
    for (name, url) in [("old", pair.source.url()), ("new", pair.target.url())] {
        api.expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/endpoints",
            &operator,
            Some(json!({ "name": name, "url": url })),
        )
        .await;
    }
    let tested = api
        .expect(
            StatusCode::OK,
            Method::POST,
            "/api/v1/endpoints/old/test",
            &operator,
            None,
        )
        .await;
    assert_eq!(tested[0]["ok"], true, "{tested}");

    // A CSV with an error: 422, the line as the CLI names it, nothing created.
    let mut csv = String::from(CSV_HEADER);
    for (user, password) in &pair.users {
        csv.push_str(&format!("{user},{user},{password}\n"));
    }
    let broken = format!("{csv}not-an-address,x,pw\n");
    // Batch wave-1 from `csv`, answered with `status`.
    let create = async |status, csv: &str| {
        let batch = json!({ "name": "wave-1", "source_endpoint": "old", "target_endpoint": "new",
            "csv": csv, "incremental_interval": "1h", "completion_window": "1s" });
        api.expect(
            status,
            Method::POST,
            "/api/v1/batches",
            &operator,
            Some(batch),
        )
        .await
    };
    let problem = create(StatusCode::UNPROCESSABLE_ENTITY, &broken).await;
    assert_eq!(problem["errors"][0]["line"], 4, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("line 4"),
        "{problem}"
    );
    // A CSV of as many rows as a batch may have is read whole (axum's default limit, 2 MB,
    // would answer 413 before a row was read): its last row's error is named.
    let mut largest = String::from(CSV_HEADER);
    for i in 1..50_000 {
        let user = format!("user-{i:05}@customer.example");
        largest.push_str(&format!("{user},{user},password-number-{i}\n"));
    }
    largest.push_str("not-an-address,x,pw\n");
    assert!(largest.len() > 2 << 20, "{} bytes", largest.len());
    let problem = create(StatusCode::UNPROCESSABLE_ENTITY, &largest).await;
    assert_eq!(
        problem["errors"][0]["line"], 50_001,
        "{}",
        problem["detail"]
    );
    api.expect(
        StatusCode::NOT_FOUND,
        Method::GET,
        "/api/v1/batches/wave-1",
        &operator,
        None,
    )
    .await;
    create(StatusCode::CREATED, &csv).await;

    // Events: the stream is open before the start, and tells of the batch's change and of
    // its users as the pass writes them.
    let mut events = api
        .request(Method::GET, "/api/v1/events", &operator)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    api.expect(
        StatusCode::OK,
        Method::POST,
        "/api/v1/batches/wave-1/start",
        &operator,
        None,
    )
    .await;
    let mut seen = String::new();
    let told = |seen: &str, kind: &str, of: &str| {
        seen.split("\n\n").any(|event| {
            event.starts_with(&format!("event: {kind}"))
                && event.contains(of)
                && !event.contains("\"state\":\"Created\"")
                && !event.contains("\"state\":\"Queued\"")
        })
    };
    while !(told(&seen, "batch", "\"name\":\"wave-1\"")
        && told(&seen, "user", "\"batch\":\"wave-1\""))
    {
        let chunk = events
            .chunk()
            .await
            .unwrap()
            .expect("the event stream ended");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(events);

    // The service syncs; the API shows it, completes it and reports it.
    let synced = wait_for_state(&api, &operator, "wave-1", &["Synced"]).await;
    assert_eq!(synced["counts"]["synced"], 2, "{synced}");
    api.expect(
        StatusCode::OK,
        Method::POST,
        "/api/v1/batches/wave-1/complete",
        &operator,
        None,
    )
    .await;
    let completed = wait_for_state(&api, &operator, "wave-1", &["Completed"]).await;
    assert_eq!(completed["counts"]["completed"], 2, "{completed}");
    // The scheduler's gauges on serve's own /metrics; no unauthenticated /status beside the API.
    let metrics = reqwest::get(format!("{}/metrics", api.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("mailfleet_users{state=\"Completed\"} 2")
            && metrics.contains("mailfleet_pending_tasks"),
        "{metrics}"
    );
    let status = reqwest::get(format!("{}/status", api.base)).await.unwrap();
    assert_eq!(status.status(), StatusCode::NOT_FOUND);
    let page = api
        .expect(
            StatusCode::OK,
            Method::GET,
            "/api/v1/batches/wave-1/users?state=completed&limit=1&sort=-email",
            &operator,
            None,
        )
        .await;
    assert_eq!(page["users"][0]["email"], "api-b@example.com", "{page}");
    let next = page["next_cursor"].as_str().unwrap();
    let page = api
        .expect(
            StatusCode::OK,
            Method::GET,
            &format!(
                "/api/v1/batches/wave-1/users?state=completed&limit=1&sort=-email&cursor={next}"
            ),
            &operator,
            None,
        )
        .await;
    assert_eq!(page["users"][0]["email"], alice, "{page}");
    assert_eq!(page["next_cursor"], Value::Null);
    // A cursor is a place in one order: another sort refuses it.
    api.expect(
        StatusCode::UNPROCESSABLE_ENTITY,
        Method::GET,
        &format!("/api/v1/batches/wave-1/users?state=completed&limit=1&sort=email&cursor={next}"),
        &operator,
        None,
    )
    .await;
    let detail = api
        .expect(
            StatusCode::OK,
            Method::GET,
            &format!("/api/v1/batches/wave-1/users/{alice}"),
            &operator,
            None,
        )
        .await;
    assert!(
        !detail["folders"].as_array().unwrap().is_empty(),
        "{detail}"
    );
    let report = api
        .expect(
            StatusCode::OK,
            Method::GET,
            "/api/v1/batches/wave-1/report?format=json",
            &operator,
            None,
        )
        .await;
    assert_eq!(report["state"], "Completed");
    assert_eq!(report["users"].as_array().unwrap().len(), 2);
    let response = api
        .request(
            Method::GET,
            "/api/v1/batches/wave-1/report?format=csv",
            &operator,
        )
        .send()
        .await
        .unwrap();
    assert!(
        response
            .text()
            .await
            .unwrap()
            .starts_with("EmailAddress,Status")
    );
    let verified = api
        .expect(
            StatusCode::OK,
            Method::POST,
            "/api/v1/batches/wave-1/verify",
            &operator,
            None,
        )
        .await;
    assert!(
        verified["users"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["exact"] == true),
        "{verified}"
    );
    for i in 0..pair.users.len() {
        assert_same_mail(
            &pair.source_snapshot(i).await,
            &pair.target_snapshot(i).await,
            str::to_owned,
        );
    }
}

/// Polls `GET /batches/{name}` until its state is one of `states` (the service works on its
/// own time); the batch then.
async fn wait_for_state(api: &Service, token: &str, name: &str, states: &[&str]) -> Value {
    for _ in 0..1500 {
        let batch = api
            .expect(
                StatusCode::OK,
                Method::GET,
                &format!("/api/v1/batches/{name}"),
                token,
                None,
            )
            .await;
        if states.iter().any(|s| batch["state"] == *s) {
            return batch;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("batch {name} never reached {states:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_over_its_rate_gets_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    let provider = provider_token(&state_dir).await;
    let api = Service::start(&state_dir, &["--rate-limit", "5"]).await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..8 {
        let response = api
            .request(Method::GET, "/api/v1/whoami", &provider)
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            retry_after = response.headers().get("retry-after").cloned();
            let problem: Value = response.json().await.unwrap();
            assert_eq!(problem["status"], 429);
        }
    }
    // A burst of a minute's allowance (5), then refused until the next share of the minute.
    assert_eq!(&statuses[..5], &[200; 5], "{statuses:?}");
    assert_eq!(statuses[5], 429, "{statuses:?}");
    let seconds: u64 = retry_after.unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=12).contains(&seconds), "Retry-After {seconds}");
    // Without a token the limit is not the question: 401.
    let response = reqwest::get(format!("{}/api/v1/whoami", api.base))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
