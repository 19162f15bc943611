//! The folder lease: only one worker copies into a folder at a time.
//!
//! Delivery is at-least-once, and a dropped broker connection hands a task that is still running
//! to a second worker. Two appenders on one folder each fingerprint the target before the other's
//! copies exist, and both copy — duplicates. So a folder task first takes the folder's lease
//! (waiting while another holder works), renews it while copying, and gives it up at the end. A
//! holder that dies stops renewing; its lease expires and the waiting task proceeds under the
//! fingerprint guard.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use mailfleet_shared::checkpoint::{CheckpointKey, CheckpointStore};

use crate::error::WorkerError;

/// How long a lease lasts without renewal; renewed three times as often.
const TTL: Duration = Duration::from_secs(30);

pub struct FolderLease {
    store: Arc<dyn CheckpointStore>,
    key: CheckpointKey,
    owner: String,
    lost: Arc<AtomicBool>,
    renewal: tokio::task::JoinHandle<()>,
}

impl FolderLease {
    /// Waits until this task holds the folder's lease.
    pub async fn acquire(
        store: Arc<dyn CheckpointStore>,
        key: CheckpointKey,
    ) -> Result<Self, WorkerError> {
        let owner = unique_owner();
        let mut delay = Duration::from_millis(200);
        while !store.acquire_lease(&key, &owner, TTL).await? {
            tracing::info!(user = %key.user, folder = %key.folder, "folder busy with another worker; waiting");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        let lost = Arc::new(AtomicBool::new(false));
        let renewal = tokio::spawn(renew(
            store.clone(),
            key.clone(),
            owner.clone(),
            lost.clone(),
        ));
        Ok(FolderLease {
            store,
            key,
            owner,
            lost,
            renewal,
        })
    }

    /// Fails when the lease was lost (this worker stalled past its TTL): another worker may be
    /// copying now, so this one must stop and start over under the lease.
    pub fn check(&self) -> Result<(), WorkerError> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(WorkerError::LeaseLost {
                folder: self.key.folder.clone(),
            });
        }
        Ok(())
    }

    pub async fn release(self) {
        self.renewal.abort();
        if let Err(error) = self.store.release_lease(&self.key, &self.owner).await {
            // It expires by itself.
            tracing::warn!(%error, folder = %self.key.folder, "cannot release folder lease");
        }
    }
}

async fn renew(
    store: Arc<dyn CheckpointStore>,
    key: CheckpointKey,
    owner: String,
    lost: Arc<AtomicBool>,
) {
    loop {
        tokio::time::sleep(TTL / 3).await;
        match store.acquire_lease(&key, &owner, TTL).await {
            Ok(true) => {}
            Ok(false) => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
            // A store hiccup: try again at the next tick, well before the lease expires.
            Err(error) => tracing::warn!(%error, folder = %key.folder, "cannot renew folder lease"),
        }
    }
}

/// Unique across processes and machines for all practical purposes.
fn unique_owner() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}
