//! `GET /api/v1/events`: Server-Sent Events on state changes of the caller's tenant —
//! `event: batch` (the batch with its counts, as `GET /batches/{name}` answers) and
//! `event: user` (`{batch, user}` with the user's record).
//!
//! Changes are found by asking the tenant's state store once a second, not by hooks in the
//! writers: the scheduler, the command line, another service process on the same PostgreSQL and
//! this API all change batches, and the store is the one place that sees every change. The
//! stream starts with every batch as it is; users follow only when they are written.
//!
//! Cost per open stream and second: one listing of the batches, and per batch one indexed
//! query for users written since the last change seen ([`StateStore::users_changed_after`]),
//! which finds nothing while nothing happens. A batch's counts are counted again
//! ([`StateStore::user_tally`]) only when its record or one of its users was written. The
//! stream keeps a change number and the last counts per batch, never a copy of its users: a
//! 50,000-user batch costs it what a 10-user one does.
//!
//! [`StateStore::users_changed_after`]: mailfleet_shared::state::StateStore::users_changed_after
//! [`StateStore::user_tally`]: mailfleet_shared::state::StateStore::user_tally

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use mailfleet_shared::lifecycle::{BatchRecord, BatchState};
use serde_json::json;

use super::auth::InTenant;
use super::batches::Counts;
use crate::error::CliError;
use crate::tenant_stores::TenantStores;

const POLL: Duration = Duration::from_secs(1);

/// Users of one batch a look reports at most; a pass that writes more at once (a batch's
/// start queues every user) is reported over the next looks, so neither the stream's memory
/// nor one read grows with the batch.
const USERS_PER_LOOK: usize = 500;

/// A stream of the tenant's batch and user changes.
#[utoipa::path(get, path = "/api/v1/events", tag = "events",
    responses((status = 200, description = "text/event-stream: `event: batch` and `event: user`, JSON data", content_type = "text/event-stream")))]
pub async fn stream(tenant: InTenant) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let watch = Watch {
        stores: tenant.stores,
        batches: HashMap::new(),
        pending: Vec::new(),
        first: true,
    };
    let events = futures_util::stream::unfold(watch, |mut watch| async move {
        loop {
            if let Some(event) = watch.pending.pop() {
                return Some((Ok(event), watch));
            }
            if !watch.first {
                tokio::time::sleep(POLL).await;
            }
            watch.first = false;
            if let Err(error) = watch.look().await {
                tracing::warn!(%error, "events: cannot read the state store");
            }
            // Popped from the end: keep the order found.
            watch.pending.reverse();
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

struct Watch {
    stores: TenantStores,
    batches: HashMap<String, Seen>,
    pending: Vec<Event>,
    first: bool,
}

/// What the stream last told of a batch.
struct Seen {
    /// The batch record's row version.
    version: u64,
    /// The newest change among its users the stream has reported.
    users_change: u64,
    state: BatchState,
    counts: Counts,
}

impl Watch {
    async fn look(&mut self) -> Result<(), CliError> {
        let batches = self.stores.state.batches().await?;
        let mut listed = Vec::with_capacity(batches.len());
        for batch in batches {
            listed.push(batch.name.clone());
            self.look_at(batch).await?;
        }
        let gone: Vec<String> = self
            .batches
            .keys()
            .filter(|name| !listed.contains(name))
            .cloned()
            .collect();
        for name in gone {
            self.batches.remove(&name);
            let data = json!({ "name": name, "removed": true });
            self.push("batch", data);
        }
        Ok(())
    }

    /// Reports the users of `batch` written since the last look, and the batch if its state
    /// or counts moved.
    async fn look_at(&mut self, batch: BatchRecord) -> Result<(), CliError> {
        let state = &self.stores.state;
        let known = self
            .batches
            .get(&batch.name)
            .map(|seen| (seen.version, seen.users_change));
        let users_change = match known {
            None => state.user_change_mark(&batch.name).await?,
            Some((version, users_change)) => {
                let changed = state
                    .users_changed_after(&batch.name, users_change, USERS_PER_LOOK)
                    .await?;
                let newest = changed.last().map(|c| c.change);
                if newest.is_none() && version == batch.version {
                    return Ok(());
                }
                for change in changed {
                    let data = json!({ "batch": batch.name, "user": change.user });
                    self.push("user", data);
                }
                newest.unwrap_or(users_change)
            }
        };
        let counts = Counts::load(&self.stores, &batch.name).await?;
        let moved = self
            .batches
            .get(&batch.name)
            .is_none_or(|seen| seen.state != batch.state || seen.counts != counts);
        if moved {
            // The shape of `GET /batches/{name}`: the batch's fields and its counts.
            let mut data = serde_json::to_value(&batch).unwrap_or_default();
            if let Some(object) = data.as_object_mut() {
                object.insert("counts".into(), json!(counts));
            }
            self.push("batch", data);
        }
        self.batches.insert(
            batch.name.clone(),
            Seen {
                version: batch.version,
                users_change,
                state: batch.state,
                counts,
            },
        );
        Ok(())
    }

    fn push(&mut self, event: &str, data: serde_json::Value) {
        self.pending
            .push(Event::default().event(event).data(data.to_string()));
    }
}
