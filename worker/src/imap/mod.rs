//! IMAP protocol details, kept apart from migration logic: connecting and logging in, the
//! NAMESPACE gap in async-imap, RFC 3501 flag lists and dates. Nothing here knows about batches,
//! checkpoints or queues.

pub mod append;
pub mod connect;
pub mod date;
pub mod flags;
pub mod guard;
pub mod namespace;
pub mod responses;
pub mod stream;

pub use connect::{ImapConnection, Session, connect, connect_with_limits};
pub use guard::ImapLimits;
