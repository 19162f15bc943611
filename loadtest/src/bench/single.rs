//! `loadtest bench single`: one large mailbox Dovecot → Dovecot on loopback, copied by
//! mailfleet (embedded mode) and by mbsync (Debian's isync) into fresh targets, back to back;
//! then a no-change re-run of each. Prints messages/s, MB/s, CPU seconds per GB, peak RSS, and
//! mailfleet's ratio to mbsync. Each copy is checked complete (message count per folder).

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::bail;
use futures_util::TryStreamExt;
use mailfleet_testkit::corpus::CorpusSpec;
use mailfleet_testkit::{DovecotServer, StartOptions, connect_login};
use serde_json::json;

use super::measured::{self, Measured};
use super::process::release_binary;
use super::report::{publish, rounded};

const USER: (&str, &str) = ("bench@example.com", "bench-pw");

#[derive(Debug, clap::Args)]
pub struct SingleArgs {
    /// Messages in the mailbox (spread over 14 folders).
    #[arg(long, default_value_t = 10_000)]
    pub messages: usize,
    /// Share of messages carrying a 0.2–3 MB attachment (0.02: the corpus's 1 in 50).
    #[arg(long, default_value_t = 0.02)]
    pub attachment_ratio: f64,
    /// Corpus seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub async fn run(args: &SingleArgs) -> anyhow::Result<()> {
    let binary = release_binary()?;
    if Command::new("mbsync").arg("--version").output().is_err() {
        bail!("mbsync not found: apt-get install isync");
    }
    let source = DovecotServer::start(StartOptions::users(&[USER]))?;
    let spec = CorpusSpec {
        messages: args.messages,
        seed: args.seed,
        large_attachment_ratio: args.attachment_ratio,
        ..Default::default()
    };
    let seeded = mailfleet_testkit::seed(source.port(), USER.0, USER.1, &spec)
        .await
        .map_err(|e| anyhow::anyhow!("seeding: {e}"))?;
    let source_counts = folder_counts(source.port()).await?;
    let megabytes = mailbox_bytes(source.base_dir()) as f64 / 1e6;
    eprintln!("seeded {seeded} messages, {megabytes:.0} MB");

    let work = tempfile::tempdir()?;
    let mut rows = Vec::new();
    for tool in [Tool::Mailfleet, Tool::Mbsync] {
        let target = DovecotServer::start(StartOptions::users(&[USER]))?;
        let dir = work.path().join(tool.name());
        std::fs::create_dir_all(&dir)?;
        let full = measured::run(tool.command(&binary, &source, &target, &dir)?, tool.name())?;
        let copied = folder_counts(target.port()).await?;
        if copied != source_counts {
            bail!(
                "{} left the target incomplete: {copied:?} vs {source_counts:?}",
                tool.name()
            );
        }
        let rerun = measured::run(tool.command(&binary, &source, &target, &dir)?, tool.name())?;
        eprintln!(
            "{}: {:.1} s, re-run {:.1} s",
            tool.name(),
            full.seconds,
            rerun.seconds
        );
        rows.push((tool, full, rerun));
    }

    let figure = |m: &Measured| {
        json!({
            "seconds": rounded(m.seconds, 2),
            "messages_per_second": rounded(seeded as f64 / m.seconds, 1),
            "megabytes_per_second": rounded(megabytes / m.seconds, 2),
            "cpu_seconds_per_gb": rounded(m.cpu_seconds / (megabytes / 1000.0), 2),
            "peak_rss_mib": rounded(m.peak_rss_mib, 1),
        })
    };
    let (_, fleet_full, fleet_rerun) = rows[0];
    let (_, mbsync_full, mbsync_rerun) = rows[1];
    publish(
        "single",
        &format!(
            "bench single: {seeded} messages, {megabytes:.0} MB, Dovecot -> Dovecot on loopback"
        ),
        &[
            ("messages", json!(seeded)),
            ("megabytes", rounded(megabytes, 1)),
            ("mailfleet", figure(&fleet_full)),
            ("mbsync", figure(&mbsync_full)),
            ("mailfleet_rerun_seconds", rounded(fleet_rerun.seconds, 2)),
            ("mbsync_rerun_seconds", rounded(mbsync_rerun.seconds, 2)),
            (
                "throughput_ratio_mailfleet_to_mbsync",
                rounded(mbsync_full.seconds / fleet_full.seconds, 2),
            ),
            (
                "rerun_time_ratio_mailfleet_to_mbsync",
                rounded(fleet_rerun.seconds / mbsync_rerun.seconds, 2),
            ),
            (
                "cpu_ratio_mailfleet_to_mbsync",
                rounded(fleet_full.cpu_seconds / mbsync_full.cpu_seconds, 2),
            ),
            (
                "peak_rss_ratio_mailfleet_to_mbsync",
                rounded(fleet_full.peak_rss_mib / mbsync_full.peak_rss_mib, 2),
            ),
            (
                "targets",
                json!("throughput >= 1.5, re-run time <= 2, CPU <= 1, RSS < 1"),
            ),
        ],
    )?;
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum Tool {
    Mailfleet,
    Mbsync,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Mailfleet => "mailfleet",
            Tool::Mbsync => "mbsync",
        }
    }

    /// The tool's command copying `source` into `target`, keeping its state under `dir`.
    fn command(
        self,
        binary: &Path,
        source: &DovecotServer,
        target: &DovecotServer,
        dir: &Path,
    ) -> anyhow::Result<Command> {
        let mut command = match self {
            Tool::Mailfleet => {
                let csv = dir.join("users.csv");
                std::fs::write(
                    &csv,
                    format!(
                        "EmailAddress,UserName,Password\n{0},{0},{1}\n",
                        USER.0, USER.1
                    ),
                )?;
                let mut command = Command::new(binary);
                command
                    .args(["migrate", "--json", "--csv"])
                    .arg(&csv)
                    .args(["--source", &source.url(), "--target", &target.url()])
                    .arg("--state-dir")
                    .arg(dir.join("state"))
                    .env("MAILFLEET_LOG", "warn");
                command
            }
            Tool::Mbsync => {
                let config = dir.join("mbsyncrc");
                std::fs::create_dir_all(dir.join("sync-state"))?;
                std::fs::write(
                    &config,
                    mbsync_config(source, target, &dir.join("sync-state")),
                )?;
                let mut command = Command::new("mbsync");
                command.arg("-c").arg(&config).args(["-q", "-a"]);
                command
            }
        };
        command.stdout(Stdio::null());
        Ok(command)
    }
}

/// A one-way copy source → target of every folder, as an administrator would set up mbsync
/// for a migration: pull, create folders on the target, keep arrival dates, never expunge.
fn mbsync_config(source: &DovecotServer, target: &DovecotServer, state: &Path) -> String {
    let account = |name: &str, port: u16| {
        format!(
            "IMAPAccount {name}\nHost 127.0.0.1\nPort {port}\nUser {}\nPass {}\nSSLType None\nAuthMechs LOGIN\n\nIMAPStore {name}-store\nAccount {name}\n\n",
            USER.0, USER.1
        )
    };
    format!(
        "{}{}Channel migrate\nFar :source-store:\nNear :target-store:\nPatterns *\nCreate Near\nSync Pull\nExpunge None\nCopyArrivalDate yes\nSyncState {}/\n",
        account("source", source.port()),
        account("target", target.port()),
        state.display()
    )
}

/// Messages per folder of the benchmark user on the server at `port`.
async fn folder_counts(port: u16) -> anyhow::Result<Vec<(String, u32)>> {
    let mut session = connect_login(port, USER.0, USER.1)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let names: Vec<String> = session
        .list(Some(""), Some("*"))
        .await?
        .try_collect::<Vec<_>>()
        .await?
        .iter()
        .filter(|n| {
            !n.attributes()
                .iter()
                .any(|a| matches!(a, async_imap::types::NameAttribute::NoSelect))
        })
        .map(|n| n.name().to_owned())
        .collect();
    let mut counts = Vec::new();
    for name in names {
        let status = session.status(&name, "(MESSAGES)").await?;
        if status.exists > 0 {
            counts.push((name, status.exists));
        }
    }
    counts.sort();
    session.logout().await?;
    Ok(counts)
}

/// Bytes of the mailbox files under a Dovecot's base dir (sdbox: one file per message).
fn mailbox_bytes(base: &Path) -> u64 {
    fn walk(path: &Path) -> u64 {
        let Ok(entries) = std::fs::read_dir(path) else {
            return 0;
        };
        entries
            .flatten()
            .map(|entry| match entry.file_type() {
                Ok(kind) if kind.is_dir() => walk(&entry.path()),
                Ok(_) if entry.file_name().to_string_lossy().starts_with("u.") => {
                    entry.metadata().map_or(0, |m| m.len())
                }
                _ => 0,
            })
            .sum()
    }
    walk(&base.join("mail"))
}
