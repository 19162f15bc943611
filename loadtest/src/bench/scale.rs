//! `loadtest bench scale`: batches of 1,000, 10,000 and 50,000 small mailboxes, each migrated by
//! one `mailfleet migrate` (embedded mode), to show how the cost per mailbox grows with the size
//! of a batch: validation, planning, the state database, the collector and the report all see
//! every user, so anything worse than linear there shows up as a rising cost per mailbox.
//!
//! The mailboxes are simulated on the source side only: every source login opens one shared
//! small mailbox (Dovecot with a static password and one mail location for all users), so
//! 50,000 mailboxes need no seeding. The target is real: each user gets its own mailbox, written
//! by the migration, and a sample of them is checked complete.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;

use anyhow::bail;
use mailfleet_testkit::corpus::CorpusSpec;
use mailfleet_testkit::{DovecotServer, StartOptions};
use serde_json::{Value, json};

use super::mailbox::message_total;
use super::measured;
use super::process::{migrate_command, release_binary};
use super::report::{publish, rounded};

const PASSWORD: &str = "scale-pw";

#[derive(Debug, clap::Args)]
pub struct ScaleArgs {
    /// Batch sizes (mailboxes), each migrated by one `mailfleet migrate`.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,50000")]
    pub sizes: Vec<usize>,
    /// Messages in the (shared) source mailbox, over INBOX, Sent and Archive.
    #[arg(long, default_value_t = 12)]
    pub messages: usize,
}

pub async fn run(args: &ScaleArgs) -> anyhow::Result<()> {
    let binary = release_binary()?;
    let work = tempfile::tempdir()?;
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755))?;
    let shared = work.path().join("shared-mailbox");
    std::fs::create_dir_all(&shared)?;
    // Dovecot's mail processes run as the dovecot user.
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777))?;
    let source = DovecotServer::start(
        StartOptions::default()
            .with_config(&format!("mail_location = sdbox:{}", shared.display()))
            .with_config(&any_login_with_password()),
    )?;
    let spec = CorpusSpec {
        messages: args.messages,
        folders: ["INBOX", "Sent", "Archive"].map(String::from).to_vec(),
        twin_pairs: 0,
        ..Default::default()
    };
    let per_mailbox = mailfleet_testkit::seed(source.port(), "seed@scale.example", PASSWORD, &spec)
        .await
        .map_err(|e| anyhow::anyhow!("seeding the shared mailbox: {e}"))?;

    let mut rows: Vec<(String, Value)> = vec![("messages_per_mailbox".into(), json!(per_mailbox))];
    let mut costs = Vec::new();
    for &size in &args.sizes {
        let target =
            DovecotServer::start(StartOptions::default().with_config(&any_login_with_password()))?;
        let dir = work.path().join(format!("batch-{size}"));
        std::fs::create_dir_all(&dir)?;
        let csv = dir.join("users.csv");
        std::fs::write(&csv, batch_csv(size))?;
        let mut command = migrate_command(
            &binary,
            &csv,
            (&source.url(), &target.url()),
            &dir.join("state"),
        );
        command.stdout(Stdio::from(std::fs::File::create(dir.join("report.json"))?));
        let measured = measured::run(command, &format!("mailfleet migrate ({size} mailboxes)"))?;
        for user in sample_users(size) {
            let copied = message_total(target.port(), (&user, PASSWORD)).await?;
            if copied != per_mailbox as u64 {
                bail!("{user}: {copied} messages on the target, {per_mailbox} on the source");
            }
        }
        let state_bytes = directory_bytes(&dir.join("state"));
        let wall_ms = measured.seconds * 1000.0 / size as f64;
        eprintln!(
            "{size} mailboxes: {:.1} s, {wall_ms:.2} ms each",
            measured.seconds
        );
        costs.push(wall_ms);
        rows.push((
            format!("mailboxes_{size}"),
            json!({
                "seconds": rounded(measured.seconds, 1),
                "wall_ms_per_mailbox": rounded(wall_ms, 2),
                "cpu_ms_per_mailbox": rounded(measured.cpu_seconds * 1000.0 / size as f64, 2),
                "peak_rss_mib": rounded(measured.peak_rss_mib, 1),
                "state_bytes_per_mailbox": rounded(state_bytes as f64 / size as f64, 0),
            }),
        ));
    }
    if let (Some(first), Some(last)) = (costs.first(), costs.last()) {
        rows.push((
            "wall_per_mailbox_growth_largest_vs_smallest".into(),
            rounded(last / first, 2),
        ));
    }
    rows.push((
        "target".into(),
        json!("cost per mailbox flat (growth ~1.0)"),
    ));
    let rows: Vec<(&str, Value)> = rows.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    publish(
        "scale",
        &format!(
            "bench scale: batches of {:?} small mailboxes ({per_mailbox} messages each), embedded mode",
            args.sizes
        ),
        &rows,
    )?;
    Ok(())
}

/// Every login is accepted with [`PASSWORD`]: a batch's users need no passwd file.
fn any_login_with_password() -> String {
    format!("passdb {{\n  driver = static\n  args = password={PASSWORD}\n}}")
}

fn user(index: usize) -> String {
    format!("user{index:05}@scale.example")
}

fn batch_csv(size: usize) -> String {
    let mut csv = String::from("EmailAddress,UserName,Password\n");
    for index in 0..size {
        let user = user(index);
        csv.push_str(&format!("{user},{user},{PASSWORD}\n"));
    }
    csv
}

/// The first, middle and last users of a batch.
fn sample_users(size: usize) -> Vec<String> {
    let mut indexes = vec![0, size / 2, size.saturating_sub(1)];
    indexes.dedup();
    indexes.into_iter().map(user).collect()
}

fn directory_bytes(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| entry.metadata().ok())
                .map(|metadata| metadata.len())
                .sum()
        })
        .unwrap_or(0)
}
