//! What can end a CLI command early, and the exit status each one means.

use mailfleet_shared::checkpoint::StoreError;
use mailfleet_shared::migration_csv::CsvErrors;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments or input: nothing was started (exit 2).
    #[error("{0}")]
    Invalid(String),
    #[error("{path} is not a valid migration CSV:\n{errors}")]
    InvalidCsv { path: String, errors: CsvErrors },
    /// The state dir or its database failed (exit 1).
    #[error("state: {0}")]
    State(String),
    #[error("interrupted; re-run the same command to resume")]
    Interrupted,
}

/// A store that failed mid-command (SQLite, Redis, the broker): exit 1, like any state error.
impl From<StoreError> for CliError {
    fn from(error: StoreError) -> Self {
        CliError::State(error.to_string())
    }
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Invalid(_) | CliError::InvalidCsv { .. } => 2,
            CliError::State(_) => 1,
            CliError::Interrupted => 130,
        }
    }
}
