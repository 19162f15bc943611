//! Request bodies are read as bytes and parsed only after the caller's role was checked, so a
//! token without the right gets 403 whatever it sent; a body that does not parse is 422
//! problem+json like every other error of the API.

use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::problem::Problem;

/// `body` as JSON of `T`.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(body).map_err(|e| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("request body: {e}"),
        )
    })
}
