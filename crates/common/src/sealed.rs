//! Stored bytes that may hold a PIN.

use sea_orm::DeriveValueType;

/// An encoded message that may carry a PIN (an outbox event, a pending
/// email's content): stored as a blob, and it never prints.
#[derive(Clone, PartialEq, Eq, DeriveValueType)]
pub struct SealedPayload(pub Vec<u8>);

impl std::fmt::Debug for SealedPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedPayload({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_only_the_size() {
        assert_eq!(
            format!("{:?}", SealedPayload(b"pin 12345".to_vec())),
            "SealedPayload(9 bytes)"
        );
    }
}
