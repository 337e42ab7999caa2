//! How fast the deployment may send, apart from its effects: the cap, cut on a
//! throttle and raised back gradually (additive increase, multiplicative
//! decrease, as TCP does); the send slots that keep the pace; each replica's
//! share of the connections.

/// What the last throttle left, as every replica reads it from the database.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Throttle {
    /// Messages a second just after the last cut; 0: never throttled.
    pub rate: f64,
    /// When that was, milliseconds since the epoch.
    pub at: i64,
    /// What the deployment was sending when the relay throttled it.
    pub ceiling: f64,
}

/// A throttle cuts the rate to this share of what was going through.
const DECREASE: f64 = 0.8;
/// The rate climbs back by this share of the ceiling a second: from a cut to
/// the ceiling in four seconds, so a relay's limit is probed often enough to
/// be used, and overrun seldom enough that refusals stay few.
const RECOVERY_PER_SECOND: f64 = 0.05;
/// Never slower than this, so that a throttled relay is still probed.
const MIN_RATE: f64 = 0.2;
/// Without a cap, a throttle is over once the rate has climbed this far past
/// where the relay pushed back.
const UNLIMITED_AGAIN: f64 = 2.0;

/// Past the ceiling the rate keeps climbing, by this share a second: the
/// ceiling was only what went through when the relay pushed back, and a low
/// one (seen while the deployment was still speeding up) must not hold it back.
const PROBE_PER_SECOND: f64 = 0.1;

impl Throttle {
    /// The rate in force at `now`, messages a second; `None`: no limit.
    pub fn allowed(&self, cap: Option<f64>, now: i64) -> Option<f64> {
        if self.rate <= 0.0 {
            return cap;
        }
        let seconds = (now - self.at).max(0) as f64 / 1000.0;
        let slope = self.ceiling.max(MIN_RATE) * RECOVERY_PER_SECOND;
        let to_ceiling = ((self.ceiling - self.rate) / slope).max(0.0);
        let recovered = if seconds <= to_ceiling {
            self.rate + slope * seconds
        } else {
            self.ceiling.max(self.rate) * (1.0 + PROBE_PER_SECOND).powf(seconds - to_ceiling)
        };
        match cap {
            Some(cap) => Some(recovered.min(cap)),
            None if recovered >= self.ceiling * UNLIMITED_AGAIN => None,
            None => Some(recovered),
        }
    }

    /// The throttle after the relay throttled, at `now`, a send that took its
    /// turn at `turn_at`, when `observed` messages of the deployment went
    /// through in the last second. `None` when the send took its turn before the last cut: it is
    /// part of the overrun that cut answered (every send in flight meets it),
    /// and one cut is enough for all of them.
    pub fn cut(&self, cap: Option<f64>, now: i64, turn_at: i64, observed: f64) -> Option<Self> {
        if self.rate > 0.0 && turn_at <= self.at {
            return None;
        }
        // What the relay took over the last second is its limit, as near as
        // can be known; the rate in force only when nothing went through. (Not
        // the lower of the two: refusals go on for as long as the relay still
        // counts the overrun, and each would cut again from the last cut.)
        let allowed = self.allowed(cap, now).unwrap_or(f64::INFINITY);
        let going_through = if observed > 0.0 { observed } else { allowed };
        // Nothing known of the pace (the first send was refused): start slow.
        let ceiling = if going_through.is_finite() { going_through } else { 1.0 };
        Some(Self {
            rate: (ceiling * DECREASE).max(MIN_RATE),
            at: now,
            ceiling,
        })
    }
}

/// Sends are spaced this much wider than the rate asks: a send reaches the
/// relay some milliseconds sooner or later than its slot (the relay's own
/// processing varies), and at exactly the rate that jitter alone would put
/// one more than the cap into some second. 5 % absorbs a jitter of 25 ms
/// either way at any rate.
const PACE_MARGIN: f64 = 1.05;

/// `DIALIN_SMTP_MAX_RATE`: so many messages per window (`50/s`: 50 a second).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cap {
    pub per_second: f64,
    /// The window the relay counts in, seconds (1 for `/s`, 60 for `/min`).
    pub window: f64,
}

/// How late a send may still take its slot, in microseconds: half a gap at
/// `rate` (later, it would crowd the next one), and with a cap counted over
/// `window` seconds, less than the part of the window the slots' wider
/// spacing leaves spare: then no window holds more sends than the cap, even
/// when one send is late and the next on time.
pub fn lateness_allowed_us(rate: f64, window: Option<f64>) -> i64 {
    let half_gap = interval_us(rate) / 2;
    match window {
        Some(window) => half_gap.min(((PACE_MARGIN - 1.0) * window * 1_000_000.0) as i64 - 1),
        None => half_gap,
    }
}

/// The gap between two sends at `rate` messages a second, in microseconds.
pub fn interval_us(rate: f64) -> i64 {
    (PACE_MARGIN * 1_000_000.0 / rate.max(MIN_RATE)).round() as i64
}

/// How many of `total` connections replica `me` may keep, when `senders`
/// (sorted, `me` among them) share them: as evenly as they go, the first ones
/// in order taking the remainder, none when there are more replicas than
/// connections.
pub fn connection_share(total: usize, senders: &[String], me: &str) -> usize {
    let count = senders.len().max(1);
    let rank = senders.iter().position(|sender| sender == me).unwrap_or(count - 1);
    total / count + usize::from(rank < total % count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_throttle_the_cap_holds() {
        let never = Throttle::default();
        assert_eq!(never.allowed(None, 5_000), None);
        assert_eq!(never.allowed(Some(50.0), 5_000), Some(50.0));
    }

    #[test]
    fn a_throttle_cuts_to_what_went_through_and_climbs_back_to_the_cap() {
        let cut = Throttle::default().cut(Some(50.0), 10_000, 9_990, 40.0).unwrap();
        assert_eq!(
            cut,
            Throttle {
                rate: 32.0,
                at: 10_000,
                ceiling: 40.0
            }
        );
        assert_eq!(cut.allowed(Some(50.0), 10_000), Some(32.0));
        // 2 a second more each second (5 % of 40).
        assert_eq!(cut.allowed(Some(50.0), 12_000), Some(36.0));
        assert_eq!(cut.allowed(Some(50.0), 30_000), Some(50.0));
    }

    #[test]
    fn past_the_ceiling_the_rate_probes_upward_and_without_a_cap_the_throttle_ends() {
        let cut = Throttle::default().cut(None, 0, 0, 50.0).unwrap();
        assert_eq!(cut.allowed(None, 0), Some(40.0));
        // The ceiling after four seconds (2.5 a second more each second) ...
        assert_eq!(cut.allowed(None, 4_000), Some(50.0));
        // ... then 10 % more a second.
        let probed = cut.allowed(None, 6_000).unwrap();
        assert!((probed - 60.5).abs() < 1e-9, "{probed}");
        // Twice the ceiling: the throttle is over.
        assert_eq!(cut.allowed(None, 4_000 + 7_300), None);
        assert_eq!(cut.allowed(Some(55.0), 60_000), Some(55.0));
    }

    #[test]
    fn sends_that_took_their_turn_before_a_cut_do_not_cut_again() {
        let cut = Throttle::default().cut(None, 0, 0, 50.0).unwrap();
        // Refused after the cut, but sent at the old pace.
        assert_eq!(cut.cut(None, 1_000, 0, 50.0), None);
        // Refused at the new pace: too fast still.
        let again = cut.cut(None, 1_000, 1, 41.0).unwrap();
        // What went through: 41 in the last second.
        assert_eq!(again.ceiling, 41.0);
        assert!((again.rate - 32.8).abs() < 1e-9);
    }

    #[test]
    fn refusals_while_the_relay_still_counts_an_overrun_cut_to_what_it_took_not_lower_each_time() {
        // A burst: fifty went through in a fifth of a second, then refusals.
        let first = Throttle::default().cut(None, 200, 200, 50.0).unwrap();
        assert_eq!(first.rate, 40.0);
        // Sent at the new pace, but the relay's second still holds the burst.
        let second = first.cut(None, 500, 300, 50.0).unwrap();
        assert_eq!((second.rate, second.ceiling), (40.0, 50.0));
    }

    #[test]
    fn a_refused_first_send_starts_slow_and_no_rate_falls_to_nothing() {
        let cut = Throttle::default().cut(None, 0, 0, 0.0).unwrap();
        assert_eq!(cut.ceiling, 1.0);
        assert_eq!(cut.rate, 0.8);
        let floor = Throttle {
            rate: 0.3,
            at: 0,
            ceiling: 0.3,
        }
        .cut(None, 1_000, 1, 0.2)
        .unwrap();
        assert_eq!(floor.rate, MIN_RATE);
    }

    /// The most sends that can fall in any `window_us` when the slots are
    /// spaced `gap_us` apart and each may be used up to `late_us` late: the
    /// slots in any stretch of the window's length plus the lateness.
    fn most_in_a_window(gap_us: i64, late_us: i64, window_us: i64) -> i64 {
        (window_us + late_us - 1) / gap_us + 1
    }

    #[test]
    fn a_late_send_never_puts_more_than_the_cap_in_a_window() {
        for (per_window, window) in [
            (1.0, 1.0),
            (2.0, 1.0),
            (10.0, 1.0),
            (50.0, 1.0),
            (500.0, 1.0),
            (30.0, 60.0),
            (1000.0, 3600.0),
        ] {
            let rate = per_window / window;
            let late = lateness_allowed_us(rate, Some(window));
            let most = most_in_a_window(interval_us(rate), late, (window * 1_000_000.0) as i64);
            assert!(
                most <= per_window as i64,
                "{per_window} per {window} s: {most} could fall in one window ({late} us late)"
            );
        }
        // Half a gap when that is less, and half a gap with no cap.
        assert_eq!(lateness_allowed_us(50.0, Some(1.0)), 10_500);
        assert_eq!(lateness_allowed_us(1.0, None), 525_000);
        assert_eq!(lateness_allowed_us(1.0, Some(1.0)), 49_999);
    }

    #[test]
    fn sends_are_spaced_by_the_rate() {
        assert_eq!(interval_us(50.0), 21_000);
        assert_eq!(interval_us(0.5), 2_100_000);
        assert_eq!(interval_us(0.0), 5_250_000);
    }

    #[test]
    fn connections_are_shared_without_exceeding_the_total() {
        let senders = |count: usize| -> Vec<String> { (0..count).map(|at| format!("r{at}")).collect() };
        for (total, count) in [(4, 1), (4, 3), (4, 4), (4, 6), (7, 2)] {
            let all = senders(count);
            let shares: Vec<usize> = all.iter().map(|me| connection_share(total, &all, me)).collect();
            assert_eq!(shares.iter().sum::<usize>(), total, "{total} among {count}: {shares:?}");
            assert!(
                shares.iter().max().unwrap() - shares.iter().min().unwrap() <= 1,
                "{shares:?}"
            );
        }
        assert_eq!(connection_share(4, &senders(3), "r0"), 2);
        assert_eq!(connection_share(4, &senders(6), "r5"), 0);
    }
}
