//! Stored bytes that may hold a PIN (an outbox event, a pending email's
//! content) are encrypted at rest with XChaCha20-Poly1305 under a key from
//! configuration: a copy of the database does not reveal them.

use std::path::Path;

use chacha20poly1305::{
    XChaCha20Poly1305, XNonce,
    aead::{Aead, KeyInit},
};
use sea_orm::DeriveValueType;

use crate::keyfile::{self, KeyFileError};

/// A random 24-byte nonce, then the ciphertext with its tag. It never prints.
#[derive(Clone, PartialEq, Eq, DeriveValueType)]
pub struct SealedPayload(pub Vec<u8>);

impl std::fmt::Debug for SealedPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedPayload({} bytes)", self.0.len())
    }
}

const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
#[error("a stored payload could not be decrypted (wrong or missing payload key?)")]
pub struct OpenError;

/// Seals with the first key; opens with any key of the file, so a rotation
/// (a new key first, the old one kept below it) loses nothing in flight.
#[derive(Clone)]
pub struct PayloadCipher {
    ciphers: Vec<XChaCha20Poly1305>,
}

impl std::fmt::Debug for PayloadCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PayloadCipher(..)")
    }
}

impl PayloadCipher {
    pub fn load(configured: Option<&Path>, default_path: &Path) -> Result<Self, KeyFileError> {
        let keys = keyfile::load(configured, default_path, "payload key")?;
        Ok(Self::from_keys(&keys))
    }

    pub fn from_keys(keys: &[[u8; 32]]) -> Self {
        Self {
            ciphers: keys.iter().map(|key| XChaCha20Poly1305::new(key.into())).collect(),
        }
    }

    pub fn seal(&self, plaintext: &[u8]) -> SealedPayload {
        let nonce: [u8; NONCE_LEN] = rand::random();
        // Encryption fails only for inputs larger than the cipher's limit (256 GiB).
        let ciphertext = self.ciphers[0]
            .encrypt(XNonce::from_slice(&nonce), plaintext)
            .expect("a payload far below the cipher's size limit");
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        SealedPayload(sealed)
    }

    pub fn open(&self, sealed: &SealedPayload) -> Result<Vec<u8>, OpenError> {
        if sealed.0.len() < NONCE_LEN {
            return Err(OpenError);
        }
        let (nonce, ciphertext) = sealed.0.split_at(NONCE_LEN);
        self.ciphers
            .iter()
            .find_map(|cipher| cipher.decrypt(XNonce::from_slice(nonce), ciphertext).ok())
            .ok_or(OpenError)
    }

    /// `sealed`, opened as a message `M`, changed by `change` and sealed
    /// again; `None` when it cannot be opened or decoded.
    pub fn reseal<M: prost::Message + Default>(
        &self,
        sealed: &SealedPayload,
        change: impl FnOnce(&mut M),
    ) -> Option<SealedPayload> {
        let mut message = M::decode(self.open(sealed).ok()?.as_slice()).ok()?;
        change(&mut message);
        Some(self.seal(&message.encode_to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_payloads_hide_their_content_and_open_with_the_right_keys_only() {
        let old = PayloadCipher::from_keys(&[[1; 32]]);
        let sealed = old.seal(b"pin 918273");
        assert!(!sealed.0.windows(6).any(|window| window == b"918273"));
        assert_eq!(
            format!("{sealed:?}"),
            format!("SealedPayload({} bytes)", sealed.0.len())
        );
        assert_eq!(old.open(&sealed).unwrap(), b"pin 918273");
        assert_ne!(old.seal(b"pin 918273"), sealed, "a fresh nonce each time");
        let rotated = PayloadCipher::from_keys(&[[2; 32], [1; 32]]);
        assert_eq!(rotated.open(&sealed).unwrap(), b"pin 918273", "the old key still opens");
        assert!(PayloadCipher::from_keys(&[[3; 32]]).open(&sealed).is_err());
        let mut tampered = sealed.clone();
        *tampered.0.last_mut().unwrap() ^= 1;
        assert!(old.open(&tampered).is_err());
        assert!(old.open(&SealedPayload(vec![1, 2, 3])).is_err());
    }
}
