//! A bearer token kept fresh in a file by another tool (a sidecar, a cron job running the
//! provider's CLI). Read at every login and never cached, so a renewed token is used at once.

use std::path::PathBuf;

use async_trait::async_trait;
use secrecy::SecretString;

use super::provider::{AccessToken, TokenProvider};
use crate::error::WorkerError;

pub struct TokenFile {
    pub path: PathBuf,
}

#[async_trait]
impl TokenProvider for TokenFile {
    fn name(&self) -> String {
        format!("token file {}", self.path.display())
    }

    fn per_mailbox(&self) -> bool {
        false
    }

    async fn fetch(&self, _mailbox: &str) -> Result<AccessToken, WorkerError> {
        let text = tokio::fs::read_to_string(&self.path)
            .await
            .map_err(|e| WorkerError::OAuth2Setup(format!("cannot read {}: {e}", self.name())))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(WorkerError::OAuth2Setup(format!(
                "{} is empty",
                self.name()
            )));
        }
        Ok(AccessToken {
            secret: SecretString::from(token),
            lifetime: None,
        })
    }
}
