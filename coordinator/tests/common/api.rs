//! `mailfleet serve` started for a test, and calls to its API as scripts make them.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::fleet::free_port;
use super::{Running, mailfleet};

/// A provider token made with `mailfleet token create --provider`: the one way in before any
/// tenant exists.
pub async fn provider_token(state_dir: &Path) -> String {
    created_token(state_dir, &["--provider", "--label", "test"])
}

/// The token `mailfleet token create ARGS` prints, made on the service's machine.
pub fn created_token(state_dir: &Path, args: &[&str]) -> String {
    let output = mailfleet()
        .args(["token", "create"])
        .args(args)
        .arg("--state-dir")
        .arg(state_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .split_whitespace()
        .find(|word| word.starts_with("mf_"))
        .unwrap_or_else(|| panic!("no token in {stdout}"))
        .to_owned()
}

pub struct Service {
    pub base: String,
    client: reqwest::Client,
    _process: Running,
}

impl Service {
    /// `mailfleet serve` on a free port with `extra` arguments; answers once /healthz does.
    pub async fn start(state_dir: &Path, extra: &[&str]) -> Self {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let child = mailfleet()
            .args(["serve", "--listen", &listen, "--poll-interval", "200ms"])
            .arg("--state-dir")
            .arg(state_dir)
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let service = Service {
            base: format!("http://{listen}"),
            client: reqwest::Client::new(),
            _process: Running::new(child),
        };
        for _ in 0..200 {
            let up = service
                .client
                .get(format!("{}/healthz", service.base))
                .send()
                .await;
            if up.is_ok_and(|r| r.status().is_success()) {
                return service;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("mailfleet serve never answered on {listen}");
    }

    pub fn request(&self, method: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
    }

    /// One call; the status and the JSON answer (Null when it is not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.request(method, path, token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A call that must answer `expected`; its JSON.
    pub async fn expect(
        &self,
        expected: StatusCode,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Value {
        let (status, answer) = self.call(method.clone(), path, token, body).await;
        assert_eq!(status, expected, "{method} {path}: {answer}");
        answer
    }

    /// A provider call acting in `tenant`.
    pub async fn as_provider_in(
        &self,
        tenant: &str,
        method: Method,
        path: &str,
        token: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let response = self
            .request(method, path, token)
            .header("Mailfleet-Tenant", tenant)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A new token of `role` in `tenant`, made by the provider through the API.
    pub async fn token(&self, provider: &str, tenant: &str, role: &str) -> (String, String) {
        let created = self
            .expect(
                StatusCode::CREATED,
                Method::POST,
                "/api/v1/tokens",
                provider,
                Some(json!({ "role": role, "tenant": tenant, "label": role })),
            )
            .await;
        (
            created["id"].as_str().unwrap().to_owned(),
            created["token"].as_str().unwrap().to_owned(),
        )
    }
}
