//! The OAuth2 token endpoint exchange (RFC 6749 §5) that Microsoft's and Google's grants share:
//! a form POST, a JSON answer with `access_token` and `expires_in`, or an error.
//!
//! The line between permanent and transient follows RFC 6749 §5.2: a 400, 401 or 403 with an
//! `error` code is the provider's decision about these credentials (a wrong client secret,
//! `AADSTS7000215`; a mailbox the service account may not impersonate) and asking again cannot
//! change it, so the user fails at once with the provider's own words. Network errors, 429 and
//! 5xx answers are the provider's trouble and are retried with backoff like a throttling IMAP
//! server (ARCHITECTURE.md, rule 5).

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::provider::AccessToken;
use crate::error::WorkerError;

/// Entra ID and Google answer within a second or two; a minute means they are in trouble.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// An HTTP client for token requests (rustls with the `ring` provider, the system's roots).
pub fn http_client() -> Result<reqwest::Client, WorkerError> {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| WorkerError::OAuth2Setup(format!("cannot build an HTTP client: {e}")))
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: SecretString,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// POSTs `form` to `url`; `provider` and `subject` (the mailbox or the app) name the request
/// in errors.
pub async fn request_token(
    http: &reqwest::Client,
    provider: &str,
    subject: &str,
    url: &str,
    form: &[(&str, &str)],
) -> Result<AccessToken, WorkerError> {
    let unavailable = |reason: String| WorkerError::TokenUnavailable {
        provider: provider.to_owned(),
        reason,
    };
    let response = http
        .post(url)
        .form(form)
        .send()
        .await
        .map_err(|e| unavailable(format!("{url}: {}", e.without_url())))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| unavailable(format!("{url}: reading the answer: {}", e.without_url())))?;
    if status.is_success() {
        let token: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| unavailable(format!("{url}: not a token response: {e}")))?;
        return Ok(AccessToken {
            secret: token.access_token,
            lifetime: token.expires_in.map(Duration::from_secs),
        });
    }
    let refused = matches!(status.as_u16(), 400 | 401 | 403);
    let reason = match serde_json::from_slice::<ErrorResponse>(&body) {
        Ok(error) => match error.error_description {
            // Entra ID's descriptions carry "\r\nTrace ID: …" lines: one line reads better.
            Some(description) => format!("{}: {}", error.error, one_line(&description)),
            None => error.error,
        },
        Err(_) => format!("HTTP {status}"),
    };
    if refused {
        Err(WorkerError::TokenRefused {
            provider: provider.to_owned(),
            subject: subject.to_owned(),
            reason,
        })
    } else {
        Err(unavailable(format!("{url}: {reason}")))
    }
}

fn one_line(text: &str) -> String {
    text.split(['\r', '\n'])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn entra_descriptions_become_one_line() {
        let text =
            "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1\r\nCorrelation ID: 2";
        assert_eq!(
            super::one_line(text),
            "AADSTS7000215: Invalid client secret provided. Trace ID: 1 Correlation ID: 2"
        );
    }
}
