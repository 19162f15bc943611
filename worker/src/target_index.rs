//! The fingerprint guard (ARCHITECTURE.md, rule 1): which messages a target folder already holds.
//!
//! A multiset, not a set: a folder may legitimately hold two identical messages (the same
//! notification twice, no Message-ID), and both must be copied exactly once. Each source message
//! claims one matching target copy; only unclaimed source messages are appended.

use std::collections::HashMap;

use futures_util::TryStreamExt;
use mailfleet_shared::fingerprint::{FINGERPRINT_FIELDS, Fingerprint};

use crate::error::WorkerError;
use crate::imap::ImapConnection;

#[derive(Debug, Default)]
pub struct TargetIndex {
    counts: HashMap<Fingerprint, u32>,
}

impl TargetIndex {
    /// Fingerprints of the selected target folder's messages with UID ≥ `from_uid`, in one FETCH
    /// of just the header fields the fingerprint needs. Each answer is hashed as it arrives, so
    /// memory holds 16 bytes per message, not the headers of a whole folder.
    pub async fn load(target: &mut ImapConnection, from_uid: u32) -> Result<Self, WorkerError> {
        let query = format!(
            "(UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS ({})])",
            FINGERPRINT_FIELDS.join(" ")
        );
        let (index, fingerprinted) = target
            .run("FETCH fingerprints", |s| async move {
                let mut answers = s.uid_fetch(format!("{from_uid}:*"), query).await?;
                let mut index = TargetIndex::default();
                let mut fingerprinted = 0;
                while let Some(fetch) = answers.try_next().await? {
                    // `n:*` also returns the highest message when every UID is below n.
                    if fetch.uid.is_some_and(|uid| uid >= from_uid) {
                        let header = fetch.header().unwrap_or_default();
                        let size = u64::from(fetch.size.unwrap_or(0));
                        index.add(Fingerprint::from_header(header, size));
                        fingerprinted += 1;
                    }
                }
                Ok((index, fingerprinted))
            })
            .await?;
        target.confirm_complete("FETCH fingerprints")?;
        // A short index would let copies in: every message must have been fingerprinted.
        let present = target
            .run("UID SEARCH", |s| s.uid_search(format!("UID {from_uid}:*")))
            .await?;
        target.confirm_complete("UID SEARCH")?;
        let expected = present.iter().filter(|&&uid| uid >= from_uid).count();
        if fingerprinted < expected {
            return Err(WorkerError::Incomplete {
                server: target.server.clone(),
                reason: format!("fingerprints of {fingerprinted} of {expected} messages"),
            });
        }
        Ok(index)
    }

    pub fn add(&mut self, fingerprint: Fingerprint) {
        *self.counts.entry(fingerprint).or_default() += 1;
    }

    /// Takes one target copy of `fingerprint`; `false` when none is left (the message must be
    /// appended).
    pub fn claim(&mut self, fingerprint: &Fingerprint) -> bool {
        match self.counts.get_mut(fingerprint) {
            Some(count) if *count > 0 => {
                *count -= 1;
                true
            }
            _ => false,
        }
    }
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
}
