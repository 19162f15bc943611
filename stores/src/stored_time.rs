//! How the control stores keep times: RFC 3339 text in UTC to the microsecond, the same in
//! SQLite and PostgreSQL, sorting as the times compare.

use chrono::{DateTime, SecondsFormat, Utc};
use mailfleet_shared::store_error::StoreError;

pub(crate) fn time_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(crate) fn parse_time(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|e| StoreError::corrupt(format!("stored time {text:?}: {e}")))
}
