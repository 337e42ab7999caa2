//! Timestamps are stored as milliseconds since the Unix epoch: the same column
//! type on SQLite and PostgreSQL, and cheap to compare in SQL.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}

/// A stored millisecond timestamp as a protobuf `Timestamp`.
pub fn to_timestamp(millis: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: millis.div_euclid(1000),
        // Always in 0..1_000_000_000, so the cast cannot truncate.
        nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// A protobuf `Timestamp` as stored milliseconds.
pub fn from_timestamp(timestamp: &prost_types::Timestamp) -> i64 {
    timestamp.seconds.saturating_mul(1000) + i64::from(timestamp.nanos / 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_including_before_the_epoch() {
        for millis in [0, 1, 999, 1_000, 1_764_280_000_123, -1, -1_001] {
            assert_eq!(from_timestamp(&to_timestamp(millis)), millis, "{millis}");
        }
    }
}
