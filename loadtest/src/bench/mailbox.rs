//! What a benchmark reads back from a server to check a copy is complete.

use futures_util::TryStreamExt;
use mailfleet_testkit::connect_login;

/// Messages over all folders of `(login, password)`'s mailbox on the server at `port`.
pub async fn message_total(port: u16, user: (&str, &str)) -> anyhow::Result<u64> {
    let counts = folder_counts(port, user).await?;
    Ok(counts.iter().map(|(_, count)| u64::from(*count)).sum())
}

/// Messages per non-empty folder of `(login, password)`'s mailbox on the server at `port`,
/// sorted by folder name.
pub async fn folder_counts(port: u16, user: (&str, &str)) -> anyhow::Result<Vec<(String, u32)>> {
    let mut session = connect_login(port, user.0, user.1)
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
