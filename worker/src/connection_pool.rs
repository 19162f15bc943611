//! Logged-in connections kept between the tasks of one user, so the next task skips the login.
//!
//! A mailbox is one discovery task and then one task per folder, each needing a source and a
//! target connection: a 14-folder mailbox cost 30 logins, and a login is the dearest thing an
//! IMAP server does (Dovecot forks a process for it, Exchange Online checks the password with
//! Entra ID). Handing a finished task's connections to the user's next task brings that close to
//! the two an mbsync run needs, plus one per folder copied in parallel.
//!
//! Only a connection in a known state comes back: the task's last exchange succeeded and no
//! mailbox is selected (callers CLOSE first). A connection is tested with NOOP before reuse, as
//! the server may have closed it, and one idle longer than [`IDLE_LIMIT`] is logged out. The
//! pool never holds more connections than the user's tasks had open at once, so it cannot push a
//! user over a server's per-user connection limit.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::imap::ImapConnection;
use crate::job::Side;

/// Longer than the gap between a user's tasks on a busy worker; far shorter than any server's
/// idle timeout (RFC 3501: at least 30 minutes).
pub const IDLE_LIMIT: Duration = Duration::from_secs(20);

/// Idle connections kept per user and side.
const PER_USER: usize = 4;

#[derive(Default)]
pub struct ConnectionPool {
    idle: Mutex<HashMap<(Side, String), Vec<Idle>>>,
}

struct Idle {
    connection: ImapConnection,
    since: Instant,
}

impl ConnectionPool {
    /// The most recently returned connection of `user` on `side`, if one is fresh enough. The
    /// caller checks that it still answers.
    pub fn take(&self, side: Side, user: &str) -> Option<ImapConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let expired = remove_expired(&mut idle);
        let found = idle
            .get_mut(&(side, user.to_owned()))
            .and_then(Vec::pop)
            .map(|entry| entry.connection);
        drop(idle);
        log_out(expired);
        found
    }

    /// Keeps `connection` for the user's next task. It must have no mailbox selected.
    pub fn put(&self, side: Side, user: &str, connection: ImapConnection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let mut expired = remove_expired(&mut idle);
        let entries = idle.entry((side, user.to_owned())).or_default();
        if entries.len() < PER_USER {
            entries.push(Idle {
                connection,
                since: Instant::now(),
            });
        } else {
            expired.push(connection);
        }
        drop(idle);
        log_out(expired);
    }
}

fn remove_expired(idle: &mut HashMap<(Side, String), Vec<Idle>>) -> Vec<ImapConnection> {
    let mut expired = Vec::new();
    for entries in idle.values_mut() {
        let (fresh, stale): (Vec<Idle>, Vec<Idle>) = std::mem::take(entries)
            .into_iter()
            .partition(|entry| entry.since.elapsed() < IDLE_LIMIT);
        *entries = fresh;
        expired.extend(stale.into_iter().map(|entry| entry.connection));
    }
    idle.retain(|_, entries| !entries.is_empty());
    expired
}

/// LOGOUT in the background: the caller is a task that should not wait for it.
fn log_out(connections: Vec<ImapConnection>) {
    for connection in connections {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(connection.logout());
        }
    }
}
