//! What can end a command early, and the exit status each one means — the one boundary where
//! lower layers' errors (stores, files, the network, the worker) become what a user reads.
//!
//! Variants keep their cause as a typed `source`, so a log or a caller can walk the chain; the
//! message names what was being done and to what.

use mailfleet_shared::migration_csv::CsvErrors;
use mailfleet_shared::store_error::StoreError;

type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments or input: nothing was started (exit 2).
    #[error("{0}")]
    Invalid(String),
    /// A named endpoint, batch or user that is not there (exit 2; HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// Refused by what is stored: the name is taken, or the batch's state does not allow the
    /// command (exit 2; HTTP 409).
    #[error("{0}")]
    Conflict(String),
    #[error("{path} is not a valid migration CSV:\n{errors}")]
    InvalidCsv { path: String, errors: CsvErrors },
    /// A store (SQLite, Redis, the broker) failed mid-command (exit 1).
    #[error("state: {0}")]
    Store(#[from] StoreError),
    /// Anything else that failed while doing `context` (exit 1): a file, a socket, a lookup,
    /// the worker's task loops.
    #[error("{context}: {source}")]
    Failed {
        context: String,
        #[source]
        source: Cause,
    },
    #[error("interrupted; re-run the same command to resume")]
    Interrupted,
}

impl CliError {
    /// `source` failed while doing `context` ("writing report.csv", "MX lookup of example.com").
    pub fn failed(context: impl Into<String>, source: impl Into<Cause>) -> Self {
        CliError::Failed {
            context: context.into(),
            source: source.into(),
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Invalid(_)
            | CliError::NotFound(_)
            | CliError::Conflict(_)
            | CliError::InvalidCsv { .. } => 2,
            CliError::Store(_) | CliError::Failed { .. } => 1,
            CliError::Interrupted => 130,
        }
    }
}
