//! Microsoft Entra ID, client-credentials grant (app-only access to Exchange Online).
//!
//! An app granted `IMAP.AccessAsApp` (and a service principal added to each mailbox, or to
//! all of them) gets one token for the whole tenant; the SASL message's `user=` names the
//! mailbox. The app proves itself with a client secret, or with a certificate: a client
//! assertion JWT signed with the certificate's key, its `x5t` header the certificate's SHA-1
//! thumbprint, `aud` the token URL, `iss` = `sub` = the client id.

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::jwt::{SigningKey, certificate_thumbprint, now_seconds, random_id};
use super::provider::{AccessToken, TokenProvider};
use super::token_endpoint::{http_client, request_token};
use crate::error::WorkerError;

pub const DEFAULT_SCOPE: &str = "https://outlook.office365.com/.default";

/// The public cloud's token endpoint for `tenant` (a tenant id or domain).
pub fn default_token_url(tenant: &str) -> String {
    format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token")
}

/// Entra ID accepts assertions valid for at most ten minutes.
const ASSERTION_LIFETIME_SECONDS: u64 = 600;

pub struct Microsoft {
    http: reqwest::Client,
    tenant: String,
    client_id: String,
    token_url: String,
    scope: String,
    credential: ClientCredential,
}

/// How the app proves who it is.
pub enum ClientCredential {
    Secret(SecretString),
    Certificate {
        key: Box<SigningKey>,
        thumbprint: String,
    },
}

impl ClientCredential {
    /// A certificate credential from a PEM holding the certificate and its private key.
    pub fn certificate(pem: &SecretString) -> Result<Self, WorkerError> {
        let setup = |why: String| WorkerError::OAuth2Setup(format!("Microsoft certificate: {why}"));
        Ok(ClientCredential::Certificate {
            key: Box::new(SigningKey::from_pem(pem.expose_secret()).map_err(setup)?),
            thumbprint: certificate_thumbprint(pem.expose_secret()).map_err(setup)?,
        })
    }
}

impl Microsoft {
    pub fn new(
        tenant: &str,
        client_id: &str,
        token_url: Option<&str>,
        scope: Option<&str>,
        credential: ClientCredential,
    ) -> Result<Self, WorkerError> {
        Ok(Microsoft {
            http: http_client()?,
            tenant: tenant.to_owned(),
            client_id: client_id.to_owned(),
            token_url: token_url.map_or_else(|| default_token_url(tenant), str::to_owned),
            scope: scope.unwrap_or(DEFAULT_SCOPE).to_owned(),
            credential,
        })
    }

    fn client_assertion(&self, key: &SigningKey, thumbprint: &str) -> Result<String, WorkerError> {
        let now = now_seconds();
        let claims = json!({
            "aud": self.token_url,
            "iss": self.client_id,
            "sub": self.client_id,
            "jti": random_id(),
            "iat": now,
            "nbf": now,
            "exp": now + ASSERTION_LIFETIME_SECONDS,
        });
        key.sign(json!({ "x5t": thumbprint }), &claims)
            .map_err(|e| WorkerError::OAuth2Setup(format!("Microsoft client assertion: {e}")))
    }
}

#[async_trait]
impl TokenProvider for Microsoft {
    fn name(&self) -> String {
        format!("Microsoft Entra ID (tenant {})", self.tenant)
    }

    fn per_mailbox(&self) -> bool {
        false
    }

    async fn fetch(&self, _mailbox: &str) -> Result<AccessToken, WorkerError> {
        let mut form = vec![
            ("client_id", self.client_id.clone()),
            ("scope", self.scope.clone()),
            ("grant_type", "client_credentials".to_owned()),
        ];
        match &self.credential {
            ClientCredential::Secret(secret) => {
                form.push(("client_secret", secret.expose_secret().to_owned()));
            }
            ClientCredential::Certificate { key, thumbprint } => {
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                ));
                form.push(("client_assertion", self.client_assertion(key, thumbprint)?));
            }
        }
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let subject = format!("app {}", self.client_id);
        request_token(&self.http, &self.name(), &subject, &self.token_url, &form).await
    }
}
