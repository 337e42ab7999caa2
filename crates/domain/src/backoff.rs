//! How long to wait before trying again, alike for the outbox and the
//! delivery worker.

use std::time::Duration;

/// Doubling from `initial`, capped at `max`, spread by ±20 % so that a burst
/// of failures (or replicas) does not retry in step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait before retry number `retry` (the first retry is 1).
    pub fn delay(&self, retry: u32) -> Duration {
        self.nominal(retry).mul_f64(0.8 + 0.4 * rand::random::<f64>())
    }

    fn nominal(&self, retry: u32) -> Duration {
        self.initial
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20))
            .min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_within_its_spread_and_caps() {
        let backoff = Backoff {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(60),
        };
        for (retry, nominal) in [(0, 10), (1, 10), (2, 20), (3, 40), (4, 60), (30, 60)] {
            let delay = backoff.delay(retry).as_secs_f64();
            let nominal = f64::from(nominal);
            assert!(
                (nominal * 0.8..=nominal * 1.2).contains(&delay),
                "retry {retry}: {delay}s vs {nominal}s"
            );
        }
    }
}
