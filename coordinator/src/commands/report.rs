//! `mailfleet report users BATCH --format csv|json|html`: the migration users status report,
//! with the columns of Microsoft's report (status, items synced and skipped, skipped item
//! details, errors, last successful sync, sync durations) and a data consistency score. The
//! three formats are built from the same rows, so they always carry the same numbers.

use std::fmt::Write as _;

use mailfleet_shared::lifecycle::{BatchRecord, ConsistencyScore, UserRecord};
use mailfleet_shared::messages::SkippedItem;
use serde::Serialize;

use crate::backends::open_admin;
use crate::cli::admin::{ReportFormat, ReportUsersArgs};
use crate::error::CliError;
use crate::records;
use crate::settings::Settings;
use crate::tenant_stores::TenantStores;

/// One user's line of the report.
#[derive(Debug, Serialize)]
struct ReportRow<'a> {
    email: &'a str,
    status: String,
    items_synced: u64,
    items_skipped: u64,
    consistency: ConsistencyScore,
    last_successful_sync: Option<String>,
    initial_sync_seconds: Option<f64>,
    last_incremental_sync_seconds: Option<f64>,
    skipped: &'a [SkippedItem],
    flags_updated: u64,
    moved: u64,
    deleted: u64,
    deleted_on_source_kept: &'a [SkippedItem],
    #[serde(skip_serializing_if = "<[SkippedItem]>::is_empty")]
    warnings: &'a [SkippedItem],
    errors: &'a [String],
}

impl<'a> ReportRow<'a> {
    fn of(user: &'a UserRecord) -> Self {
        ReportRow {
            email: &user.email,
            status: user.state.to_string(),
            items_synced: user.items_synced,
            items_skipped: user.items_skipped,
            consistency: user.consistency(),
            last_successful_sync: user.last_successful_sync.map(|at| at.to_rfc3339()),
            initial_sync_seconds: user.initial_sync_seconds.map(round),
            last_incremental_sync_seconds: user.last_incremental_sync_seconds.map(round),
            skipped: &user.skipped,
            flags_updated: user.flags_updated_total,
            moved: user.moved_total,
            deleted: user.deleted_total,
            deleted_on_source_kept: &user.deleted_on_source_kept,
            warnings: &user.warnings,
            errors: &user.errors,
        }
    }
}

fn round(seconds: f64) -> f64 {
    (seconds * 10.0).round() / 10.0
}

pub async fn run(args: &ReportUsersArgs, settings: &Settings) -> Result<(), CliError> {
    let stores: TenantStores = open_admin(settings, &args.state.state_dir).await?.into();
    let text = report(&stores, &args.batch, args.format).await?;
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| CliError::failed(format!("writing {}", path.display()), e))?,
        None => print!("{text}"),
    }
    Ok(())
}

/// The users report of batch `name` in `format`, as the file's text.
pub async fn report(
    stores: &TenantStores,
    name: &str,
    format: ReportFormat,
) -> Result<String, CliError> {
    let batch = records::batch(stores.state.as_ref(), name).await?;
    let users = stores.state.users(&batch.name).await?;
    let rows: Vec<ReportRow> = users.iter().map(ReportRow::of).collect();
    Ok(match format {
        ReportFormat::Csv => csv(&rows)?,
        ReportFormat::Json => json(&batch, &rows),
        ReportFormat::Html => html(&batch, &rows),
    })
}

fn describe_skipped(item: &SkippedItem) -> String {
    format!(
        "{} | {} | {} | {} | {}",
        item.folder,
        item.date.as_deref().unwrap_or("-"),
        item.subject.as_deref().unwrap_or("-"),
        item.size.map_or_else(|| "-".to_owned(), |s| s.to_string()),
        item.reason
    )
}

fn optional<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(String::new, |v| v.to_string())
}

fn csv(rows: &[ReportRow]) -> Result<String, CliError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let failed = |e: csv::Error| CliError::failed("writing the report", e);
    writer
        .write_record([
            "EmailAddress",
            "Status",
            "ItemsSynced",
            "ItemsSkipped",
            "DataConsistencyScore",
            "LastSuccessfulSync",
            "InitialSyncSeconds",
            "LastIncrementalSyncSeconds",
            "SkippedItems",
            "Errors",
            "FlagsUpdated",
            "Moved",
            "Deleted",
            "DeletedOnSourceKept",
        ])
        .map_err(failed)?;
    for row in rows {
        let skipped: Vec<String> = row.skipped.iter().map(describe_skipped).collect();
        writer
            .write_record([
                row.email.to_owned(),
                row.status.clone(),
                row.items_synced.to_string(),
                row.items_skipped.to_string(),
                format!("{:?}", row.consistency),
                optional(row.last_successful_sync.as_deref()),
                optional(row.initial_sync_seconds),
                optional(row.last_incremental_sync_seconds),
                skipped.join("; "),
                row.errors.join("; "),
                row.flags_updated.to_string(),
                row.moved.to_string(),
                row.deleted.to_string(),
                row.deleted_on_source_kept.len().to_string(),
            ])
            .map_err(failed)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| CliError::failed("writing the report", e.into_error()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn json(batch: &BatchRecord, rows: &[ReportRow]) -> String {
    let document = serde_json::json!({
        "batch": batch.name,
        "state": batch.state,
        "users": rows,
    });
    serde_json::to_string_pretty(&document).unwrap_or_default() + "\n"
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One file a person opens in a browser: no scripts, no external resources.
fn html(batch: &BatchRecord, rows: &[ReportRow]) -> String {
    let synced: u64 = rows.iter().map(|r| r.items_synced).sum();
    let skipped: u64 = rows.iter().map(|r| r.items_skipped).sum();
    let with_errors = rows.iter().filter(|r| !r.errors.is_empty()).count();
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>mailfleet: users of batch {name}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2em}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}\
         .Poor,.Failed,.IncrementalFailed{{color:#b00}}.Investigate{{color:#b60}}</style></head><body>\
         <h1>Batch {name}: {state}</h1>\
         <p>{users} users &middot; {synced} items synced &middot; {skipped} items skipped \
         &middot; {with_errors} users with errors</p>\
         <table><thead><tr><th>User</th><th>Status</th><th>Items synced</th><th>Items skipped</th>\
         <th>Data consistency</th><th>Last successful sync</th><th>Initial sync (s)</th>\
         <th>Last incremental sync (s)</th></tr></thead><tbody>\n",
        name = escape(&batch.name),
        state = batch.state,
        users = rows.len(),
    );
    for row in rows {
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td class=\"{status}\">{status}</td><td>{}</td><td>{}</td>\
             <td class=\"{consistency:?}\">{consistency:?}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(row.email),
            row.items_synced,
            row.items_skipped,
            escape(&optional(row.last_successful_sync.as_deref())),
            optional(row.initial_sync_seconds),
            optional(row.last_incremental_sync_seconds),
            status = row.status,
            consistency = row.consistency,
        );
    }
    page.push_str("</tbody></table>\n<h2>Errors</h2>\n<ul>\n");
    for row in rows {
        for error in row.errors {
            let _ = writeln!(page, "<li>{}: {}</li>", escape(row.email), escape(error));
        }
    }
    page.push_str(
        "</ul>\n<h2>Skipped items</h2>\n<table><thead><tr><th>User</th><th>Folder</th>\
        <th>Date</th><th>Subject</th><th>Size</th><th>Reason</th></tr></thead><tbody>\n",
    );
    for row in rows {
        for item in row.skipped {
            let _ = writeln!(
                page,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(row.email),
                escape(&item.folder),
                escape(item.date.as_deref().unwrap_or("")),
                escape(item.subject.as_deref().unwrap_or("")),
                optional(item.size),
                escape(&item.reason)
            );
        }
    }
    page.push_str("</tbody></table>\n</body></html>\n");
    page
}
