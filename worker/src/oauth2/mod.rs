//! OAuth2 access tokens for IMAP logins (Exchange Online, Google Workspace): where they come
//! from, how long they are kept, and what happens when a server refuses one.
//!
//! - [`provider`]: the [`TokenProvider`] trait; [`microsoft`] (client-credentials grant, with a
//!   client secret or a certificate), [`google`] (service-account JWT-bearer grant per
//!   mailbox), [`token_file`] (a token another tool renews); [`token_endpoint`] is the HTTP
//!   exchange the first two share, [`jwt`] signs their assertions.
//! - [`cache`]: tokens kept until shortly before they expire, one fetch at a time per key.
//! - [`BearerTokens`]: the job's providers (built on first use from the endpoint's settings and
//!   its sealed secret) and cache.
//!
//! Secrets — client secrets, private keys, tokens — are [`SecretString`]s from the credential
//! store to the wire: their `Debug` is `[REDACTED]` and no error or log line quotes them.

pub mod cache;
pub mod google;
pub mod jwt;
pub mod microsoft;
pub mod provider;
pub mod token_endpoint;
pub mod token_file;

use std::sync::Arc;

use mailfleet_shared::endpoint::{MicrosoftCredential, OAuth2, TokenProviderKind};
use secrecy::SecretString;
use tokio::sync::OnceCell;

pub use cache::TokenCache;
pub use provider::{AccessToken, TokenProvider};

use crate::error::WorkerError;
use crate::job::Side;

/// Builds the provider an endpoint's settings describe. `secret` is the endpoint's sealed
/// provider secret (`None` for a token file, which needs none).
pub fn provider_for(
    oauth2: &OAuth2,
    secret: Option<SecretString>,
) -> Result<Arc<dyn TokenProvider>, WorkerError> {
    let token_url = oauth2.token_url.as_deref();
    let scope = oauth2.scope.as_deref();
    let secret = || {
        secret.clone().ok_or_else(|| {
            WorkerError::MissingCredentials("no OAuth2 client secret or key stored".into())
        })
    };
    Ok(match &oauth2.provider {
        TokenProviderKind::Microsoft {
            tenant,
            client_id,
            credential,
        } => {
            let credential = match credential {
                MicrosoftCredential::Secret => microsoft::ClientCredential::Secret(secret()?),
                MicrosoftCredential::Certificate => {
                    microsoft::ClientCredential::certificate(&secret()?)?
                }
            };
            Arc::new(microsoft::Microsoft::new(
                tenant, client_id, token_url, scope, credential,
            )?)
        }
        TokenProviderKind::Google => Arc::new(google::Google::new(&secret()?, token_url, scope)?),
        TokenProviderKind::TokenFile { path } => {
            Arc::new(token_file::TokenFile { path: path.clone() })
        }
    })
}

/// A job's token providers, one per side, and their tokens.
#[derive(Default)]
pub struct BearerTokens {
    source: OnceCell<Arc<dyn TokenProvider>>,
    target: OnceCell<Arc<dyn TokenProvider>>,
    cache: TokenCache,
}

impl BearerTokens {
    /// `side`'s provider, built once from `oauth2` and the secret `load_secret` returns.
    pub async fn provider<F>(
        &self,
        side: Side,
        oauth2: &OAuth2,
        load_secret: F,
    ) -> Result<Arc<dyn TokenProvider>, WorkerError>
    where
        F: Future<Output = Result<Option<SecretString>, WorkerError>>,
    {
        let cell = match side {
            Side::Source => &self.source,
            Side::Target => &self.target,
        };
        cell.get_or_try_init(|| async {
            let secret = if oauth2.needs_sealed_secret() {
                load_secret.await?
            } else {
                None
            };
            provider_for(oauth2, secret)
        })
        .await
        .cloned()
    }

    /// A token for `mailbox` on `side`: the cached one, or a fresh one from `provider`.
    pub async fn token(
        &self,
        side: Side,
        provider: &dyn TokenProvider,
        mailbox: &str,
    ) -> Result<SecretString, WorkerError> {
        let key = cache_key(side, provider, mailbox);
        self.cache.get_or_fetch(&key, provider.fetch(mailbox)).await
    }

    /// The server refused `token`: the next [`BearerTokens::token`] fetches a new one.
    pub async fn refused(
        &self,
        side: Side,
        provider: &dyn TokenProvider,
        mailbox: &str,
        token: &SecretString,
    ) {
        let key = cache_key(side, provider, mailbox);
        self.cache.invalidate(&key, token).await;
    }
}

/// One key per mailbox for per-mailbox providers, one per side for app-only tokens.
fn cache_key(side: Side, provider: &dyn TokenProvider, mailbox: &str) -> String {
    match provider.per_mailbox() {
        true => format!("{side:?}/mailbox/{mailbox}"),
        false => format!("{side:?}/app"),
    }
}
