//! Printing a run's results: one JSON document (`--json`) or a human summary.

use std::io::Write;

use super::collector::UserResult;

#[derive(serde::Serialize)]
struct JsonSummary<'a> {
    users: &'a [UserResult],
    completed: usize,
    failed: usize,
}

pub fn print_json(results: &[UserResult]) -> std::io::Result<()> {
    let failed = results.iter().filter(|r| !r.status.is_success()).count();
    let summary = JsonSummary {
        users: results,
        completed: results.len() - failed,
        failed,
    };
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &summary)?;
    writeln!(out)
}

pub fn print_human(results: &[UserResult]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for r in results {
        writeln!(
            out,
            "{:<32} {:<22} {:>3} folders {:>7} synced ({} copied, {}) {:>4} skipped",
            r.email,
            format!("{:?}", r.status),
            r.folders.len(),
            r.items_synced,
            r.items_copied,
            human_bytes(r.bytes_copied),
            r.items_skipped
        )?;
        if r.flags_updated + r.moved + r.deleted > 0 || !r.deleted_on_source_kept.is_empty() {
            writeln!(
                out,
                "    mirrored from the source: {} flags updated, {} moved, {} deleted, {} deleted on the source and kept",
                r.flags_updated,
                r.moved,
                r.deleted,
                r.deleted_on_source_kept.len()
            )?;
        }
        for error in &r.errors {
            writeln!(out, "    error: {error}")?;
        }
        for item in &r.deleted_on_source_kept {
            writeln!(
                out,
                "    kept in {}: {:?} ({}): deleted on the source",
                item.folder,
                item.subject.as_deref().unwrap_or("(no subject)"),
                item.date.as_deref().unwrap_or("no date"),
            )?;
        }
        for item in &r.skipped {
            writeln!(
                out,
                "    skipped in {}: {:?} ({}, {} bytes): {}",
                item.folder,
                item.subject.as_deref().unwrap_or("(no subject)"),
                item.date.as_deref().unwrap_or("no date"),
                item.size.map_or_else(|| "?".to_owned(), |s| s.to_string()),
                item.reason
            )?;
        }
    }
    let failed = results.iter().filter(|r| !r.status.is_success()).count();
    writeln!(
        out,
        "{} users: {} completed, {failed} failed",
        results.len(),
        results.len() - failed
    )
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GB", b as f64 / f64::from(1u32 << 30)),
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / f64::from(1u32 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}
