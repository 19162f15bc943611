//! Broken mail as twenty years of real mailboxes hold it, for the migration's "nothing lost,
//! nothing duplicated" promise under hostile input.
//!
//! Generated here rather than kept as files: two of them are a megabyte or more, and the ones
//! sized exactly at and one byte over the size limit must follow whatever limit the test picks.
//! Every message is built from fixed text, so each run seeds the same bytes.

use chrono::{DateTime, FixedOffset, TimeZone};

use crate::client::NewMessage;

/// One broken message and what is wrong with it (named in test failures).
#[derive(Debug, Clone)]
pub struct BadMessage {
    pub name: &'static str,
    pub message: NewMessage,
}

/// Every broken message; `size_limit` is the `--max-message-size` the test passes, and two of
/// the messages are exactly that size and one byte over it (named `at-size-limit` and
/// `over-size-limit`).
pub fn bad_messages(size_limit: usize) -> Vec<BadMessage> {
    let crlf = |lines: &[&str]| lines.join("\r\n").into_bytes();
    let mut all: Vec<(&'static str, Vec<u8>, &[&str])> =
        vec![
        ("nul-in-body", b"Subject: nul in body\r\n\r\nbefore\0after\r\n".to_vec(), &["\\Seen"]),
        ("nul-in-header", b"Subject: nul\0in header\r\n\r\nbody\r\n".to_vec(), &[]),
        ("bare-lf", b"Subject: bare LF\nFrom: a@example.com\n\nline one\nline two\n".to_vec(), &[]),
        ("bare-cr", b"Subject: bare CR\rFrom: a@example.com\r\r\rbody\r".to_vec(), &[]),
        (
            "mixed-line-ends",
            b"Subject: mixed\r\nFrom: a@example.com\n\r\nbody\rmore\nend\r\n".to_vec(),
            &["\\Flagged"],
        ),
        (
            "8bit-latin1-header",
            b"Subject: Gr\xfc\xdfe aus K\xf6ln\r\nFrom: J\xfcrgen <j@example.com>\r\n\r\nbody\r\n"
                .to_vec(),
            &[],
        ),
        (
            "raw-utf8-header",
            "Subject: Grüße 日本語\r\nFrom: Jürgen <j@example.com>\r\n\r\nbody\r\n"
                .as_bytes()
                .to_vec(),
            &[],
        ),
        (
            "invalid-utf8-header",
            b"Subject: \xc3\x28 \xff\xfe broken\r\nMessage-ID: <\xe2\x82@example.com>\r\n\r\nb\r\n"
                .to_vec(),
            &[],
        ),
        ("no-separator", crlf(&["Subject: header only", "From: a@example.com", ""]), &[]),
        ("body-only", crlf(&["just some text without any header", "second line", ""]), &[]),
        (
            "broken-mime-boundary",
            crlf(&[
                "Subject: broken boundary",
                "MIME-Version: 1.0",
                "Content-Type: multipart/mixed; boundary=\"never-closed\"",
                "",
                "--never-closed",
                "Content-Type: text/plain",
                "",
                "part one",
                "--other-boundary",
                "",
            ]),
            &[],
        ),
        (
            "mime-boundary-missing",
            crlf(&[
                "Subject: multipart without boundary",
                "Content-Type: multipart/alternative",
                "",
                "no parts at all",
                "",
            ]),
            &[],
        ),
        (
            "duplicate-message-id-1",
            crlf(&["Message-ID: <same@example.com>", "Subject: first of two", "", "one", ""]),
            &[],
        ),
        (
            "duplicate-message-id-2",
            crlf(&["Message-ID: <same@example.com>", "Subject: second of two", "", "two", ""]),
            &["\\Answered"],
        ),
        (
            "same-headers-and-size-1",
            crlf(&["Message-ID: <twin@example.com>", "Subject: twin", "", "body A", ""]),
            &[],
        ),
        (
            "same-headers-and-size-2",
            crlf(&["Message-ID: <twin@example.com>", "Subject: twin", "", "body B", ""]),
            &[],
        ),
        ("no-message-id", crlf(&["From: a@example.com", "Subject: no id", "", "x", ""]), &[]),
        (
            "no-date",
            crlf(&["Message-ID: <nodate@example.com>", "Subject: no date", "", "x", ""]),
            &[],
        ),
        (
            "unparsable-date",
            crlf(&["Date: the day after tomorrow, 25:61", "Subject: bad date", "", "x", ""]),
            &["$Label1"],
        ),
        (
            "header-without-colon",
            crlf(&["Subject: ok", "this line is not a field", "From a@example.com", "", "x", ""]),
            &[],
        ),
        (
            "obsolete-space-before-colon",
            crlf(&["Subject : spaced colon", "Message-ID\t: <spaced@example.com>", "", "x", ""]),
            &[],
        ),
        ("empty", Vec::new(), &[]),
        ("one-byte", b"x".to_vec(), &[]),
        ("megabyte-header-line", long_header_line(1024 * 1024), &[]),
    ];
    all.push(("at-size-limit", sized(size_limit), &[]));
    all.push(("over-size-limit", sized(size_limit + 1), &[]));
    all.into_iter()
        .enumerate()
        .map(|(i, (name, bytes, flags))| BadMessage {
            name,
            message: NewMessage {
                bytes,
                flags: flags.iter().map(|f| f.to_string()).collect(),
                internal_date: internal_date(i),
            },
        })
        .collect()
}

/// A `Subject:` line of `length` bytes, then a short body.
fn long_header_line(length: usize) -> Vec<u8> {
    let mut bytes = b"Subject: ".to_vec();
    bytes.resize(length, b'x');
    bytes.extend_from_slice(b"\r\nFrom: a@example.com\r\n\r\nbody\r\n");
    bytes
}

/// A plain message of exactly `size` bytes (`size` above a hundred), in 78-byte lines.
fn sized(size: usize) -> Vec<u8> {
    let mut bytes = format!("Subject: exactly {size} bytes\r\n\r\n").into_bytes();
    while size - bytes.len() > 78 {
        bytes.extend_from_slice(&[b'a'; 76]);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.resize(size, b'a');
    bytes
}

/// Distinct INTERNALDATEs, one a day from 2004 on, so dates are compared message by message.
fn internal_date(index: usize) -> DateTime<FixedOffset> {
    let zone = FixedOffset::east_opt(2 * 3600).unwrap();
    zone.with_ymd_and_hms(2004, 2, 29, 13, 37, 0).unwrap() + chrono::Duration::days(index as i64)
}
