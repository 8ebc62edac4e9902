//! The secrets vault: AES-256-GCM with a fresh random 96-bit nonce per value
//! and the key id stored beside every ciphertext, so keys can rotate.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VaultError {
    #[error("master key list is empty")]
    NoKeys,
    #[error("master key entry {0} is not of the form id:base64")]
    BadEntry(usize),
    #[error("master key {0:?} must be 32 bytes of standard base64")]
    BadKey(String),
    #[error("master key id {0:?} appears twice")]
    DuplicateId(String),
    #[error("no master key with id {0:?} is configured")]
    UnknownKey(String),
    #[error("ciphertext failed authentication")]
    Corrupt,
}

/// An encrypted value: the id of the key that sealed it and `nonce || ciphertext+tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub blob: Vec<u8>,
}

/// A set of AES-256 keys; the first encrypts, every one decrypts.
#[derive(Clone)]
pub struct Vault {
    keys: Vec<(String, Aes256Gcm)>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("Vault").field("key_ids", &ids).finish()
    }
}

impl Vault {
    /// Parses `id:base64,id:base64,...` as in `PATCHBAY_MASTER_KEYS`.
    pub fn from_spec(spec: &str) -> Result<Self, VaultError> {
        let mut keys: Vec<(String, Aes256Gcm)> = Vec::new();
        for (i, entry) in spec.split(',').map(str::trim).filter(|e| !e.is_empty()).enumerate() {
            let (id, b64) = entry.split_once(':').ok_or(VaultError::BadEntry(i))?;
            let id = id.trim();
            if id.is_empty() {
                return Err(VaultError::BadEntry(i));
            }
            let raw = B64.decode(b64.trim()).map_err(|_| VaultError::BadKey(id.to_string()))?;
            if raw.len() != 32 {
                return Err(VaultError::BadKey(id.to_string()));
            }
            if keys.iter().any(|(k, _)| k == id) {
                return Err(VaultError::DuplicateId(id.to_string()));
            }
            keys.push((id.to_string(), Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&raw))));
        }
        if keys.is_empty() {
            return Err(VaultError::NoKeys);
        }
        Ok(Self { keys })
    }

    /// A new random key, rendered as one `id:base64` entry.
    pub fn generate_spec(id: &str) -> String {
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        format!("{id}:{}", B64.encode(raw))
    }

    /// The id of the key that encrypts.
    pub fn primary_key_id(&self) -> &str {
        &self.keys[0].0
    }

    /// Encrypts `plaintext`, authenticating `aad` (the owner's identity) with it.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Sealed {
        let (id, cipher) = &self.keys[0];
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad })
            .expect("AES-GCM encryption cannot fail for in-memory buffers");
        let mut blob = Vec::with_capacity(12 + ct.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ct);
        Sealed { key_id: id.clone(), blob }
    }

    /// Decrypts a value sealed by any configured key.
    pub fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Vec<u8>, VaultError> {
        let cipher = self
            .keys
            .iter()
            .find(|(id, _)| *id == sealed.key_id)
            .map(|(_, c)| c)
            .ok_or_else(|| VaultError::UnknownKey(sealed.key_id.clone()))?;
        if sealed.blob.len() < 12 + 16 {
            return Err(VaultError::Corrupt);
        }
        let (nonce, ct) = sealed.blob.split_at(12);
        cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad }).map_err(|_| VaultError::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn nist_style_known_answer() {
        // AES-256-GCM with an all-zero key and nonce over an empty message
        // gives the tag 530f8afbc74536b9a963b4f1c4cb738b (McGrew & Viega test case 13).
        let v = Vault::from_spec("z:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
        let cipher = &v.keys[0].1;
        let ct = cipher.encrypt(Nonce::from_slice(&[0u8; 12]), Payload { msg: b"", aad: b"" }).unwrap();
        assert_eq!(hex::encode(ct), "530f8afbc74536b9a963b4f1c4cb738b");
    }

    #[test]
    fn round_trip_fresh_nonce_and_aad_binding() {
        let v = Vault::from_spec(K1).unwrap();
        let a = v.seal(b"secret", b"owner-1");
        let b = v.seal(b"secret", b"owner-1");
        assert_eq!(a.key_id, "k1");
        assert_ne!(a.blob[..12], b.blob[..12], "nonce must be fresh per value");
        assert_eq!(v.open(&a, b"owner-1").unwrap(), b"secret");
        assert_eq!(v.open(&a, b"owner-2"), Err(VaultError::Corrupt));
        let mut t = a.clone();
        let last = t.blob.len() - 1;
        t.blob[last] ^= 1;
        assert_eq!(v.open(&t, b"owner-1"), Err(VaultError::Corrupt));
    }

    #[test]
    fn rotation_first_encrypts_all_decrypt() {
        let old = Vault::from_spec(K1).unwrap();
        let sealed = old.seal(b"x", b"");
        let new_spec = format!("{},{}", Vault::generate_spec("k2"), K1);
        let both = Vault::from_spec(&new_spec).unwrap();
        assert_eq!(both.primary_key_id(), "k2");
        assert_eq!(both.open(&sealed, b"").unwrap(), b"x");
        assert_eq!(both.seal(b"y", b"").key_id, "k2");
        let only_new = Vault::from_spec(&Vault::generate_spec("k3")).unwrap();
        assert_eq!(only_new.open(&sealed, b""), Err(VaultError::UnknownKey("k1".into())));
    }

    #[test]
    fn bad_specs() {
        assert_eq!(Vault::from_spec("").unwrap_err(), VaultError::NoKeys);
        assert_eq!(Vault::from_spec("nocolon").unwrap_err(), VaultError::BadEntry(0));
        assert_eq!(Vault::from_spec("a:AAAA").unwrap_err(), VaultError::BadKey("a".into()));
        assert_eq!(Vault::from_spec(&format!("{K1},{K1}")).unwrap_err(), VaultError::DuplicateId("k1".into()));
        let dbg = format!("{:?}", Vault::from_spec(K1).unwrap());
        assert!(!dbg.contains("AAECAw"));
    }
}
