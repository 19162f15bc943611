//! Errors as `application/problem+json` (RFC 9457): `{type, title, status, detail}`, where
//! `detail` is the message the command line prints for the same error — one wording for both
//! front ends. CSV errors add `errors: [{line, message}]`, lines numbered as the CLI numbers them.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mailfleet_shared::store_error::{StoreError, StoreErrorKind};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::CliError;

/// One line of a migration CSV that is wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineError {
    /// 1 is the header; 0 when the problem is the whole file.
    pub line: usize,
    pub message: String,
}

/// An error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`: the status says what kind of problem it is.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<LineError>,
    /// Seconds to wait, with 429.
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
        }
    }

    pub fn unauthorized() -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "an API token is needed: Authorization: Bearer mf_…, from `mailfleet token create`",
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::FORBIDDEN, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn too_many_requests(retry_after: u64) -> Self {
        Problem {
            retry_after: Some(retry_after),
            ..Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("this token's request rate is over the limit; retry in {retry_after} s"),
            )
        }
    }
}

/// The CLI's exit statuses map to HTTP: invalid input 422 (CSV errors with their lines), not
/// found 404, refused by what is stored 409, a store down 503, anything else 500.
impl From<CliError> for Problem {
    fn from(error: CliError) -> Self {
        let detail = error.to_string();
        match error {
            CliError::Invalid(_) => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, detail),
            CliError::InvalidCsv { errors, .. } => Problem {
                errors: errors
                    .0
                    .into_iter()
                    .map(|e| LineError {
                        line: e.line,
                        message: e.message,
                    })
                    .collect(),
                ..Problem::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
            },
            CliError::NotFound(_) => Problem::not_found(detail),
            CliError::Conflict(_) => Problem::new(StatusCode::CONFLICT, detail),
            CliError::Store(store) => Problem::from(store),
            CliError::Failed { .. } | CliError::Interrupted => {
                Problem::new(StatusCode::INTERNAL_SERVER_ERROR, detail)
            }
        }
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        let status = match error.kind() {
            StoreErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            StoreErrorKind::Conflict => StatusCode::CONFLICT,
            StoreErrorKind::NotFound => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Problem::new(status, CliError::Store(error).to_string())
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
