//! How busy the whole machine was over a stretch of a run, from `/proc/stat`.
//! A figure that misses its goal while the machine is near 100 % busy is bound
//! by CPU (dialin's, the load generator's, the sink's, the database's), not by
//! waiting.

/// The machine's CPU time so far, all CPUs together, in ticks.
#[derive(Clone, Copy, Debug)]
pub struct CpuTicks {
    busy: u64,
    all: u64,
}

impl CpuTicks {
    /// `None` where `/proc/stat` cannot be read (not Linux).
    pub fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        // The first line: cpu user nice system idle iowait irq softirq steal …
        // (guest time is counted inside user, so the first eight are all of it).
        let ticks: Vec<u64> = stat
            .lines()
            .next()?
            .strip_prefix("cpu ")?
            .split_whitespace()
            .take(8)
            .map(|field| field.parse().ok())
            .collect::<Option<_>>()?;
        let all: u64 = ticks.iter().sum();
        // Time taken by the hypervisor (steal) was not ours to use either, so it counts as busy.
        let waiting = ticks.get(3)? + ticks.get(4)?;
        Some(Self {
            busy: all - waiting,
            all,
        })
    }

    /// The share of the machine busy from `self` until `later`, 0 to 1.
    pub fn busy_until(self, later: Self) -> Option<f64> {
        let all = later.all.checked_sub(self.all).filter(|&all| all > 0)?;
        Some(later.busy.saturating_sub(self.busy) as f64 / all as f64)
    }
}

/// The share of the machine busy since `from` (taken with [`CpuTicks::now`]).
pub fn busy_since(from: Option<CpuTicks>) -> Option<f64> {
    from?.busy_until(CpuTicks::now()?)
}

#[cfg(test)]
mod tests {
    use std::{
        sync::atomic::{AtomicBool, Ordering},
        thread,
        time::Duration,
    };

    use super::*;

    #[test]
    fn every_cpu_spinning_shows_as_busy() {
        let cpus = thread::available_parallelism().map_or(1, |n| n.get());
        let stop = AtomicBool::new(false);
        let busy = thread::scope(|scope| {
            for _ in 0..cpus {
                scope.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                });
            }
            // Until the counters have moved by half a second of every CPU.
            let from = CpuTicks::now().expect("/proc/stat on Linux");
            let busy = loop {
                thread::sleep(Duration::from_millis(10));
                let now = CpuTicks::now().expect("/proc/stat on Linux");
                if now.all - from.all >= 50 * cpus as u64 {
                    break from.busy_until(now).expect("ticks went by");
                }
            };
            stop.store(true, Ordering::Relaxed);
            busy
        });
        assert!(
            (0.8..=1.0).contains(&busy),
            "busy share {busy} with all {cpus} CPUs spinning"
        );
    }
}
