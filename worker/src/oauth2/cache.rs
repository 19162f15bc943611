//! Tokens kept in memory until shortly before they expire, one fetch per key at a time.
//!
//! A batch of 50,000 mailboxes on Exchange Online needs one app-only token, not 50,000 token
//! requests (Entra ID throttles those too); Google needs one per mailbox, reused by the
//! mailbox's discovery and folder tasks. Each key has its own async lock: the first login
//! fetches while the others wait, then they all use what it got.

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

#[derive(Default)]
pub struct TokenCache {
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Cached>>>>>,
}

struct Cached {
    token: SecretString,
    renew_at: Instant,
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
        if let Some(entry) = cached.as_ref().filter(|c| Instant::now() < c.renew_at) {
            return Ok(entry.token.clone());
        }
        let fetched = fetch.await?;
        *cached = fetched.lifetime.map(|lifetime| Cached {
            token: fetched.secret.clone(),
            renew_at: Instant::now() + lifetime - RENEW_BEFORE.min(lifetime / 2),
        });
        Ok(fetched.secret)
    }

    /// Forgets `key`'s token if it is still `refused` (another login may have renewed it
    /// already; that one stays).
    pub async fn invalidate(&self, key: &str, refused: &SecretString) {
        let slot = self.slot(key);
        let mut cached = slot.lock().await;
        if cached
            .as_ref()
            .is_some_and(|c| c.token.expose_secret() == refused.expose_secret())
        {
            *cached = None;
        }
    }

    fn slot(&self, key: &str) -> Arc<tokio::sync::Mutex<Option<Cached>>> {
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

fn prune(slots: &mut HashMap<String, Arc<tokio::sync::Mutex<Option<Cached>>>>) {
    let now = Instant::now();
    slots.retain(|_, slot| {
        // A slot someone holds or waits for stays; so does a token still good.
        Arc::strong_count(slot) > 1
            || slot.try_lock().map_or(true, |cached| {
                cached.as_ref().is_some_and(|c| now < c.renew_at)
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
