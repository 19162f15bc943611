//! The migration CSV parser on arbitrary bytes. Beyond "no panic": a file is either a list of
//! rows that keep what the header promised, or a list of errors that point at real lines.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use mailfleet_shared::migration_csv::{MAX_ROWS, parse_migration_csv};

fuzz_target!(|data: &[u8]| {
    // CRLF, LF and a bare CR each end a line, as the csv crate reads them.
    let line_ends = data
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && data.get(i + 1) != Some(&b'\n')))
        .count();
    let lines_in_file = 1 + line_ends;
    let header = data
        .split(|&b| b == b'\n' || b == b'\r')
        .next()
        .unwrap_or_default();
    let header_has_user_root = String::from_utf8_lossy(header)
        .to_ascii_lowercase()
        .contains("userroot");
    match parse_migration_csv(data) {
        Ok(rows) => {
            assert!(!rows.is_empty(), "Ok with no rows");
            assert!(rows.len() <= MAX_ROWS);
            let mut emails = HashSet::new();
            let mut previous_line = 1;
            for row in &rows {
                assert!(
                    row.line > previous_line,
                    "rows out of order or on the header line"
                );
                assert!(
                    row.line <= lines_in_file,
                    "row line {} past the file",
                    row.line
                );
                previous_line = row.line;
                assert!(!row.email.is_empty() && row.email.trim() == row.email);
                assert_eq!(row.email.matches('@').count(), 1);
                assert!(!row.user_name.is_empty() && row.user_name.trim() == row.user_name);
                assert!(
                    emails.insert(row.email.to_ascii_lowercase()),
                    "duplicate email {} accepted",
                    row.email
                );
                if let Some(root) = &row.user_root {
                    assert!(
                        header_has_user_root,
                        "a UserRoot the header did not promise"
                    );
                    assert!(!root.is_empty());
                }
            }
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "Err with no errors");
            assert!(
                errors.0.is_sorted_by_key(|e| e.line),
                "errors not sorted by line"
            );
            for error in &errors.0 {
                assert!(
                    error.line <= lines_in_file,
                    "error on line {} past the file",
                    error.line
                );
                assert!(!error.message.is_empty());
            }
        }
    }
});
