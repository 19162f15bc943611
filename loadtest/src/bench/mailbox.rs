//! What a benchmark reads back from a server to check a copy is complete.

/// Messages over all folders of `(login, password)`'s mailbox on the server at `port`.
pub async fn message_total(port: u16, user: (&str, &str)) -> anyhow::Result<u64> {
    let counts = folder_counts(port, user).await?;
    Ok(counts.iter().map(|(_, count)| u64::from(*count)).sum())
}

/// Messages per non-empty folder, sorted by folder name (`testkit`'s, as an `anyhow` result).
pub async fn folder_counts(port: u16, user: (&str, &str)) -> anyhow::Result<Vec<(String, u32)>> {
    mailfleet_testkit::client::folder_counts(port, user)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}
