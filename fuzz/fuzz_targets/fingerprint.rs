//! The fingerprint's header parsing (ARCHITECTURE.md, rule 1). The source hashes the whole
//! message, the target only what `BODY.PEEK[HEADER.FIELDS (...)]` returns: both must give the
//! same fingerprint for any message, or a re-run copies it again. Line endings (CRLF or bare
//! LF) must not matter either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailfleet_shared::fingerprint::{FINGERPRINT_FIELDS, Fingerprint, header_value};

fuzz_target!(|message: &[u8]| {
    let size = message.len() as u64;
    let whole = Fingerprint::from_header(message, size);
    let fields = header_fields(message);
    assert_eq!(
        Fingerprint::from_header(&fields, size),
        whole,
        "HEADER.FIELDS {:?} fingerprints differently",
        String::from_utf8_lossy(&fields)
    );
    assert_eq!(
        Fingerprint::from_header(&with_line_ends(message, b"\r\n"), size),
        whole
    );
    // Written with bare LF, a line that ends in CR would end in CRLF: a different message.
    if !message.windows(3).any(|w| w == b"\r\r\n") {
        assert_eq!(
            Fingerprint::from_header(&with_line_ends(message, b"\n"), size),
            whole
        );
    }
    for name in FINGERPRINT_FIELDS {
        assert_eq!(header_value(message, name), header_value(&fields, name));
    }
});

/// What a server answers to `BODY.PEEK[HEADER.FIELDS (MESSAGE-ID DATE FROM SUBJECT)]`
/// (RFC 3501 §6.4.5): the header's fields of those names with their continuation lines, in
/// message order, then an empty line.
fn header_fields(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut keeping = false;
    for line in header_lines(message) {
        if matches!(line.first(), Some(b' ' | b'\t')) {
            if keeping {
                out.extend_from_slice(line);
                out.extend_from_slice(b"\r\n");
            }
            continue;
        }
        keeping = line.iter().position(|&b| b == b':').is_some_and(|colon| {
            let name = line[..colon].trim_ascii();
            FINGERPRINT_FIELDS
                .iter()
                .any(|f| name.eq_ignore_ascii_case(f.as_bytes()))
        });
        if keeping {
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn header_lines(message: &[u8]) -> impl Iterator<Item = &[u8]> {
    message
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .take_while(|line| !line.is_empty())
}

/// `message` with every line end (CRLF or bare LF) written as `end`.
fn with_line_ends(message: &[u8], end: &[u8]) -> Vec<u8> {
    let lines: Vec<&[u8]> = message
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .collect();
    lines.join(end)
}
