//! mailfleet's IMAP engine: what a worker does with a task.
//!
//! # Layout
//! - [`imap`]: protocol details only — connecting (TLS, STARTTLS, SASL PLAIN, XOAUTH2 and
//!   OAUTHBEARER), NAMESPACE, RFC 3501 flag lists and dates.
//! - [`job`]: the job a task belongs to (endpoints, rules, limits, stores) and logging in for a
//!   user, reusing a connection an earlier task of the user left in the [`connection_pool`];
//!   [`oauth2`]: access tokens for endpoints that log in with OAuth2;
//!   [`job_source`]: finding the job of a task's batch; [`stored_jobs`]: the jobs distributed
//!   workers load from the coordinator's job specs.
//! - [`discovery`]: LIST both sides, map folder names, create the target hierarchy, plan one
//!   task per folder; [`small_folders`]: the small ones discovery copies itself.
//! - [`folder_sync`]: copy one folder exactly once — fetch in bounded batches, fingerprint
//!   guard ([`target_index`]), append with flags and dates, advance checkpoints, under the
//!   folder's [`lease`] so a task delivered twice never copies twice at once.
//! - [`mirror`]: what users did on the source since the last pass (flags, moves, deletions),
//!   done to mailfleet's copies, per user in discovery; [`copy_map`]: which target message is
//!   which source message's copy, recorded after each folder copy; [`flag_sync`]: the merge;
//!   [`renames`]: folders renamed on the source renamed on the target; [`flagged_repair`]:
//!   `\Flagged` set again after APPEND where the target's profile asks.
//! - [`runner`]: the task loop (take, do, report, ack) with poison-task handling.
//! - [`retry`], [`error`], [`shutdown`]: backoff for transient failures, the error type that
//!   decides what is transient, and the graceful-shutdown token.
//! - [`metrics`]: Prometheus counters of messages, bytes, tasks and retries.
//! - [`verify`]: source against target, folder by folder, as fingerprint multisets.

pub mod connection_pool;
pub mod copy_map;
pub mod discovery;
pub mod error;
pub mod flag_sync;
pub mod flagged_repair;
pub mod folder_sync;
pub mod imap;
pub mod job;
pub mod job_source;
pub mod lease;
pub mod metrics;
pub mod mirror;
pub mod oauth2;
pub mod renames;
pub mod retry;
pub mod runner;
pub mod shutdown;
pub mod small_folders;
pub mod stored_jobs;
pub mod target_index;
pub mod uid_set;
pub mod verify;

pub use job::{Job, NoProgress, Progress, Tuning};
pub use job_source::{JobSource, SingleJob};
pub use runner::Worker;
pub use stored_jobs::StoredJobs;
