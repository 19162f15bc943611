//! `loadtest`: corpus seeding now; the benchmarks of the performance issue join here.

mod seed;

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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Seed(args) => seed::run(&args).await,
    }
}
