//! IMAP quoted strings (RFC 3501 §4.3): a name we quote is a valid quoted string that reads
//! back as the same name; a name we refuse really cannot be quoted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailfleet_worker::imap::quote::{quotable, quoted, unescape};

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    // Whatever a server sends, reading it back never panics.
    let _ = unescape(name);
    assert_eq!(quotable(name).is_ok(), quoted(name).is_ok());
    match quoted(name) {
        Ok(text) => {
            assert!(text.len() >= 2 && text.starts_with('"') && text.ends_with('"'));
            let body = &text[1..text.len() - 1];
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii() && !matches!(b, b'\r' | b'\n' | 0)),
                "{text:?} is not a quoted string"
            );
            // Inside the quotes, `"` and `\` only ever appear escaped.
            let mut bytes = body.bytes();
            while let Some(b) = bytes.next() {
                match b {
                    b'\\' => assert!(matches!(bytes.next(), Some(b'"' | b'\\'))),
                    b'"' => panic!("unescaped quote in {text:?}"),
                    _ => {}
                }
            }
            assert_eq!(unescape(body), name);
        }
        Err(_) => assert!(
            name.contains(['\r', '\n', '\0']) || !name.is_ascii(),
            "{name:?} refused but quotable"
        ),
    }
});
