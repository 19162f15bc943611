//! The stores' own error (opening `state.db`, loading the key), and the one place where each
//! library's errors become the seams' [`StoreError`] with a [`StoreErrorKind`]:
//! [`sqlite_error`], [`postgres_error`] (sqlx), [`redis_error`], [`broker_error`] (lapin),
//! [`encode_json`] and [`decode_json`] (serde_json), and sealed secrets through
//! [`StoresError::Decrypt`]. Backends call these and nothing else, so a dropped connection is `Unavailable` (retried by the worker,
//! ARCHITECTURE.md rule 5) whichever store dropped it.

use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use mailfleet_shared::store_error::{StoreError, StoreErrorKind};
use serde::Serialize;
use serde::de::DeserializeOwned;

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
        match error {
            StoresError::Sqlite(error) => sqlite_error(error),
            StoresError::Io { path, source } => StoreError::other(path).with_source(source),
            StoresError::Key(why) => StoreError::invalid(format!("secret key: {why}")),
            decrypt @ StoresError::Decrypt => StoreError::corrupt(decrypt.to_string()),
            StoresError::Join(error) => {
                StoreError::other("background task failed").with_source(error)
            }
            StoresError::Postgres(error) => postgres_error(error),
            StoresError::Migrate(error) => {
                StoreError::other("postgres schema migration").with_source(error)
            }
        }
    }
}

/// SQLite (`state.db`): busy or locked by another process is `Unavailable` — the busy timeout
/// ran out, a later try can pass; a constraint is a `Conflict`; a damaged file or a column
/// that does not hold what this version wrote is `Corrupt`.
pub(crate) fn sqlite_error(error: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    let kind = match &error {
        rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreErrorKind::Unavailable,
            ErrorCode::ConstraintViolation => StoreErrorKind::Conflict,
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => StoreErrorKind::Corrupt,
            _ => StoreErrorKind::Other,
        },
        rusqlite::Error::QueryReturnedNoRows => StoreErrorKind::NotFound,
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::Utf8Error(..) => StoreErrorKind::Corrupt,
        _ => StoreErrorKind::Other,
    };
    StoreError::new(kind, "sqlite").with_source(error)
}

/// PostgreSQL (sqlx): the network, TLS, a pool with no free connection, and the server's
/// "try again" classes (08 connection, 40 serialization/deadlock, 53 resources, 57P01-03
/// shutting down) are `Unavailable`; a unique violation (23505) a `Conflict`; refused
/// credentials (28), an unknown database (3D000) or a bad URL are `Invalid`; a column that does
/// not decode is `Corrupt`.
pub(crate) fn postgres_error(error: sqlx::Error) -> StoreError {
    let kind = match &error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreErrorKind::Unavailable,
        sqlx::Error::Configuration(_) => StoreErrorKind::Invalid,
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => StoreErrorKind::Corrupt,
        sqlx::Error::RowNotFound => StoreErrorKind::NotFound,
        sqlx::Error::Database(database) => match database.code().as_deref().unwrap_or("") {
            "23505" => StoreErrorKind::Conflict,
            "3D000" => StoreErrorKind::Invalid,
            "57P01" | "57P02" | "57P03" => StoreErrorKind::Unavailable,
            code if code.starts_with("28") => StoreErrorKind::Invalid,
            code if ["08", "40", "53"]
                .iter()
                .any(|class| code.starts_with(class)) =>
            {
                StoreErrorKind::Unavailable
            }
            _ => StoreErrorKind::Other,
        },
        _ => StoreErrorKind::Other,
    };
    StoreError::new(kind, "postgres").with_source(error)
}

/// Redis: anything on the wire (refused, dropped, timed out, an unparsable answer) and a server
/// that is loading, failing over or read-only for now is `Unavailable`; a key holding another
/// type than we wrote is `Corrupt`; bad credentials or URL are `Invalid`.
pub(crate) fn redis_error(error: redis::RedisError) -> StoreError {
    use redis::{ErrorKind, ServerErrorKind};
    let kind = match error.kind() {
        ErrorKind::Io
        | ErrorKind::Parse
        | ErrorKind::ClusterConnectionNotFound
        | ErrorKind::MasterNameNotFoundBySentinel
        | ErrorKind::NoValidReplicasFoundBySentinel
        | ErrorKind::Server(
            ServerErrorKind::BusyLoading
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ReadOnly,
        ) => StoreErrorKind::Unavailable,
        ErrorKind::UnexpectedReturnType => StoreErrorKind::Corrupt,
        ErrorKind::AuthenticationFailed | ErrorKind::InvalidClientConfig => StoreErrorKind::Invalid,
        _ => StoreErrorKind::Other,
    };
    StoreError::new(kind, "redis").with_source(error)
}

/// RabbitMQ (lapin): a lost connection or channel, and any connection-level (hard) AMQP error
/// such as CONNECTION_FORCED, is `Unavailable`; a queue that does not exist is `NotFound`; a
/// queue declared with other arguments (PRECONDITION_FAILED) or held exclusively elsewhere is a
/// `Conflict`; refused credentials are `Invalid`.
pub(crate) fn broker_error(error: lapin::Error) -> StoreError {
    let kind = match error.kind() {
        lapin::ErrorKind::ProtocolError(amqp) => match amqp.kind() {
            AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND) => StoreErrorKind::NotFound,
            AMQPErrorKind::Soft(
                AMQPSoftError::PRECONDITIONFAILED | AMQPSoftError::RESOURCELOCKED,
            ) => StoreErrorKind::Conflict,
            AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED) => StoreErrorKind::Invalid,
            AMQPErrorKind::Soft(_) => StoreErrorKind::Other,
            AMQPErrorKind::Hard(_) => StoreErrorKind::Unavailable,
        },
        lapin::ErrorKind::AuthProviderError(_) | lapin::ErrorKind::InvalidProtocolVersion(_) => {
            StoreErrorKind::Invalid
        }
        _ if error.can_be_recovered() => StoreErrorKind::Unavailable,
        _ => StoreErrorKind::Other,
    };
    StoreError::new(kind, "rabbitmq").with_source(error)
}

/// `value` as JSON for a store. Our own types always serialise; a failure is a bug (`Other`).
pub(crate) fn encode_json(value: &impl Serialize, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|error| StoreError::other(format!("cannot encode {what}")).with_source(error))
}

/// Stored JSON read back: what does not decode was altered or written by an incompatible
/// version (`Corrupt`), and retrying cannot change it.
pub(crate) fn decode_json<T: DeserializeOwned>(
    json: impl AsRef<[u8]>,
    what: &str,
) -> Result<T, StoreError> {
    serde_json::from_slice(json.as_ref())
        .map_err(|error| StoreError::corrupt(format!("unreadable {what}")).with_source(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_busy_is_unavailable_and_a_constraint_a_conflict() {
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert_eq!(sqlite_error(busy).kind(), StoreErrorKind::Unavailable);
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY); INSERT INTO t VALUES ('a');")
            .unwrap();
        let duplicate = db.execute("INSERT INTO t VALUES ('a')", []).unwrap_err();
        assert_eq!(sqlite_error(duplicate).kind(), StoreErrorKind::Conflict);
    }

    #[test]
    fn undecodable_json_is_corrupt_and_names_what() {
        let error = decode_json::<Vec<u32>>("{not json", "job spec of w1").unwrap_err();
        assert_eq!(error.kind(), StoreErrorKind::Corrupt);
        assert!(
            error.to_string().starts_with("unreadable job spec of w1: "),
            "{error}"
        );
    }

    #[test]
    fn a_secret_that_does_not_open_is_corrupt_and_a_bad_key_invalid() {
        assert_eq!(
            StoreError::from(StoresError::Decrypt).kind(),
            StoreErrorKind::Corrupt
        );
        let key = crate::crypto::SecretBox::from_base64("%%%").unwrap_err();
        assert_eq!(StoreError::from(key).kind(), StoreErrorKind::Invalid);
    }
}
