//! Sealing secrets at rest with AES-256-GCM (ARCHITECTURE.md, "From a CSV row to an APPEND").
//!
//! Each sealed value is `base64(nonce ‖ ciphertext+tag)` with a fresh random 96-bit nonce, so the
//! same password sealed twice looks different and tampering is detected on open. In embedded
//! mode the key is a 32-byte file created with mode 0600 in the state dir; distributed mode
//! passes it in base64 from configuration.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mailfleet_shared::credentials::CredentialId;
use mailfleet_shared::store_error::StoreError;
use rand::RngCore;
use ring::hkdf;
use secrecy::{ExposeSecret, SecretString};

use crate::error::StoresError;

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
    /// The key itself, kept for deriving tenants' keys from it ([`SecretBox::derive`]).
    key: Arc<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    pub fn from_key_bytes(key: &[u8]) -> Result<Self, StoresError> {
        let key: [u8; KEY_LEN] = key
            .try_into()
            .map_err(|_| StoresError::Key(format!("the key must be {KEY_LEN} bytes")))?;
        Ok(SecretBox {
            cipher: Aes256Gcm::new(&key.into()),
            key: Arc::new(key),
        })
    }

    /// A box with a key of its own for `purpose` (a tenant's name), derived from this one's
    /// and `salt` with HKDF-SHA256: without the salt the derived key cannot be had, so
    /// forgetting the salt makes everything sealed under it unreadable, even to the master
    /// key's holder.
    pub fn derive(&self, salt: &[u8], purpose: &str) -> SecretBox {
        let info = [b"mailfleet tenant key ".as_slice(), purpose.as_bytes()];
        let mut key = [0u8; KEY_LEN];
        hkdf::Salt::new(hkdf::HKDF_SHA256, salt)
            .extract(self.key.as_slice())
            .expand(&info, hkdf::HKDF_SHA256)
            .and_then(|okm| okm.fill(&mut key))
            .expect("32 bytes are within what HKDF-SHA256 can expand to");
        SecretBox::from_key_bytes(&key).expect("a derived key has the key's length")
    }

    /// A key given as base64 (e.g. `MAILFLEET_SECRET_KEY` in distributed mode).
    pub fn from_base64(key: &str) -> Result<Self, StoresError> {
        let bytes = STANDARD
            .decode(key.trim())
            .map_err(|_| StoresError::Key("the key is not valid base64".into()))?;
        Self::from_key_bytes(&bytes)
    }

    /// Loads the key file, creating it (mode 0600, from the OS's random source) when missing.
    /// A key file that group or others can read is refused: it would expose every password.
    pub fn load_or_create_key_file(path: &Path) -> Result<Self, StoresError> {
        let io = |source| StoresError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(mut file) => {
                let mut key = [0u8; KEY_LEN];
                rand::rng().fill_bytes(&mut key);
                file.write_all(&key).map_err(io)?;
                file.sync_all().map_err(io)?;
                return Self::from_key_bytes(&key);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e)),
        }
        let mut file = std::fs::File::open(path).map_err(io)?;
        let mode = file.metadata().map_err(io)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(StoresError::Key(format!(
                "{} is readable by other users (mode {:o}); run chmod 600 on it",
                path.display(),
                mode & 0o777
            )));
        }
        let mut key = Vec::new();
        file.read_to_end(&mut key).map_err(io)?;
        Self::from_key_bytes(&key)
    }

    pub fn seal(&self, secret: &SecretString) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), secret.expose_secret().as_bytes())
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        STANDARD.encode(sealed)
    }

    /// The stored secret of `id`. One that does not open is `Corrupt` and named by its id (never
    /// by its content), so an operator knows which password to set again.
    pub fn open_credential(
        &self,
        id: &CredentialId,
        sealed: &str,
    ) -> Result<SecretString, StoreError> {
        self.open(sealed).map_err(|error| {
            StoreError::corrupt(format!("credential {} of {}", id.name, id.scope))
                .with_source(error)
        })
    }

    pub fn open(&self, sealed: &str) -> Result<SecretString, StoresError> {
        let bytes = STANDARD.decode(sealed).map_err(|_| StoresError::Decrypt)?;
        if bytes.len() < NONCE_LEN {
            return Err(StoresError::Decrypt);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| StoresError::Decrypt)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| StoresError::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_with_fresh_nonces_and_tamper_detection() {
        let sealer = SecretBox::from_key_bytes(&[7u8; 32]).unwrap();
        let secret = SecretString::from("hunter2".to_owned());
        let a = sealer.seal(&secret);
        let b = sealer.seal(&secret);
        assert_ne!(a, b);
        assert!(!a.contains("hunter2"));
        assert_eq!(sealer.open(&a).unwrap().expose_secret(), "hunter2");
        let mut tampered = STANDARD.decode(&a).unwrap();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(sealer.open(&STANDARD.encode(tampered)).is_err());
        let other = SecretBox::from_key_bytes(&[8u8; 32]).unwrap();
        assert!(other.open(&a).is_err());
    }

    #[test]
    fn derived_keys_differ_by_salt_and_purpose_and_are_stable() {
        let master = SecretBox::from_key_bytes(&[7u8; 32]).unwrap();
        let secret = SecretString::from("hunter2".to_owned());
        let sealed = master.derive(b"salt-1", "acme").seal(&secret);
        let again = master.derive(b"salt-1", "acme");
        assert_eq!(again.open(&sealed).unwrap().expose_secret(), "hunter2");
        assert!(master.open(&sealed).is_err());
        assert!(master.derive(b"salt-2", "acme").open(&sealed).is_err());
        assert!(master.derive(b"salt-1", "globex").open(&sealed).is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/secret.key");
        let first = SecretBox::load_or_create_key_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let sealed = first.seal(&SecretString::from("pw".to_owned()));
        let second = SecretBox::load_or_create_key_file(&path).unwrap();
        assert_eq!(second.open(&sealed).unwrap().expose_secret(), "pw");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = SecretBox::load_or_create_key_file(&path)
            .unwrap_err()
            .to_string();
        assert!(error.contains("chmod 600"), "{error}");
    }
}
