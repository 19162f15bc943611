//! Distributed mode's checkpoints and sealed credentials in Redis (ARCHITECTURE.md, "Seams" and
//! "Names").
//!
//! Keys live under `mailfleet:{tenant}:` so tenants (and parallel tests) never meet:
//! - `…:checkpoints:{scope}:{user}` — a hash, field = source folder, value = checkpoint JSON;
//!   forgetting a user is one DEL.
//! - `…:credentials:{scope}` — a hash, field = credential name, value = AES-256-GCM ciphertext.
//! - `…:jobs:{batch}` — the batch's [`JobSpec`] as JSON, read by stateless workers.
//!
//! Checkpoints only move forward: the compare-and-set runs as one Lua script inside Redis, so
//! two workers racing on one folder cannot move it back. Losing these keys costs time, never
//! correctness (the fingerprint guard).

use async_trait::async_trait;
use mailfleet_shared::checkpoint::{CheckpointKey, CheckpointStore, FolderCheckpoint};
use mailfleet_shared::credentials::{CredentialId, CredentialStore};
use mailfleet_shared::job_spec::{JobSpec, JobSpecStore};
use mailfleet_shared::store_error::StoreError;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use secrecy::SecretString;

use crate::crypto::SecretBox;
use crate::error::{decode_json, encode_json, redis_error as store_error};

/// KEYS[1] = the user's checkpoint hash; ARGV = folder, source UIDVALIDITY, last source UID,
/// new checkpoint JSON. Writes unless the stored checkpoint has the same UIDVALIDITY and is not
/// behind. Returns 1 when written.
const ADVANCE: &str = r"
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if stored then
  local current = cjson.decode(stored)
  if current.source_uidvalidity == tonumber(ARGV[2])
     and current.last_source_uid >= tonumber(ARGV[3]) then
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
return 1
";

/// KEYS[1] = lease key; ARGV = owner, ttl ms. Takes a free lease or extends our own.
const ACQUIRE_LEASE: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
";

/// KEYS[1] = lease key; ARGV[1] = owner. Deletes the lease only if we hold it.
const RELEASE_LEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
    secrets: SecretBox,
    advance: redis::Script,
    acquire_lease: redis::Script,
    release_lease: redis::Script,
}

impl RedisStore {
    /// Connects to `url` (e.g. `redis://127.0.0.1:6379`); the manager reconnects by itself.
    pub async fn connect(url: &str, tenant: &str, secrets: SecretBox) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(store_error)?;
        let connection = client.get_connection_manager().await.map_err(store_error)?;
        Ok(RedisStore {
            connection,
            prefix: format!("mailfleet:{tenant}:"),
            secrets,
            advance: redis::Script::new(ADVANCE),
            acquire_lease: redis::Script::new(ACQUIRE_LEASE),
            release_lease: redis::Script::new(RELEASE_LEASE),
        })
    }

    fn checkpoint_key(&self, scope: &str, user: &str) -> String {
        format!("{}checkpoints:{scope}:{user}", self.prefix)
    }

    fn lease_key(&self, key: &CheckpointKey) -> String {
        format!(
            "{}leases:{}:{}:{}",
            self.prefix, key.scope, key.user, key.folder
        )
    }

    fn credentials_key(&self, scope: &str) -> String {
        format!("{}credentials:{scope}", self.prefix)
    }

    fn job_spec_key(&self, batch: &str) -> String {
        format!("{}jobs:{batch}", self.prefix)
    }

    /// Every key of this tenant (tests clean up with it; operators inspect with it).
    pub async fn keys(&self) -> Result<Vec<String>, StoreError> {
        let mut connection = self.connection.clone();
        let pattern = format!("{}*", self.prefix);
        let mut keys = Vec::new();
        let mut iter: redis::AsyncIter<String> =
            connection.scan_match(&pattern).await.map_err(store_error)?;
        while let Some(key) = iter.next_item().await {
            keys.push(key.map_err(store_error)?);
        }
        Ok(keys)
    }

    /// Deletes every key of this tenant.
    pub async fn clear_tenant(&self) -> Result<(), StoreError> {
        let keys = self.keys().await?;
        if !keys.is_empty() {
            let mut connection = self.connection.clone();
            let _: () = connection.del(keys).await.map_err(store_error)?;
        }
        Ok(())
    }
}

#[async_trait]
impl CheckpointStore for RedisStore {
    async fn load(&self, key: &CheckpointKey) -> Result<Option<FolderCheckpoint>, StoreError> {
        let mut connection = self.connection.clone();
        let stored: Option<String> = connection
            .hget(self.checkpoint_key(&key.scope, &key.user), &key.folder)
            .await
            .map_err(store_error)?;
        stored
            .map(|json| decode_json(&json, &format!("checkpoint of {} {}", key.user, key.folder)))
            .transpose()
    }

    async fn advance(
        &self,
        key: &CheckpointKey,
        checkpoint: FolderCheckpoint,
    ) -> Result<bool, StoreError> {
        let json = encode_json(&checkpoint, "checkpoint")?;
        let mut connection = self.connection.clone();
        let written: i32 = self
            .advance
            .key(self.checkpoint_key(&key.scope, &key.user))
            .arg(&key.folder)
            .arg(checkpoint.source_uidvalidity)
            .arg(checkpoint.last_source_uid)
            .arg(json)
            .invoke_async(&mut connection)
            .await
            .map_err(store_error)?;
        Ok(written == 1)
    }

    async fn acquire_lease(
        &self,
        key: &CheckpointKey,
        owner: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let mut connection = self.connection.clone();
        let taken: i32 = self
            .acquire_lease
            .key(self.lease_key(key))
            .arg(owner)
            .arg(ttl.as_millis() as u64)
            .invoke_async(&mut connection)
            .await
            .map_err(store_error)?;
        Ok(taken == 1)
    }

    async fn release_lease(&self, key: &CheckpointKey, owner: &str) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let _: i32 = self
            .release_lease
            .key(self.lease_key(key))
            .arg(owner)
            .invoke_async(&mut connection)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn clear_user(&self, scope: &str, user: &str) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let _: () = connection
            .del(self.checkpoint_key(scope, user))
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

#[async_trait]
impl JobSpecStore for RedisStore {
    async fn put_job_spec(&self, spec: &JobSpec) -> Result<(), StoreError> {
        let json = encode_json(spec, "job spec")?;
        let mut connection = self.connection.clone();
        let _: () = connection
            .set(self.job_spec_key(&spec.batch), json)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn job_spec(&self, batch: &str) -> Result<Option<JobSpec>, StoreError> {
        let mut connection = self.connection.clone();
        let json: Option<String> = connection
            .get(self.job_spec_key(batch))
            .await
            .map_err(store_error)?;
        json.map(|json| decode_json(&json, &format!("job spec of {batch}")))
            .transpose()
    }

    async fn remove_job_spec(&self, batch: &str) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let _: () = connection
            .del(self.job_spec_key(batch))
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

#[async_trait]
impl CredentialStore for RedisStore {
    async fn put(&self, id: &CredentialId, secret: &SecretString) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let sealed = self.secrets.seal(secret);
        let _: () = connection
            .hset(self.credentials_key(&id.scope), &id.name, sealed)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn get(&self, id: &CredentialId) -> Result<Option<SecretString>, StoreError> {
        let mut connection = self.connection.clone();
        let sealed: Option<String> = connection
            .hget(self.credentials_key(&id.scope), &id.name)
            .await
            .map_err(store_error)?;
        sealed
            .map(|sealed| self.secrets.open_credential(id, &sealed))
            .transpose()
    }

    async fn remove_scope(&self, scope: &str) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let _: () = connection
            .del(self.credentials_key(scope))
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{
        checkpoint_store_contract, credential_store_contract, job_spec_store_contract,
    };
    use mailfleet_shared::store_error::StoreErrorKind;

    const REDIS: &str = "redis://127.0.0.1:6379";

    async fn store(tenant: &str) -> RedisStore {
        let tenant = format!("{tenant}-{}", std::process::id());
        RedisStore::connect(
            REDIS,
            &tenant,
            SecretBox::from_key_bytes(&[3u8; 32]).unwrap(),
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn redis_checkpoints_keep_the_contract() {
        let store = store("test-cp").await;
        checkpoint_store_contract(&store, "contract-redis-cp").await;
        store.clear_tenant().await.unwrap();
        assert!(store.keys().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn redis_credentials_keep_the_contract_and_hold_no_plaintext() {
        let store = store("test-cred").await;
        credential_store_contract(&store, "contract-redis-cred").await;
        let id = CredentialId::user("leak", "carol@example.com");
        store
            .put(&id, &SecretString::from("R3dis-Plain-Check".to_owned()))
            .await
            .unwrap();
        let mut connection = store.connection.clone();
        for key in store.keys().await.unwrap() {
            let values: Vec<String> = connection.hvals(&key).await.unwrap();
            assert!(
                values.iter().all(|v| !v.contains("R3dis-Plain-Check")),
                "plaintext in {key}"
            );
        }
        store.clear_tenant().await.unwrap();
    }

    #[tokio::test]
    async fn redis_job_specs_keep_the_contract() {
        let store = store("test-jobs").await;
        job_spec_store_contract(&store, "contract-redis-jobs").await;
        assert!(store.keys().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_unreachable_server_is_unavailable_and_an_altered_spec_corrupt() {
        let secrets = SecretBox::from_key_bytes(&[3u8; 32]).unwrap();
        let Err(error) = RedisStore::connect("redis://127.0.0.1:1", "nobody", secrets).await else {
            panic!("connected to a closed port");
        };
        assert_eq!(error.kind(), StoreErrorKind::Unavailable, "{error}");

        let store = store("test-corrupt").await;
        let mut connection = store.connection.clone();
        let _: () = connection
            .set(store.job_spec_key("w1"), "{\"batch\": 3")
            .await
            .unwrap();
        let error = store.job_spec("w1").await.unwrap_err();
        assert_eq!(error.kind(), StoreErrorKind::Corrupt, "{error}");
        assert!(error.to_string().contains("job spec of w1"), "{error}");
        store.clear_tenant().await.unwrap();
    }

    #[tokio::test]
    async fn racing_writers_never_move_a_checkpoint_backwards() {
        let store = store("test-race").await;
        let key = CheckpointKey {
            scope: "race".into(),
            user: "u@example.com".into(),
            folder: "INBOX".into(),
        };
        let writers: Vec<_> = (1..=50u32)
            .map(|last| {
                let (store, key) = (store.clone(), key.clone());
                tokio::spawn(async move {
                    let checkpoint = FolderCheckpoint {
                        source_uidvalidity: 1,
                        last_source_uid: last,
                        target_uidvalidity: 1,
                        target_uid_mark: last,
                    };
                    store.advance(&key, checkpoint).await.unwrap();
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap();
        }
        assert_eq!(store.load(&key).await.unwrap().unwrap().last_source_uid, 50);
        store.clear_tenant().await.unwrap();
    }
}
