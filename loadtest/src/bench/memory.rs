//! `loadtest bench memory`: one folder grown from 1,000 to 10,000 to 100,000 messages, copied
//! whole by `mailfleet migrate` into a fresh target at each size. Prints mailfleet's peak RSS at
//! each size: it must stay flat, because bodies are fetched in batches capped by
//! `task_buffer_mb` and a folder's UIDs cost 4 bytes each, whatever the folder's size.

use std::process::Stdio;

use anyhow::bail;
use mailfleet_testkit::corpus::CorpusSpec;
use mailfleet_testkit::{DovecotServer, StartOptions};
use serde_json::{Value, json};

use super::mailbox::folder_counts;
use super::measured;
use super::process::{migrate_command, release_binary, single_user_csv};
use super::report::{publish, rounded};

const USER: (&str, &str) = ("memory@example.com", "memory-pw");

#[derive(Debug, clap::Args)]
pub struct MemoryArgs {
    /// Folder sizes (messages), ascending; the folder grows from one to the next.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    pub sizes: Vec<usize>,
    /// The `task_buffer_mb` setting mailfleet runs with.
    #[arg(long, default_value_t = 16)]
    pub task_buffer_mb: u64,
}

pub async fn run(args: &MemoryArgs) -> anyhow::Result<()> {
    let binary = release_binary()?;
    let source = DovecotServer::start(StartOptions::users(&[USER]))?;
    let work = tempfile::tempdir()?;
    let mut seeded = 0;
    let mut rows: Vec<(String, Value)> =
        vec![("task_buffer_mb".into(), json!(args.task_buffer_mb))];
    let mut peaks = Vec::new();
    for (round, &size) in args.sizes.iter().enumerate() {
        if size < seeded {
            bail!("--sizes must ascend");
        }
        let spec = CorpusSpec {
            messages: size - seeded,
            seed: round as u64 + 1,
            folders: vec!["INBOX".into()],
            twin_pairs: 0,
            ..Default::default()
        };
        seeded += mailfleet_testkit::seed(source.port(), USER.0, USER.1, &spec)
            .await
            .map_err(|e| anyhow::anyhow!("seeding: {e}"))?;
        eprintln!("INBOX holds {seeded} messages");

        let target = DovecotServer::start(StartOptions::users(&[USER]))?;
        let dir = work.path().join(format!("folder-{size}"));
        std::fs::create_dir_all(&dir)?;
        let mut command = migrate_command(
            &binary,
            &single_user_csv(&dir, USER)?,
            (&source.url(), &target.url()),
            &dir.join("state"),
        );
        command
            .env("MAILFLEET_TASK_BUFFER_MB", args.task_buffer_mb.to_string())
            .stdout(Stdio::null());
        let measured = measured::run(command, &format!("mailfleet migrate ({size} messages)"))?;
        let copied = folder_counts(target.port(), USER).await?;
        if copied != [("INBOX".to_owned(), seeded as u32)] {
            bail!("the target holds {copied:?}, the source {seeded} messages in INBOX");
        }
        eprintln!(
            "{seeded} messages: peak RSS {:.1} MiB",
            measured.peak_rss_mib
        );
        peaks.push(measured.peak_rss_mib);
        rows.push((
            format!("folder_of_{seeded}"),
            json!({
                "seconds": rounded(measured.seconds, 1),
                "messages_per_second": rounded(seeded as f64 / measured.seconds, 0),
                "peak_rss_mib": rounded(measured.peak_rss_mib, 1),
            }),
        ));
    }
    if let (Some(first), Some(last)) = (peaks.first(), peaks.last()) {
        rows.push((
            "peak_rss_growth_largest_vs_smallest".into(),
            rounded(last / first, 2),
        ));
    }
    rows.push(("target".into(), json!("peak RSS flat (growth ~1.0)")));
    let rows: Vec<(&str, Value)> = rows.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    publish(
        "memory",
        &format!(
            "bench memory: one folder of {:?} messages, mailfleet's peak RSS",
            args.sizes
        ),
        &rows,
    )?;
    Ok(())
}
