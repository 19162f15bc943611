//! Google Workspace: a service account with domain-wide delegation, JWT-bearer grant
//! (RFC 7523) per mailbox.
//!
//! The service account's JSON key file (sealed in the credential store) holds `client_email`,
//! `private_key` and `token_uri`. For each mailbox an assertion signed with the key names the
//! account (`iss`), the mailbox to act as (`sub`), the scope and the token URL (`aud`); the
//! token is good for that mailbox only.

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use super::jwt::{SigningKey, now_seconds};
use super::provider::{AccessToken, TokenProvider};
use super::token_endpoint::{http_client, request_token};
use crate::error::WorkerError;

pub const DEFAULT_SCOPE: &str = "https://mail.google.com/";
pub const DEFAULT_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";

/// Google accepts assertions valid for at most an hour.
const ASSERTION_LIFETIME_SECONDS: u64 = 3600;

/// The fields of a service account's JSON key file that the grant needs.
#[derive(Deserialize)]
struct ServiceAccountKey {
    client_email: String,
    private_key: SecretString,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
}

pub struct Google {
    http: reqwest::Client,
    client_email: String,
    key_id: Option<String>,
    key: SigningKey,
    token_url: String,
    scope: String,
}

impl Google {
    /// From the JSON key file's text; `token_url` overrides its `token_uri`.
    pub fn new(
        key_file: &SecretString,
        token_url: Option<&str>,
        scope: Option<&str>,
    ) -> Result<Self, WorkerError> {
        let setup =
            |why: String| WorkerError::OAuth2Setup(format!("Google service account: {why}"));
        // serde_json's errors name a line and column, never the text.
        let key_file: ServiceAccountKey = serde_json::from_str(key_file.expose_secret())
            .map_err(|e| setup(format!("not a service-account JSON key file: {e}")))?;
        let token_url = token_url
            .map(str::to_owned)
            .or(key_file.token_uri)
            .unwrap_or_else(|| DEFAULT_TOKEN_URL.to_owned());
        Ok(Google {
            http: http_client()?,
            key: SigningKey::from_pem(key_file.private_key.expose_secret()).map_err(setup)?,
            client_email: key_file.client_email,
            key_id: key_file.private_key_id,
            token_url,
            scope: scope.unwrap_or(DEFAULT_SCOPE).to_owned(),
        })
    }

    fn assertion(&self, mailbox: &str) -> Result<String, WorkerError> {
        let now = now_seconds();
        let claims = json!({
            "iss": self.client_email,
            "sub": mailbox,
            "scope": self.scope,
            "aud": self.token_url,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECONDS,
        });
        let header = match &self.key_id {
            Some(id) => json!({ "kid": id }),
            None => json!({}),
        };
        self.key
            .sign(header, &claims)
            .map_err(|e| WorkerError::OAuth2Setup(format!("Google assertion: {e}")))
    }
}

#[async_trait]
impl TokenProvider for Google {
    fn name(&self) -> String {
        format!("Google (service account {})", self.client_email)
    }

    fn per_mailbox(&self) -> bool {
        true
    }

    async fn fetch(&self, mailbox: &str) -> Result<AccessToken, WorkerError> {
        let assertion = self.assertion(mailbox)?;
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion.as_str()),
        ];
        request_token(&self.http, &self.name(), mailbox, &self.token_url, &form).await
    }
}
