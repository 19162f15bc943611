//! `GET /api/v1/events`: Server-Sent Events on state changes of the caller's tenant —
//! `event: batch` (the batch with its counts, as `GET /batches/{name}` answers) and
//! `event: user` (`{batch, user}` with the user's record).
//!
//! Changes are found by reading the tenant's state store once a second and comparing, not by
//! hooks in the writers: the scheduler, the command line, another service process on the same
//! PostgreSQL and this API all change batches, and the store is the one place that sees every
//! change. The stream starts with every batch as it is; users follow only when they change.
//! Cost: one listing of batches a second per open stream, plus the users of batches that
//! changed or have a pass running.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use mailfleet_shared::lifecycle::{BatchState, UserRecord, UserState};
use serde_json::json;

use super::auth::InTenant;
use super::batches::Counts;
use crate::tenant_stores::TenantStores;

const POLL: Duration = Duration::from_secs(1);

/// A stream of the tenant's batch and user changes.
#[utoipa::path(get, path = "/api/v1/events", tag = "events",
    responses((status = 200, description = "text/event-stream: `event: batch` and `event: user`, JSON data", content_type = "text/event-stream")))]
pub async fn stream(tenant: InTenant) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let watch = Watch {
        stores: tenant.stores,
        batches: HashMap::new(),
        users: HashMap::new(),
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
    batches: HashMap<String, (BatchState, Counts)>,
    users: HashMap<(String, String), (UserState, u64, u64)>,
    pending: Vec<Event>,
    first: bool,
}

impl Watch {
    async fn look(&mut self) -> Result<(), crate::error::CliError> {
        let batches = self.stores.state.batches().await?;
        let mut seen = Vec::new();
        for batch in batches {
            seen.push(batch.name.clone());
            let known = self.batches.get(&batch.name).cloned();
            let may_have_changed = known.as_ref().is_none_or(|(state, counts)| {
                *state != batch.state || counts.syncing > 0 || batch.state.is_active()
            });
            if !may_have_changed {
                continue;
            }
            let users = self.stores.state.users(&batch.name).await?;
            let counts = Counts::of(&users);
            if self.first {
                self.remember_users(&batch.name, &users);
            } else {
                self.user_changes(&batch.name, &users);
            }
            if known.as_ref() != Some(&(batch.state, counts.clone())) {
                // The shape of `GET /batches/{name}`: the batch's fields and its counts.
                let mut data = serde_json::to_value(&batch).unwrap_or_default();
                if let Some(object) = data.as_object_mut() {
                    object.insert("counts".into(), json!(counts));
                }
                self.pending
                    .push(Event::default().event("batch").data(data.to_string()));
                self.batches
                    .insert(batch.name.clone(), (batch.state, counts));
            }
        }
        let gone: Vec<String> = self
            .batches
            .keys()
            .filter(|name| !seen.contains(name))
            .cloned()
            .collect();
        for name in gone {
            self.batches.remove(&name);
            self.users.retain(|(batch, _), _| *batch != name);
            let data = json!({ "name": name, "removed": true });
            self.pending
                .push(Event::default().event("batch").data(data.to_string()));
        }
        Ok(())
    }

    fn remember_users(&mut self, batch: &str, users: &[UserRecord]) {
        for user in users {
            self.users.insert(
                (batch.to_owned(), user.email.clone()),
                (user.state, user.items_synced, user.items_skipped),
            );
        }
    }

    fn user_changes(&mut self, batch: &str, users: &[UserRecord]) {
        for user in users {
            let now = (user.state, user.items_synced, user.items_skipped);
            let key = (batch.to_owned(), user.email.clone());
            if self.users.get(&key) != Some(&now) {
                self.users.insert(key, now);
                let data = json!({ "batch": batch, "user": user });
                self.pending
                    .push(Event::default().event("user").data(data.to_string()));
            }
        }
    }
}
