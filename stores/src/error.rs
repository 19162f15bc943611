//! The stores' one error type; converted to the traits' `StoreError` at the trait boundary.

use mailfleet_shared::checkpoint::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum StoresError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("secret key: {0}")]
    Key(String),
    #[error("cannot decrypt a stored secret (wrong key, or the data was altered)")]
    Decrypt,
    #[error("background task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("postgres schema migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<StoresError> for StoreError {
    fn from(error: StoresError) -> Self {
        StoreError(error.to_string())
    }
}
