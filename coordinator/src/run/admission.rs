//! Admission (ARCHITECTURE.md, "From a CSV row to an APPEND"): a pass's users enter the sync
//! one at a time, each when the [`slots`](super::slots) shared by every pass running grant it
//! room under its endpoints' `max_concurrent_migrations` and its tenant's quota — as
//! Microsoft's service does per endpoint. Source servers see a bounded number of sessions
//! however large the CSV, and however many batches use them.

use futures_util::{StreamExt, TryStreamExt};
use mailfleet_shared::messages::{MailboxUser, Task};
use mailfleet_shared::queue::TaskQueue;
use mailfleet_shared::store_error::StoreError;

/// Discovery tasks awaiting their publisher confirm at once.
const PUBLISHES_IN_FLIGHT: usize = 256;

pub struct Admission<'a> {
    batch: String,
    pass: String,
    waiting: std::slice::Iter<'a, MailboxUser>,
}

impl<'a> Admission<'a> {
    pub fn new(batch: &str, pass: &str, users: &'a [MailboxUser]) -> Self {
        Admission {
            batch: batch.to_owned(),
            pass: pass.to_owned(),
            waiting: users.iter(),
        }
    }

    /// Publishes the discovery tasks of up to `count` more users. Several publishes await
    /// their broker confirms at once (in CSV order), so admitting a whole large CSV is bounded
    /// by the broker's throughput, not by one round trip per user. Returns the users admitted.
    pub async fn admit(
        &mut self,
        queue: &dyn TaskQueue,
        count: usize,
    ) -> Result<Vec<&'a MailboxUser>, StoreError> {
        let admitted: Vec<&MailboxUser> = self.waiting.by_ref().take(count).collect();
        let tasks: Vec<Task> = admitted
            .iter()
            .map(|user| Task::DiscoverUser {
                batch: self.batch.clone(),
                pass: self.pass.clone(),
                user: (*user).clone(),
            })
            .collect();
        // The futures made first: a closure inside the stream would keep the pass's future from
        // being sent to another thread (the service spawns passes).
        let publishes: Vec<_> = tasks.iter().map(|task| queue.publish_task(task)).collect();
        futures_util::stream::iter(publishes)
            .buffered(PUBLISHES_IN_FLIGHT)
            .try_collect::<()>()
            .await?;
        Ok(admitted)
    }
}
