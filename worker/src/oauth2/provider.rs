//! What every identity provider does for a login: hand out an access token for a mailbox.

use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;

use crate::error::WorkerError;

/// A token and how long the provider said it lasts.
pub struct AccessToken {
    pub secret: SecretString,
    /// `expires_in` of the token response; `None` for tokens read from a file, which are never
    /// cached since another tool renews them.
    pub lifetime: Option<Duration>,
}

#[async_trait]
pub trait TokenProvider: Send + Sync {
    /// Names the provider in errors, e.g. `Microsoft Entra ID (tenant contoso.com)`.
    fn name(&self) -> String;

    /// Whether a token serves one mailbox (Google's delegation, `sub` = the mailbox) or every
    /// mailbox (Microsoft's app-only token, where `user=` in the SASL message picks it).
    fn per_mailbox(&self) -> bool;

    /// A fresh token for `mailbox`. A refusal of the provider is
    /// [`WorkerError::TokenRefused`] (permanent), an unreachable or failing provider
    /// [`WorkerError::TokenUnavailable`] (retried with backoff).
    async fn fetch(&self, mailbox: &str) -> Result<AccessToken, WorkerError>;
}
