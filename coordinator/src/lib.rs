//! The `mailfleet` binary's crate: the command line, the commands, and what they share.
//!
//! # Layout
//! Lower layers never import higher ones; commands never import each other.
//! - [`commands`]: one module per command (`migrate`/`coordinator`, `worker`, `config`,
//!   `endpoint`, `batch`, `report`, `verify`, `dns`), and the dispatch `main` calls.
//! - [`service`]: `mailfleet run` — the scheduler of batches' passes, each batch's job,
//!   notifications, MX checks.
//! - [`run`]: one sync pass — admission, collector, progress, summary, dead letters.
//! - [`observe`]: logs and traces, `/metrics` `/status` `/healthz`, the status board.
//! - [`dashboard`]: the web page at `/` (assets compiled in), a client of the HTTP API.
//! - [`input`]: what users hand in (CSV, server URLs, admin logins), checked, and passwords
//!   sealed; [`records`]: named endpoints and batches from the state store.
//! - [`tenants`]: tenants and API tokens as operations the commands and the API share.
//! - [`remote`]: the `endpoint`, `batch`, `report` and `verify` commands run through the API of
//!   a `mailfleet serve` elsewhere (`--api URL`), printed by the commands' own printers.
//! - [`backends`]: embedded or RabbitMQ/Redis, chosen in one place; [`settings`]:
//!   mailfleet.toml + `MAILFLEET_*` + flags; [`shutdown`]: the one stop path;
//!   [`error`]: what ends a command and its exit status; [`cli`]: the clap command line;
//!   [`hardening`]: the process made non-dumpable, for the secrets it holds;
//!   [`display`]: times, sizes, durations and counts as people read them.
//!
//! ARCHITECTURE.md at the repository root says how the crates fit together.

pub mod api;
pub mod backends;
pub mod cli;
pub mod commands;
pub mod dashboard;
pub mod display;
pub mod error;
pub mod hardening;
pub mod input;
pub mod observe;
pub mod records;
pub mod remote;
pub mod run;
pub mod service;
pub mod settings;
pub mod shutdown;
pub mod tenant_stores;
pub mod tenants;
