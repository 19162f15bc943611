//! What one IMAP server can make a worker wait for, or hold in memory, enforced on the bytes
//! under async-imap.
//!
//! async-imap waits for a response as long as the connection stays open, and buffers it until
//! it parses, growing its buffer up to 512 MiB. A broken or hostile server could so stall a task
//! slot forever, or take the memory of the whole worker (and every other user's task in it).
//! The byte stream under async-imap is ours ([`super::stream::ImapStream`]), so the limits are
//! enforced there, as the bytes arrive, without a copy and without allocating:
//!
//! - **Silence**: nothing moved for [`ImapLimits::idle_timeout`] while we wait for the server
//!   (to answer, or to take the bytes we write).
//! - **A slow answer**: an answer without literals still unfinished
//!   [`ImapLimits::command_timeout`] after the command was written (a server sending one byte
//!   now and then never looks silent). Answers with literals carry message bodies, whose time
//!   grows with their size: they are bounded by silence and by the literal limit instead.
//! - **A long line**: more than [`ImapLimits::max_line_bytes`] since the last CRLF outside a
//!   literal (a server streaming one endless line).
//! - **A big literal**: a literal announced (`{n}` CRLF) larger than the literal limit is refused
//!   at its announcement, before a byte of it is read.
//!
//! A limit hit ends the read with an `io::Error` carrying a [`LimitHit`]; `error::from_io` turns
//! it into an error naming the command and the server. A timeout is retried with backoff
//! (ARCHITECTURE.md, rule 5); the other limits would be hit again and fail the user at once.

use std::fmt;
use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// How long and how much one server may take; settings choose them (see the README's
/// configuration section).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImapLimits {
    /// TCP connect, TLS handshake, greeting and STARTTLS together.
    pub connect_timeout: Duration,
    /// The longest silence while waiting for the server.
    pub idle_timeout: Duration,
    /// The longest an answer without literals may take in all (the login included).
    pub command_timeout: Duration,
    /// The longest response line (a UID SEARCH of a million messages is about 8 MB).
    pub max_line_bytes: usize,
    /// The largest literal (message) a server may announce; set per job from its message size
    /// limit.
    pub max_literal_bytes: u64,
    /// The most folders one LIST may return.
    pub max_folders: usize,
}

impl Default for ImapLimits {
    fn default() -> Self {
        ImapLimits {
            connect_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            command_timeout: Duration::from_secs(300),
            max_line_bytes: 16 * 1024 * 1024,
            max_literal_bytes: crate::job::DEFAULT_MAX_MESSAGE_SIZE,
            max_folders: 100_000,
        }
    }
}

impl ImapLimits {
    /// These limits with every timeout set to `timeout` (connection checks).
    pub fn with_timeouts(timeout: Duration) -> Self {
        ImapLimits {
            connect_timeout: timeout,
            idle_timeout: timeout,
            command_timeout: timeout,
            ..ImapLimits::default()
        }
    }
}

/// Which limit a server hit, and a printable excerpt of what it sent when that matters. Travels
/// inside an `io::Error` through async-imap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitHit {
    Silent {
        seconds: u64,
    },
    SlowAnswer {
        seconds: u64,
    },
    LineTooLong {
        limit: usize,
        excerpt: String,
    },
    LiteralTooLarge {
        size: u64,
        limit: u64,
        excerpt: String,
    },
}

impl LimitHit {
    /// Timeouts may pass (a busy server, a congested link); the other limits are how the server
    /// answers and will be hit again.
    pub fn is_timeout(&self) -> bool {
        matches!(self, LimitHit::Silent { .. } | LimitHit::SlowAnswer { .. })
    }

    fn into_io(self) -> io::Error {
        let kind = if self.is_timeout() {
            io::ErrorKind::TimedOut
        } else {
            io::ErrorKind::InvalidData
        };
        io::Error::new(kind, self)
    }

    /// The hit an `io::Error` carries, if it came from this guard.
    pub fn of(error: &io::Error) -> Option<&LimitHit> {
        error.get_ref()?.downcast_ref::<LimitHit>()
    }
}

impl fmt::Display for LimitHit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitHit::Silent { seconds } => write!(f, "no answer for {seconds} s"),
            LimitHit::SlowAnswer { seconds } => {
                write!(f, "the answer was not complete after {seconds} s")
            }
            LimitHit::LineTooLong { limit, excerpt } => write!(
                f,
                "a response line longer than {limit} bytes, starting {excerpt} \
                 (expected a line ending in CRLF)"
            ),
            LimitHit::LiteralTooLarge {
                size,
                limit,
                excerpt,
            } => write!(
                f,
                "a literal of {size} bytes announced in {excerpt}, over the limit of {limit} \
                 bytes (the message size limit); not read"
            ),
        }
    }
}

impl std::error::Error for LimitHit {}

/// Bytes of a line kept to quote it in an error.
const EXCERPT_BYTES: usize = 100;
/// Bytes at the end of a line kept to recognise a literal announcement (`{` + 20 digits + `}`).
const TAIL_BYTES: usize = 24;

/// Follows the server's bytes: protocol lines (counted, and checked for literal announcements)
/// or literal data (skipped over without a look).
#[derive(Debug)]
pub struct ByteGuard {
    limits: ImapLimits,
    /// Literal bytes still to come; while above zero the bytes are message data.
    literal_left: u64,
    line_len: usize,
    head: [u8; EXCERPT_BYTES],
    tail: [u8; TAIL_BYTES],
    tail_len: usize,
    timer: Timer,
    hit: Option<LimitHit>,
}

impl ByteGuard {
    pub fn new(limits: ImapLimits) -> Self {
        ByteGuard {
            limits,
            literal_left: 0,
            line_len: 0,
            head: [0; EXCERPT_BYTES],
            tail: [0; TAIL_BYTES],
            tail_len: 0,
            timer: Timer::new(limits),
            hit: None,
        }
    }

    pub fn limits(&self) -> &ImapLimits {
        &self.limits
    }

    /// The limit hit earlier: a connection that hit one stays failed.
    pub fn failed(&self) -> Option<io::Error> {
        self.hit.clone().map(LimitHit::into_io)
    }

    /// The client wrote (part of) a command: its answer's time starts now.
    pub fn wrote(&mut self) {
        self.timer.command_sent();
    }

    /// The server took bytes we wrote: it is alive.
    pub fn moved(&mut self) {
        self.timer.progressed();
    }

    /// The server sent `data`: checks it against the limits.
    pub fn received(&mut self, mut data: &[u8]) -> io::Result<()> {
        self.timer.progressed();
        while !data.is_empty() {
            if self.literal_left > 0 {
                let skip = data
                    .len()
                    .min(usize::try_from(self.literal_left).unwrap_or(usize::MAX));
                self.literal_left -= skip as u64;
                data = &data[skip..];
                continue;
            }
            let (line, end) = match data.iter().position(|&b| b == b'\n') {
                Some(at) => (&data[..=at], true),
                None => (data, false),
            };
            data = &data[line.len()..];
            self.extend_line(line).map_err(|hit| self.fail(hit))?;
            if end {
                self.end_line().map_err(|hit| self.fail(hit))?;
            }
        }
        Ok(())
    }

    /// We are waiting for the server: `Ready` with the error once a timeout has passed.
    pub fn poll_waiting(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        match self.timer.poll_expired(cx) {
            Poll::Ready(hit) => Poll::Ready(self.fail(hit)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn fail(&mut self, hit: LimitHit) -> io::Error {
        self.hit = Some(hit.clone());
        hit.into_io()
    }

    fn extend_line(&mut self, bytes: &[u8]) -> Result<(), LimitHit> {
        if self.line_len < EXCERPT_BYTES {
            let n = bytes.len().min(EXCERPT_BYTES - self.line_len);
            self.head[self.line_len..self.line_len + n].copy_from_slice(&bytes[..n]);
        }
        self.line_len = self.line_len.saturating_add(bytes.len());
        if self.line_len > self.limits.max_line_bytes {
            return Err(LimitHit::LineTooLong {
                limit: self.limits.max_line_bytes,
                excerpt: self.excerpt(),
            });
        }
        if bytes.len() >= TAIL_BYTES {
            self.tail
                .copy_from_slice(&bytes[bytes.len() - TAIL_BYTES..]);
            self.tail_len = TAIL_BYTES;
        } else {
            let keep = (TAIL_BYTES - bytes.len()).min(self.tail_len);
            self.tail
                .copy_within(self.tail_len - keep..self.tail_len, 0);
            self.tail[keep..keep + bytes.len()].copy_from_slice(bytes);
            self.tail_len = keep + bytes.len();
        }
        Ok(())
    }

    /// A line ended: if it announced a literal, the next bytes are that literal's.
    fn end_line(&mut self) -> Result<(), LimitHit> {
        let cut_short = self.line_len > self.tail_len;
        let announced = literal_announced(&self.tail[..self.tail_len], cut_short);
        let excerpt = announced.map(|_| self.excerpt());
        self.line_len = 0;
        self.tail_len = 0;
        let (Some(size), Some(excerpt)) = (announced, excerpt) else {
            return Ok(());
        };
        if size > self.limits.max_literal_bytes {
            return Err(LimitHit::LiteralTooLarge {
                size,
                limit: self.limits.max_literal_bytes,
                excerpt,
            });
        }
        self.literal_left = size;
        self.timer.literal_announced();
        Ok(())
    }

    fn excerpt(&self) -> String {
        let kept = self.line_len.min(EXCERPT_BYTES);
        let mut text = printable_excerpt(&self.head[..kept], EXCERPT_BYTES);
        if self.line_len > kept && !text.ends_with('…') {
            text.push('…');
        }
        text
    }
}

/// The size a line ending `{n}` CRLF (or `~{n}`, RFC 3516's literal8) announces. `line_end` is
/// the end of the line, `cut_short` when the line began before it.
fn literal_announced(line_end: &[u8], cut_short: bool) -> Option<u64> {
    let line = line_end.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let inside = line.strip_suffix(b"}")?;
    let Some(open) = inside.iter().rposition(|&b| b == b'{') else {
        // More digits than the tail holds (leading zeros, say): larger than any limit.
        let all_digits = !inside.is_empty() && inside.iter().all(u8::is_ascii_digit);
        return (cut_short && all_digits).then_some(u64::MAX);
    };
    let digits = &inside[open + 1..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // More digits than a u64 holds is a literal larger than any limit.
    Some(
        std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .unwrap_or(u64::MAX),
    )
}

/// `bytes` as quoted text a person can read: printable ASCII as is, everything else escaped
/// (`\r`, `\n`, `\x00`), cut after `max` bytes with `…`.
pub fn printable_excerpt(bytes: &[u8], max: usize) -> String {
    let mut text = String::with_capacity(max.min(bytes.len()) + 8);
    text.push('`');
    for &byte in bytes.iter().take(max) {
        match byte {
            b'\r' => text.push_str("\\r"),
            b'\n' => text.push_str("\\n"),
            b'\\' => text.push_str("\\\\"),
            b'`' => text.push_str("\\`"),
            0x20..=0x7e => text.push(byte as char),
            _ => text.push_str(&format!("\\x{byte:02x}")),
        }
    }
    text.push('`');
    if bytes.len() > max {
        text.push('…');
    }
    text
}

/// The two clocks: silence since we began to wait, and the whole answer's time.
#[derive(Debug)]
struct Timer {
    idle: Duration,
    answer: Duration,
    /// Since when we wait for the server without anything moving; `None` while bytes flow.
    waiting_since: Option<Instant>,
    /// When the current answer must be complete; `None` once it carries a literal.
    answer_due: Option<Instant>,
    /// One sleep for the connection's life, moved rather than recreated: set only when it would
    /// fire too late, and re-aimed when it fires early (the deadlines only move later).
    sleep: Pin<Box<Sleep>>,
}

impl Timer {
    fn new(limits: ImapLimits) -> Self {
        let now = Instant::now();
        Timer {
            idle: limits.idle_timeout,
            answer: limits.command_timeout,
            waiting_since: None,
            // The greeting is the first answer.
            answer_due: Some(now + limits.command_timeout),
            sleep: Box::pin(tokio::time::sleep_until(now + limits.idle_timeout)),
        }
    }

    fn progressed(&mut self) {
        self.waiting_since = None;
    }

    fn command_sent(&mut self) {
        self.waiting_since = None;
        self.answer_due = Some(Instant::now() + self.answer);
    }

    fn literal_announced(&mut self) {
        self.answer_due = None;
    }

    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<LimitHit> {
        let mut now = Instant::now();
        let since = *self.waiting_since.get_or_insert(now);
        loop {
            let silent_at = since + self.idle;
            let (due, hit) = match self.answer_due {
                Some(answer_due) if answer_due < silent_at => (
                    answer_due,
                    LimitHit::SlowAnswer {
                        seconds: self.answer.as_secs(),
                    },
                ),
                _ => (
                    silent_at,
                    LimitHit::Silent {
                        seconds: self.idle.as_secs(),
                    },
                ),
            };
            if now >= due {
                return Poll::Ready(hit);
            }
            if self.sleep.deadline() > due || self.sleep.deadline() <= now {
                self.sleep.as_mut().reset(due);
            }
            match self.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => now = Instant::now(),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ImapLimits {
        ImapLimits {
            max_line_bytes: 64,
            max_literal_bytes: 1000,
            ..ImapLimits::default()
        }
    }

    #[tokio::test]
    async fn literals_are_skipped_and_lines_counted_across_reads() {
        let mut guard = ByteGuard::new(limits());
        // The announcement split over two reads, the literal holding CRLFs and a long run.
        guard.received(b"* 1 FETCH (UID 7 BODY[] {1").unwrap();
        guard.received(b"00}\r\n").unwrap();
        let body = [b'x'; 98];
        guard.received(b"\r\n").unwrap();
        guard.received(&body).unwrap();
        guard.received(b")\r\nA1 OK done\r\n").unwrap();
        assert_eq!(guard.literal_left, 0);
        assert_eq!(guard.line_len, 0);
    }

    #[tokio::test]
    async fn a_literal_over_the_limit_is_refused_at_its_announcement() {
        let mut guard = ByteGuard::new(limits());
        let error = guard
            .received(b"* 1 FETCH (UID 7 BODY[] {1099511627776}\r\n")
            .unwrap_err();
        let hit = LimitHit::of(&error).unwrap().clone();
        assert_eq!(
            hit.to_string(),
            "a literal of 1099511627776 bytes announced in \
             `* 1 FETCH (UID 7 BODY[] {1099511627776}\\r\\n`, over the limit of 1000 bytes \
             (the message size limit); not read"
        );
        assert!(guard.failed().is_some(), "the connection stays failed");
        let padded = ImapLimits {
            max_line_bytes: 1000,
            ..limits()
        };
        let endless = ByteGuard::new(padded)
            .received(b"* 1 FETCH (BODY[] {0000000000000000000000000000001099511627776}\r\n")
            .unwrap_err();
        assert!(matches!(
            LimitHit::of(&endless),
            Some(LimitHit::LiteralTooLarge { size: u64::MAX, .. })
        ));
    }

    #[tokio::test]
    async fn a_line_over_the_limit_is_refused_with_a_printable_excerpt() {
        let mut guard = ByteGuard::new(limits());
        guard.received(b"* LIST () \"/\" \x00\x1f\x97").unwrap();
        let error = guard.received(&[b'a'; 60]).unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with(
                "a response line longer than 64 bytes, starting `* LIST () \"/\" \\x00\\x1f\\x97aaa"
            ),
            "{text}"
        );
    }

    #[test]
    fn excerpts_escape_and_cut() {
        assert_eq!(
            printable_excerpt(b"a\r\n\x00`\\", 100),
            "`a\\r\\n\\x00\\`\\\\`"
        );
        assert_eq!(printable_excerpt(b"abcdef", 3), "`abc`…");
    }

    #[tokio::test]
    async fn silence_and_slow_answers_time_out() {
        let limits = ImapLimits {
            idle_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_secs(2),
            ..ImapLimits::default()
        };
        let mut guard = ByteGuard::new(limits);
        guard.wrote();
        let silent = std::future::poll_fn(|cx| guard.poll_waiting(cx)).await;
        assert_eq!(
            LimitHit::of(&silent),
            Some(&LimitHit::Silent { seconds: 1 })
        );

        let mut guard = ByteGuard::new(limits);
        guard.wrote();
        let slow = loop {
            // A byte every 300 ms: never silent for 1 s, but the answer takes too long.
            let tick = tokio::time::sleep(Duration::from_millis(300));
            tokio::pin!(tick);
            let waited = std::future::poll_fn(|cx| {
                if tick.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
                guard.poll_waiting(cx).map(Some)
            })
            .await;
            match waited {
                Some(error) => break error,
                None => guard.received(b"*").unwrap(),
            }
        };
        assert_eq!(
            LimitHit::of(&slow),
            Some(&LimitHit::SlowAnswer { seconds: 2 })
        );
    }
}
