//! Tokens kept in memory until shortly before they expire, one fetch per key at a time.
//!
//! A batch of 50,000 mailboxes on Exchange Online needs one app-only token, not 50,000 token
//! requests (Entra ID throttles those too); Google needs one per mailbox, reused by the
//! mailbox's discovery and folder tasks. Each key has its own async lock: the first login
//! fetches while the others wait, then they all use what it got.
//!
//! A refusal of the identity provider is remembered for a minute too: with a wrong client
//! secret every user of the batch fails with the provider's words, but the provider is asked
//! once a minute, not once per user (Entra ID locks out clients that keep failing).
//!
//! A token an IMAP server refuses is replaced, but a replacement is not replaced again within
//! a minute: Exchange Online answers a mailbox the app may not open with the same NO as a
//! revoked token, and a batch with a thousand such mailboxes must not fetch a thousand tokens.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};

use super::provider::AccessToken;
use crate::error::WorkerError;

/// Renew this long before the provider's `expires_in` (at most: a short-lived token is
/// renewed halfway), so that a token never expires between fetch and login.
const RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);

/// How long a refusal is answered from memory, and a replacement token kept.
const REFUSAL_MEMORY: Duration = Duration::from_secs(60);

type Slot = Arc<tokio::sync::Mutex<Option<Entry>>>;

#[derive(Default)]
pub struct TokenCache {
    slots: Mutex<HashMap<String, Slot>>,
}

enum Entry {
    Token {
        token: SecretString,
        renew_at: Instant,
        /// Set on a token fetched because the previous one was refused: until then a refusal
        /// is the mailbox's, not the token's.
        replacement_until: Option<Instant>,
    },
    /// The token was refused; the next login fetches a replacement.
    Replace,
    Refused {
        provider: String,
        subject: String,
        reason: String,
        until: Instant,
    },
}

impl Entry {
    /// Whether the entry still answers (the token is not due for renewal, the refusal recent).
    fn is_current(&self, now: Instant) -> bool {
        match self {
            Entry::Token { renew_at, .. } => now < *renew_at,
            Entry::Refused { until, .. } => now < *until,
            Entry::Replace => false,
        }
    }
}

impl TokenCache {
    /// The cached token of `key`, or the one `fetch` gets (cached when it says how long it
    /// lasts).
    pub async fn get_or_fetch<F>(&self, key: &str, fetch: F) -> Result<SecretString, WorkerError>
    where
        F: Future<Output = Result<AccessToken, WorkerError>>,
    {
        let slot = self.slot(key);
        let mut cached = slot.lock().await;
        match cached
            .as_ref()
            .filter(|entry| entry.is_current(Instant::now()))
        {
            Some(Entry::Token { token, .. }) => return Ok(token.clone()),
            Some(Entry::Refused {
                provider,
                subject,
                reason,
                ..
            }) => {
                return Err(WorkerError::TokenRefused {
                    provider: provider.clone(),
                    subject: subject.clone(),
                    reason: reason.clone(),
                });
            }
            Some(Entry::Replace) | None => {}
        }
        let replacing = matches!(*cached, Some(Entry::Replace));
        match fetch.await {
            Ok(fetched) => {
                let now = Instant::now();
                *cached = fetched.lifetime.map(|lifetime| Entry::Token {
                    token: fetched.secret.clone(),
                    renew_at: now + lifetime - RENEW_BEFORE.min(lifetime / 2),
                    replacement_until: replacing.then(|| now + REFUSAL_MEMORY),
                });
                Ok(fetched.secret)
            }
            Err(WorkerError::TokenRefused {
                provider,
                subject,
                reason,
            }) => {
                *cached = Some(Entry::Refused {
                    provider: provider.clone(),
                    subject: subject.clone(),
                    reason: reason.clone(),
                    until: Instant::now() + REFUSAL_MEMORY,
                });
                Err(WorkerError::TokenRefused {
                    provider,
                    subject,
                    reason,
                })
            }
            Err(other) => Err(other),
        }
    }

    /// Forgets `key`'s token if it is still `refused` (another login may have renewed it
    /// already; that one stays) and is not itself a recent replacement.
    pub async fn invalidate(&self, key: &str, refused: &SecretString) {
        let slot = self.slot(key);
        let mut cached = slot.lock().await;
        if let Some(Entry::Token {
            token,
            replacement_until,
            ..
        }) = cached.as_ref()
            && token.expose_secret() == refused.expose_secret()
            && replacement_until.is_none_or(|until| until <= Instant::now())
        {
            *cached = Some(Entry::Replace);
        }
    }

    fn slot(&self, key: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if !slots.contains_key(key)
            && slots.len() >= PRUNE_FROM
            && slots.len().is_multiple_of(PRUNE_FROM)
        {
            prune(&mut slots);
        }
        slots.entry(key.to_owned()).or_default().clone()
    }
}

/// With per-mailbox tokens a batch of 50,000 mailboxes would keep 50,000 slots; past this many,
/// every so often the slots nobody uses and whose token is due for renewal go.
const PRUNE_FROM: usize = 1024;

fn prune(slots: &mut HashMap<String, Slot>) {
    let now = Instant::now();
    slots.retain(|_, slot| {
        // A slot someone holds or waits for stays; so does a good token or a recent refusal.
        Arc::strong_count(slot) > 1
            || slot.try_lock().map_or(true, |cached| {
                cached.as_ref().is_some_and(|entry| entry.is_current(now))
            })
    });
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn token(text: &str, seconds: u64) -> AccessToken {
        AccessToken {
            secret: SecretString::from(text),
            lifetime: Some(Duration::from_secs(seconds)),
        }
    }

    #[tokio::test]
    async fn concurrent_logins_share_one_fetch_and_a_refused_token_is_fetched_again() {
        let cache = TokenCache::default();
        let fetches = AtomicUsize::new(0);
        let fetch = || async {
            let n = fetches.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok(token(&format!("t{n}"), 3600))
        };
        let (a, b) = tokio::join!(
            cache.get_or_fetch("app", fetch()),
            cache.get_or_fetch("app", fetch())
        );
        assert_eq!(a.unwrap().expose_secret(), "t0");
        assert_eq!(b.unwrap().expose_secret(), "t0");
        assert_eq!(fetches.load(Ordering::SeqCst), 1);

        cache
            .invalidate("app", &SecretString::from("some older token"))
            .await;
        let same = cache.get_or_fetch("app", fetch()).await.unwrap();
        assert_eq!(same.expose_secret(), "t0");
        cache.invalidate("app", &same).await;
        let fresh = cache.get_or_fetch("app", fetch()).await.unwrap();
        assert_eq!(fresh.expose_secret(), "t1");

        // The replacement refused too, within a minute: the mailbox is refused, not the token.
        cache.invalidate("app", &fresh).await;
        let kept = cache.get_or_fetch("app", fetch()).await.unwrap();
        assert_eq!(kept.expose_secret(), "t1");
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_refusal_is_remembered_and_not_asked_again() {
        let cache = TokenCache::default();
        let fetches = AtomicUsize::new(0);
        let refuse = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            Err(WorkerError::TokenRefused {
                provider: "Microsoft Entra ID".into(),
                subject: "app".into(),
                reason: "invalid_client: AADSTS7000215".into(),
            })
        };
        for _ in 0..3 {
            let error = cache.get_or_fetch("app", refuse()).await.unwrap_err();
            assert!(error.to_string().contains("AADSTS7000215"), "{error}");
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn slots_of_tokens_due_for_renewal_are_pruned() {
        let cache = TokenCache::default();
        for n in 0..PRUNE_FROM {
            let expired = async { Ok(token("t", 0)) };
            cache
                .get_or_fetch(&format!("gone{n}"), expired)
                .await
                .unwrap();
        }
        let good = async { Ok(token("kept", 3600)) };
        cache.get_or_fetch("kept", good).await.unwrap();
        let slots = cache.slots.lock().unwrap();
        assert_eq!(slots.len(), 1, "only the new slot is left");
    }

    #[tokio::test]
    async fn tokens_without_a_lifetime_are_not_kept() {
        let cache = TokenCache::default();
        let unlimited = |text: &'static str| async move {
            Ok(AccessToken {
                secret: SecretString::from(text),
                lifetime: None,
            })
        };
        cache.get_or_fetch("file", unlimited("a")).await.unwrap();
        let second = cache.get_or_fetch("file", unlimited("b")).await.unwrap();
        assert_eq!(second.expose_secret(), "b");
    }
}
