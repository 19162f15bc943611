//! Sync passes and what they need: [`admission`] (publishing users' first tasks) under the
//! [`slots`] shared by every pass at once (endpoints' and tenants' limits, fair between tenants), the
//! [`collector`] (reports → per-user results), the terminal [`progress`] bars, the
//! [`summary`] printed at the end, the [`status_board`] `/status` and the gauges show, and the
//! fleet side of poison tasks ([`dead_letters`]).
//! [`pass`] ties them together; `migrate`, `coordinator` and the service all run passes.

pub mod admission;
pub mod collector;
pub mod dead_letters;
mod jobs;
pub mod pass;
pub mod progress;
mod reports;
pub mod slots;
pub mod status_board;
pub mod summary;

pub use collector::{UserResult, UserStatus};
pub use pass::{Concurrency, Observers, PassRuntime, run_pass};
