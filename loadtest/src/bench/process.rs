//! The benchmarked processes: the release `mailfleet` binary, pointed at a broker prefix and
//! Redis tenant of the benchmark's own, and what the kernel says about them.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use base64::Engine;
use mailfleet_stores::crypto::SecretBox;
use mailfleet_stores::rabbitmq_queue::{QueueNames, RabbitMqQueue};
use mailfleet_stores::redis_store::RedisStore;

pub const BROKER: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const REDIS: &str = "redis://127.0.0.1:6379";

/// Builds `mailfleet` in release mode (a no-op when it is current) and returns its path.
/// Built together with `loadtest`, as `cargo build --release -p mailfleet -p loadtest` builds
/// them: dependencies' features depend on the packages a build names, so `mailfleet` alone
/// would recompile sqlx, the stores and the coordinator after that build (ten minutes on two
/// cores), and back again.
pub fn release_binary() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "mailfleet",
            "-p",
            "loadtest",
        ])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build --release -p mailfleet -p loadtest failed");
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    Ok(root.join("target/release/mailfleet"))
}

/// `mailfleet migrate --json` of `csv` from `source` to `target` (URLs), state in `state_dir`,
/// logging only warnings: the embedded mode as a user runs it.
pub fn migrate_command(
    binary: &Path,
    csv: &Path,
    (source, target): (&str, &str),
    state_dir: &Path,
) -> Command {
    let mut command = Command::new(binary);
    command
        .args(["migrate", "--json", "--csv"])
        .arg(csv)
        .args(["--source", source, "--target", target])
        .arg("--state-dir")
        .arg(state_dir)
        .env("MAILFLEET_LOG", "warn");
    command
}

/// Writes a migration CSV of one user (source login = target address) into `dir`.
pub fn single_user_csv(dir: &Path, (user, password): (&str, &str)) -> std::io::Result<PathBuf> {
    let csv = dir.join("users.csv");
    std::fs::write(
        &csv,
        format!("EmailAddress,UserName,Password\n{user},{user},{password}\n"),
    )?;
    Ok(csv)
}

/// One benchmark's isolated share of the local broker and Redis, removed by `clean_up`.
pub struct Isolation {
    pub name: String,
    key: String,
}

impl Isolation {
    pub fn new(bench: &str) -> Self {
        let key: [u8; 32] = rand::random();
        Isolation {
            name: format!("mf-bench-{bench}-{}", std::process::id()),
            key: base64::engine::general_purpose::STANDARD.encode(key),
        }
    }

    /// A `mailfleet` command with this isolation's queue, checkpoints and key settings.
    pub fn command(&self, binary: &PathBuf) -> Command {
        let mut command = Command::new(binary);
        command
            .env(
                "MAILFLEET_QUEUE",
                format!("{BROKER}?prefix={}", self.name).replacen("amqp://", "rabbitmq://", 1),
            )
            .env(
                "MAILFLEET_CHECKPOINTS",
                format!("{REDIS}?tenant={}", self.name),
            )
            .env("MAILFLEET_SECRET_KEY", &self.key)
            .env("MAILFLEET_LOG", "warn");
        command
    }

    pub fn queue_names(&self) -> QueueNames {
        QueueNames::with_prefix(&self.name)
    }

    pub async fn clean_up(&self) -> anyhow::Result<()> {
        RabbitMqQueue::delete_queues(BROKER, &self.queue_names())
            .await
            .map_err(|e| anyhow::anyhow!("deleting the benchmark's queues: {e}"))?;
        let secrets = SecretBox::from_base64(&self.key).map_err(|e| anyhow::anyhow!("{e}"))?;
        RedisStore::connect(REDIS, &self.name, secrets)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .clear_tenant()
            .await
            .map_err(|e| anyhow::anyhow!("clearing the benchmark's Redis keys: {e}"))?;
        Ok(())
    }
}

/// Peak resident set size of a running process (VmHWM), in MiB.
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// CPU seconds (user + system) a running process has used so far.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at ") ".
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    // USER_HZ is 100 on every Linux architecture mailfleet targets.
    100.0
}
