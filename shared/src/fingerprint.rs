//! A message's identity independent of UIDs (ARCHITECTURE.md, rule 1).
//!
//! The fingerprint hashes Message-ID, Date, From, Subject and the message size. Messages without a
//! Message-ID still get a useful identity from the other fields, so they too are migrated exactly
//! once. Both sides compute it with [`Fingerprint::from_header`]: on the source from the full
//! message, on the target from `BODY.PEEK[HEADER.FIELDS (...)]`, which returns the same lines.

use sha2::{Digest, Sha256};

/// Header fields that make up a fingerprint, in the order they are hashed. Also the field list
/// to request from a server: `BODY.PEEK[HEADER.FIELDS (MESSAGE-ID DATE FROM SUBJECT)]`.
pub const FINGERPRINT_FIELDS: [&str; 4] = ["MESSAGE-ID", "DATE", "FROM", "SUBJECT"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; 16]);

impl Fingerprint {
    /// `header` is a header block (it may be a whole message; parsing stops at the first empty
    /// line). `size` is the message's size in bytes (RFC822.SIZE).
    pub fn from_header(header: &[u8], size: u64) -> Self {
        let mut hasher = Sha256::new();
        for field in FINGERPRINT_FIELDS {
            let value = header_value(header, field).unwrap_or_default();
            hasher.update(normalize_whitespace(&value));
            hasher.update([0u8]);
        }
        hasher.update(size.to_be_bytes());
        let digest = hasher.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Fingerprint(bytes)
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The unfolded value of the first `name` field (case-insensitive) in `header`, raw bytes.
pub fn header_value(header: &[u8], name: &str) -> Option<Vec<u8>> {
    let mut value: Option<Vec<u8>> = None;
    for line in header_lines(header) {
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        match (&mut value, continuation) {
            (Some(v), true) => {
                v.push(b' ');
                v.extend_from_slice(line);
            }
            (Some(_), false) => break,
            (None, false) => {
                if let Some(colon) = line.iter().position(|&b| b == b':')
                    && line[..colon]
                        .trim_ascii()
                        .eq_ignore_ascii_case(name.as_bytes())
                {
                    value = Some(line[colon + 1..].to_vec());
                }
            }
            (None, true) => {}
        }
    }
    value
}

/// Lines of the header block without their line endings, stopping at the first empty line.
fn header_lines(message: &[u8]) -> impl Iterator<Item = &[u8]> {
    message
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .take_while(|line| !line.is_empty())
}

/// Collapses runs of whitespace so that refolding a header does not change the fingerprint.
fn normalize_whitespace(value: &[u8]) -> Vec<u8> {
    value
        .split(|b| b.is_ascii_whitespace())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(&b' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &[u8] = b"From: Alice <alice@example.com>\r\nSubject: Hello\r\n  world\r\n\
Message-ID: <1@example.com>\r\nDate: Mon, 3 Jun 2024 10:00:00 +0000\r\n\r\nBody\r\nSubject: no\r\n";

    #[test]
    fn same_fields_from_full_message_and_header_fields_fetch() {
        // What a server returns for BODY.PEEK[HEADER.FIELDS (...)]: the same lines, other order.
        let fields = b"Message-ID: <1@example.com>\r\nDate: Mon, 3 Jun 2024 10:00:00 +0000\r\n\
From: Alice <alice@example.com>\r\nSubject: Hello\r\n  world\r\n\r\n";
        assert_eq!(
            Fingerprint::from_header(MESSAGE, 42),
            Fingerprint::from_header(fields, 42)
        );
    }

    #[test]
    fn folded_header_is_unfolded() {
        assert_eq!(header_value(MESSAGE, "subject").unwrap(), b" Hello   world");
    }

    #[test]
    fn body_lines_are_not_headers() {
        let without_subject = b"From: a@b\r\n\r\nSubject: in body\r\n";
        assert_eq!(header_value(without_subject, "Subject"), None);
    }

    #[test]
    fn size_and_fields_distinguish_messages() {
        let a = Fingerprint::from_header(b"Subject: a\r\n\r\n", 10);
        assert_ne!(a, Fingerprint::from_header(b"Subject: a\r\n\r\n", 11));
        assert_ne!(a, Fingerprint::from_header(b"Subject: b\r\n\r\n", 10));
    }

    #[test]
    fn messages_without_message_id_still_differ_by_other_fields() {
        let a = Fingerprint::from_header(b"Date: 1 Jan 2024\r\nSubject: x\r\n\r\n", 5);
        let b = Fingerprint::from_header(b"Date: 2 Jan 2024\r\nSubject: x\r\n\r\n", 5);
        assert_ne!(a, b);
    }
}
