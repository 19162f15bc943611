//! Domain types shared by every mailfleet process.
//!
//! # Layout
//! - [`migration_csv`]: the migration CSV (`EmailAddress,UserName,Password[,UserRoot]`), validated
//!   exactly as Microsoft's IMAP migration service defines it, every error with its line number.
//! - [`endpoint`]: where a mailbox lives (host, port, security) and how to log in to it, including
//!   the admin login formats of Exchange, Dovecot, Mirapoint, Courier and Cyrus.
//! - [`mutf7`]: IMAP's modified UTF-7 mailbox-name encoding (RFC 3501 §5.1.3).
//! - [`folder_map`]: turning a source folder name into the target's, across namespaces, hierarchy
//!   separators and special-use folders; [`folder_filter`]: the include/exclude rules of a batch.
//! - [`fingerprint`]: the identity of a message that does not depend on UIDs (correctness rule 1).
//! - [`job_spec`]: what workers need to know about a batch (endpoints, rules, limits).
//! - [`server_profile`]: what a target server will not store (Exchange Online), as rules.
//! - [`lifecycle`]: batches, their states and transitions, the scheduler's decisions.
//! - [`messages`]: the tasks workers consume and the reports they publish (serde_json).
//! - [`uid_map`]: which target message is mailfleet's copy of which source message, with the
//!   flags as last synced (what incremental passes mirror).
//! - [`tenancy`]: tenants, API tokens (stored as hashes) and the audit log, and the
//!   `ControlStore` seam that scopes every tenant's records in the store layer.
//! - [`user_query`]: a page of a batch's users and the count of each state, as the state
//!   stores answer them without reading every user.
//! - [`queue`], [`checkpoint`], [`credentials`], [`state`], [`job_spec`]'s `JobSpecStore`: the
//!   seams whose backends live in `mailfleet-stores`; [`store_error`]: the error they all return,
//!   with a kind that says whether retrying can help.
//!
//! Nothing here performs I/O except through the traits; dependencies point one way:
//! `shared` ← `stores`, `worker` ← `coordinator`.

pub mod checkpoint;
pub mod credentials;
pub mod endpoint;
pub mod fingerprint;
pub mod folder_filter;
pub mod folder_map;
pub mod job_spec;
pub mod lifecycle;
pub mod messages;
pub mod migration_csv;
pub mod mutf7;
pub mod queue;
pub mod server_profile;
pub mod state;
pub mod store_error;
pub mod tenancy;
pub mod uid_map;
pub mod user_query;
