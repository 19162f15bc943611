//! IMAP protocol details, kept apart from migration logic: connecting and logging in (passwords
//! or OAuth2 bearer tokens), the NAMESPACE gap in async-imap, RFC 3501 flag lists and dates.
//! Nothing here knows about batches, checkpoints or queues.

pub mod append;
pub mod connect;
pub mod date;
pub mod flags;
pub mod namespace;
pub mod sasl;
pub mod stream;

pub use connect::{Credentials, ImapConnection, Session, connect, connect_as};
