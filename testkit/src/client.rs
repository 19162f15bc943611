//! A plain IMAP client for tests: log in, create folders, append messages, and take a complete
//! snapshot of a mailbox to compare. Deliberately separate from the product's engine, so the
//! tests do not check the engine with itself.

use std::collections::BTreeMap;

use async_imap::types::{Fetch, Flag, Name, NameAttribute};
use chrono::{DateTime, FixedOffset};
use futures_util::TryStreamExt;
use tokio::net::TcpStream;

pub type Session = async_imap::Session<TcpStream>;
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

pub async fn connect_login(port: u16, login: &str, password: &str) -> Result<Session> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await?;
    client
        .login(login, password)
        .await
        .map_err(|(e, _)| format!("login {login}: {e}").into())
}

/// Expunges the messages of the selected folder marked `\Deleted`.
pub async fn expunge(session: &mut Session) -> Result<()> {
    session.expunge().await?.try_collect::<Vec<_>>().await?;
    Ok(())
}

/// Marks `uids` (a UID set such as `2,5,7`) of the selected folder `\Deleted` and expunges
/// them, as another client of the mailbox would.
pub async fn delete_uids(session: &mut Session, uids: &str) -> Result<()> {
    session
        .uid_store(uids, "+FLAGS.SILENT (\\Deleted)")
        .await?
        .try_collect::<Vec<_>>()
        .await?;
    expunge(session).await
}

/// One message to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub bytes: Vec<u8>,
    /// e.g. `\Seen`, `$Label1`.
    pub flags: Vec<String>,
    pub internal_date: DateTime<FixedOffset>,
}

/// Creates `folder` (raw, modified UTF-7) if needed and appends `messages` to it.
pub async fn append_all(
    session: &mut Session,
    folder: &str,
    messages: &[NewMessage],
) -> Result<()> {
    if folder != "INBOX" {
        let _ = session.create(folder).await;
    }
    for message in messages {
        let flags = format!("({})", message.flags.join(" "));
        let date = format!(
            "\"{}\"",
            message.internal_date.format("%d-%b-%Y %H:%M:%S %z")
        );
        session
            .append(folder, Some(&flags), Some(&date), &message.bytes)
            .await?;
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSnapshot {
    pub uid: u32,
    pub bytes: Vec<u8>,
    /// Sorted, without `\Recent`.
    pub flags: Vec<String>,
    pub internal_date: Option<DateTime<FixedOffset>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderSnapshot {
    pub attributes: Vec<String>,
    pub messages: Vec<MessageSnapshot>,
}

/// Every folder (raw name) of a mailbox with every message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailboxSnapshot {
    pub folders: BTreeMap<String, FolderSnapshot>,
}

impl MailboxSnapshot {
    pub fn message_count(&self) -> usize {
        self.folders.values().map(|f| f.messages.len()).sum()
    }

    pub fn folder(&self, name: &str) -> Option<&FolderSnapshot> {
        self.folders.get(name)
    }
}

pub async fn snapshot(port: u16, login: &str, password: &str) -> Result<MailboxSnapshot> {
    let mut session = connect_login(port, login, password).await?;
    let names: Vec<Name> = session
        .list(Some(""), Some("*"))
        .await?
        .try_collect()
        .await?;
    let mut snapshot = MailboxSnapshot::default();
    for name in &names {
        let attributes: Vec<String> = name.attributes().iter().map(attribute_text).collect();
        let selectable = !attributes
            .iter()
            .any(|a| a == "\\Noselect" || a == "\\NonExistent");
        let mut folder = FolderSnapshot {
            attributes,
            messages: Vec::new(),
        };
        let raw_name = mailbox_name(name);
        if selectable {
            let mailbox = session.examine(&raw_name).await?;
            if mailbox.exists > 0 {
                let fetches: Vec<Fetch> = session
                    .uid_fetch("1:*", "(UID FLAGS INTERNALDATE BODY.PEEK[])")
                    .await?
                    .try_collect()
                    .await?;
                folder.messages = fetches.iter().map(message_snapshot).collect();
            }
        }
        snapshot.folders.insert(raw_name, folder);
    }
    session.logout().await?;
    Ok(snapshot)
}

/// The mailbox name of a LIST answer as the server means it. async-imap gives the name as it
/// stood on the wire, escapes and all when it came as a quoted string (a literal has none), so
/// the byte before it in the buffer it was parsed from tells which: `"` for a quoted string.
fn mailbox_name(name: &Name) -> String {
    let text = name.name();
    let buffer: &[u8] = name.borrow_owner().borrow_owner();
    let offset = (text.as_ptr() as usize).wrapping_sub(buffer.as_ptr() as usize);
    let quoted = offset > 0 && offset < buffer.len() && buffer[offset - 1] == b'"';
    if !quoted {
        return text.to_owned();
    }
    let mut unescaped = String::with_capacity(text.len());
    let mut escaped = false;
    for c in text.chars() {
        if escaped || c != '\\' {
            unescaped.push(c);
        }
        escaped = !escaped && c == '\\';
    }
    unescaped
}

fn message_snapshot(fetch: &Fetch) -> MessageSnapshot {
    let mut flags: Vec<String> = fetch
        .flags()
        .filter(|f| !matches!(f, Flag::Recent))
        .map(|f| match f {
            Flag::Seen => "\\Seen".to_owned(),
            Flag::Answered => "\\Answered".to_owned(),
            Flag::Flagged => "\\Flagged".to_owned(),
            Flag::Deleted => "\\Deleted".to_owned(),
            Flag::Draft => "\\Draft".to_owned(),
            Flag::Custom(c) => c.to_string(),
            other => format!("{other:?}"),
        })
        .collect();
    flags.sort();
    MessageSnapshot {
        uid: fetch.uid.unwrap_or(0),
        bytes: fetch.body().unwrap_or_default().to_vec(),
        flags,
        internal_date: fetch.internal_date(),
    }
}

fn attribute_text(attribute: &NameAttribute<'_>) -> String {
    match attribute {
        NameAttribute::NoSelect => "\\Noselect".into(),
        NameAttribute::NoInferiors => "\\Noinferiors".into(),
        NameAttribute::Sent => "\\Sent".into(),
        NameAttribute::Drafts => "\\Drafts".into(),
        NameAttribute::Trash => "\\Trash".into(),
        NameAttribute::Junk => "\\Junk".into(),
        NameAttribute::Archive => "\\Archive".into(),
        NameAttribute::Extension(e) => e.to_string(),
        other => format!("{other:?}"),
    }
}

/// What differs between the mail of two snapshots, folder by folder, as readable lines: messages
/// missing on `target`, extra or duplicated there, and flag or date differences. Folder names
/// on the target are `rename(source_name)`. Empty when the mail is the same.
pub fn mail_differences(
    source: &MailboxSnapshot,
    target: &MailboxSnapshot,
    rename: impl Fn(&str) -> String,
) -> Vec<String> {
    let mut differences = Vec::new();
    for name in source.folders.keys() {
        let target_name = rename(name);
        if !target.folders.contains_key(&target_name) {
            differences.push(format!(
                "folder {target_name} (source {name}) missing on the target"
            ));
        }
    }
    let expected = expected_by_target_folder(source, &rename);
    for (name, wanted) in &expected {
        let found: Vec<&MessageSnapshot> = target
            .folders
            .get(name)
            .map(|f| f.messages.iter().collect())
            .unwrap_or_default();
        compare_folder(name, wanted, &found, &mut differences);
    }
    for (name, folder) in &target.folders {
        if !expected.contains_key(name) && !folder.messages.is_empty() {
            differences.push(format!(
                "folder {name}: {} messages on the target only",
                folder.messages.len()
            ));
        }
    }
    differences
}

/// Messages the target lacks and messages it holds too often (or never had), over every
/// folder, compared as [`mail_differences`] compares them: what a soak run counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailCount {
    pub missing: u64,
    pub extra: u64,
}

/// Counts what [`mail_differences`] lists: missing and extra (duplicated) messages.
pub fn count_differences(
    source: &MailboxSnapshot,
    target: &MailboxSnapshot,
    rename: impl Fn(&str) -> String,
) -> MailCount {
    let mut count = MailCount::default();
    let expected = expected_by_target_folder(source, &rename);
    let empty = FolderSnapshot::default();
    for (name, wanted) in &expected {
        let found: Vec<&MessageSnapshot> = target
            .folders
            .get(name)
            .unwrap_or(&empty)
            .messages
            .iter()
            .collect();
        for balance in balances(wanted, &found).into_values() {
            if balance > 0 {
                count.missing += balance as u64;
            } else {
                count.extra += balance.unsigned_abs();
            }
        }
    }
    for (name, folder) in &target.folders {
        if !expected.contains_key(name) {
            count.extra += folder.messages.len() as u64;
        }
    }
    count
}

/// The source's messages grouped by the target folder they belong in.
fn expected_by_target_folder<'a>(
    source: &'a MailboxSnapshot,
    rename: &impl Fn(&str) -> String,
) -> BTreeMap<String, Vec<&'a MessageSnapshot>> {
    let mut expected: BTreeMap<String, Vec<&MessageSnapshot>> = BTreeMap::new();
    for (name, folder) in &source.folders {
        expected
            .entry(rename(name))
            .or_default()
            .extend(&folder.messages);
    }
    expected
}

/// A message as the comparison sees it: bytes, flags, instant — not its UID or position.
type MessageKey = (Vec<u8>, Vec<String>, Option<i64>);

/// For each distinct message: how many `wanted` has minus how many `found` has.
fn balances(wanted: &[&MessageSnapshot], found: &[&MessageSnapshot]) -> BTreeMap<MessageKey, i64> {
    let key = |m: &MessageSnapshot| -> MessageKey {
        (
            m.bytes.clone(),
            m.flags.clone(),
            m.internal_date.map(|d| d.timestamp()),
        )
    };
    let mut counts: BTreeMap<MessageKey, i64> = BTreeMap::new();
    for m in wanted {
        *counts.entry(key(m)).or_default() += 1;
    }
    for m in found {
        *counts.entry(key(m)).or_default() -= 1;
    }
    counts
}

/// Compares as multisets of (bytes, flags, instant): order and UIDs do not matter.
fn compare_folder(
    name: &str,
    wanted: &[&MessageSnapshot],
    found: &[&MessageSnapshot],
    out: &mut Vec<String>,
) {
    for ((bytes, flags, date), count) in balances(wanted, found) {
        let subject = subject_of(&bytes);
        match count {
            0 => {}
            c if c > 0 => out.push(format!(
                "{name}: missing {c}× {subject:?} flags {flags:?} date {date:?}"
            )),
            c => out.push(format!(
                "{name}: {}× extra {subject:?} flags {flags:?} date {date:?}",
                -c
            )),
        }
    }
}

fn subject_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix("Subject: ").map(str::to_owned))
        .unwrap_or_else(|| format!("({} bytes, no subject)", bytes.len()))
}

/// Panics with every difference when the target's mail is not exactly the source's.
pub fn assert_same_mail(
    source: &MailboxSnapshot,
    target: &MailboxSnapshot,
    rename: impl Fn(&str) -> String,
) {
    let differences = mail_differences(source, target, rename);
    assert!(
        differences.is_empty(),
        "target differs from source:\n{}",
        differences.join("\n")
    );
}

/// Messages per non-empty folder of `(login, password)`'s mailbox on the server at `port`,
/// sorted by folder name.
pub async fn folder_counts(port: u16, user: (&str, &str)) -> Result<Vec<(String, u32)>> {
    let mut session = connect_login(port, user.0, user.1).await?;
    let names: Vec<String> = session
        .list(Some(""), Some("*"))
        .await?
        .try_collect::<Vec<_>>()
        .await?
        .iter()
        .filter(|n| {
            !n.attributes()
                .iter()
                .any(|a| matches!(a, async_imap::types::NameAttribute::NoSelect))
        })
        .map(|n| n.name().to_owned())
        .collect();
    let mut counts = Vec::new();
    for name in names {
        let status = session.status(&name, "(MESSAGES)").await?;
        if status.exists > 0 {
            counts.push((name, status.exists));
        }
    }
    counts.sort();
    session.logout().await?;
    Ok(counts)
}
