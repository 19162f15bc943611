//! `loadtest bench …`: measurements of the real `mailfleet` binary (release build) against the
//! machine's real RabbitMQ, Redis and Dovecot. Each prints a table and writes JSON under
//! `target/loadtest/`; BENCHMARKS.md records the figures. Nothing here asserts a time, except
//! `bench api`, whose targets are the control plane's requirements.

pub mod api;
pub mod fleet;
mod mailbox;
mod mbsync;
mod measured;
pub mod memory;
pub mod plan;
mod process;
mod report;
pub mod scale;
pub mod single;

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// One large mailbox copied by mailfleet and by mbsync into fresh targets, re-run with
    /// nothing to copy, then again after 1 % of the messages changed on the source; prints each
    /// tool's figures and mailfleet's ratios to mbsync.
    Single(single::SingleArgs),
    /// Plan a 50,000-row CSV: validate, seal the credentials into Redis, publish one discovery
    /// task per user to RabbitMQ with confirms. Prints the time and the coordinator's peak RSS.
    Plan(plan::PlanArgs),
    /// Migrate many seeded mailboxes between two local Dovecot servers through the distributed
    /// mode (coordinator + worker processes on RabbitMQ and Redis). Prints messages/s and MB/s.
    Fleet(fleet::FleetArgs),
    /// Batches of 1,000 / 10,000 / 50,000 small mailboxes through `mailfleet migrate`; prints
    /// the cost per mailbox at each size.
    Scale(scale::ScaleArgs),
    /// One folder grown from 1,000 to 100,000 messages; prints mailfleet's peak RSS at each
    /// size (it must stay flat).
    Memory(memory::MemoryArgs),
    /// The control plane with one batch of 50,000 users: the API's users list, users and
    /// batch, and the dashboard's batch page, timed against `mailfleet serve` (p50/p95/p99),
    /// with its peak RSS; fails when a target is missed.
    Api(api::ApiArgs),
}

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Plan(args) => plan::run(&args).await,
        BenchCommand::Single(args) => single::run(&args).await,
        BenchCommand::Fleet(args) => fleet::run(&args).await,
        BenchCommand::Scale(args) => scale::run(&args).await,
        BenchCommand::Memory(args) => memory::run(&args).await,
        BenchCommand::Api(args) => api::run(&args).await,
    }
}
