//! Reading a server's personal namespace (RFC 2342 NAMESPACE).
//!
//! Cyrus and Courier keep personal folders under `INBOX.` or `INBOX/`; Dovecot usually uses no
//! prefix. async-imap's parser (imap-proto) does not understand the NAMESPACE response and would
//! treat it as a broken connection, so this module sends the command and reads its few lines on
//! the raw stream, byte by byte so that nothing beyond the tagged reply is consumed. When the
//! server lacks NAMESPACE, the caller falls back to inferring the prefix from LIST.

use mailfleet_shared::folder_map::Namespace;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::connect::ImapConnection;
use super::quote::unescape;
use crate::error::WorkerError;

const TAG: &str = "mfns";

/// The first personal namespace, or `None` when the server has no NAMESPACE or gave none.
pub async fn personal_namespace(
    connection: &mut ImapConnection,
) -> Result<Option<Namespace>, WorkerError> {
    if !connection.has_capability("NAMESPACE") {
        return Ok(None);
    }
    let server = connection.server.clone();
    let timeout = connection.command_timeout;
    let exchange = async {
        let stream = connection.session.as_mut();
        stream
            .write_all(format!("{TAG} NAMESPACE\r\n").as_bytes())
            .await?;
        stream.flush().await?;
        let mut personal = None;
        loop {
            let line = read_line(stream).await?;
            if line.starts_with(TAG) {
                return Ok::<_, std::io::Error>(personal);
            }
            if let Some(rest) = line.strip_prefix("* NAMESPACE ") {
                personal = parse_personal(rest);
            }
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(personal)) => Ok(personal),
        Ok(Err(e)) => Err(WorkerError::ConnectionLost {
            server,
            reason: format!("NAMESPACE: {e}"),
        }),
        Err(_) => Err(WorkerError::Timeout {
            server,
            operation: "NAMESPACE".into(),
            seconds: timeout.as_secs(),
        }),
    }
}

async fn read_line<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> std::io::Result<String> {
    let mut line = Vec::new();
    loop {
        let byte = stream.read_u8().await?;
        if byte == b'\n' {
            break;
        }
        line.push(byte);
        if line.len() > 64 * 1024 {
            return Err(std::io::Error::other("NAMESPACE line too long"));
        }
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// Parses the personal part of `(("INBOX." ".")) NIL NIL` → prefix `INBOX.`, separator `.`.
fn parse_personal(response: &str) -> Option<Namespace> {
    let rest = response.trim_start().strip_prefix("((")?;
    let (prefix, rest) = quoted(rest)?;
    let rest = rest.trim_start();
    let separator = if rest.to_ascii_uppercase().starts_with("NIL") {
        None
    } else {
        quoted(rest)?.0.chars().next()
    };
    Some(Namespace { prefix, separator })
}

/// A quoted string at the start of `input`, unescaped, and the rest.
fn quoted(input: &str) -> Option<(String, &str)> {
    let body = input.strip_prefix('"')?;
    let mut escaped = false;
    let (end, _) = body.char_indices().find(|&(_, c)| {
        let closes = c == '"' && !escaped;
        escaped = !escaped && c == '\\';
        closes
    })?;
    Some((unescape(&body[..end]), &body[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_servers_personal_namespaces() {
        let cyrus = parse_personal(r#"(("INBOX." ".")) NIL (("" "."))"#).unwrap();
        assert_eq!(
            (cyrus.prefix.as_str(), cyrus.separator),
            ("INBOX.", Some('.'))
        );
        let dovecot = parse_personal(r#"(("" "/")) (("shared/" "/")) NIL"#).unwrap();
        assert_eq!(
            (dovecot.prefix.as_str(), dovecot.separator),
            ("", Some('/'))
        );
        let flat = parse_personal(r#"(("" NIL)) NIL NIL"#).unwrap();
        assert_eq!(flat.separator, None);
        assert!(parse_personal("NIL NIL NIL").is_none());
        let escaped = parse_personal(r#"(("a\"b/" "\\")) NIL NIL"#).unwrap();
        assert_eq!(
            (escaped.prefix.as_str(), escaped.separator),
            ("a\"b/", Some('\\'))
        );
    }
}
