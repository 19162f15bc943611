//! Printing a run's results: one JSON document (`--json`) or a human summary.

use std::io::Write;

use super::collector::UserResult;
use crate::display;

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
            display::bytes(r.bytes_copied),
            r.items_skipped
        )?;
        if r.flags_updated + r.moved + r.renamed_folders + r.deleted > 0
            || !r.deleted_on_source_kept.is_empty()
        {
            writeln!(
                out,
                "    mirrored from the source: {} flags updated, {} moved, {} folders renamed, {} deleted, {} deleted on the source and kept",
                r.flags_updated,
                r.moved,
                r.renamed_folders,
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
                "    skipped in {}: {:?} ({}, {}): {}",
                item.folder,
                item.subject.as_deref().unwrap_or("(no subject)"),
                item.date.as_deref().unwrap_or("no date"),
                item.size
                    .map_or_else(|| "size unknown".to_owned(), display::bytes),
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
