//! One sync pass and what it needs: [`admission`] (at most N users in flight), the
//! [`collector`] (reports → per-user results), the terminal [`progress`] bars, the
//! [`summary`] printed at the end, the [`status_board`] `/status` and the gauges show, and the
//! fleet side of poison tasks ([`dead_letters`]).
//! [`pass`] ties them together; `migrate`, `coordinator` and the service all run passes.

pub mod admission;
pub mod collector;
pub mod dead_letters;
pub mod pass;
pub mod progress;
pub mod status_board;
pub mod summary;

pub use collector::{UserResult, UserStatus};
pub use pass::{Concurrency, Observers, run_pass};
