//! RS256-signed JWTs (RFC 7519, RFC 7515) for the two grants that prove possession of a key:
//! Microsoft's certificate client assertion and Google's service-account JWT-bearer grant
//! (RFC 7523).
//!
//! Signed with `ring`, which the TLS stack already builds; a JWT is two base64url JSON
//! documents and a signature, so no JWT library is needed for it.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};

/// An RSA private key. Its `Debug` shows nothing of the key.
pub struct SigningKey(RsaKeyPair);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(RSA, redacted)")
    }
}

impl SigningKey {
    /// The first private key in `pem` (PKCS#8 `PRIVATE KEY`, as in Google's key files and
    /// OpenSSL's output, or PKCS#1 `RSA PRIVATE KEY`). Errors never quote the PEM.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let der = PrivateKeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| format!("no private key in the PEM text ({e})"))?;
        let pair = match &der {
            PrivateKeyDer::Pkcs8(key) => RsaKeyPair::from_pkcs8(key.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(key) => RsaKeyPair::from_der(key.secret_pkcs1_der()),
            _ => return Err("the private key is not an RSA key (RS256 needs one)".into()),
        };
        pair.map(SigningKey)
            .map_err(|e| format!("the RSA private key is not usable: {e}"))
    }

    /// `header.claims.signature`, each base64url; `header` gets `alg` and `typ` added.
    pub fn sign(&self, mut header: Value, claims: &Value) -> Result<String, String> {
        header["alg"] = json!("RS256");
        header["typ"] = json!("JWT");
        let signing_input = format!(
            "{}.{}",
            BASE64URL.encode(header.to_string()),
            BASE64URL.encode(claims.to_string())
        );
        let mut signature = vec![0; self.0.public().modulus_len()];
        self.0
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| "RS256 signing failed".to_owned())?;
        Ok(format!("{signing_input}.{}", BASE64URL.encode(signature)))
    }
}

/// `x5t`: the base64url SHA-1 thumbprint of the first certificate in `pem` (RFC 7515 §4.1.7),
/// which is how Entra ID finds the certificate registered for the app.
pub fn certificate_thumbprint(pem: &str) -> Result<String, String> {
    let der = CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| format!("no certificate in the PEM text ({e})"))?;
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der.as_ref());
    Ok(BASE64URL.encode(digest.as_ref()))
}

/// Seconds since the epoch, for `iat`, `nbf` and `exp`.
pub fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A random `jti`: identity providers reject a replayed assertion.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    // The system's random source failing leaves zeros; the provider then refuses a replay.
    let _ = SystemRandom::new().fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_a_signing_key_shows_no_key_material() {
        let dir = tempfile::tempdir().unwrap();
        let key = mailfleet_testkit::identity::TestKey::generate(dir.path()).unwrap();
        let shown = format!("{:?}", SigningKey::from_pem(&key.key_pem).unwrap());
        assert_eq!(shown, "SigningKey(RSA, redacted)");
    }
}
