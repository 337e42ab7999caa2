//! Identifiers both services must compute alike.

use uuid::Uuid;

/// Namespace for delivery ids derived from event ids (a fixed, random UUID).
const DELIVERY_NAMESPACE: Uuid = Uuid::from_u128(0x5d1a_17e0_7c2b_4f0e_9a6d_2b1e_0c4f_8a93);

/// The id of the one delivery an event yields. Deriving it lets settings answer
/// `SendConferenceInfoEmail` with the delivery id before the notifier has seen
/// the event (it travels through the outbox).
pub fn delivery_id_for_event(event_id: &str) -> String {
    Uuid::new_v5(&DELIVERY_NAMESPACE, event_id.as_bytes()).to_string()
}

/// A fresh, random event id.
pub fn new_event_id() -> String {
    Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_id_is_stable_and_distinct_per_event() {
        assert_eq!(delivery_id_for_event("e1"), delivery_id_for_event("e1"));
        assert_ne!(delivery_id_for_event("e1"), delivery_id_for_event("e2"));
    }
}
