//! The fingerprint guard (ARCHITECTURE.md, rule 1): which messages a target folder already holds.
//!
//! A multiset, not a set: a folder may legitimately hold two identical messages (the same
//! notification twice, no Message-ID), and both must be copied exactly once. Each source message
//! claims one matching target copy; only unclaimed source messages are appended.

use std::collections::HashMap;

use async_imap::types::Fetch;
use futures_util::TryStreamExt;
use mailfleet_shared::fingerprint::{FINGERPRINT_FIELDS, Fingerprint};

use crate::error::WorkerError;
use crate::imap::ImapConnection;

/// How many copies of each fingerprint: the target's unclaimed copies, or a retry's appends.
#[derive(Debug, Default)]
pub struct FingerprintCounts(HashMap<Fingerprint, u32>);

impl FingerprintCounts {
    pub fn add(&mut self, fingerprint: Fingerprint) {
        *self.0.entry(fingerprint).or_default() += 1;
    }

    /// Takes one copy of `fingerprint`; `false` when none is left.
    pub fn take_one(&mut self, fingerprint: &Fingerprint) -> bool {
        match self.0.get_mut(fingerprint) {
            Some(count) if *count > 0 => {
                *count -= 1;
                true
            }
            _ => false,
        }
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }
}

#[derive(Debug, Default)]
pub struct TargetIndex {
    copies: FingerprintCounts,
}

impl TargetIndex {
    /// Fingerprints of the selected target folder's messages with UID ≥ `from_uid`.
    pub async fn load(target: &mut ImapConnection, from_uid: u32) -> Result<Self, WorkerError> {
        let mut index = TargetIndex::default();
        fetch_fingerprints(target, from_uid, "", |fingerprint, _| {
            index.add(fingerprint)
        })
        .await?;
        Ok(index)
    }

    pub fn add(&mut self, fingerprint: Fingerprint) {
        self.copies.add(fingerprint);
    }

    /// Takes one target copy of `fingerprint`; `false` when none is left (the message must be
    /// appended).
    pub fn claim(&mut self, fingerprint: &Fingerprint) -> bool {
        self.copies.take_one(fingerprint)
    }
}

/// Fingerprints every message of the selected folder with UID ≥ `from_uid`, in one FETCH of
/// just the header fields the fingerprint needs (and `extra_items`, e.g. ` INTERNALDATE`),
/// handing each to `each` as it arrives: memory holds what `each` keeps, not the headers of a
/// whole folder. Then checks that every message there was fingerprinted: a short answer would
/// let copies in (the guard) or hide messages (verification), so it is an error, retried.
pub async fn fetch_fingerprints(
    connection: &mut ImapConnection,
    from_uid: u32,
    extra_items: &str,
    mut each: impl FnMut(Fingerprint, &Fetch) + Send,
) -> Result<(), WorkerError> {
    let query = format!(
        "(UID RFC822.SIZE{extra_items} BODY.PEEK[HEADER.FIELDS ({})])",
        FINGERPRINT_FIELDS.join(" ")
    );
    let fingerprinted = connection
        .run("FETCH fingerprints", |s| async move {
            let mut answers = s.uid_fetch(format!("{from_uid}:*"), query).await?;
            let mut fingerprinted = 0;
            while let Some(fetch) = answers.try_next().await? {
                // `n:*` also returns the highest message when every UID is below n.
                if fetch.uid.is_some_and(|uid| uid >= from_uid) {
                    let header = fetch.header().unwrap_or_default();
                    let size = u64::from(fetch.size.unwrap_or(0));
                    each(Fingerprint::from_header(header, size), &fetch);
                    fingerprinted += 1;
                }
            }
            Ok(fingerprinted)
        })
        .await?;
    connection.confirm_complete("FETCH fingerprints")?;
    let present = connection
        .run("UID SEARCH", |s| s.uid_search(format!("UID {from_uid}:*")))
        .await?;
    connection.confirm_complete("UID SEARCH")?;
    let expected = present.iter().filter(|&&uid| uid >= from_uid).count();
    if fingerprinted < expected {
        return Err(WorkerError::Incomplete {
            server: connection.server.clone(),
            reason: format!("fingerprints of {fingerprinted} of {expected} messages"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_messages_are_claimed_once_each() {
        let fp = Fingerprint::from_header(b"Subject: same\r\n\r\n", 10);
        let mut index = TargetIndex::default();
        index.add(fp);
        assert!(index.claim(&fp));
        assert!(
            !index.claim(&fp),
            "the second identical source message must be appended"
        );
    }

    #[test]
    fn counts_give_out_each_copy_once() {
        let fp = Fingerprint::from_header(b"Subject: twice\r\n\r\n", 10);
        let mut counts = FingerprintCounts::default();
        assert!(!counts.take_one(&fp));
        counts.add(fp);
        counts.add(fp);
        assert!(counts.take_one(&fp) && counts.take_one(&fp));
        assert!(!counts.take_one(&fp));
        counts.add(fp);
        counts.clear();
        assert!(!counts.take_one(&fp));
    }
}
