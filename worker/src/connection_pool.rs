//! Logged-in connections kept between the tasks of one user, so the next task skips the login.
//!
//! A mailbox is one discovery task (which copies the small folders itself) and then one task
//! per big folder, each needing a source and a target connection, and a login is the dearest
//! thing an IMAP server does (Dovecot forks a process for it, Exchange Online checks the password
//! with Entra ID). Handing a finished task's connections to the user's next task brings that
//! close to the two an mbsync run needs, plus one per folder copied in parallel; discovery
//! hands its connections from one small folder to the next the same way.
//!
//! Only a connection in a known state comes back: the task's last exchange succeeded and no
//! mailbox is selected (callers CLOSE first). A connection idle for more than a moment is tested
//! with NOOP before reuse, as the server may have closed it. The pool never holds more
//! connections than the user's tasks had open at once, so it cannot push a user over a server's per-user connection limit; and it
//! holds few in all, briefly: an idle connection is a server process (Dovecot) or a session slot
//! (Exchange) kept from other users. `loadtest bench scale` showed why: with a 20-second limit
//! and no cap, a batch of 50,000 small mailboxes kept hundreds of finished users' connections
//! open, and every lookup walked them all.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::imap::ImapConnection;
use crate::job::Side;

/// Longer than the gap between a discovery and the user's first folder tasks, or between two
/// folder tasks of a user on a busy worker.
pub const IDLE_LIMIT: Duration = Duration::from_secs(3);

/// Idle connections kept in all (the oldest goes first); a lookup scans them, so few.
const MAX_IDLE: usize = 32;

#[derive(Default)]
pub struct ConnectionPool {
    /// Oldest first.
    idle: Mutex<Vec<Idle>>,
}

struct Idle {
    side: Side,
    user: String,
    connection: ImapConnection,
    since: Instant,
}

impl ConnectionPool {
    /// The most recently returned connection of `user` on `side`, if one is fresh enough, with
    /// how long it was idle. The caller checks that it still answers.
    pub fn take(&self, side: Side, user: &str) -> Option<(ImapConnection, Duration)> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let expired = remove_expired(&mut idle);
        let found = idle
            .iter()
            .rposition(|entry| entry.side == side && entry.user == user)
            .map(|position| {
                let entry = idle.remove(position);
                (entry.connection, entry.since.elapsed())
            });
        drop(idle);
        log_out(expired);
        found
    }

    /// Keeps `connection` for the user's next task. It must have no mailbox selected.
    pub fn put(&self, side: Side, user: &str, connection: ImapConnection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let mut expired = remove_expired(&mut idle);
        if idle.len() >= MAX_IDLE {
            expired.push(idle.remove(0).connection);
        }
        idle.push(Idle {
            side,
            user: user.to_owned(),
            connection,
            since: Instant::now(),
        });
        drop(idle);
        log_out(expired);
    }
}

/// Takes out the connections idle for longer than [`IDLE_LIMIT`] (a prefix: oldest first).
fn remove_expired(idle: &mut Vec<Idle>) -> Vec<ImapConnection> {
    let fresh = idle
        .iter()
        .position(|entry| entry.since.elapsed() < IDLE_LIMIT)
        .unwrap_or(idle.len());
    idle.drain(..fresh).map(|entry| entry.connection).collect()
}

/// LOGOUT in the background: the caller is a task that should not wait for it.
fn log_out(connections: Vec<ImapConnection>) {
    for connection in connections {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(connection.logout());
        }
    }
}
