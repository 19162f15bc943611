//! `loadtest bench single`: one large mailbox Dovecot → Dovecot on loopback, copied by
//! mailfleet (embedded mode) and by each installed rival (mbsync, OfflineIMAP, imapsync) into
//! fresh targets, back to back, for several rounds; after each full copy the same tool runs
//! again with nothing to copy (a no-change incremental pass), then about 1 % of the source's
//! messages are changed as a user would (`user_changes`) and the same tool runs once more (an
//! incremental pass). Prints each tool's median messages/s, MB/s, CPU seconds per GB, peak RSS
//! and pass times, and mailfleet's ratios to each rival. Every copy is checked complete
//! (message count per folder) before its time counts.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::bail;
use mailfleet_testkit::corpus::CorpusSpec;
use mailfleet_testkit::user_changes::change_one_percent;
use mailfleet_testkit::{DovecotServer, StartOptions};
use serde_json::{Value, json};

use super::mailbox::folder_counts;
use super::mbsync::mbsync_config;
use super::measured::{self, Measured};
use super::process::{migrate_command, release_binary, single_user_csv};
use super::report::{publish, rounded};

const USER: (&str, &str) = ("bench@example.com", "bench-pw");

#[derive(Debug, clap::Args)]
pub struct SingleArgs {
    /// Messages in the mailbox (spread over 14 folders).
    #[arg(long, default_value_t = 10_000)]
    pub messages: usize,
    /// Share of messages carrying a 0.2–3 MB attachment (0.025 makes the 10,000 messages
    /// weigh over 500 MB).
    #[arg(long, default_value_t = 0.025)]
    pub attachment_ratio: f64,
    /// Corpus seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Rounds per tool; the table shows each figure's median.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Rivals to run beside mailfleet, each only if installed.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "mbsync,offlineimap,imapsync"
    )]
    pub against: Vec<Rival>,
}

pub async fn run(args: &SingleArgs) -> anyhow::Result<()> {
    let binary = release_binary()?;
    let mut tools = vec![Tool::Mailfleet];
    for rival in &args.against {
        if rival.installed() {
            tools.push(Tool::Rival(*rival));
        } else {
            eprintln!(
                "{} is not installed; {}",
                rival.name(),
                rival.install_hint()
            );
        }
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
    let megabytes = mailbox_bytes(source.base_dir()) as f64 / 1e6;
    eprintln!("seeded {seeded} messages, {megabytes:.0} MB");

    let work = tempfile::tempdir()?;
    let mut runs: BTreeMap<&str, Vec<Round>> = BTreeMap::new();
    let mut changed = Vec::new();
    // Rounds interleave the tools, so a slow spell of the shared machine hits all of them.
    for round in 1..=args.rounds.max(1) {
        for tool in &tools {
            let target = DovecotServer::start(StartOptions::users(&[USER]))?;
            let dir = work.path().join(format!("{}-{round}", tool.name()));
            std::fs::create_dir_all(&dir)?;
            // Each round's changes stay on the source: the next copy is checked against it now.
            let source_counts = folder_counts(source.port(), USER).await?;
            let full = measured::run(tool.command(&binary, &source, &target, &dir)?, tool.name())?;
            let copied = folder_counts(target.port(), USER).await?;
            if copied != source_counts {
                bail!(
                    "{} left the target incomplete: {copied:?} vs {source_counts:?}",
                    tool.name()
                );
            }
            let rerun = measured::run(tool.command(&binary, &source, &target, &dir)?, tool.name())?;
            let changes = change_one_percent(source.port(), USER, changed.len())
                .await
                .map_err(|e| anyhow::anyhow!("changing the source: {e}"))?;
            changed.push(changes.total());
            let incremental =
                measured::run(tool.command(&binary, &source, &target, &dir)?, tool.name())?;
            check_incremental(*tool, &target, &folder_counts(source.port(), USER).await?).await?;
            eprintln!(
                "round {round}: {}: {:.1} s, re-run {:.2} s, incremental ({} changes: {changes:?}) {:.2} s",
                tool.name(),
                full.seconds,
                rerun.seconds,
                changes.total(),
                incremental.seconds
            );
            runs.entry(tool.name()).or_default().push(Round {
                full,
                rerun,
                incremental,
            });
        }
    }

    let medians: BTreeMap<&str, Round> = runs
        .iter()
        .map(|(name, rounds)| (*name, Round::median(rounds)))
        .collect();
    let figure = |name: &str| {
        let Round {
            full,
            rerun,
            incremental,
        } = medians[name];
        json!({
            "seconds": rounded(full.seconds, 2),
            "messages_per_second": rounded(seeded as f64 / full.seconds, 1),
            "megabytes_per_second": rounded(megabytes / full.seconds, 2),
            "cpu_seconds_per_gb": rounded(full.cpu_seconds / (megabytes / 1000.0), 2),
            "peak_rss_mib": rounded(full.peak_rss_mib, 1),
            "rerun_seconds": rounded(rerun.seconds, 2),
            "incremental_seconds": rounded(incremental.seconds, 2),
            "rounds_seconds": runs[name].iter().map(|r| rounded(r.full.seconds, 2)).collect::<Vec<_>>(),
            "rounds_rerun_seconds": runs[name].iter().map(|r| rounded(r.rerun.seconds, 3)).collect::<Vec<_>>(),
            "rounds_incremental_seconds": runs[name].iter().map(|r| rounded(r.incremental.seconds, 3)).collect::<Vec<_>>(),
        })
    };
    let mut rows: Vec<(String, Value)> = vec![
        ("messages".into(), json!(seeded)),
        ("megabytes".into(), rounded(megabytes, 1)),
        ("rounds".into(), json!(args.rounds.max(1))),
        ("changes_per_incremental_pass".into(), json!(changed)),
    ];
    for tool in &tools {
        rows.push((tool.name().into(), figure(tool.name())));
    }
    let ours = medians[Tool::Mailfleet.name()];
    for tool in tools.iter().skip(1) {
        let theirs = medians[tool.name()];
        rows.push((
            format!("mailfleet_vs_{}", tool.name()),
            json!({
                "throughput": rounded(theirs.full.seconds / ours.full.seconds, 2),
                "rerun_time": rounded(ours.rerun.seconds / theirs.rerun.seconds, 2),
                "incremental_time": rounded(ours.incremental.seconds / theirs.incremental.seconds, 2),
                "cpu_per_gb": rounded(ours.full.cpu_seconds / theirs.full.cpu_seconds, 2),
                "peak_rss": rounded(ours.full.peak_rss_mib / theirs.full.peak_rss_mib, 2),
            }),
        ));
    }
    rows.push((
        "targets".into(),
        json!("vs mbsync: throughput >= 1.5, rerun_time <= 1, cpu_per_gb <= 1, peak_rss < 1; vs offlineimap and imapsync: throughput >= 5"),
    ));
    let rows: Vec<(&str, Value)> = rows.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    publish(
        "single",
        &format!(
            "bench single: {seeded} messages, {megabytes:.0} MB, Dovecot -> Dovecot on loopback, median of {} rounds",
            args.rounds.max(1)
        ),
        &rows,
    )?;
    Ok(())
}

/// One round of one tool: the full copy, the no-change re-run, the incremental pass after 1 %
/// of the messages changed.
#[derive(Debug, Clone, Copy)]
struct Round {
    full: Measured,
    rerun: Measured,
    incremental: Measured,
}

impl Round {
    fn median(rounds: &[Round]) -> Round {
        let of = |pick: fn(&Round) -> Measured| {
            Measured::median(&rounds.iter().map(pick).collect::<Vec<_>>())
        };
        Round {
            full: of(|r| r.full),
            rerun: of(|r| r.rerun),
            incremental: of(|r| r.incremental),
        }
    }
}

/// After the incremental pass: mailfleet's target is the source, folder by folder (moves
/// mirrored, nothing twice); a rival's lacks nothing (mbsync, told never to expunge, leaves a
/// moved message's old copy behind, marked `\Deleted`).
async fn check_incremental(
    tool: Tool,
    target: &DovecotServer,
    source_counts: &[(String, u32)],
) -> anyhow::Result<()> {
    let copied = folder_counts(target.port(), USER).await?;
    let complete = match tool {
        Tool::Mailfleet => copied == source_counts,
        Tool::Rival(_) => source_counts.iter().all(|(folder, count)| {
            copied
                .iter()
                .any(|(name, have)| name == folder && have >= count)
        }),
    };
    if !complete {
        bail!(
            "{}'s incremental pass left the target unlike the source: {copied:?} vs {source_counts:?}",
            tool.name()
        );
    }
    Ok(())
}

/// The tools mailfleet is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Rival {
    Mbsync,
    Offlineimap,
    Imapsync,
}

impl Rival {
    fn name(self) -> &'static str {
        match self {
            Rival::Mbsync => "mbsync",
            Rival::Offlineimap => "offlineimap",
            Rival::Imapsync => "imapsync",
        }
    }

    pub fn installed(self) -> bool {
        Command::new(self.name())
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    }

    fn install_hint(self) -> &'static str {
        match self {
            Rival::Mbsync => "apt-get install isync",
            Rival::Offlineimap => "apt-get install offlineimap",
            Rival::Imapsync => "put an imapsync executable on PATH (https://imapsync.lamiral.info)",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Tool {
    Mailfleet,
    Rival(Rival),
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Mailfleet => "mailfleet",
            Tool::Rival(rival) => rival.name(),
        }
    }

    /// The tool's command copying `source` into `target`, keeping its state under `dir` (so
    /// that the same command run again is the tool's incremental sync).
    fn command(
        self,
        binary: &Path,
        source: &DovecotServer,
        target: &DovecotServer,
        dir: &Path,
    ) -> anyhow::Result<Command> {
        let mut command = match self {
            Tool::Mailfleet => migrate_command(
                binary,
                &single_user_csv(dir, USER)?,
                (&source.url(), &target.url()),
                &dir.join("state"),
            ),
            Tool::Rival(Rival::Mbsync) => {
                let config = dir.join("mbsyncrc");
                std::fs::create_dir_all(dir.join("sync-state"))?;
                std::fs::write(
                    &config,
                    mbsync_config(source, target, USER, &dir.join("sync-state")),
                )?;
                let mut command = Command::new("mbsync");
                command.arg("-c").arg(&config).args(["-q", "-a"]);
                command
            }
            Tool::Rival(Rival::Offlineimap) => {
                let config = dir.join("offlineimaprc");
                std::fs::write(
                    &config,
                    offlineimap_config(source, target, &dir.join("metadata")),
                )?;
                let mut command = Command::new("offlineimap");
                command.arg("-c").arg(&config).arg("-o");
                command
            }
            Tool::Rival(Rival::Imapsync) => {
                let mut command = Command::new("imapsync");
                for (side, server) in [("1", source), ("2", target)] {
                    command
                        .arg(format!("--host{side}"))
                        .arg(server.host())
                        .arg(format!("--port{side}"))
                        .arg(server.port().to_string())
                        .arg(format!("--user{side}"))
                        .arg(USER.0)
                        .arg(format!("--password{side}"))
                        .arg(USER.1)
                        .arg(format!("--nossl{side}"))
                        .arg(format!("--notls{side}"));
                }
                // --addheader: without it imapsync leaves messages lacking a Message-ID behind
                // (15 % of the corpus), and the copy would not be complete.
                command
                    .args(["--addheader", "--nolog", "--noreleasecheck", "--tmpdir"])
                    .arg(dir);
                command
            }
        };
        command.stdout(Stdio::null());
        Ok(command)
    }
}

/// OfflineIMAP between two IMAP servers: the source is the read-only "remote", the target the
/// "local" repository it creates folders in.
fn offlineimap_config(source: &DovecotServer, target: &DovecotServer, metadata: &Path) -> String {
    let repository = |name: &str, port: u16, extra: &str| {
        format!(
            "[Repository {name}]\ntype = IMAP\nremotehost = 127.0.0.1\nremoteport = {port}\nremoteuser = {}\nremotepass = {}\nssl = no\nstarttls = no\n{extra}\n",
            USER.0, USER.1
        )
    };
    format!(
        "[general]\naccounts = migrate\nmetadata = {}\nui = quiet\n\n[Account migrate]\nlocalrepository = target\nremoterepository = source\n\n{}{}",
        metadata.display(),
        repository("source", source.port(), "readonly = True\n"),
        repository("target", target.port(), ""),
    )
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
