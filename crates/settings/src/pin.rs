//! PINs: generated from a CSPRNG, handed out once, stored only as a keyed hash.

use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

pub const DEFAULT_LENGTH: u32 = 5;
pub const LENGTHS: std::ops::RangeInclusive<u32> = 4..=12;

/// A fresh PIN of `length` digits. `rand::rng()` is a CSPRNG seeded from the OS.
pub fn generate(length: u32) -> SecretString {
    let mut rng = rand::rng();
    let digits: String = (0..length)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect();
    SecretString::from(digits)
}

/// The server key PINs are hashed with (HMAC-SHA256), so a copy of the database
/// alone cannot be brute-forced offline.
#[derive(Clone)]
pub struct PinKey([u8; 32]);

impl std::fmt::Debug for PinKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PinKey(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PinKeyError {
    #[error("cannot read the PIN key file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write a new PIN key file {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("the PIN key file {path} must hold exactly 64 hex digits (32 bytes)")]
    Malformed { path: PathBuf },
}

impl PinKey {
    /// Reads the key from `configured`; without one, reads or creates `default_path`
    /// (beside the database) and says so in the log.
    pub fn load(configured: Option<&Path>, default_path: &Path) -> Result<Self, PinKeyError> {
        if let Some(path) = configured {
            return Self::read(path);
        }
        if default_path.exists() {
            tracing::info!(path = %default_path.display(), "using the generated PIN key");
            return Self::read(default_path);
        }
        let mut key = [0u8; 32];
        rand::rng().fill(&mut key);
        write_private(default_path, hex::encode(key).as_bytes()).map_err(|source| PinKeyError::Write {
            path: default_path.to_owned(),
            source,
        })?;
        tracing::warn!(
            path = %default_path.display(),
            "DIALIN_PIN_KEY_FILE is not set: generated a new PIN key; every replica must share one key"
        );
        Ok(Self(key))
    }

    fn read(path: &Path) -> Result<Self, PinKeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PinKeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        let malformed = || PinKeyError::Malformed { path: path.to_owned() };
        let bytes = hex::decode(text.trim()).map_err(|_| malformed())?;
        Ok(Self(bytes.try_into().map_err(|_| malformed())?))
    }

    /// The stored form of a PIN, scoped to the tenant so equal PINs hash apart.
    pub fn hash(&self, tenant_id: &str, pin: &SecretString) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(tenant_id.as_bytes());
        mac.update(&[0]);
        mac.update(pin.expose_secret().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_have_the_asked_length_and_only_digits() {
        for length in LENGTHS {
            let pin = generate(length);
            assert_eq!(pin.expose_secret().len(), length as usize);
            assert!(pin.expose_secret().bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn pins_vary() {
        let pins: std::collections::HashSet<String> =
            (0..50).map(|_| generate(12).expose_secret().to_owned()).collect();
        assert!(
            pins.len() > 45,
            "50 twelve-digit PINs gave only {} distinct",
            pins.len()
        );
    }

    #[test]
    fn hash_depends_on_key_tenant_and_pin() {
        let dir = std::env::temp_dir().join(format!("dialin-pin-key-{}", uuid::Uuid::new_v4()));
        let key = PinKey::load(None, &dir.join("pin.key")).unwrap();
        let reloaded = PinKey::load(None, &dir.join("pin.key")).unwrap();
        let other = PinKey::load(None, &dir.join("other.key")).unwrap();
        let pin = SecretString::from("12345");
        assert_eq!(key.hash("t", &pin), reloaded.hash("t", &pin));
        assert_ne!(key.hash("t", &pin), other.hash("t", &pin));
        assert_ne!(key.hash("t", &pin), key.hash("u", &pin));
        assert_ne!(key.hash("t", &pin), key.hash("t", &SecretString::from("12346")));
        assert!(!key.hash("t", &pin).contains("12345"));
        assert_eq!(format!("{key:?}"), "PinKey(..)");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
