//! PINs: generated from a CSPRNG, handed out once, stored only as a keyed hash.

use std::path::Path;

use dialin_domain::keyfile::{self, KeyFileError};

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

/// The server keys PINs are hashed with (HMAC-SHA256), so a copy of the
/// database alone cannot be brute-forced offline. The first key hashes new
/// PINs; the others (older keys, during a rotation) still verify old ones.
#[derive(Clone)]
pub struct PinKey {
    keys: Vec<[u8; 32]>,
}

impl std::fmt::Debug for PinKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PinKey(..)")
    }
}

impl PinKey {
    /// Reads the keys from `configured`; without one, reads or creates a key
    /// at `default_path` (beside the database) and says so in the log.
    pub fn load(configured: Option<&Path>, default_path: &Path) -> Result<Self, KeyFileError> {
        Ok(Self {
            keys: keyfile::load(configured, default_path, "PIN key")?,
        })
    }

    /// The stored form of a PIN, scoped to the tenant so equal PINs hash apart.
    pub fn hash(&self, tenant_id: &str, pin: &SecretString) -> String {
        hex::encode(mac(&self.keys[0], tenant_id, pin).finalize().into_bytes())
    }

    /// Whether `pin` is the one `stored` was made from, under any of the keys.
    /// The comparison is constant-time.
    pub fn verify(&self, tenant_id: &str, pin: &SecretString, stored: &str) -> bool {
        let Ok(stored) = hex::decode(stored) else {
            return false;
        };
        self.keys
            .iter()
            .any(|key| mac(key, tenant_id, pin).verify_slice(&stored).is_ok())
    }
}

fn mac(key: &[u8; 32], tenant_id: &str, pin: &SecretString) -> Hmac<Sha256> {
    // A 32-byte key is always a valid HMAC key.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(tenant_id.as_bytes());
    mac.update(&[0]);
    mac.update(pin.expose_secret().as_bytes());
    mac
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
        assert!(key.verify("t", &pin, &key.hash("t", &pin)));
        assert!(!key.verify("t", &SecretString::from("12346"), &key.hash("t", &pin)));
        assert!(!key.verify("u", &pin, &key.hash("t", &pin)));
        assert!(!key.verify("t", &pin, "not hex"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_rotated_key_file_verifies_old_pins_and_hashes_new_ones_with_the_first_key() {
        let dir = std::env::temp_dir().join(format!("dialin-pin-rotate-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let (old, new) = ("11".repeat(32), "22".repeat(32));
        std::fs::write(dir.join("old.key"), format!("{old}\n")).unwrap();
        std::fs::write(dir.join("rotated.key"), format!("# current first\n{new}\n{old}\n")).unwrap();
        let before = PinKey::load(Some(&dir.join("old.key")), &dir.join("unused")).unwrap();
        let after = PinKey::load(Some(&dir.join("rotated.key")), &dir.join("unused")).unwrap();
        let pin = SecretString::from("4242");
        let stored_before = before.hash("t", &pin);
        assert!(after.verify("t", &pin, &stored_before), "old PINs keep working");
        assert_ne!(after.hash("t", &pin), stored_before, "new PINs use the new key");
        std::fs::write(dir.join("bad.key"), "zz").unwrap();
        assert!(PinKey::load(Some(&dir.join("bad.key")), &dir.join("unused")).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
