//! IMAP strings (RFC 3501 §4.3) in both directions: the one place that quotes a name for a
//! command, and that reads a name the way the server meant it.
//!
//! Two traps, both seen with a folder called `Quoted "name"`:
//! - async-imap hands names back from LIST exactly as they stood on the wire: a quoted name
//!   keeps its `\"` and `\\` escapes. Sending that text again (async-imap quotes the argument of
//!   `select`, `examine`, `create`, `subscribe` itself) escapes it twice, and the server answers
//!   "Mailbox doesn't exist: Quoted \"name\"". [`listed_name`] undoes the escapes, once.
//! - A quoted string carries 7-bit text only, without CR, LF or NUL. A name with those could go
//!   as a literal, but no server we migrate sends or accepts such a name without UTF8=ACCEPT
//!   (RFC 6855), which we never enable: such a folder is reported and skipped instead
//!   ([`quotable`]), never sent half-right.

use async_imap::types::Name;

use crate::error::WorkerError;

/// `name` checked to be sendable as a quoted string, for async-imap's methods that quote their
/// mailbox argument themselves (with the same escapes as [`quoted`]).
pub fn quotable(name: &str) -> Result<&str, WorkerError> {
    let reason = if name.contains(['\r', '\n']) {
        "it holds a line break"
    } else if name.contains('\0') {
        "it holds a NUL byte"
    } else if !name.is_ascii() {
        "it holds 8-bit characters outside modified UTF-7"
    } else {
        return Ok(name);
    };
    Err(WorkerError::UnquotableName {
        name: name.to_owned(),
        reason,
    })
}

/// `name` as an IMAP quoted string, for the commands we write ourselves (APPEND, STATUS, LIST).
pub fn quoted(name: &str) -> Result<String, WorkerError> {
    let name = quotable(name)?;
    let mut text = String::with_capacity(name.len() + 2);
    text.push('"');
    for c in name.chars() {
        if matches!(c, '"' | '\\') {
            text.push('\\');
        }
        text.push(c);
    }
    text.push('"');
    Ok(text)
}

/// The body of a quoted string with its escapes undone (`\"` → `"`, `\\` → `\`).
pub fn unescape(body: &str) -> String {
    let mut text = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => text.extend(chars.next()),
            _ => text.push(c),
        }
    }
    text
}

/// The mailbox name of one LIST answer, as the server means it. A name that came as a literal
/// (Dovecot sends one when a name needs more than four escapes) is taken as it is; one that
/// came as a quoted string is unescaped.
pub fn listed_name(name: &Name) -> String {
    let text = name.name();
    // Only a backslash starts an escape: without one, both forms read the same.
    if text.contains('\\') && was_quoted(name.borrow_owner().borrow_owner(), text) {
        unescape(text)
    } else {
        text.to_owned()
    }
}

/// Whether `value`, a slice of the response line `raw` (imap-proto borrows the names it parses
/// from the line), stood there as a quoted string: it follows a `"`, where a literal follows
/// its `{n}` CRLF and an atom a space. Addresses are only compared, never dereferenced.
fn was_quoted(raw: &[u8], value: &str) -> bool {
    let start = (value.as_ptr() as usize).wrapping_sub(raw.as_ptr() as usize);
    start >= 1 && start.saturating_add(value.len()) <= raw.len() && raw[start - 1] == b'"'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_with_escapes() {
        assert_eq!(quoted("INBOX/a b").unwrap(), "\"INBOX/a b\"");
        assert_eq!(quoted(r#"say "hi"\x"#).unwrap(), r#""say \"hi\"\\x""#);
        assert_eq!(quoted("").unwrap(), "\"\"");
    }

    #[test]
    fn what_a_quoted_string_cannot_carry_is_refused_with_the_name() {
        for name in ["bad\r\nname", "nul\0", "caf\u{e9}"] {
            let error = quoted(name).unwrap_err().to_string();
            assert!(error.contains(&format!("{name:?}")), "{error}");
            assert!(quotable(name).is_err());
        }
        assert_eq!(quotable("&2D3eAA-").unwrap(), "&2D3eAA-");
    }

    #[test]
    fn unescaping_reverses_quoting() {
        for name in [r#"Quoted "name""#, r"back\slash", r#"\\"\"#, " spaced "] {
            let wire = quoted(name).unwrap();
            assert_eq!(unescape(&wire[1..wire.len() - 1]), name);
        }
    }

    #[test]
    fn a_value_is_quoted_when_a_double_quote_precedes_it_in_its_line() {
        let raw = b"* LIST () \"/\" \"a\\\\b\"\r\n";
        let text = std::str::from_utf8(raw).unwrap();
        let start = text.rfind("a\\").unwrap();
        assert!(was_quoted(raw, &text[start..start + 4]));
        let literal = b"* LIST () \"/\" {4}\r\na\\\\b\r\n";
        let text = std::str::from_utf8(literal).unwrap();
        let start = text.rfind("a\\").unwrap();
        assert!(!was_quoted(literal, &text[start..start + 4]));
        assert!(!was_quoted(raw, "elsewhere"));
    }
}
