//! `loadtest seed`: fills real mailboxes with the deterministic corpus of `mailfleet-testkit`,
//! for the demo and for benchmarks.

use anyhow::{Context, bail};
use mailfleet_testkit::corpus::CorpusSpec;

#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    /// IMAP server host (plain IMAP).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long)]
    pub port: u16,
    /// LOGIN:PASSWORD of a mailbox to fill (repeatable).
    #[arg(long = "user", required = true)]
    pub users: Vec<String>,
    /// Messages per mailbox.
    #[arg(long, default_value_t = 300)]
    pub messages: usize,
    /// Corpus seed; each mailbox uses seed + its position.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// One message in 50 carries a 0.2–3 MB attachment.
    #[arg(long)]
    pub large_attachments: bool,
}

pub async fn run(args: &SeedArgs) -> anyhow::Result<()> {
    if args.host != "127.0.0.1" && args.host != "localhost" {
        bail!("loadtest seeds only servers on this machine (127.0.0.1)");
    }
    for (i, user) in args.users.iter().enumerate() {
        let (login, password) = user
            .split_once(':')
            .context("--user takes LOGIN:PASSWORD")?;
        let spec = CorpusSpec {
            messages: args.messages,
            seed: args.seed + i as u64,
            large_attachment_ratio: if args.large_attachments { 0.02 } else { 0.0 },
            ..Default::default()
        };
        let count = mailfleet_testkit::seed(args.port, login, password, &spec)
            .await
            .map_err(|e| anyhow::anyhow!("seeding {login}: {e}"))?;
        println!("seeded {login}: {count} messages");
    }
    Ok(())
}
