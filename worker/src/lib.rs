//! IMAP engine.
