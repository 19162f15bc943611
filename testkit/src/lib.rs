//! Real servers and real mail for mailfleet's tests, demo and benchmarks.
//!
//! # Layout
//! - [`dovecot`]: a self-contained Dovecot on a free loopback port per test, gone on drop.
//! - [`client`]: a plain IMAP client for seeding and for snapshots compared by
//!   [`client::assert_same_mail`] (messages as multisets of bytes, flags and dates).
//! - [`corpus`]: deterministic, realistic mailboxes; [`bad_messages`]: broken ones.
//! - [`broker`]: closing RabbitMQ connections from the broker's side.
//! - [`fault_proxy`]: a TCP proxy that injects busy greetings, cut connections, APPENDs
//!   answered OK and dropped, and commands held at a point a test chooses;
//!   [`exchange_front`]: an Exchange Online personality in front of a real Dovecot.
//! - [`identity`]: a stand-in for Entra ID's and Google's token endpoints, whose tokens a
//!   Dovecot started [`StartOptions::with_oauth2`] accepts.
//! - [`postgres`]: a database of its own per test on the machine's PostgreSQL.
//! - [`private`]: Redis, RabbitMQ and PostgreSQL instances of a test's own, to restart or wipe
//!   mid-run, and a small filesystem to fill.
//! - [`scripted_server`]: an IMAP source that misbehaves for one login (silence, floods, junk,
//!   huge literals, trickles, literals cut short, endless lines, wrong UIDs and tags) and
//!   passes the others through to a real server.

pub mod bad_messages;
pub mod broker;
pub mod client;
pub mod corpus;
pub mod dovecot;
pub mod exchange_front;
pub mod fault_proxy;
pub mod identity;
pub mod postgres;
pub mod private;
pub mod scripted_server;
pub mod user_changes;

pub use client::{
    MailCount, MailboxSnapshot, NewMessage, append_all, assert_same_mail, connect_login,
    count_differences, snapshot,
};
pub use dovecot::{DovecotServer, Layout, StartOptions, TokenAudience};

/// Seeds `login`'s mailbox on `port` with `spec`'s corpus; returns the number of messages.
pub async fn seed(
    port: u16,
    login: &str,
    password: &str,
    spec: &corpus::CorpusSpec,
) -> client::Result<usize> {
    let mut session = connect_login(port, login, password).await?;
    let mut count = 0;
    for (folder, messages) in corpus::generate(spec) {
        append_all(&mut session, &folder, &messages).await?;
        count += messages.len();
    }
    session.logout().await?;
    Ok(count)
}
