//! `loadtest bench plan`: how long the coordinator takes to turn a full-size migration CSV into
//! work, and how much memory it needs: validate every row, seal every password into Redis,
//! publish one discovery task per user with publisher confirms. Admission control is opened
//! to the whole CSV (`--max-concurrent-migrations` = rows) so that every task is published;
//! with the default of 20 the coordinator publishes 20 and the rest as users finish.
//! Measured from process start until the broker holds every task.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mailfleet_shared::queue::TaskQueue;
use mailfleet_stores::rabbitmq_queue::{DELIVERY_LIMIT, RabbitMqQueue};
use serde_json::json;

use super::process::{BROKER, Isolation, cpu_seconds, peak_rss_mib, release_binary};
use super::report::{publish, rounded};

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Rows of the generated CSV (a migration CSV holds at most 50,000).
    #[arg(long, default_value_t = 50_000)]
    pub rows: usize,
}

pub async fn run(args: &PlanArgs) -> anyhow::Result<()> {
    let binary = release_binary()?;
    let dir = tempfile::tempdir()?;
    let csv = dir.path().join("users.csv");
    write_csv(&csv, args.rows)?;
    let csv_bytes = std::fs::metadata(&csv)?.len();

    let bytes = std::fs::read(&csv)?;
    let started = Instant::now();
    let parsed = mailfleet_shared::migration_csv::parse_migration_csv(&bytes)
        .map_err(|errors| anyhow::anyhow!("generated CSV invalid: {errors}"))?;
    let validate = started.elapsed();
    assert_eq!(parsed.len(), args.rows);

    let isolation = Isolation::new("plan");
    let depth = RabbitMqQueue::connect(BROKER, isolation.queue_names(), DELIVERY_LIMIT, 1)
        .await
        .map_err(|e| anyhow::anyhow!("RabbitMQ at {BROKER}: {e}"))?;
    let started = Instant::now();
    let mut coordinator = coordinator_command(&isolation, &binary, &csv, args.rows, dir.path())
        .spawn()
        .context("starting the coordinator")?;
    let pid = coordinator.id();
    let mut published = 0;
    while published < args.rows {
        if let Some(status) = coordinator.try_wait()? {
            bail!("the coordinator exited early ({status}) after {published} tasks");
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("only {published} of {} tasks after 10 minutes", args.rows);
        }
        published = depth
            .pending_tasks()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))? as usize;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    let rss = peak_rss_mib(pid).unwrap_or(f64::NAN);
    let cpu = cpu_seconds(pid).unwrap_or(f64::NAN);
    coordinator.kill()?;
    coordinator.wait()?;
    depth.close();
    isolation.clean_up().await?;

    publish(
        "plan",
        &format!(
            "bench plan: {} rows, validate + seal + publish with confirms",
            args.rows
        ),
        &[
            ("rows", json!(args.rows)),
            ("csv_bytes", json!(csv_bytes)),
            (
                "validate_in_process_ms",
                rounded(validate.as_secs_f64() * 1000.0, 1),
            ),
            (
                "plan_and_publish_seconds",
                rounded(elapsed.as_secs_f64(), 2),
            ),
            ("coordinator_peak_rss_mib", rounded(rss, 1)),
            ("coordinator_cpu_seconds", rounded(cpu, 2)),
            ("target", json!("<= 10 s and <= 200 MB for 50,000 rows")),
        ],
    )?;
    Ok(())
}

fn coordinator_command(
    isolation: &Isolation,
    binary: &std::path::PathBuf,
    csv: &Path,
    rows: usize,
    dir: &Path,
) -> Command {
    // No worker takes the tasks, so the servers are never contacted.
    let mut command = isolation.command(binary);
    command
        .arg("coordinator")
        .arg("--csv")
        .arg(csv)
        .args([
            "--source",
            "imap://127.0.0.1:9",
            "--target",
            "imap://127.0.0.1:9",
        ])
        .args(["--max-concurrent-migrations", &rows.to_string()])
        .arg("--state-dir")
        .arg(dir.join("state"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    command
}

/// A valid migration CSV of `rows` users with distinct addresses and random passwords.
fn write_csv(path: &Path, rows: usize) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "EmailAddress,UserName,Password")?;
    for i in 0..rows {
        let password: u64 = rand::random();
        writeln!(
            out,
            "user{i:05}@plan-bench.example,user{i:05},Pw-{password:016x}"
        )?;
    }
    out.flush()?;
    Ok(())
}
