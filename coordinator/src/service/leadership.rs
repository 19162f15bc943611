//! Which service schedules (ARCHITECTURE.md, "Leadership"). Services sharing one PostgreSQL
//! `state` elect a leader with the database's session advisory lock: the first to take it
//! schedules, the others stand by and try again every [`STANDBY_POLL`]. The lock lives as long
//! as the leader's session: a leader that exits or is killed (`kill -9` closes its socket) lets
//! go at once, and a standby takes over within a poll.
//!
//! A leader cut off from its database (the session lost, the process alive) must stop before a
//! standby starts: it confirms the lock before every pass and every [`LEASE_CHECK`], and stops
//! its passes and stands by again when it cannot; a new leader
//! waits [`FENCE`] — longer than a lost leader takes to notice — before its first pass.
//!
//! With SQLite state there is nothing to elect: the state dir's lock keeps a second service off.

use std::path::Path;
use std::time::Duration;

use mailfleet_stores::postgres_state::SchedulerLock;

use crate::backends::{self, StateLocation};
use crate::error::CliError;
use crate::settings::Settings;
use crate::shutdown::StopSignal;

/// How often a standby tries to take the lock.
pub const STANDBY_POLL: Duration = Duration::from_secs(2);
/// How often a leader confirms it still holds the lock while passes run.
pub const LEASE_CHECK: Duration = Duration::from_secs(2);
/// A new leader's wait: a lost leader notices within one check and its timeout.
const FENCE: Duration = Duration::from_secs(6);

/// The right to schedule, held until dropped.
pub enum Leadership {
    /// A state dir of its own (or a `sqlite:DIR` whose `run.lock` this holds).
    Local {
        _lock: Option<std::fs::File>,
    },
    Elected(SchedulerLock),
}

impl Leadership {
    /// Waits until this service may schedule; `None` when `stop` fires first.
    pub async fn acquire(
        settings: &Settings,
        state_dir: &Path,
        stop: &StopSignal,
    ) -> Result<Option<Leadership>, CliError> {
        let url = match backends::state_location(settings, state_dir)? {
            StateLocation::Sqlite(dir) if dir == state_dir => {
                return Ok(Some(Leadership::Local { _lock: None }));
            }
            StateLocation::Sqlite(dir) => {
                let lock = backends::lock_state_dir(&dir)?;
                return Ok(Some(Leadership::Local { _lock: Some(lock) }));
            }
            StateLocation::Postgres(url) => url,
        };
        let mut waited = false;
        loop {
            // The service opened the database already, so an error here is the database
            // going away (restarted, unreachable): stand by until it is back.
            let taken = SchedulerLock::try_take(url).await.unwrap_or_else(|error| {
                tracing::warn!(%error, "the state database is unreachable; standing by");
                None
            });
            if let Some(lock) = taken {
                if waited {
                    tracing::info!("took over scheduling: the leader is gone");
                    // A leader that lost its session (not its process) is still stopping.
                    tokio::select! {
                        () = tokio::time::sleep(FENCE) => {}
                        () = stop.requested() => return Ok(None),
                    }
                } else {
                    tracing::info!("scheduling: this service is the leader");
                }
                return Ok(Some(Leadership::Elected(lock)));
            }
            if !waited {
                tracing::info!(
                    "standing by: another mailfleet run schedules this state database; taking over when it stops"
                );
                waited = true;
            }
            tokio::select! {
                () = tokio::time::sleep(STANDBY_POLL) => {}
                () = stop.requested() => return Ok(None),
            }
        }
    }

    /// Whether this service still schedules: always for local state; for PostgreSQL, the
    /// server confirms the lock.
    pub async fn is_held(&mut self) -> bool {
        match self {
            Leadership::Local { .. } => true,
            Leadership::Elected(lock) => lock.is_held().await,
        }
    }
}
