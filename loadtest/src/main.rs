//! `loadtest`: seed realistic corpora into local IMAP servers, benchmark mailfleet
//! (`loadtest bench plan|fleet`; see BENCHMARKS.md), and soak it under faults
//! (`loadtest soak`; see FAULTS.md).

mod bench;
mod seed;
mod soak;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "loadtest", about = "Seed IMAP corpora and benchmark mailfleet")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fill mailboxes on a local IMAP server with realistic, deterministic mail.
    Seed(seed::SeedArgs),
    /// Measure mailfleet on this machine's RabbitMQ, Redis and Dovecot.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Run a distributed batch round after round under random faults (workers killed, Redis
    /// and RabbitMQ restarted, source connections cut); print missing and duplicated messages.
    Soak(soak::SoakArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Seed(args) => seed::run(&args).await,
        Command::Bench(command) => bench::run(command).await,
        Command::Soak(args) => soak::run(&args).await,
    }
}
