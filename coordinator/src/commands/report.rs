//! `mailfleet report users BATCH --format csv|json|html`: the migration users status report,
//! with the columns of Microsoft's report (status, items synced and skipped, skipped item
//! details, errors, last successful sync, sync durations) and a data consistency score. The
//! three formats are built from the same rows, so they always carry the same numbers.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use mailfleet_shared::lifecycle::{BatchRecord, ConsistencyScore, UserRecord};
use mailfleet_shared::messages::SkippedItem;
use serde::Serialize;

use crate::backends::open_admin;
use crate::cli::admin::{ReportFormat, ReportUsersArgs};
use crate::display;
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
    bytes_copied: u64,
    consistency: ConsistencyScore,
    last_successful_sync: Option<DateTime<Utc>>,
    initial_sync_seconds: Option<f64>,
    last_incremental_sync_seconds: Option<f64>,
    skipped: &'a [SkippedItem],
    flags_updated: u64,
    moved: u64,
    renamed_folders: u64,
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
            bytes_copied: user.bytes_copied_total,
            consistency: user.consistency(),
            last_successful_sync: user.last_successful_sync,
            initial_sync_seconds: user.initial_sync_seconds.map(round),
            last_incremental_sync_seconds: user.last_incremental_sync_seconds.map(round),
            skipped: &user.skipped,
            flags_updated: user.flags_updated_total,
            moved: user.moved_total,
            renamed_folders: user.renamed_folders_total,
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
    write(&text, args.output.as_deref())
}

/// Where `report users` puts the report, made here or by the API: `output`, else stdout.
pub fn write(text: &str, output: Option<&std::path::Path>) -> Result<(), CliError> {
    match output {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| CliError::failed(format!("writing {}", path.display()), e)),
        None => {
            print!("{text}");
            Ok(())
        }
    }
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
        item.size.map_or_else(|| "-".to_owned(), display::bytes),
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
            "FoldersRenamed",
            "Warnings",
        ])
        .map_err(failed)?;
    for row in rows {
        let skipped: Vec<String> = row.skipped.iter().map(describe_skipped).collect();
        let warnings: Vec<String> = row.warnings.iter().map(describe_skipped).collect();
        writer
            .write_record([
                row.email.to_owned(),
                row.status.clone(),
                row.items_synced.to_string(),
                row.items_skipped.to_string(),
                format!("{:?}", row.consistency),
                optional(
                    row.last_successful_sync
                        .map(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true)),
                ),
                optional(row.initial_sync_seconds),
                optional(row.last_incremental_sync_seconds),
                skipped.join("; "),
                row.errors.join("; "),
                row.flags_updated.to_string(),
                row.moved.to_string(),
                row.deleted.to_string(),
                row.deleted_on_source_kept.len().to_string(),
                row.renamed_folders.to_string(),
                warnings.join("; "),
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

/// One file a person opens in a browser: no scripts, no external resources. Times, sizes,
/// durations and counts are shown as people read them (`display`); every section says so when
/// it is empty rather than showing a bare heading.
fn html(batch: &BatchRecord, rows: &[ReportRow]) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>mailfleet: users of batch {name}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2em}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}\
         td.number{{text-align:right}}.none{{color:#666;font-style:italic}}\
         .Poor,.Failed,.IncrementalFailed{{color:#b00}}.Investigate{{color:#b60}}</style></head><body>\
         <h1>Batch {name}: {state}</h1>\n{summary}\n",
        name = escape(&batch.name),
        state = batch.state,
        summary = html_summary(rows),
    );
    let columns = user_columns();
    section(
        &mut page,
        "Users",
        "No users in this batch.",
        &columns
            .iter()
            .map(|(heading, _)| *heading)
            .collect::<Vec<_>>(),
        rows.iter()
            .map(|row| columns.iter().map(|(_, cell)| cell(row)).collect())
            .collect(),
    );
    section(
        &mut page,
        "Errors",
        "No errors: no user failed.",
        &["User", "Error"],
        rows.iter()
            .flat_map(|row| {
                row.errors
                    .iter()
                    .map(|error| vec![Cell::text(row.email), Cell::text(error)])
            })
            .collect(),
    );
    section(
        &mut page,
        "Skipped items",
        "No skipped items.",
        &["User", "Folder", "Date", "Subject", "Size", "Reason"],
        item_rows(rows, |row| row.skipped),
    );
    // Migrated, but not exactly as on the source (CompletedWithWarnings).
    section(
        &mut page,
        "Warnings",
        "No warnings.",
        &["User", "Folder", "Date", "Subject", "Size", "Reason"],
        item_rows(rows, |row| row.warnings),
    );
    section(
        &mut page,
        "Deleted on the source, kept on the target",
        "Nothing deleted on the source was kept on the target.",
        &["User", "Folder", "Date", "Subject", "Size", "Reason"],
        item_rows(rows, |row| row.deleted_on_source_kept),
    );
    page.push_str("</body></html>\n");
    page
}

/// The line under the heading: the batch's totals.
fn html_summary(rows: &[ReportRow]) -> String {
    let total = |figure: fn(&ReportRow) -> u64| rows.iter().map(figure).sum::<u64>();
    let failed = rows.iter().filter(|r| !r.errors.is_empty()).count();
    format!(
        "<p>{} users &middot; {} items synced ({} copied) &middot; {} items skipped \
         &middot; {} users with errors</p>",
        display::count(rows.len() as u64),
        display::count(total(|r| r.items_synced)),
        display::bytes(total(|r| r.bytes_copied)),
        display::count(total(|r| r.items_skipped)),
        display::count(failed as u64),
    )
}

/// One table cell: its text (escaped when written) and how it is shown.
struct Cell {
    text: String,
    class: Option<String>,
}

impl Cell {
    fn text(text: impl Into<String>) -> Self {
        Cell {
            text: text.into(),
            class: None,
        }
    }

    fn number(text: String) -> Self {
        Cell {
            text,
            class: Some("number".into()),
        }
    }

    fn classed(text: String) -> Self {
        Cell {
            class: Some(text.clone()),
            text,
        }
    }
}

type Column = (&'static str, fn(&ReportRow) -> Cell);

/// The users table, one entry per column: its heading and the cell it shows for a user.
fn user_columns() -> Vec<Column> {
    vec![
        ("User", |r| Cell::text(r.email)),
        ("Status", |r| Cell::classed(r.status.clone())),
        ("Items synced", |r| {
            Cell::number(display::count(r.items_synced))
        }),
        ("Items skipped", |r| {
            Cell::number(display::count(r.items_skipped))
        }),
        ("Copied", |r| Cell::number(display::bytes(r.bytes_copied))),
        ("Data consistency", |r| {
            Cell::classed(format!("{:?}", r.consistency))
        }),
        ("Last successful sync", |r| {
            time_cell(r.last_successful_sync)
        }),
        ("Initial sync", |r| duration_cell(r.initial_sync_seconds)),
        ("Last incremental sync", |r| {
            duration_cell(r.last_incremental_sync_seconds)
        }),
        ("Flags updated", |r| {
            Cell::number(display::count(r.flags_updated))
        }),
        ("Moved", |r| Cell::number(display::count(r.moved))),
        ("Folders renamed", |r| {
            Cell::number(display::count(r.renamed_folders))
        }),
        ("Deleted", |r| Cell::number(display::count(r.deleted))),
        ("Deleted on the source, kept", |r| {
            Cell::number(display::count(r.deleted_on_source_kept.len() as u64))
        }),
    ]
}

fn time_cell(at: Option<DateTime<Utc>>) -> Cell {
    Cell::text(at.map(display::time).unwrap_or_default())
}

fn duration_cell(seconds: Option<f64>) -> Cell {
    Cell::number(seconds.map(display::duration).unwrap_or_default())
}

/// Rows of a table of items (skipped, kept) of every user.
fn item_rows<'a>(
    rows: &'a [ReportRow<'a>],
    items: fn(&ReportRow<'a>) -> &'a [SkippedItem],
) -> Vec<Vec<Cell>> {
    rows.iter()
        .flat_map(|row| {
            items(row).iter().map(|item| {
                vec![
                    Cell::text(row.email),
                    Cell::text(item.folder.as_str()),
                    Cell::text(item.date.as_deref().unwrap_or_default()),
                    Cell::text(item.subject.as_deref().unwrap_or_default()),
                    Cell::number(item.size.map(display::bytes).unwrap_or_default()),
                    Cell::text(item.reason.as_str()),
                ]
            })
        })
        .collect()
}

/// A titled table, or a sentence saying it is empty.
fn section(page: &mut String, title: &str, empty: &str, headings: &[&str], rows: Vec<Vec<Cell>>) {
    let _ = writeln!(page, "<h2>{}</h2>", escape(title));
    if rows.is_empty() {
        let _ = writeln!(page, "<p class=\"none\">{}</p>", escape(empty));
        return;
    }
    page.push_str("<table><thead><tr>");
    for heading in headings {
        let _ = write!(page, "<th>{}</th>", escape(heading));
    }
    page.push_str("</tr></thead><tbody>\n");
    for row in rows {
        page.push_str("<tr>");
        for cell in row {
            match cell.class {
                Some(class) => {
                    let _ = write!(
                        page,
                        "<td class=\"{}\">{}</td>",
                        escape(&class),
                        escape(&cell.text)
                    );
                }
                None => {
                    let _ = write!(page, "<td>{}</td>", escape(&cell.text));
                }
            }
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</tbody></table>\n");
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use mailfleet_shared::lifecycle::UserState;

    use super::*;

    fn batch() -> BatchRecord {
        BatchRecord {
            name: "wave-1".into(),
            ..BatchRecord::default()
        }
    }

    #[test]
    fn the_html_report_shows_times_sizes_durations_and_mirror_counts_for_people() {
        let mut user = UserRecord::queued("ann@example.com", "ann", None);
        user.state = UserState::IncrementalSynced;
        user.items_synced = 12_345;
        user.bytes_copied_total = 1_610_612_736;
        user.last_successful_sync = Some(Utc.timestamp_opt(1_796_180_893, 614_009_924).unwrap());
        user.initial_sync_seconds = Some(4_320.4);
        user.last_incremental_sync_seconds = Some(42.0);
        (user.flags_updated_total, user.moved_total) = (7, 3);
        (user.renamed_folders_total, user.deleted_total) = (1, 2);
        user.deleted_on_source_kept = vec![SkippedItem {
            folder: "INBOX".into(),
            subject: Some("<old> & gone".into()),
            date: None,
            size: Some(13_824),
            reason: "deleted on the source; kept on the target".into(),
        }];
        let page = html(&batch(), &[ReportRow::of(&user)]);

        let row = "<tr><td>ann@example.com</td><td class=\"IncrementalSynced\">IncrementalSynced</td>\
                   <td class=\"number\">12,345</td><td class=\"number\">0</td>\
                   <td class=\"number\">1.50 GB</td><td class=\"Perfect\">Perfect</td>\
                   <td>2026-12-02 03:08:13 UTC</td><td class=\"number\">1 h 12 min</td>\
                   <td class=\"number\">42 s</td><td class=\"number\">7</td>\
                   <td class=\"number\">3</td><td class=\"number\">1</td>\
                   <td class=\"number\">2</td><td class=\"number\">1</td></tr>";
        assert!(page.contains(row), "{page}");
        assert!(page.contains("<p class=\"none\">No errors: no user failed.</p>"));
        assert!(page.contains("<p class=\"none\">No skipped items.</p>"));
        assert!(page.contains("<td>&lt;old&gt; &amp; gone</td><td class=\"number\">13.5 KB</td>"));
        assert!(
            !page.contains("614009924") && !page.contains("4320"),
            "{page}"
        );
    }

    #[test]
    fn every_empty_section_of_the_html_report_says_so() {
        let page = html(&batch(), &[]);
        for empty in [
            "No users in this batch.",
            "No errors: no user failed.",
            "No skipped items.",
            "No warnings.",
            "Nothing deleted on the source was kept on the target.",
        ] {
            assert!(page.contains(empty), "{empty}: {page}");
        }
        assert!(!page.contains("<table>"), "{page}");
    }

    /// A keyword the target could not keep reaches every format, not only JSON.
    #[test]
    fn warnings_are_in_the_csv_and_html_reports() {
        let mut user = UserRecord::queued("ann@contoso.com", "ann", None);
        user.warnings.push(SkippedItem {
            folder: "INBOX".into(),
            subject: Some("Plans".into()),
            date: None,
            size: None,
            reason: "keyword ProjectX not in the target's PERMANENTFLAGS".into(),
        });
        let rows = [ReportRow::of(&user)];
        let text = csv(&rows).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let headers = reader.headers().unwrap().clone();
        let record = reader.records().next().unwrap().unwrap();
        let column = headers.iter().position(|h| h == "Warnings").unwrap();
        assert!(record[column].contains("INBOX | - | Plans"), "{text}");
        assert!(record[column].contains("keyword ProjectX"), "{text}");

        let batch = BatchRecord::default();
        let page = html(&batch, &rows);
        let warnings = &page[page.find("<h2>Warnings</h2>").expect("a warnings section")..];
        assert!(
            warnings.contains("<td>Plans</td><td class=\"number\"></td><td>keyword ProjectX"),
            "{page}"
        );
    }
}
