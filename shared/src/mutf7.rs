//! IMAP's modified UTF-7 for mailbox names (RFC 3501 §5.1.3).
//!
//! Servers send and expect folder names in this encoding: `Entw&APw-rfe` is `Entwürfe`. Names
//! are decoded for mapping and reports, and encoded again for the target. Printable ASCII stands
//! for itself except `&` (written `&-`); everything else is UTF-16 in base64 with `,` for `/`.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid modified UTF-7 in '{name}': {reason}")]
pub struct Mutf7Error {
    pub name: String,
    pub reason: String,
}

/// Backwards-compatible constructor used in messages.
impl Mutf7Error {
    fn new(name: &str, reason: &str) -> Self {
        Mutf7Error {
            name: name.to_owned(),
            reason: reason.to_owned(),
        }
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending: Vec<u16> = Vec::new();
    for c in text.chars() {
        if (' '..='~').contains(&c) {
            flush_encoded(&mut out, &mut pending);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush_encoded(&mut out, &mut pending);
    out
}

fn flush_encoded(out: &mut String, units: &mut Vec<u16>) {
    if units.is_empty() {
        return;
    }
    let bytes: Vec<u8> = units.iter().flat_map(|u| u.to_be_bytes()).collect();
    out.push('&');
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        let sextets = chunk.len() + 1;
        for i in 0..sextets {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out.push('-');
    units.clear();
}

pub fn decode(name: &str) -> Result<String, Mutf7Error> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(start) = rest.find('&') {
        let (direct, encoded) = rest.split_at(start);
        check_direct(name, direct)?;
        out.push_str(direct);
        let end = encoded
            .find('-')
            .ok_or_else(|| Mutf7Error::new(name, "unterminated '&' section"))?;
        let section = &encoded[1..end];
        if section.is_empty() {
            out.push('&');
        } else {
            out.push_str(&decode_section(name, section)?);
        }
        rest = &encoded[end + 1..];
    }
    check_direct(name, rest)?;
    out.push_str(rest);
    Ok(out)
}

fn check_direct(name: &str, direct: &str) -> Result<(), Mutf7Error> {
    match direct.chars().find(|c| !(' '..='~').contains(c)) {
        Some(c) => Err(Mutf7Error::new(
            name,
            &format!("character {c:?} must be encoded"),
        )),
        None => Ok(()),
    }
}

fn decode_section(name: &str, section: &str) -> Result<String, Mutf7Error> {
    let mut bits = 0u32;
    let mut bit_count = 0;
    let mut bytes = Vec::new();
    for c in section.bytes() {
        let value = ALPHABET.iter().position(|&a| a == c).ok_or_else(|| {
            Mutf7Error::new(name, &format!("'{}' is not modified base64", c as char))
        })?;
        bits = bits << 6 | value as u32;
        bit_count += 6;
        if bit_count >= 8 {
            bit_count -= 8;
            bytes.push((bits >> bit_count) as u8);
            bits &= (1 << bit_count) - 1;
        }
    }
    if bits != 0 || bit_count >= 6 {
        return Err(Mutf7Error::new(name, "bad padding in an encoded section"));
    }
    if bytes.len() % 2 != 0 {
        return Err(Mutf7Error::new(
            name,
            "an encoded section is not whole UTF-16",
        ));
    }
    let units: Vec<u16> = bytes
        .chunks(2)
        .map(|p| u16::from_be_bytes([p[0], p[1]]))
        .collect();
    String::from_utf16(&units).map_err(|_| Mutf7Error::new(name, "unpaired UTF-16 surrogate"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_3501_example_and_common_names() {
        let pairs = [
            ("~peter/mail/&U,BTFw-/&ZeVnLIqe-", "~peter/mail/台北/日本語"),
            ("&-", "&"),
            ("Entw&APw-rfe", "Entwürfe"),
            ("Tom &- Jerry", "Tom & Jerry"),
            ("&2D3eAA-", "😀"),
            ("INBOX", "INBOX"),
        ];
        for (encoded, decoded) in pairs {
            assert_eq!(decode(encoded).unwrap(), decoded, "{encoded}");
            assert_eq!(encode(decoded), encoded, "{decoded}");
        }
    }

    #[test]
    fn round_trips() {
        for text in [
            "Старые письма",
            "a&b/ç/日本",
            "Ω",
            "ab",
            "Gelöschte Elemente",
            "x😀y&",
        ] {
            assert_eq!(decode(&encode(text)).unwrap(), text);
        }
    }

    #[test]
    fn malformed_input_is_rejected_with_the_name() {
        for bad in ["&U,BTFw", "&U,BTF-", "&*-", "caf\u{e9}", "&2D0-"] {
            let error = decode(bad).unwrap_err();
            assert_eq!(error.name, bad);
        }
    }
}
