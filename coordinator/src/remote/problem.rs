//! A problem+json answer (`api::problem`) back into the error the same command prints and
//! exits with on this machine: its `detail` is that command's message.

use mailfleet_shared::migration_csv::{CsvError, CsvErrors};
use reqwest::StatusCode;
use serde::Deserialize;
use url::Url;

use super::client::TOKEN_VARIABLE;
use crate::error::CliError;

#[derive(Deserialize)]
struct ProblemAnswer {
    detail: String,
    #[serde(default)]
    errors: Vec<LineAnswer>,
}

#[derive(Deserialize)]
struct LineAnswer {
    line: usize,
    message: String,
}

/// The label CSV errors carry until the command names its file ([`with_csv_path`]).
const CSV_LABEL: &str = "csv";

/// The error an answer of `status` with `body` means; `service` names who answered.
pub fn to_error(status: StatusCode, body: &str, service: &Url) -> CliError {
    let Ok(problem) = serde_json::from_str::<ProblemAnswer>(body) else {
        // Not the API (a proxy, a wrong URL): say what came back, briefly.
        let text: String = body.chars().take(200).collect();
        return CliError::failed(
            format!("the API at {service} answered {status}"),
            format!("not a problem+json answer: {text:?}"),
        );
    };
    let detail = problem.detail;
    match status {
        StatusCode::UNAUTHORIZED => CliError::Invalid(format!(
            "the API at {service} refused the token in {TOKEN_VARIABLE} ({status}): {detail}"
        )),
        StatusCode::UNPROCESSABLE_ENTITY if !problem.errors.is_empty() => CliError::InvalidCsv {
            path: CSV_LABEL.to_owned(),
            errors: CsvErrors(
                problem
                    .errors
                    .into_iter()
                    .map(|e| CsvError {
                        line: e.line,
                        message: e.message,
                    })
                    .collect(),
            ),
        },
        StatusCode::BAD_REQUEST | StatusCode::FORBIDDEN | StatusCode::UNPROCESSABLE_ENTITY => {
            CliError::Invalid(detail)
        }
        StatusCode::NOT_FOUND => CliError::NotFound(detail),
        StatusCode::CONFLICT => CliError::Conflict(detail),
        _ => CliError::failed(format!("the API at {service} answered {status}"), detail),
    }
}

/// CSV errors named by the file the user gave, as the command names them on this machine.
pub fn with_csv_path(error: CliError, path: &std::path::Path) -> CliError {
    match error {
        CliError::InvalidCsv { errors, .. } => CliError::InvalidCsv {
            path: path.display().to_string(),
            errors,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> Url {
        Url::parse("https://mailfleet.example.net:8443/").unwrap()
    }

    #[test]
    fn problems_become_the_errors_and_exit_statuses_of_the_local_command() {
        let answer = |status, body: &str| to_error(status, body, &service());
        let conflict = answer(
            StatusCode::CONFLICT,
            r#"{"type":"about:blank","title":"Conflict","status":409,
                "detail":"batch wave-1: cannot start a batch that is Completed"}"#,
        );
        assert_eq!(
            conflict.to_string(),
            "batch wave-1: cannot start a batch that is Completed"
        );
        assert_eq!(conflict.exit_code(), 2);
        let missing = answer(StatusCode::NOT_FOUND, r#"{"detail":"no batch named x"}"#);
        assert!(matches!(missing, CliError::NotFound(_)));
        let down = answer(
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"detail":"state: unavailable"}"#,
        );
        assert_eq!(down.exit_code(), 1);
        assert!(down.to_string().contains("state: unavailable"), "{down}");
    }

    #[test]
    fn csv_errors_keep_their_lines_and_name_the_users_file() {
        let error = to_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            r#"{"detail":"csv is not a valid migration CSV:\nline 4: …",
                "errors":[{"line":4,"message":"EmailAddress 'x' is not an address"}]}"#,
            &service(),
        );
        let error = with_csv_path(error, std::path::Path::new("users.csv"));
        let text = error.to_string();
        assert!(
            text.starts_with("users.csv is not a valid migration CSV"),
            "{text}"
        );
        assert!(text.contains("line 4"), "{text}");
        assert_eq!(error.exit_code(), 2);
    }

    #[test]
    fn a_refused_token_names_the_variable_and_an_answer_not_from_the_api_says_so() {
        let refused = to_error(
            StatusCode::UNAUTHORIZED,
            r#"{"detail":"an API token is needed"}"#,
            &service(),
        );
        assert!(refused.to_string().contains(TOKEN_VARIABLE), "{refused}");
        let proxy = to_error(
            StatusCode::BAD_GATEWAY,
            "<html>bad gateway</html>",
            &service(),
        );
        assert!(proxy.to_string().contains("502"), "{proxy}");
    }
}
