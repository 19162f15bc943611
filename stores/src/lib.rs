//! Backends of mailfleet's seams (ARCHITECTURE.md, "Seams"): where checkpoints, credentials and
//! tasks live.
//!
//! # Layout
//! - [`crypto`]: AES-256-GCM sealing of passwords at rest, and the embedded key file.
//! - [`sqlite`]: embedded mode's checkpoints, credentials and job specs in `state.db` (WAL).
//! - [`sqlite_state`]: the state store (endpoints, batches, users, each a tenant's) in the same
//!   file, and (`sqlite_control`) its tenants, API tokens and audit log;
//!   [`postgres_state`]: the same in PostgreSQL, for a fleet sharing one state. Both answer a
//!   page of a batch's users with one query (`user_page_sql`) and its counts from an index
//!   (`tally_row`).
//! - [`tenant_keys`]: each tenant's secrets sealed under a key of its own, derived from the
//!   master key; the credential store wrapper that picks it by scope.
//! - [`memory_queue`]: embedded mode's in-process task and report queue.
//! - [`rabbitmq_queue`]: distributed mode's task, report and dead-letter queues (quorum, confirms);
//!   `rabbitmq_link`: its connection, replaced with backoff when it breaks.
//! - [`redis_store`]: distributed mode's checkpoints (Lua compare-and-set), credentials and job
//!   specs.
//! - `contract`: the behaviour every backend of a trait must show, as test suites the
//!   distributed backends (Redis, RabbitMQ) run too; only in test builds, or with the `contract`
//!   feature for backends tested elsewhere.
//! - [`error`]: the one place each library's errors become a `StoreError` of the right kind.

#[cfg(any(test, feature = "contract"))]
pub mod contract;
pub mod crypto;
pub mod error;
pub mod memory_queue;
mod postgres_control;
pub mod postgres_state;
mod rabbitmq_link;
pub mod rabbitmq_queue;
pub mod redis_store;
pub mod sqlite;
mod sqlite_control;
pub mod sqlite_state;
mod stored_time;
mod stored_token;
mod tally_row;
pub mod tenant_keys;
mod user_page_sql;

pub use error::StoresError;
