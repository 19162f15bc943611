//! `loadtest soak --minutes N`: a distributed batch (a `mailfleet coordinator` and worker
//! processes, real Dovecot on both sides, a private Redis and a private RabbitMQ node) run
//! round after round under random faults for N minutes, then the target compared with the
//! source: missing and duplicated messages are counted and printed, and any makes the command
//! fail.
//!
//! Each round seeds new mail into every source mailbox and runs the coordinator while
//! [`faults`] strike. A round whose run ends with failed users (a fault can fail a user, e.g.
//! a Redis restarted empty takes the sealed passwords with it) is resumed, without faults, as
//! an operator would: the same command again. Only then is the target compared.

mod faults;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use mailfleet_testkit::corpus::CorpusSpec;
use mailfleet_testkit::private::{PrivateRabbitMq, PrivateRedis};
use mailfleet_testkit::{DovecotServer, MailCount, StartOptions, count_differences, snapshot};

use faults::Faults;

#[derive(Debug, clap::Args)]
pub struct SoakArgs {
    /// How long to keep starting rounds (the last round finishes after it).
    #[arg(long, default_value_t = 10)]
    pub minutes: u64,
    /// Mailboxes in the batch.
    #[arg(long, default_value_t = 4)]
    pub mailboxes: usize,
    /// New messages seeded into each mailbox every round.
    #[arg(long, default_value_t = 150)]
    pub messages: usize,
    /// Worker processes (one is killed now and then, and replaced).
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Mean seconds between two faults while a round runs.
    #[arg(long, default_value_t = 4)]
    pub fault_every: u64,
    /// Resumes allowed per round before the round counts as not completed.
    #[arg(long, default_value_t = 3)]
    pub resumes: usize,
}

pub async fn run(args: &SoakArgs) -> anyhow::Result<()> {
    let binary = debug_binary()?;
    let users: Vec<(String, String)> = (0..args.mailboxes)
        .map(|i| (format!("soak{i:03}@soak.example"), format!("soak-pw-{i}")))
        .collect();
    let refs: Vec<(&str, &str)> = users
        .iter()
        .map(|(u, p)| (u.as_str(), p.as_str()))
        .collect();
    let source = DovecotServer::start(StartOptions::users(&refs))?;
    let target = DovecotServer::start(StartOptions::users(&refs))?;
    eprintln!("starting a private Redis and a private RabbitMQ node…");
    let redis = PrivateRedis::start();
    let broker = PrivateRabbitMq::start();
    let dir = tempfile::tempdir()?;
    let csv = write_csv(dir.path(), &users)?;
    let fleet = FleetSettings::new(&broker, &redis);
    let mut faults = Faults::start(&binary, &fleet, source.port(), redis, broker, args).await?;

    let source_url = faults.source_url();
    let deadline = Instant::now() + Duration::from_secs(args.minutes * 60);
    let mut totals = Totals::default();
    while totals.rounds == 0 || Instant::now() < deadline {
        totals.rounds += 1;
        let round = totals.rounds;
        let seeded = seed_round(source.port(), &users, args.messages, round).await?;
        totals.seeded += seeded;
        let coordinator = || {
            fleet
                .command(&binary)
                .args(["coordinator", "--json", "--csv"])
                .arg(&csv)
                .args(["--source", &source_url, "--target", &target.url()])
                .args(["--folder-part-messages", "50", "--state-dir"])
                .arg(dir.path().join("state"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
        };
        let child = coordinator().context("starting the coordinator")?;
        let mut code = faults.strike_until_exit(child).await?;
        let mut resumes = 0;
        while code != Some(0) && resumes < args.resumes {
            resumes += 1;
            let status = tokio::task::block_in_place(|| coordinator()?.wait())?;
            code = status.code();
        }
        totals.resumes += resumes;
        let count = compare(&source, &target, &users).await?;
        totals.missing += count.missing;
        totals.extra += count.extra;
        if code != Some(0) {
            totals.incomplete += 1;
        }
        eprintln!(
            "round {round}: {seeded} messages seeded, faults so far {}, exit {code:?} after {resumes} resume(s), missing {}, duplicated {}",
            faults.log(),
            count.missing,
            count.extra
        );
    }
    let log = faults.stop();
    println!(
        "soak: {} round(s) over {} mailboxes, {} messages, faults: {log}; resumes {}; rounds not completed {}; missing {}; duplicated {}",
        totals.rounds,
        args.mailboxes,
        totals.seeded,
        totals.resumes,
        totals.incomplete,
        totals.missing,
        totals.extra
    );
    if totals.missing > 0 || totals.extra > 0 || totals.incomplete > 0 {
        bail!("the soak found missing or duplicated mail, or a round that never completed");
    }
    Ok(())
}

#[derive(Default)]
struct Totals {
    rounds: usize,
    seeded: usize,
    resumes: usize,
    incomplete: usize,
    missing: u64,
    extra: u64,
}

/// The `queue`, `checkpoints` and `secret_key` settings every process of the soak shares.
#[derive(Clone)]
pub struct FleetSettings {
    queue: String,
    checkpoints: String,
    key: String,
}

impl FleetSettings {
    fn new(broker: &PrivateRabbitMq, redis: &PrivateRedis) -> Self {
        let key: [u8; 32] = rand::random();
        FleetSettings {
            queue: broker.queue_url("soak"),
            checkpoints: format!("{}?tenant=soak", redis.url()),
            key: base64::engine::general_purpose::STANDARD.encode(key),
        }
    }

    /// `binary` with these settings, logging only warnings.
    pub fn command(&self, binary: &Path) -> Command {
        let mut command = Command::new(binary);
        command
            .env("MAILFLEET_QUEUE", &self.queue)
            .env("MAILFLEET_CHECKPOINTS", &self.checkpoints)
            .env("MAILFLEET_SECRET_KEY", &self.key)
            .env("MAILFLEET_LOG", "warn");
        command
    }
}

/// Builds the `mailfleet` binary as the tests use it (debug: a soak measures correctness, not
/// speed) and returns its path.
fn debug_binary() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "-p", "mailfleet"])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build -p mailfleet failed");
    }
    Ok(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/mailfleet"))
}

fn write_csv(dir: &Path, users: &[(String, String)]) -> std::io::Result<PathBuf> {
    let mut text = String::from("EmailAddress,UserName,Password\n");
    for (user, password) in users {
        text.push_str(&format!("{user},{user},{password}\n"));
    }
    let csv = dir.join("users.csv");
    std::fs::write(&csv, text)?;
    Ok(csv)
}

/// Appends `messages` new messages (a corpus of the round's own seed) to every mailbox.
async fn seed_round(
    port: u16,
    users: &[(String, String)],
    messages: usize,
    round: usize,
) -> anyhow::Result<usize> {
    let mut seeded = 0;
    for (i, (user, password)) in users.iter().enumerate() {
        let spec = CorpusSpec {
            messages,
            seed: (round * 1000 + i) as u64,
            ..Default::default()
        };
        seeded += mailfleet_testkit::seed(port, user, password, &spec)
            .await
            .map_err(|e| anyhow::anyhow!("seeding {user}: {e}"))?;
    }
    Ok(seeded)
}

/// Missing and duplicated messages over every mailbox.
async fn compare(
    source: &DovecotServer,
    target: &DovecotServer,
    users: &[(String, String)],
) -> anyhow::Result<MailCount> {
    let mut total = MailCount::default();
    for (user, password) in users {
        let read = |port| async move {
            snapshot(port, user, password)
                .await
                .map_err(|e| anyhow::anyhow!("snapshot of {user}: {e}"))
        };
        let (from, to) = (read(source.port()).await?, read(target.port()).await?);
        let count = count_differences(&from, &to, str::to_owned);
        total.missing += count.missing;
        total.extra += count.extra;
    }
    Ok(total)
}
