//! IMAP protocol details, kept apart from migration logic: connecting and logging in (passwords
//! or OAuth2 bearer tokens), the NAMESPACE and STATUS gaps in async-imap, IMAP strings and
//! mailbox names both ways, what a refusal's response code says, RFC 3501 flag lists and dates.
//! Nothing here knows about batches, checkpoints or queues.

pub mod append;
pub mod connect;
pub mod date;
pub mod flags;
pub mod namespace;
pub mod quote;
pub mod refusal;
pub mod sasl;
pub mod status;
pub mod stream;

pub use connect::{Credentials, ImapConnection, Session, connect, connect_as};
