//! The migration CSV, validated exactly as Microsoft's IMAP migration service defines it.
//!
//! Header row `EmailAddress,UserName,Password` plus an optional `UserRoot` (names matched
//! case-insensitively, any order, nothing else), UTF-8 (a BOM is fine), at most 50,000 rows and
//! 10 MB. A batch of 50,000 users should not fail one error at a time: every problem is collected
//! and reported with its line number. Passwords never appear in an error.

use std::collections::HashMap;
use std::fmt;

use secrecy::SecretString;

pub const MAX_ROWS: usize = 50_000;
pub const MAX_BYTES: usize = 10 * 1024 * 1024;
/// The error for a file with a header and no user rows.
pub const NO_USERS: &str = "the CSV holds no users: add one row per mailbox below the header";

/// One mailbox to migrate. `line` is the physical line in the file (the header is line 1).
#[derive(Debug, Clone)]
pub struct MigrationRow {
    pub line: usize,
    pub email: String,
    pub user_name: String,
    pub password: SecretString,
    pub user_root: Option<String>,
}

impl MigrationRow {
    /// The row as tasks carry it: everything but the password.
    pub fn mailbox_user(&self) -> crate::messages::MailboxUser {
        crate::messages::MailboxUser {
            email: self.email.clone(),
            user_name: self.user_name.clone(),
            user_root: self.user_root.clone(),
        }
    }
}

/// One problem; `line` 0 means the file as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            0 => f.write_str(&self.message),
            line => write!(f, "line {line}: {}", self.message),
        }
    }
}

/// Every problem found, sorted by line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct CsvErrors(pub Vec<CsvError>);

impl fmt::Display for CsvErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    EmailAddress,
    UserName,
    Password,
    UserRoot,
}

const COLUMNS: [(&str, Column); 4] = [
    ("EmailAddress", Column::EmailAddress),
    ("UserName", Column::UserName),
    ("Password", Column::Password),
    ("UserRoot", Column::UserRoot),
];
const REQUIRED: [Column; 3] = [Column::EmailAddress, Column::UserName, Column::Password];

fn column_name(column: Column) -> &'static str {
    COLUMNS
        .iter()
        .find(|(_, c)| *c == column)
        .map_or("?", |(n, _)| n)
}

pub fn parse_migration_csv(bytes: &[u8]) -> Result<Vec<MigrationRow>, CsvErrors> {
    let fail = |line, message: String| CsvErrors(vec![CsvError { line, message }]);
    if bytes.len() > MAX_BYTES {
        return Err(fail(
            0,
            format!(
                "the file is {} bytes; at most {MAX_BYTES} (10 MB) are allowed",
                bytes.len()
            ),
        ));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Err(e) = std::str::from_utf8(bytes) {
        let line = 1 + line_ends(&bytes[..e.valid_up_to()]);
        return Err(fail(
            line,
            "the file is not UTF-8 (save it as UTF-8)".into(),
        ));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut records = reader.records();
    let header = match records.next() {
        Some(Ok(header)) => header,
        Some(Err(e)) => return Err(fail(1, format!("unreadable header: {e}"))),
        None => {
            return Err(fail(
                0,
                "the file is empty; it needs the header EmailAddress,UserName,Password".into(),
            ));
        }
    };
    let columns = parse_header(&header).map_err(CsvErrors)?;

    let mut errors = Vec::new();
    let mut rows = Vec::new();
    let mut first_line_of: HashMap<String, usize> = HashMap::new();
    let mut lines = LineCounter {
        bytes,
        offset: 0,
        line: 1,
    };
    for record in records {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map_or(0, |p| lines.line_at(p.byte()));
                errors.push(CsvError {
                    line,
                    message: format!("unreadable row: {e}"),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| lines.line_at(p.byte()));
        if record.iter().all(|field| field.trim().is_empty()) {
            continue;
        }
        if rows.len() + errors.len() >= MAX_ROWS && rows.len() >= MAX_ROWS {
            errors.push(CsvError {
                line,
                message: format!("more than {MAX_ROWS} rows; split the users into several batches"),
            });
            break;
        }
        match parse_row(&columns, &record, line) {
            Ok(row) => {
                let key = row.email.to_ascii_lowercase();
                if let Some(first) = first_line_of.get(&key) {
                    errors.push(CsvError {
                        line,
                        message: format!("{} is already on line {first}", row.email),
                    });
                } else {
                    first_line_of.insert(key, line);
                }
                rows.push(row);
            }
            Err(mut row_errors) => errors.append(&mut row_errors),
        }
    }
    if errors.is_empty() && rows.is_empty() {
        // A header alone is a mistake (an export that lost its rows), not a batch of nobody.
        Err(fail(0, NO_USERS.into()))
    } else if errors.is_empty() {
        Ok(rows)
    } else {
        errors.sort_by_key(|e| e.line);
        Err(CsvErrors(errors))
    }
}

/// Physical line numbers of records, counted here because the csv crate's own count lags by one
/// after a CRLF row end. Records arrive in order, so counting resumes where it stopped.
struct LineCounter<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: usize,
}

impl LineCounter<'_> {
    fn line_at(&mut self, record_offset: u64) -> usize {
        let mut start = record_offset as usize;
        while matches!(self.bytes.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        let start = start.min(self.bytes.len());
        if start > self.offset {
            self.line += line_ends(&self.bytes[self.offset..start]);
            self.offset = start;
        }
        self.line
    }
}

/// Line ends in `bytes` as the csv crate reads them: CRLF, LF, and a bare CR (what Excel's
/// "CSV (Macintosh)" writes) each end one line.
fn line_ends(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')))
        .count()
}

fn parse_header(header: &csv::StringRecord) -> Result<Vec<Column>, Vec<CsvError>> {
    let mut columns = Vec::new();
    let mut errors = Vec::new();
    let error = |message: String| CsvError { line: 1, message };
    for name in header.iter().map(str::trim) {
        match COLUMNS.iter().find(|(known, _)| known.eq_ignore_ascii_case(name)) {
            Some((_, column)) if columns.contains(column) => {
                errors.push(error(format!("column {name} appears twice in the header")));
            }
            Some((_, column)) => columns.push(*column),
            None => errors.push(error(format!(
                "unknown column '{name}' in the header (allowed: EmailAddress, UserName, Password, UserRoot)"
            ))),
        }
    }
    for required in REQUIRED {
        if !columns.contains(&required) {
            errors.push(error(format!(
                "the header has no {} column",
                column_name(required)
            )));
        }
    }
    if errors.is_empty() {
        Ok(columns)
    } else {
        Err(errors)
    }
}

fn parse_row(
    columns: &[Column],
    record: &csv::StringRecord,
    line: usize,
) -> Result<MigrationRow, Vec<CsvError>> {
    let error = |message: String| CsvError { line, message };
    if record.len() != columns.len() {
        return Err(vec![error(format!(
            "{} fields, but the header has {}",
            record.len(),
            columns.len()
        ))]);
    }
    let field = |wanted: Column| {
        columns
            .iter()
            .position(|c| *c == wanted)
            .and_then(|i| record.get(i))
            .unwrap_or_default()
    };
    let mut errors = Vec::new();
    for required in REQUIRED {
        if field(required).trim().is_empty() {
            errors.push(error(format!("{} is empty", column_name(required))));
        }
    }
    let email = field(Column::EmailAddress).trim().to_owned();
    if !email.is_empty()
        && let Err(why) = check_email(&email)
    {
        errors.push(error(format!(
            "'{email}' is not a valid email address: {why}"
        )));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let user_root = Some(field(Column::UserRoot).trim())
        .filter(|r| !r.is_empty())
        .map(str::to_owned);
    Ok(MigrationRow {
        line,
        email,
        user_name: field(Column::UserName).trim().to_owned(),
        // Passwords may begin or end with spaces: kept verbatim.
        password: SecretString::from(field(Column::Password).to_owned()),
        user_root,
    })
}

/// A pragmatic address check: what an admin's typo looks like, not the whole of RFC 5322.
fn check_email(email: &str) -> Result<(), &'static str> {
    if email.len() > 254 {
        return Err("longer than 254 characters");
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains a space");
    }
    let (local, domain) = email.split_once('@').ok_or("no @")?;
    if domain.contains('@') {
        return Err("more than one @");
    }
    if local.is_empty() || local.len() > 64 {
        return Err("the part before @ must have 1 to 64 characters");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2
        || labels
            .iter()
            .any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-'))
    {
        return Err("the domain must look like example.com");
    }
    if !domain
        .chars()
        .all(|c| c.is_alphanumeric() || c == '-' || c == '.')
    {
        return Err("the domain has characters a domain cannot have");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn errors_of(text: &[u8]) -> Vec<CsvError> {
        parse_migration_csv(text).unwrap_err().0
    }

    #[test]
    fn debug_of_a_row_hides_its_password() {
        let rows =
            parse_migration_csv(b"EmailAddress,UserName,Password\na@example.com,a,Row-Secret-1\n")
                .unwrap();
        let shown = format!("{rows:?}");
        assert!(!shown.contains("Row-Secret-1"), "{shown}");
        assert!(
            shown.contains("a@example.com") && shown.contains("REDACTED"),
            "{shown}"
        );
    }

    #[test]
    fn bare_cr_line_ends_count_as_lines() {
        // Excel's "CSV (Macintosh)": every line ends in a bare CR. Found by fuzz/migration_csv:
        // every row was reported on line 1.
        let text = b"EmailAddress,UserName,Password\ra@example.com,a,1\rnot-an-email,b,2\r";
        assert_eq!(
            errors_of(text),
            vec![CsvError {
                line: 3,
                message: "'not-an-email' is not a valid email address: no @".into()
            }]
        );
        let rows =
            parse_migration_csv(b"EmailAddress,UserName,Password\ra@x.com,a,1\r\nb@x.com,b,2")
                .unwrap();
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 3]);
    }

    #[test]
    fn valid_file_with_bom_reordered_columns_and_user_root() {
        let csv = "\u{feff}Password,emailaddress,UserName,UserRoot\r\n p w ,alice@example.com,alice,user.alice\r\nx,bob@example.com,bob,\r\n\r\n";
        let rows = parse_migration_csv(csv.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (
                rows[0].line,
                rows[0].email.as_str(),
                rows[0].user_name.as_str()
            ),
            (2, "alice@example.com", "alice")
        );
        assert_eq!(rows[0].password.expose_secret(), " p w ");
        assert_eq!(rows[0].user_root.as_deref(), Some("user.alice"));
        assert_eq!(rows[1].user_root, None);
    }

    #[test]
    fn a_header_without_rows_holds_no_users() {
        for csv in [
            &b"EmailAddress,UserName,Password\n"[..],
            b"EmailAddress,UserName,Password\r\n\r\n,,\n",
        ] {
            let errors = errors_of(csv);
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].line, 0);
            assert!(
                errors[0].to_string().starts_with("the CSV holds no users"),
                "{}",
                errors[0]
            );
        }
    }

    #[test]
    fn header_problems_are_all_reported() {
        let errors = errors_of(b"EmailAddress,User,Password\n");
        let text: Vec<_> = errors.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .any(|e| e.contains("line 1") && e.contains("unknown column 'User'")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|e| e.contains("no UserName column")),
            "{text:?}"
        );
        assert!(
            errors_of(b"EmailAddress,UserName\n")[0]
                .message
                .contains("no Password column")
        );
        assert!(
            errors_of(b"EmailAddress,UserName,Password,Password\n")[0]
                .message
                .contains("twice")
        );
    }

    #[test]
    fn every_row_error_is_collected_with_its_line() {
        let csv = "EmailAddress,UserName,Password\n\
                   alice@example.com,alice,secret1\n\
                   not-an-address,bob,secret2\n\
                   carol@example.com,,secret3\n\
                   ALICE@example.com,alice2,secret4\n\
                   dave@example.com,dave\n";
        let errors = errors_of(csv.as_bytes());
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6]);
        assert!(errors[0].message.contains("not a valid email"));
        assert!(errors[1].message.contains("UserName is empty"));
        assert!(errors[2].message.contains("already on line 2"));
        assert!(errors[3].message.contains("2 fields, but the header has 3"));
        let all = CsvErrors(errors).to_string();
        assert!(!all.contains("secret"), "passwords leak: {all}");
    }

    #[test]
    fn too_many_rows_names_the_first_line_over() {
        let mut csv = String::from("EmailAddress,UserName,Password\n");
        for i in 0..=MAX_ROWS {
            csv.push_str(&format!("u{i}@example.com,u{i},p\n"));
        }
        let errors = errors_of(csv.as_bytes());
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, MAX_ROWS + 2);
        assert!(errors[0].message.contains("more than 50000 rows"));
    }

    #[test]
    fn oversized_and_non_utf8_files() {
        let big = vec![b'a'; MAX_BYTES + 1];
        assert!(errors_of(&big)[0].message.contains("10 MB"));
        let latin1 = b"EmailAddress,UserName,Password\nj\xfcrgen@example.com,j,p\n";
        let error = &errors_of(latin1)[0];
        assert_eq!(error.line, 2);
        assert!(error.message.contains("not UTF-8"));
        assert!(errors_of(b"")[0].message.contains("empty"));
    }

    #[test]
    fn email_checks() {
        for good in [
            "a@example.com",
            "first.last+tag@sub.example.co.uk",
            "jürgen@exämple.de",
        ] {
            assert!(check_email(good).is_ok(), "{good}");
        }
        for bad in [
            "a",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "@c.com",
            "a@-c.com",
            "a@c..com",
        ] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
    }
}
