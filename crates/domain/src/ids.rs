//! Identifiers both services must compute alike.

use uuid::{Uuid, Version};

/// Namespace for delivery ids derived from event ids (a fixed, random UUID).
const DELIVERY_NAMESPACE: Uuid = Uuid::from_u128(0x5d1a_17e0_7c2b_4f0e_9a6d_2b1e_0c4f_8a93);

/// The id of the one delivery an event yields. Deriving it lets settings answer
/// `SendConferenceInfoEmail` with the delivery id before the notifier has seen
/// the event (it travels through the outbox).
///
/// The id hashes the event id (UUIDv5). For a time-ordered event id (UUIDv7,
/// what [`new_event_id`] makes) it keeps the event's 48-bit millisecond
/// timestamp first (UUIDv8): new deliveries then land at the end of the
/// primary-key index instead of on a random page of it. Random ids dirtied a
/// page per insert, and a batch of 1,000 suppressed events spent most of its
/// commit writing those pages to the WAL.
pub fn delivery_id_for_event(event_id: &str) -> String {
    let hashed = Uuid::new_v5(&DELIVERY_NAMESPACE, event_id.as_bytes());
    match Uuid::try_parse(event_id) {
        Ok(event) if event.get_version() == Some(Version::SortRand) => {
            let mut bytes = *hashed.as_bytes();
            bytes[..6].copy_from_slice(&event.as_bytes()[..6]);
            Uuid::new_v8(bytes).to_string()
        }
        _ => hashed.to_string(),
    }
}

/// A fresh event id, ordered by creation time (UUIDv7): see [`delivery_id_for_event`].
pub fn new_event_id() -> String {
    Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_id_is_stable_and_distinct_per_event() {
        assert_eq!(delivery_id_for_event("e1"), delivery_id_for_event("e1"));
        assert_ne!(delivery_id_for_event("e1"), delivery_id_for_event("e2"));
        let event = new_event_id();
        assert_eq!(delivery_id_for_event(&event), delivery_id_for_event(&event));
        assert_ne!(delivery_id_for_event(&event), delivery_id_for_event(&new_event_id()));
    }

    #[test]
    fn deliveries_of_time_ordered_events_sort_by_the_events_time() {
        let earlier = Uuid::new_v7(uuid::Timestamp::from_unix_time(1_700_000_000, 0, 0, 0)).to_string();
        let later = Uuid::new_v7(uuid::Timestamp::from_unix_time(1_700_000_000, 1_000_000, 0, 0)).to_string();
        let (earlier_delivery, later_delivery) = (delivery_id_for_event(&earlier), delivery_id_for_event(&later));
        assert!(
            earlier_delivery < later_delivery,
            "{earlier_delivery} sorts after {later_delivery}"
        );
        assert_eq!(earlier_delivery[..13], earlier[..13], "the event's timestamp leads");
        assert_eq!(
            Uuid::parse_str(&earlier_delivery).unwrap().get_version(),
            Some(Version::Custom)
        );
    }

    #[test]
    fn a_delivery_of_an_event_id_that_is_no_uuidv7_is_a_uuidv5() {
        for event in ["e1", &Uuid::new_v4().to_string()] {
            let delivery = Uuid::parse_str(&delivery_id_for_event(event)).unwrap();
            assert_eq!(delivery.get_version(), Some(Version::Sha1));
        }
    }
}
