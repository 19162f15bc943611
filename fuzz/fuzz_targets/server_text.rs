//! What a server sends back: any bytes as a response line through the parser async-imap uses
//! (imap-proto), and any NO/BAD text through our classification (`worker/src/error.rs`), which
//! decides between "throttled, retry after the suggested pause", Exchange Online's quota and
//! "not connected" answers, and "refused".
#![no_main]

use async_imap::error::Error as ImapError;
use libfuzzer_sys::fuzz_target;
use mailfleet_worker::error::{WorkerError, from_imap, looks_throttled, suggested_backoff_ms};
use mailfleet_worker::imap::refusal::server_words;

fuzz_target!(|data: &[u8]| {
    if let Ok((rest, response)) = imap_proto::Response::parse(data) {
        assert!(rest.len() < data.len(), "a response parsed from no input");
        // What async-imap keeps of a response outlives the read buffer.
        let _ = response.into_owned();
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The server's words: async-imap's Debug form (`code: …, info: Some("…")`) read back, any
    // other text as it is.
    let words = server_words(text);
    for error in [
        ImapError::No(text.to_owned()),
        ImapError::Bad(text.to_owned()),
    ] {
        let classified = from_imap("imap.example.com", "SELECT INBOX", error);
        assert!(classified.to_string().contains("imap.example.com"));
        match classified {
            WorkerError::Throttled { reason, .. } => {
                assert!(looks_throttled(&words));
                assert_eq!(reason, words);
            }
            WorkerError::Refused { reason, .. } => {
                assert!(!looks_throttled(&words));
                // The server's words, whole or cut to a readable length marked with `…`.
                match reason.strip_suffix('…') {
                    Some(start) if reason != words => assert!(words.starts_with(start)),
                    _ => assert_eq!(reason, words),
                }
            }
            // Exchange Online's words for a full mailbox and an unopenable one.
            WorkerError::QuotaExceeded { .. } => {
                assert!(words.to_ascii_lowercase().contains("server unavailable. 15"));
            }
            WorkerError::NotConnected { .. } => {
                let lower = words.to_ascii_lowercase();
                assert!(lower.contains("authenticated but not connected"));
            }
            other => panic!("a NO/BAD answer became {other:?}"),
        }
    }
    if suggested_backoff_ms(text).is_some() {
        assert!(text.to_ascii_lowercase().contains("backoff time:"));
    }
});
