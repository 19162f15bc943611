//! Realistic mailboxes, the same every time for the same seed.
//!
//! What real mailboxes hold and naive migrators get wrong: nested and non-ASCII folder names, a
//! `\Noselect` parent, keywords, RFC 2047 subjects, attachments, messages without a Message-ID,
//! and identical twins (the same notification twice, no Message-ID) that must both arrive.

use chrono::{DateTime, FixedOffset, TimeZone};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::client::NewMessage;

/// Folders of a seeded mailbox, raw (modified UTF-7, `/` separator).
pub const FOLDERS: [&str; 10] = [
    "INBOX",
    "Sent",
    "Drafts",
    "Trash",
    "Archive/2023",
    "Projects/Alpha/Specs",
    "Deep/a/b",
    "Entw&APw-rfe",
    "&ZeVnLIqe-",
    "Old Mail",
];

#[derive(Debug, Clone)]
pub struct CorpusSpec {
    pub messages: usize,
    pub seed: u64,
    /// Fraction of messages without a Message-ID header.
    pub no_message_id_ratio: f64,
    /// Fraction of messages with a 0.2–3 MB attachment (0 keeps tests fast).
    pub large_attachment_ratio: f64,
    /// Identical message pairs (no Message-ID) added to INBOX.
    pub twin_pairs: usize,
    pub folders: Vec<String>,
}

impl Default for CorpusSpec {
    fn default() -> Self {
        CorpusSpec {
            messages: 60,
            seed: 1,
            no_message_id_ratio: 0.15,
            large_attachment_ratio: 0.0,
            twin_pairs: 1,
            folders: FOLDERS.iter().map(|f| f.to_string()).collect(),
        }
    }
}

/// Folder (raw name) → messages to append there.
pub fn generate(spec: &CorpusSpec) -> Vec<(String, Vec<NewMessage>)> {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let mut folders: Vec<(String, Vec<NewMessage>)> = spec
        .folders
        .iter()
        .map(|f| (f.clone(), Vec::new()))
        .collect();
    for i in 0..spec.messages {
        // INBOX gets about a third, the rest spread evenly.
        let folder = if rng.random_bool(0.35) {
            0
        } else {
            rng.random_range(0..folders.len())
        };
        let message = message(&mut rng, spec, i, &folders[folder].0);
        folders[folder].1.push(message);
    }
    for twin in 0..spec.twin_pairs {
        let date = internal_date(&mut rng);
        let bytes = format!(
            "From: monitor@example.net\r\nTo: ops@example.com\r\nSubject: Disk space warning {twin}\r\n\
             Date: {}\r\n\r\nDisk /var is 91% full.\r\n",
            date.to_rfc2822()
        )
        .into_bytes();
        let twin = NewMessage {
            bytes,
            flags: vec![],
            internal_date: date,
        };
        folders[0].1.push(twin.clone());
        folders[0].1.push(twin);
    }
    folders
}

fn message(rng: &mut StdRng, spec: &CorpusSpec, index: usize, folder: &str) -> NewMessage {
    let date = internal_date(rng);
    let subject = match index % 7 {
        0 => "=?UTF-8?B?R3LDvMOfZSBhdXMgTcO8bmNoZW4=?=".to_owned(), // "Grüße aus München"
        1 => format!("Re: Quarterly report #{index}"),
        2 => format!("Meeting notes {index} – 日本語"),
        _ => format!(
            "Message {index} about project {}",
            rng.random_range(100..999)
        ),
    };
    let mut headers = format!(
        "From: Sender {0} <sender{0}@example.org>\r\nTo: Someone <someone@example.com>\r\n\
         Subject: {subject}\r\nDate: {1}\r\nMIME-Version: 1.0\r\n",
        rng.random_range(1..50),
        date.to_rfc2822()
    );
    if !rng.random_bool(spec.no_message_id_ratio) {
        headers.push_str(&format!(
            "Message-ID: <{}.{index}@corpus.example.org>\r\n",
            spec.seed
        ));
    }
    let text = body_text(rng);
    let attachment_size = if rng.random_bool(spec.large_attachment_ratio) {
        Some(rng.random_range(200_000..3_000_000))
    } else if index % 9 == 4 {
        Some(rng.random_range(1_000..30_000))
    } else {
        None
    };
    let bytes = match attachment_size {
        None => format!("{headers}Content-Type: text/plain; charset=utf-8\r\n\r\n{text}"),
        Some(size) => multipart(rng, &headers, &text, size, index),
    }
    .into_bytes();
    NewMessage {
        bytes,
        flags: flags(rng, folder),
        internal_date: date,
    }
}

fn body_text(rng: &mut StdRng) -> String {
    const WORDS: [&str; 12] = [
        "migration",
        "mailbox",
        "Grüße",
        "deadline",
        "report",
        "meeting",
        "server",
        "quota",
        "budget",
        "release",
        "naïve",
        "review",
    ];
    let lines = rng.random_range(3..60);
    (0..lines)
        .map(|_| {
            let words = rng.random_range(4..14);
            let line: Vec<&str> = (0..words)
                .map(|_| WORDS[rng.random_range(0..WORDS.len())])
                .collect();
            format!("{}\r\n", line.join(" "))
        })
        .collect()
}

fn multipart(rng: &mut StdRng, headers: &str, text: &str, size: usize, index: usize) -> String {
    let boundary = format!("=_boundary_{index}");
    let payload: Vec<u8> = (0..size).map(|_| rng.random()).collect();
    let encoded = base64_lines(&payload);
    format!(
        "{headers}Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n\
         --{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\
         --{boundary}\r\nContent-Type: application/octet-stream; name=\"data{index}.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"data{index}.bin\"\r\n\r\n\
         {encoded}--{boundary}--\r\n"
    )
}

fn base64_lines(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len() * 4 / 3 + data.len() / 57 * 2 + 4);
    for line in data.chunks(57) {
        for chunk in line.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
            for i in 0..4 {
                out.push(if i <= chunk.len() {
                    ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char
                } else {
                    '='
                });
            }
        }
        out.push_str("\r\n");
    }
    out
}

fn flags(rng: &mut StdRng, folder: &str) -> Vec<String> {
    let mut flags = Vec::new();
    let mut maybe = |p: f64, flag: &str| {
        if rng.random_bool(p) {
            flags.push(flag.to_owned());
        }
    };
    maybe(0.7, "\\Seen");
    maybe(0.1, "\\Answered");
    maybe(0.1, "\\Flagged");
    maybe(0.05, "$Label1");
    maybe(0.05, "ProjectX");
    maybe(0.02, "\\Deleted");
    if folder == "Drafts" {
        flags.push("\\Draft".to_owned());
    }
    flags
}

/// Dates over ten years with various offsets, single-digit days included.
fn internal_date(rng: &mut StdRng) -> DateTime<FixedOffset> {
    let offset = FixedOffset::east_opt(rng.random_range(-8..=9) * 3600)
        .unwrap_or(FixedOffset::east_opt(0).unwrap());
    let seconds = rng.random_range(1_420_070_400i64..1_735_689_600);
    offset
        .timestamp_opt(seconds, 0)
        .single()
        .unwrap_or_else(|| offset.timestamp_opt(0, 0).unwrap())
}
