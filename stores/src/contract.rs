//! The contract of each seam, as test suites every backend runs (ARCHITECTURE.md, "Seams": one
//! contract, two real backends). A backend that passes these behaves as the worker expects; the
//! Redis and RabbitMQ backends call the same functions. `scope` keeps parallel runs apart.
//!
//! Compiled only into test builds (`cfg(test)`) or with the `contract` feature, for a backend
//! tested from outside this crate; the shipped library does not carry it.

use mailfleet_shared::checkpoint::{CheckpointKey, CheckpointStore, FolderCheckpoint};
use mailfleet_shared::credentials::{CredentialId, CredentialStore};
use mailfleet_shared::endpoint::Endpoint;
use mailfleet_shared::job_spec::{DEFAULT_FOLDER_PART_MESSAGES, JobSpec, JobSpecStore};
use mailfleet_shared::messages::{FolderOutcome, MailboxUser, Report, Task};
use mailfleet_shared::queue::TaskQueue;
use mailfleet_shared::uid_map::{MappedMessage, UidMap};
use secrecy::{ExposeSecret, SecretString};

pub mod control_store;
pub mod state_store;

fn checkpoint(validity: u32, last: u32) -> FolderCheckpoint {
    FolderCheckpoint {
        source_uidvalidity: validity,
        last_source_uid: last,
        target_uidvalidity: 7,
        target_uid_mark: last * 2,
    }
}

/// Forward-only under one UIDVALIDITY, reset on a new one, isolated by scope and user; maps of
/// copies replaced as a whole, listed per user, forgotten per folder and with the user's
/// checkpoints.
pub async fn checkpoint_store_contract(store: &dyn CheckpointStore, scope: &str) {
    let key = |user: &str, folder: &str| CheckpointKey {
        scope: scope.to_owned(),
        user: user.to_owned(),
        folder: folder.to_owned(),
    };
    let inbox = key("alice@example.com", "INBOX");
    assert_eq!(store.load(&inbox).await.unwrap(), None);
    assert!(store.advance(&inbox, checkpoint(1, 10)).await.unwrap());
    assert!(store.advance(&inbox, checkpoint(1, 20)).await.unwrap());
    assert!(
        !store.advance(&inbox, checkpoint(1, 15)).await.unwrap(),
        "moved backwards"
    );
    assert!(!store.advance(&inbox, checkpoint(1, 20)).await.unwrap());
    assert_eq!(store.load(&inbox).await.unwrap(), Some(checkpoint(1, 20)));
    assert!(
        store.advance(&inbox, checkpoint(2, 3)).await.unwrap(),
        "new UIDVALIDITY restarts"
    );
    assert_eq!(store.load(&inbox).await.unwrap(), Some(checkpoint(2, 3)));

    let mut map = UidMap::new(2, 7);
    map.source_covered = 3;
    map.set_entries([MappedMessage {
        source_uid: 3,
        target_uid: 9,
        flags: vec!["\\Seen".into()],
    }]);
    assert_eq!(store.load_uid_map(&inbox).await.unwrap(), None);
    store.store_uid_map(&inbox, &map).await.unwrap();
    assert_eq!(store.load_uid_map(&inbox).await.unwrap(), Some(map.clone()));
    map.source_covered = 4;
    store.store_uid_map(&inbox, &map).await.unwrap();
    assert_eq!(
        store.load_uid_map(&inbox).await.unwrap(),
        Some(map),
        "replaced"
    );

    let other_user = key("bob@example.com", "INBOX");
    store.advance(&other_user, checkpoint(1, 5)).await.unwrap();
    let other_scope = CheckpointKey {
        scope: format!("{scope}-other"),
        ..inbox.clone()
    };
    store.advance(&other_scope, checkpoint(1, 9)).await.unwrap();
    store.clear_user(scope, "alice@example.com").await.unwrap();
    assert_eq!(store.load(&inbox).await.unwrap(), None);
    assert_eq!(store.load_uid_map(&inbox).await.unwrap(), None);
    assert_eq!(
        store.load(&other_user).await.unwrap(),
        Some(checkpoint(1, 5))
    );
    assert_eq!(
        store.load(&other_scope).await.unwrap(),
        Some(checkpoint(1, 9))
    );
    store.clear_user(scope, "bob@example.com").await.unwrap();
    store
        .clear_user(&format!("{scope}-other"), "alice@example.com")
        .await
        .unwrap();
}

/// Round trip, missing is `None`, overwrite, and removal by scope only.
pub async fn credential_store_contract(store: &dyn CredentialStore, scope: &str) {
    let alice = CredentialId::user(scope, "alice@example.com");
    let admin = CredentialId::source_admin(scope);
    let elsewhere = CredentialId::user(&format!("{scope}-other"), "alice@example.com");
    assert!(store.get(&alice).await.unwrap().is_none());
    store
        .put(&alice, &SecretString::from("first".to_owned()))
        .await
        .unwrap();
    store
        .put(&alice, &SecretString::from("pässwörd 2".to_owned()))
        .await
        .unwrap();
    store
        .put(&admin, &SecretString::from("admin-pw".to_owned()))
        .await
        .unwrap();
    store
        .put(&elsewhere, &SecretString::from("kept".to_owned()))
        .await
        .unwrap();
    assert_eq!(
        store.get(&alice).await.unwrap().unwrap().expose_secret(),
        "pässwörd 2"
    );
    assert_eq!(
        store.get(&admin).await.unwrap().unwrap().expose_secret(),
        "admin-pw"
    );
    store.remove_scope(scope).await.unwrap();
    assert!(store.get(&alice).await.unwrap().is_none());
    assert!(store.get(&admin).await.unwrap().is_none());
    assert_eq!(
        store
            .get(&elsewhere)
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "kept"
    );
    store.remove_scope(&format!("{scope}-other")).await.unwrap();
}

fn job_spec(batch: &str, source: &str) -> JobSpec {
    JobSpec {
        batch: batch.to_owned(),
        source: Endpoint::from_url(source).unwrap(),
        target: Endpoint::from_url("imaps://outlook.office365.com:993").unwrap(),
        include_folders: vec!["INBOX".to_owned()],
        exclude_folders: vec!["Junk*".to_owned()],
        max_message_size: 150 * 1024 * 1024,
        folder_part_messages: DEFAULT_FOLDER_PART_MESSAGES,
        received_after: chrono::NaiveDate::from_ymd_opt(2024, 1, 31),
        mirror_deletions: true,
        target_profile: mailfleet_shared::server_profile::ServerProfile::M365,
    }
}

/// Round trip, missing is `None`, a second put replaces the first, batches are apart, and
/// removal (also of what is not there) forgets only its batch.
pub async fn job_spec_store_contract(store: &dyn JobSpecStore, batch: &str) {
    let other_batch = format!("{batch}-other");
    assert_eq!(store.job_spec(batch).await.unwrap(), None);
    let first = job_spec(batch, "imap://imap.example.com:143");
    store.put_job_spec(&first).await.unwrap();
    assert_eq!(store.job_spec(batch).await.unwrap(), Some(first));
    let replaced = job_spec(batch, "imaps://mail.example.org:993");
    store.put_job_spec(&replaced).await.unwrap();
    let other = job_spec(&other_batch, "imap://imap.example.com:143");
    store.put_job_spec(&other).await.unwrap();
    assert_eq!(store.job_spec(batch).await.unwrap(), Some(replaced));

    store.remove_job_spec(batch).await.unwrap();
    store.remove_job_spec(batch).await.unwrap();
    assert_eq!(store.job_spec(batch).await.unwrap(), None);
    assert_eq!(store.job_spec(&other_batch).await.unwrap(), Some(other));
    store.remove_job_spec(&other_batch).await.unwrap();
}

fn discover(batch: &str, email: &str) -> Task {
    Task::DiscoverUser {
        batch: batch.to_owned(),
        pass: "p1".to_owned(),
        user: MailboxUser {
            email: email.to_owned(),
            user_name: email.to_owned(),
            user_root: None,
        },
    }
}

/// Publish → deliver → ack; requeue raises the attempt; reports flow; tasks published while
/// another is in flight are delivered. `close` ends consumption once the queue is drained and
/// is called by the suite through `close_queue`.
pub async fn task_queue_contract(queue: &dyn TaskQueue, batch: &str, close_queue: impl FnOnce()) {
    queue
        .publish_task(&discover(batch, "a@example.com"))
        .await
        .unwrap();
    let first = queue.next_task().await.unwrap().unwrap();
    assert_eq!(
        (first.task.clone(), first.attempt),
        (discover(batch, "a@example.com"), 1)
    );
    queue.requeue(&first).await.unwrap();
    let again = queue.next_task().await.unwrap().unwrap();
    assert_eq!(
        (again.task.clone(), again.attempt),
        (discover(batch, "a@example.com"), 2)
    );

    // While `again` is in flight it may publish more work: that work must be delivered.
    queue
        .publish_task(&discover(batch, "b@example.com"))
        .await
        .unwrap();
    let report = Report::Failed {
        task_id: again.task.task_id(),
        batch: batch.to_owned(),
        pass: again.task.pass().to_owned(),
        user: "a@example.com".to_owned(),
        folder: None,
        error: "login rejected".to_owned(),
        // What a task did before it failed travels with the report.
        outcome: FolderOutcome {
            appended: 2,
            bytes: 4_096,
            ..FolderOutcome::default()
        },
    };
    queue.publish_report(&report).await.unwrap();
    queue.ack(&again).await.unwrap();
    assert_eq!(queue.next_report().await.unwrap(), Some(report));
    let second = queue.next_task().await.unwrap().unwrap();
    assert_eq!(second.task, discover(batch, "b@example.com"));
    queue.ack(&second).await.unwrap();
    close_queue();
    assert!(queue.next_task().await.unwrap().is_none());
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::crypto::SecretBox;
    use crate::memory_queue::InProcessQueue;
    use crate::sqlite::SqliteStore;
    use mailfleet_shared::store_error::StoreErrorKind;

    fn sqlite_store(dir: &std::path::Path) -> SqliteStore {
        SqliteStore::open(dir, SecretBox::from_key_bytes(&[1u8; 32]).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn sqlite_checkpoints_keep_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        checkpoint_store_contract(&sqlite_store(dir.path()), "contract-sqlite-cp").await;
    }

    #[tokio::test]
    async fn sqlite_credentials_keep_the_contract_and_store_no_plaintext() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(dir.path());
        credential_store_contract(&store, "contract-sqlite-cred").await;
        let id = CredentialId::user("leak-check", "carol@example.com");
        store
            .put(&id, &SecretString::from("Pl4intextN0t".to_owned()))
            .await
            .unwrap();
        drop(store);
        for file in std::fs::read_dir(dir.path()).unwrap() {
            let bytes = std::fs::read(file.unwrap().path()).unwrap();
            assert!(
                !bytes.windows(12).any(|w| w == b"Pl4intextN0t"),
                "plaintext password on disk"
            );
        }
    }

    #[tokio::test]
    async fn sqlite_job_specs_keep_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        job_spec_store_contract(&sqlite_store(dir.path()), "contract-sqlite-jobs").await;
    }

    #[tokio::test]
    async fn a_secret_sealed_with_another_key_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let id = CredentialId::user("key-change", "dave@example.com");
        sqlite_store(dir.path())
            .put(&id, &SecretString::from("sealed-with-1".to_owned()))
            .await
            .unwrap();
        let other_key = SecretBox::from_key_bytes(&[2u8; 32]).unwrap();
        let store = SqliteStore::open(dir.path(), other_key).unwrap();
        let error = store.get(&id).await.unwrap_err();
        assert_eq!(error.kind(), StoreErrorKind::Corrupt, "{error}");
        assert!(!error.is_retryable());
        assert_eq!(
            error.to_string(),
            "credential user:dave@example.com of key-change: cannot decrypt a stored secret \
             (wrong key, or the data was altered)"
        );
    }

    #[tokio::test]
    async fn in_process_queue_keeps_the_contract() {
        let queue = Arc::new(InProcessQueue::new());
        let closer = queue.clone();
        task_queue_contract(queue.as_ref(), "contract-memory", move || closer.close()).await;
        assert!(queue.is_idle());
    }

    #[tokio::test]
    async fn closed_queue_waits_for_tasks_in_flight() {
        let queue = Arc::new(InProcessQueue::new());
        queue
            .publish_task(&discover("b", "a@example.com"))
            .await
            .unwrap();
        let running = queue.next_task().await.unwrap().unwrap();
        queue.close();
        let waiter = tokio::spawn({
            let queue = queue.clone();
            async move { queue.next_task().await.unwrap() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiter.is_finished(),
            "drained while a task was still running"
        );
        queue
            .publish_task(&discover("b", "folder-task@example.com"))
            .await
            .unwrap();
        queue.ack(&running).await.unwrap();
        let next = waiter.await.unwrap().unwrap();
        assert_eq!(next.task, discover("b", "folder-task@example.com"));
        queue.ack(&next).await.unwrap();
        assert!(queue.next_task().await.unwrap().is_none());
    }
}
