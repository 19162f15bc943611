//! The state store's contract (ARCHITECTURE.md, "Seams"): what the service and the `endpoint`,
//! `batch` and `report` commands rely on, run by SQLite here and by PostgreSQL in its module.
//! Every suite gets a store of its own (a fresh state dir, a fresh database), so names here are
//! fixed.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use mailfleet_shared::endpoint::Endpoint;
use mailfleet_shared::lifecycle::{
    BatchCommand, BatchRecord, BatchState, PassKind, PassOutcome, UserRecord, UserState,
};
use mailfleet_shared::state::{ChangedUser, EndpointRecord, StateStore, update_batch};
use mailfleet_shared::store_error::{StoreError, StoreErrorKind};
use mailfleet_shared::user_query::{self, UserOrder, UserPage, UserQuery};

/// A batch as `batch create` makes it, not stored yet.
pub fn new_batch(name: &str) -> BatchRecord {
    BatchRecord {
        name: name.into(),
        source_endpoint: "old".into(),
        target_endpoint: "new".into(),
        include_folders: vec!["INBOX".into()],
        exclude_folders: vec![],
        mirror_deletions: true,
        max_message_size: 10 << 20,
        created_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
        ..BatchRecord::default()
    }
}

fn endpoint(name: &str, url: &str) -> EndpointRecord {
    EndpointRecord {
        name: name.into(),
        endpoint: Endpoint::from_url(url).unwrap(),
        max_concurrent_migrations: 20,
        max_concurrent_incremental_syncs: 10,
        profile: Some(mailfleet_shared::server_profile::ServerProfile::M365),
    }
}

fn is_conflict(error: &StoreError) -> bool {
    error.kind() == StoreErrorKind::Conflict
}

fn names(batches: &[BatchRecord]) -> Vec<&str> {
    batches.iter().map(|b| b.name.as_str()).collect()
}

fn emails(users: &[UserRecord]) -> Vec<&str> {
    users.iter().map(|u| u.email.as_str()).collect()
}

/// The whole contract; `other` is a second handle on the same store (another process's
/// connection), for the writers that race.
pub async fn state_store_contract(store: Arc<dyn StateStore>, other: Arc<dyn StateStore>) {
    endpoints_round_trip_in_name_order(store.as_ref()).await;
    batches_and_users_round_trip_in_order(store.as_ref()).await;
    batch_names_are_unique(store.as_ref()).await;
    user_pages_and_counts_are_the_selections_of_every_user(store.as_ref()).await;
    removing_a_batch_removes_its_users(store.as_ref()).await;
    user_changes_are_seen_once_in_write_order(store.as_ref(), other.as_ref()).await;
    stale_versions_conflict_and_write_nothing(store.as_ref(), other.as_ref()).await;
    a_stop_racing_the_end_of_a_pass_is_kept(store.as_ref(), other.as_ref()).await;
    concurrent_updates_are_never_lost(store, other).await;
}

/// Endpoints are replaced by name and listed in byte order of their names.
pub async fn endpoints_round_trip_in_name_order(store: &dyn StateStore) {
    assert_eq!(store.endpoint("old").await.unwrap(), None);
    for name in ["old", "New", "old-2"] {
        store
            .put_endpoint(&endpoint(name, "imaps://imap.example.com:993"))
            .await
            .unwrap();
    }
    let moved = endpoint("old", "imap://127.0.0.1:1143");
    store.put_endpoint(&moved).await.unwrap();
    assert_eq!(store.endpoint("old").await.unwrap(), Some(moved));
    let listed: Vec<String> = store
        .endpoints()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(listed, ["New", "old", "old-2"]);
    store.remove_endpoint("old-2").await.unwrap();
    assert_eq!(store.endpoint("old-2").await.unwrap(), None);
    assert_eq!(store.endpoints().await.unwrap().len(), 2);
}

/// Records come back as written, at version 1 once created; batches by name in byte order
/// (upper case first, `-` before `_`, whatever the database's collation), users in CSV order
/// with later additions after them, updated users where they were.
pub async fn batches_and_users_round_trip_in_order(store: &dyn StateStore) {
    for name in ["b", "a_1", "Z", "a-2", "A"] {
        store.create_batch(&new_batch(name), &[]).await.unwrap();
    }
    assert_eq!(
        names(&store.batches().await.unwrap()),
        ["A", "Z", "a-2", "a_1", "b"]
    );

    let mut batch = new_batch("round-trip");
    batch.notify = vec!["ops@example.com".into()];
    batch.received_after = chrono::NaiveDate::from_ymd_opt(2024, 3, 1);
    let users = [
        UserRecord::queued("b@example.com", "b", Some("/b")),
        UserRecord::queued("a@example.com", "a", None),
    ];
    store.create_batch(&batch, &users).await.unwrap();
    let stored = store.batch("round-trip").await.unwrap().unwrap();
    assert_eq!(
        stored,
        BatchRecord {
            version: 1,
            ..batch
        }
    );
    let stored_users = store.users("round-trip").await.unwrap();
    assert_eq!(emails(&stored_users), ["b@example.com", "a@example.com"]);
    assert_eq!(
        stored_users[0],
        UserRecord {
            version: 1,
            ..users[0].clone()
        }
    );

    let mut updated = stored_users[0].clone();
    updated.state = UserState::Synced;
    updated.items_synced = 42;
    updated.errors = vec!["INBOX: 1 message over the size limit".into()];
    let mut written = [updated, UserRecord::queued("c@example.com", "c", None)];
    store.put_users("round-trip", &mut written).await.unwrap();
    assert_eq!(
        (written[0].version, written[1].version),
        (2, 1),
        "the written copies know their stored versions"
    );
    let stored_users = store.users("round-trip").await.unwrap();
    assert_eq!(
        emails(&stored_users),
        ["b@example.com", "a@example.com", "c@example.com"]
    );
    assert_eq!(stored_users[0], written[0]);
    assert_eq!(stored_users[2], written[1]);
    assert!(store.users("no-such-batch").await.unwrap().is_empty());
    assert_eq!(store.batch("no-such-batch").await.unwrap(), None);
}

/// The addresses on each page of `query`'s selection, as `page` answers, each page asked for
/// with the cursor of the one before.
async fn walk(query: &UserQuery, page: impl AsyncFn(&UserQuery) -> UserPage) -> Vec<Vec<String>> {
    let mut query = query.clone();
    let mut pages = Vec::new();
    loop {
        let answer = page(&query).await;
        pages.push(answer.users.iter().map(|u| u.email.clone()).collect());
        match answer.next {
            Some(next) => query.after = Some(next),
            None => return pages,
        }
    }
}

/// The pages of users (every filter, order and direction, walked with their cursors) are what
/// `user_query::select` picks from all the batch's users; a user is found by address
/// in any ASCII case; the counts are `user_query::tally`'s. Users written after the batch was
/// created are found by their new state and items, and come after the others among ties.
pub async fn user_pages_and_counts_are_the_selections_of_every_user(store: &dyn StateStore) {
    let states = [UserState::Synced, UserState::Queued, UserState::Failed];
    let users: Vec<UserRecord> = (0..23)
        .map(|i| {
            // Addresses out of CSV order, and in more than one case.
            let email = format!(
                "{}{:02}@Example.org",
                ["carol", "Bob", "ann"][i % 3],
                23 - i
            );
            let mut user = UserRecord::queued(&email, "u", None);
            user.state = states[i % 3];
            user.items_synced = (i as u64 * 7) % 5;
            user.items_skipped = (i % 4 == 0) as u64;
            user
        })
        .collect();
    store
        .create_batch(&new_batch("paged"), &users)
        .await
        .unwrap();
    let mut moved = store.users("paged").await.unwrap()[..2].to_vec();
    moved[0].state = UserState::Failed;
    moved[0].items_synced = 99;
    store.put_users("paged", &mut moved).await.unwrap();
    let mut added = [UserRecord::queued("zed@example.org", "z", None)];
    store.put_users("paged", &mut added).await.unwrap();

    let all = store.users("paged").await.unwrap();
    let orders = [
        UserOrder::Email,
        UserOrder::State,
        UserOrder::ItemsSynced,
        UserOrder::ItemsSkipped,
    ];
    for order in orders {
        for descending in [false, true] {
            for (state, contains) in [
                (None, None),
                (Some(UserState::Failed), None),
                (None, Some("B")),
                (Some(UserState::Synced), Some("@example.")),
                (Some(UserState::Stopped), None),
            ] {
                for limit in [5, 10, 100] {
                    let query = UserQuery {
                        state,
                        contains: contains.map(str::to_owned),
                        order,
                        descending,
                        after: None,
                        limit,
                    };
                    assert_eq!(
                        walk(&query, async |q| store.user_page("paged", q).await.unwrap()).await,
                        walk(&query, async |q| user_query::select(all.clone(), q)).await,
                        "{query:?}"
                    );
                }
            }
        }
    }
    // A page's cursor is a place, not a count: a user added before it shifts nothing after.
    let by_email = UserQuery {
        state: None,
        contains: None,
        order: UserOrder::Email,
        descending: false,
        after: None,
        limit: 10,
    };
    let first_page = store.user_page("paged", &by_email).await.unwrap();
    let after_first = UserQuery {
        after: first_page.next,
        ..by_email
    };
    let second_page = store.user_page("paged", &after_first).await.unwrap();
    let mut early = [UserRecord::queued("Aaron@example.org", "a", None)];
    store.put_users("paged", &mut early).await.unwrap();
    assert_eq!(
        store.user_page("paged", &after_first).await.unwrap(),
        second_page
    );
    let all = store.users("paged").await.unwrap();
    let first = &all[0];
    assert_eq!(
        store.user("paged", &first.email).await.unwrap().as_ref(),
        Some(first)
    );
    assert_eq!(
        store
            .user("paged", &first.email.to_ascii_uppercase())
            .await
            .unwrap()
            .as_ref(),
        Some(first)
    );
    assert_eq!(
        store.user("paged", "nobody@example.org").await.unwrap(),
        None
    );
    assert_eq!(
        store.user("no-such-batch", &first.email).await.unwrap(),
        None
    );
    assert_eq!(
        store.user_tally("paged").await.unwrap(),
        user_query::tally(&all)
    );
    assert!(store.user_tally("no-such-batch").await.unwrap().is_empty());
}

/// `create_batch` on a taken name fails and leaves the batch and its users as they were.
pub async fn batch_names_are_unique(store: &dyn StateStore) {
    let users = [UserRecord::queued("first@example.com", "first", None)];
    store
        .create_batch(&new_batch("taken"), &users)
        .await
        .unwrap();
    let mut second = new_batch("taken");
    second.source_endpoint = "elsewhere".into();
    let error = store
        .create_batch(
            &second,
            &[UserRecord::queued("second@example.com", "s", None)],
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("exists already"), "{error}");
    assert!(is_conflict(&error), "{error}");
    let stored = store.batch("taken").await.unwrap().unwrap();
    assert_eq!(stored.source_endpoint, "old");
    assert_eq!(
        emails(&store.users("taken").await.unwrap()),
        ["first@example.com"]
    );
}

/// A removed batch takes its users along: a new batch of the same name starts empty.
pub async fn removing_a_batch_removes_its_users(store: &dyn StateStore) {
    let users = [
        UserRecord::queued("x@example.com", "x", None),
        UserRecord::queued("y@example.com", "y", None),
    ];
    store
        .create_batch(&new_batch("removed"), &users)
        .await
        .unwrap();
    store
        .create_batch(&new_batch("kept"), &users)
        .await
        .unwrap();
    store.remove_batch("removed").await.unwrap();
    assert_eq!(store.batch("removed").await.unwrap(), None);
    assert!(store.users("removed").await.unwrap().is_empty());
    assert_eq!(
        store.users("kept").await.unwrap().len(),
        2,
        "other batch kept"
    );

    store
        .create_batch(&new_batch("removed"), &[])
        .await
        .unwrap();
    assert!(store.users("removed").await.unwrap().is_empty());
    let error = store
        .put_users(
            "never-created",
            &mut [UserRecord::queued("z@example.com", "z", None)],
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::NotFound, "{error}");
    assert!(error.to_string().contains("never-created"), "{error}");
}

/// A reader that took the mark sees each later write of the batch's users once, oldest first,
/// a page at a time, whichever handle wrote it; nothing of other batches; and a batch removed
/// and created again under its name starts above the old mark, so the reader misses nothing.
pub async fn user_changes_are_seen_once_in_write_order(
    store: &dyn StateStore,
    other: &dyn StateStore,
) {
    fn changed_emails(changes: &[ChangedUser]) -> Vec<&str> {
        changes.iter().map(|c| c.user.email.as_str()).collect()
    }
    let users = [
        UserRecord::queued("a@example.com", "a", None),
        UserRecord::queued("b@example.com", "b", None),
        UserRecord::queued("c@example.com", "c", None),
    ];
    store
        .create_batch(&new_batch("watched"), &users)
        .await
        .unwrap();
    store
        .create_batch(&new_batch("unwatched"), &users)
        .await
        .unwrap();
    let mark = store.user_change_mark("watched").await.unwrap();
    assert!(mark > 0, "created users are numbered changes");
    assert!(
        store
            .users_changed_after("watched", mark, 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing changed since the mark"
    );

    let mut stored = store.users("watched").await.unwrap();
    stored[2].state = UserState::Syncing;
    store.put_users("watched", &mut stored[2..]).await.unwrap();
    stored[0].state = UserState::Syncing;
    other.put_users("watched", &mut stored[..1]).await.unwrap();
    let mut elsewhere = store.users("unwatched").await.unwrap();
    elsewhere[1].state = UserState::Failed;
    store.put_users("unwatched", &mut elsewhere).await.unwrap();

    let first = store.users_changed_after("watched", mark, 1).await.unwrap();
    assert_eq!(changed_emails(&first), ["c@example.com"]);
    assert_eq!(first[0].user.state, UserState::Syncing);
    let rest = store
        .users_changed_after("watched", first[0].change, 10)
        .await
        .unwrap();
    assert_eq!(changed_emails(&rest), ["a@example.com"], "in write order");
    assert_eq!(
        rest[0].user, stored[0],
        "the record as stored, version included"
    );
    let mark = rest[0].change;
    assert_eq!(store.user_change_mark("watched").await.unwrap(), mark);

    store.remove_batch("watched").await.unwrap();
    store
        .create_batch(&new_batch("watched"), &users[..1])
        .await
        .unwrap();
    let again = store
        .users_changed_after("watched", mark, 10)
        .await
        .unwrap();
    assert_eq!(changed_emails(&again), ["a@example.com"]);
    assert_eq!(again[0].user.state, UserState::Queued);
    for name in ["watched", "unwatched"] {
        store.remove_batch(name).await.unwrap();
    }
}

/// A write of a record read at version N fails with a conflict once another writer moved it
/// past N (or removed it), and writes nothing — of a users write, not even its other users.
pub async fn stale_versions_conflict_and_write_nothing(
    store: &dyn StateStore,
    other: &dyn StateStore,
) {
    let users = [
        UserRecord::queued("p@example.com", "p", None),
        UserRecord::queued("q@example.com", "q", None),
    ];
    store
        .create_batch(&new_batch("versioned"), &users)
        .await
        .unwrap();
    let mut ours = store.batch("versioned").await.unwrap().unwrap();
    let mut theirs = other.batch("versioned").await.unwrap().unwrap();
    theirs.state = BatchState::Stopped;
    other.put_batch(&mut theirs).await.unwrap();
    assert_eq!(theirs.version, 2);
    ours.state = BatchState::Syncing;
    let error = store.put_batch(&mut ours).await.unwrap_err();
    assert!(is_conflict(&error), "{error}");
    assert!(error.to_string().contains("versioned"), "{error}");
    assert_eq!(ours.version, 1, "a failed write leaves the copy's version");
    assert_eq!(
        store.batch("versioned").await.unwrap(),
        Some(theirs.clone())
    );

    let mut our_users = store.users("versioned").await.unwrap();
    let mut their_users = other.users("versioned").await.unwrap();
    their_users[0].items_synced = 7;
    other
        .put_users("versioned", &mut their_users[..1])
        .await
        .unwrap();
    our_users[1].items_synced = 1;
    our_users[0].items_synced = 2;
    // q (current) is written before p (stale): the transaction must undo q.
    our_users.reverse();
    let error = store
        .put_users("versioned", &mut our_users)
        .await
        .unwrap_err();
    assert!(is_conflict(&error), "{error}");
    assert!(error.to_string().contains("p@example.com"), "{error}");
    let stored: Vec<u64> = store
        .users("versioned")
        .await
        .unwrap()
        .iter()
        .map(|u| u.items_synced)
        .collect();
    assert_eq!(stored, [7, 0], "nothing of the conflicting write is stored");

    let mut again = [UserRecord::queued("q@example.com", "q twice", None)];
    let error = store.put_users("versioned", &mut again).await.unwrap_err();
    assert!(is_conflict(&error), "{error}");
    assert_eq!(store.users("versioned").await.unwrap()[1].user_name, "q");

    store.remove_batch("versioned").await.unwrap();
    let error = other.put_batch(&mut theirs).await.unwrap_err();
    assert!(
        is_conflict(&error),
        "a removed batch is not written back: {error}"
    );
    assert_eq!(store.batch("versioned").await.unwrap(), None);
    let gone = update_batch(store, "versioned", |b| {
        b.state = BatchState::Stopped;
        Ok::<_, StoreError>(())
    })
    .await
    .unwrap();
    assert_eq!(gone, None);
}

/// A change that lands between a writer's read and its write: the other writer's.
type Interleaved = fn(&mut BatchRecord);

/// `inner`, except that its first `put_batch` is preceded by `first` applied (through
/// `other`): exactly the race of a `batch stop` and the service's end-of-pass write, made
/// certain instead of likely.
struct RaceBeforeWrite<'a> {
    inner: &'a dyn StateStore,
    other: &'a dyn StateStore,
    first: std::sync::Mutex<Option<Interleaved>>,
}

#[async_trait::async_trait]
impl StateStore for RaceBeforeWrite<'_> {
    async fn put_endpoint(&self, endpoint: &EndpointRecord) -> Result<(), StoreError> {
        self.inner.put_endpoint(endpoint).await
    }
    async fn endpoint(&self, name: &str) -> Result<Option<EndpointRecord>, StoreError> {
        self.inner.endpoint(name).await
    }
    async fn endpoints(&self) -> Result<Vec<EndpointRecord>, StoreError> {
        self.inner.endpoints().await
    }
    async fn remove_endpoint(&self, name: &str) -> Result<(), StoreError> {
        self.inner.remove_endpoint(name).await
    }
    async fn create_batch(
        &self,
        batch: &BatchRecord,
        users: &[UserRecord],
    ) -> Result<(), StoreError> {
        self.inner.create_batch(batch, users).await
    }
    async fn put_batch(&self, batch: &mut BatchRecord) -> Result<(), StoreError> {
        let first = self.first.lock().unwrap().take();
        if let Some(change) = first {
            update_batch(self.other, &batch.name, |stored| {
                change(stored);
                Ok::<_, StoreError>(())
            })
            .await?;
        }
        self.inner.put_batch(batch).await
    }
    async fn batch(&self, name: &str) -> Result<Option<BatchRecord>, StoreError> {
        self.inner.batch(name).await
    }
    async fn batches(&self) -> Result<Vec<BatchRecord>, StoreError> {
        self.inner.batches().await
    }
    async fn remove_batch(&self, name: &str) -> Result<(), StoreError> {
        self.inner.remove_batch(name).await
    }
    async fn put_users(&self, batch: &str, users: &mut [UserRecord]) -> Result<(), StoreError> {
        self.inner.put_users(batch, users).await
    }
    async fn users(&self, batch: &str) -> Result<Vec<UserRecord>, StoreError> {
        self.inner.users(batch).await
    }
    async fn user_change_mark(&self, batch: &str) -> Result<u64, StoreError> {
        self.inner.user_change_mark(batch).await
    }
    async fn users_changed_after(
        &self,
        batch: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ChangedUser>, StoreError> {
        self.inner.users_changed_after(batch, after, limit).await
    }
}

/// `batch stop` during a pass and the pass's end, in both orders, each landing between the
/// other's read and write: the loser re-reads and re-applies, and the batch ends Stopped —
/// neither the stop nor the pass's record (its finish time) is lost.
pub async fn a_stop_racing_the_end_of_a_pass_is_kept(
    store: &dyn StateStore,
    other: &dyn StateStore,
) {
    fn now() -> chrono::DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_100, 0).unwrap()
    }
    fn stop(batch: &mut BatchRecord) {
        batch.apply(BatchCommand::Stop, now()).unwrap();
    }
    fn finish(batch: &mut BatchRecord) {
        batch.pass_finished(PassKind::Initial, PassOutcome::NoneFailed, now());
    }
    let races: [(&str, Interleaved, Interleaved); 2] = [
        ("stop-lands-first", finish, stop),
        ("pass-ends-first", stop, finish),
    ];
    for (name, writer, interloper) in races {
        store.create_batch(&new_batch(name), &[]).await.unwrap();
        update_batch(store, name, |batch| {
            batch.apply(BatchCommand::Start, now()).unwrap();
            batch.pass_started(PassKind::Initial);
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
        let racing = RaceBeforeWrite {
            inner: store,
            other,
            first: std::sync::Mutex::new(Some(interloper)),
        };
        let (stored, ()) = update_batch(&racing, name, |batch| {
            writer(batch);
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap()
        .unwrap();
        assert!(racing.first.lock().unwrap().is_none(), "{name}: raced");
        assert_eq!(stored.state, BatchState::Stopped, "{name}");
        assert_eq!(stored.last_sync_finished_at, Some(now()), "{name}");
        assert_eq!(
            stored.version, 4,
            "{name}: created, started, and both writes"
        );
        assert_eq!(store.batch(name).await.unwrap(), Some(stored));
    }
}

/// Writes by each of two writers that race.
const RACING_WRITES: usize = 40;

/// Two tasks, each on its own handle, loop "read the batch, change it, write it" as the
/// service and `batch` commands do (through [`update_batch`]); every write that succeeded is
/// in the final record, none overwritten by the other task.
pub async fn concurrent_updates_are_never_lost(
    store: Arc<dyn StateStore>,
    other: Arc<dyn StateStore>,
) {
    store.create_batch(&new_batch("raced"), &[]).await.unwrap();
    let writer = |store: Arc<dyn StateStore>, who: &'static str| {
        tokio::spawn(async move {
            for n in 0..RACING_WRITES {
                update_batch(store.as_ref(), "raced", |batch| {
                    batch.notify.push(format!("{who}-{n}"));
                    Ok::<_, StoreError>(())
                })
                .await
                .unwrap()
                .expect("the batch exists");
            }
        })
    };
    let (first, second) = (writer(store.clone(), "first"), writer(other, "second"));
    first.await.unwrap();
    second.await.unwrap();

    let stored = store.batch("raced").await.unwrap().unwrap();
    for who in ["first", "second"] {
        let own: Vec<&String> = stored
            .notify
            .iter()
            .filter(|m| m.starts_with(&format!("{who}-")))
            .collect();
        let expected: Vec<String> = (0..RACING_WRITES).map(|n| format!("{who}-{n}")).collect();
        assert_eq!(own, expected.iter().collect::<Vec<_>>(), "{who}'s writes");
    }
    assert_eq!(stored.version, 1 + 2 * RACING_WRITES as u64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite_state::SqliteStateStore;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_state_keeps_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        // Two handles on one file, as the service and a `batch` command are.
        let store = Arc::new(SqliteStateStore::open(dir.path()).unwrap());
        let other = Arc::new(SqliteStateStore::open(dir.path()).unwrap());
        state_store_contract(store, other).await;
    }
}
