//! The one error every seam returns (ARCHITECTURE.md, "Seams"): the task queue, checkpoints,
//! credentials, the state store and job specs.
//!
//! Callers decide on the [`StoreErrorKind`], never on the text: the worker retries a task whose
//! store was [`Unavailable`](StoreErrorKind::Unavailable) (correctness rule 5) and fails one whose
//! stored data is [`Corrupt`](StoreErrorKind::Corrupt). Each backend turns its library's errors
//! into a kind in one place (`mailfleet_stores::error`), so the same failure reads the same on
//! SQLite, Redis and RabbitMQ.

use std::fmt;

/// What went wrong, as far as a caller deciding what to do next needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreErrorKind {
    /// The thing asked for does not exist (a queue that was deleted, an unknown delivery).
    NotFound,
    /// The write clashes with what is stored (a batch name taken, a broker refusing a queue
    /// declared with other arguments).
    Conflict,
    /// The store cannot be reached now: connection refused or dropped, broker or Redis down or
    /// loading, SQLite busy or locked. The same call may succeed later.
    Unavailable,
    /// Stored data cannot be decoded or decrypted: a record, a message or a sealed secret that
    /// was altered, or written with another key or by an incompatible version.
    Corrupt,
    /// The request itself is unusable (bad configuration, a value the store refuses).
    Invalid,
    /// Anything else; not retried.
    Other,
}

impl fmt::Display for StoreErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreErrorKind::NotFound => "not found",
            StoreErrorKind::Conflict => "conflict",
            StoreErrorKind::Unavailable => "unavailable",
            StoreErrorKind::Corrupt => "corrupt data",
            StoreErrorKind::Invalid => "invalid request",
            StoreErrorKind::Other => "failed",
        })
    }
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failed store operation: its [`kind`](Self::kind), a message saying what was being done
/// (`redis`, `state.db`, `job spec of wave-1`), and the library error underneath, if any.
///
/// `Display` shows the message and then the underlying error's text, because every caller
/// prints one line (logs, the CLI's `mailfleet: …`); [`source`](std::error::Error::source)
/// still hands the underlying error out for callers that inspect it.
pub struct StoreError {
    kind: StoreErrorKind,
    context: String,
    source: Option<Source>,
}

impl StoreError {
    pub fn new(kind: StoreErrorKind, context: impl Into<String>) -> Self {
        StoreError {
            kind,
            context: context.into(),
            source: None,
        }
    }

    /// Attaches the error that caused this one.
    pub fn with_source(mut self, source: impl Into<Source>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn not_found(context: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::NotFound, context)
    }

    pub fn conflict(context: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::Conflict, context)
    }

    pub fn unavailable(context: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::Unavailable, context)
    }

    pub fn corrupt(context: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::Corrupt, context)
    }

    pub fn invalid(context: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::Invalid, context)
    }

    pub fn other(context: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::Other, context)
    }

    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// What was being done, without the underlying error's text.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// Whether the same call may succeed later: only when the store was unreachable or busy.
    pub fn is_retryable(&self) -> bool {
        self.kind == StoreErrorKind::Unavailable
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.context)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreError")
            .field("kind", &self.kind)
            .field("context", &self.context)
            .field("source", &self.source)
            .finish()
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_shows_the_context_then_the_cause_and_only_unavailable_is_retryable() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = StoreError::unavailable("redis").with_source(refused);
        assert_eq!(error.to_string(), "redis: refused");
        assert_eq!(error.context(), "redis");
        assert!(error.is_retryable());
        let cause = std::error::Error::source(&error).unwrap();
        assert_eq!(cause.to_string(), "refused");

        let taken = StoreError::conflict("a batch named w1 exists already");
        assert_eq!(taken.to_string(), "a batch named w1 exists already");
        for kind in [
            StoreErrorKind::NotFound,
            StoreErrorKind::Conflict,
            StoreErrorKind::Corrupt,
            StoreErrorKind::Invalid,
            StoreErrorKind::Other,
        ] {
            assert!(!StoreError::new(kind, "x").is_retryable(), "{kind}");
        }
    }
}
