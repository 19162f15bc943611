//! `loadtest bench fleet`: many seeded mailboxes between two local Dovecot servers through the
//! distributed mode as deployed — `mailfleet coordinator` and N `mailfleet worker` processes on
//! the local RabbitMQ and Redis — timed from the coordinator's start to its exit; then the same
//! mailboxes copied into a fresh target by N mbsync processes in parallel, one mailbox each, as
//! an administrator scripting mbsync would run them.

use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use futures_util::{StreamExt, TryStreamExt};
use mailfleet_testkit::corpus::CorpusSpec;
use mailfleet_testkit::{DovecotServer, StartOptions};
use serde_json::{Value, json};

use super::mailbox::message_total;
use super::mbsync::mbsync_config;
use super::measured;
use super::process::{Isolation, cpu_seconds, peak_rss_mib, release_binary};
use super::report::{publish, rounded};
use super::single::Rival;

#[derive(Debug, clap::Args)]
pub struct FleetArgs {
    /// Mailboxes in the batch.
    #[arg(long, default_value_t = 100)]
    pub mailboxes: usize,
    /// Messages per mailbox (spread over the corpus's folders).
    #[arg(long, default_value_t = 200)]
    pub messages: usize,
    /// Worker processes.
    #[arg(long, default_value_t = 3)]
    pub workers: usize,
    /// Tasks per worker process.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Users in flight at once (the coordinator's admission control).
    #[arg(long, default_value_t = 20)]
    pub max_concurrent_migrations: usize,
    /// Corpus seed (the same seed gives the same mail).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// One message in 50 carries a 0.2–3 MB attachment.
    #[arg(long)]
    pub large_attachments: bool,
    /// mbsync processes run at once for the comparison (default: workers × concurrency, the
    /// tasks mailfleet runs at once); 0 skips the comparison.
    #[arg(long)]
    pub mbsync_parallel: Option<usize>,
}

pub async fn run(args: &FleetArgs) -> anyhow::Result<()> {
    let binary = release_binary()?;
    let users: Vec<(String, String)> = (0..args.mailboxes)
        .map(|i| (format!("fleet{i:04}@bench.example"), format!("pw-{i}")))
        .collect();
    let user_refs: Vec<(&str, &str)> = users
        .iter()
        .map(|(u, p)| (u.as_str(), p.as_str()))
        .collect();
    let source = DovecotServer::start(StartOptions::users(&user_refs))?;
    let target = DovecotServer::start(StartOptions::users(&user_refs))?;
    let seeded = seed_source(&source, &users, args).await?;
    eprintln!("seeded {seeded} messages into {} mailboxes", users.len());

    let dir = tempfile::tempdir()?;
    let csv = dir.path().join("users.csv");
    let mut text = String::from("EmailAddress,UserName,Password\n");
    for (user, password) in &users {
        text.push_str(&format!("{user},{user},{password}\n"));
    }
    std::fs::write(&csv, text)?;

    let isolation = Isolation::new("fleet");
    let mut workers: Vec<Child> = (0..args.workers)
        .map(|_| {
            isolation
                .command(&binary)
                .args(["worker", "--concurrency", &args.concurrency.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
        })
        .collect::<Result<_, _>>()
        .context("starting workers")?;
    let started = Instant::now();
    let output = isolation
        .command(&binary)
        .arg("coordinator")
        .arg("--csv")
        .arg(&csv)
        .args([
            "--source",
            &source.url(),
            "--target",
            &target.url(),
            "--json",
        ])
        .args([
            "--max-concurrent-migrations",
            &args.max_concurrent_migrations.to_string(),
        ])
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .stderr(Stdio::inherit())
        .output()
        .context("running the coordinator")?;
    let elapsed = started.elapsed().as_secs_f64();
    let worker_rss = workers
        .iter()
        .filter_map(|w| peak_rss_mib(w.id()))
        .fold(0.0, f64::max);
    let worker_cpu: f64 = workers.iter().filter_map(|w| cpu_seconds(w.id())).sum();
    for worker in &mut workers {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &worker.id().to_string()])
            .status();
        worker.wait()?;
    }
    isolation.clean_up().await?;
    let results: Value = serde_json::from_slice(&output.stdout).context("coordinator JSON")?;
    if !output.status.success() {
        bail!("the migration did not complete: {results}");
    }
    let (messages, bytes) = totals(&results);
    if messages != seeded as u64 {
        bail!("{messages} messages migrated, {seeded} seeded");
    }
    let megabytes = bytes as f64 / 1e6;
    let parallel = args
        .mbsync_parallel
        .unwrap_or(args.workers * args.concurrency);
    let mbsync = if parallel > 0 && !Rival::Mbsync.installed() {
        json!("not run: mbsync is not installed (apt-get install isync)")
    } else if parallel > 0 {
        let target = DovecotServer::start(StartOptions::users(&user_refs))?;
        let run = parallel_mbsync(&source, &target, &user_refs, parallel, dir.path())?;
        let mut copied = 0;
        for user in &user_refs {
            copied += message_total(target.port(), *user).await?;
        }
        if copied != seeded as u64 {
            bail!("mbsync left {copied} of {seeded} messages on its target");
        }
        eprintln!("{parallel} parallel mbsync: {:.1} s", run.seconds);
        json!({
            "processes_at_once": parallel,
            "seconds": rounded(run.seconds, 2),
            "messages_per_second": rounded(messages as f64 / run.seconds, 1),
            "cpu_seconds_total": rounded(run.cpu_seconds, 2),
            "mailfleet_throughput_ratio": rounded(run.seconds / elapsed, 2),
            "target": "mailfleet_throughput_ratio >= 0.9",
        })
    } else {
        json!("not run (--mbsync-parallel 0)")
    };
    publish(
        "fleet",
        &format!(
            "bench fleet: {} mailboxes, {} workers x {} tasks, coordinator + workers on RabbitMQ and Redis",
            args.mailboxes, args.workers, args.concurrency
        ),
        &[
            ("mailboxes", json!(args.mailboxes)),
            ("messages", json!(messages)),
            ("megabytes", rounded(megabytes, 1)),
            ("workers", json!(args.workers)),
            ("concurrency_per_worker", json!(args.concurrency)),
            (
                "max_concurrent_migrations",
                json!(args.max_concurrent_migrations),
            ),
            ("seconds", rounded(elapsed, 2)),
            ("messages_per_second", rounded(messages as f64 / elapsed, 1)),
            ("megabytes_per_second", rounded(megabytes / elapsed, 2)),
            ("worker_peak_rss_mib_max", rounded(worker_rss, 1)),
            ("worker_cpu_seconds_total", rounded(worker_cpu, 2)),
            ("mbsync_in_parallel", mbsync),
        ],
    )?;
    Ok(())
}

struct ParallelRun {
    seconds: f64,
    cpu_seconds: f64,
}

/// Copies each user's mailbox with its own mbsync process, `parallel` processes at a time.
fn parallel_mbsync(
    source: &DovecotServer,
    target: &DovecotServer,
    users: &[(&str, &str)],
    parallel: usize,
    dir: &Path,
) -> anyhow::Result<ParallelRun> {
    let next = AtomicUsize::new(0);
    let cpu_before = measured::children_cpu_seconds();
    let started = Instant::now();
    std::thread::scope(|scope| {
        let runners: Vec<_> = (0..parallel)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(user) = users.get(index) else {
                            return Ok(());
                        };
                        let state = dir.join(format!("mbsync-{index}"));
                        std::fs::create_dir_all(&state)?;
                        let config = state.join("mbsyncrc");
                        std::fs::write(&config, mbsync_config(source, target, *user, &state))?;
                        let status = std::process::Command::new("mbsync")
                            .arg("-c")
                            .arg(&config)
                            .args(["-q", "-a"])
                            .stdout(Stdio::null())
                            .stderr(Stdio::null())
                            .status()
                            .context("running mbsync (apt-get install isync)")?;
                        if !status.success() {
                            bail!("mbsync for {} failed: {status}", user.0);
                        }
                    }
                })
            })
            .collect();
        runners
            .into_iter()
            .try_for_each(|runner| runner.join().unwrap_or_else(|_| bail!("runner panicked")))
    })?;
    Ok(ParallelRun {
        seconds: started.elapsed().as_secs_f64(),
        cpu_seconds: measured::children_cpu_seconds() - cpu_before,
    })
}

/// Seeds every mailbox (8 at a time); returns the number of messages.
async fn seed_source(
    source: &DovecotServer,
    users: &[(String, String)],
    args: &FleetArgs,
) -> anyhow::Result<usize> {
    let port = source.port();
    let counts: Vec<usize> = futures_util::stream::iter(users.iter().enumerate())
        .map(|(i, (user, password))| async move {
            let spec = CorpusSpec {
                messages: args.messages,
                seed: args.seed + i as u64,
                large_attachment_ratio: if args.large_attachments { 0.02 } else { 0.0 },
                ..Default::default()
            };
            mailfleet_testkit::seed(port, user, password, &spec)
                .await
                .map_err(|e| anyhow::anyhow!("seeding {user}: {e}"))
        })
        .buffer_unordered(8)
        .try_collect()
        .await?;
    Ok(counts.iter().sum())
}

/// Messages confirmed on the target and bytes copied, over every user of the coordinator's JSON.
fn totals(results: &Value) -> (u64, u64) {
    let users = results["users"].as_array().cloned().unwrap_or_default();
    users.iter().fold((0, 0), |(messages, bytes), user| {
        (
            messages + user["items_synced"].as_u64().unwrap_or(0),
            bytes + user["bytes_copied"].as_u64().unwrap_or(0),
        )
    })
}
