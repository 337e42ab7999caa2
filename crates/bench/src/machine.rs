//! What the machine and its processes spend, from `/proc`: how busy the whole
//! machine was over a stretch of a run (`/proc/stat`), and a process's memory
//! and CPU time. A figure that misses its goal while the machine is near 100 %
//! busy is bound by CPU (dialin's, the load generator's, the sink's, the
//! database's), not by waiting.

use tokio::process::Child;

/// The machine's CPU time so far, all CPUs together, in ticks.
#[derive(Clone, Copy, Debug)]
pub struct CpuTicks {
    busy: u64,
    stolen: u64,
    all: u64,
}

/// How busy the machine was over a stretch, each a share of all its CPUs, 0 to 1.
#[derive(Clone, Copy, Debug)]
pub struct Busy {
    /// In use by anything, time the hypervisor took included: it was not ours to use either.
    pub share: f64,
    /// Of that, taken by the hypervisor (`steal`): a run where this is large
    /// measured a smaller machine, not a slower dialin.
    pub stolen: f64,
}

impl CpuTicks {
    /// `None` where `/proc/stat` cannot be read (not Linux).
    pub fn now() -> Option<Self> {
        Self::parse(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    /// From the text of `/proc/stat`.
    fn parse(stat: &str) -> Option<Self> {
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
        let waiting = ticks.get(3)? + ticks.get(4)?;
        Some(Self {
            busy: all - waiting,
            stolen: *ticks.get(7)?,
            all,
        })
    }

    /// How busy the machine was from `self` until `later`.
    pub fn busy_until(self, later: Self) -> Option<Busy> {
        let all = later.all.checked_sub(self.all).filter(|&all| all > 0)? as f64;
        Some(Busy {
            share: later.busy.saturating_sub(self.busy) as f64 / all,
            stolen: later.stolen.saturating_sub(self.stolen) as f64 / all,
        })
    }
}

/// How busy the machine has been since `from` (taken with [`CpuTicks::now`]).
pub fn busy_since(from: Option<CpuTicks>) -> Option<Busy> {
    from?.busy_until(CpuTicks::now()?)
}

/// A process's memory and CPU, from `/proc/PID/status` and `/proc/PID/stat`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    pub rss_mb: f64,
    pub peak_rss_mb: f64,
    pub cpu_seconds: f64,
}

/// Linux accounts CPU time in ticks of 1/100 s (USER_HZ).
const TICKS_PER_SECOND: f64 = 100.0;

impl Usage {
    /// Nothing (zeros) once the process has gone.
    pub fn of(process: &Child) -> Self {
        let Some(pid) = process.id() else {
            return Self::default();
        };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kb = |field: &str| {
            status
                .lines()
                .find(|line| line.starts_with(field))
                .and_then(|line| line.split_whitespace().nth(1)?.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // Fields 14 and 15 of /proc/PID/stat (after the parenthesised name).
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ticks: f64 = stat
            .rsplit_once(')')
            .map(|(_, rest)| {
                rest.split_whitespace()
                    .skip(11)
                    .take(2)
                    .filter_map(|t| t.parse::<f64>().ok())
                    .sum()
            })
            .unwrap_or(0.0);
        Self {
            rss_mb: kb("VmRSS:") / 1024.0,
            peak_rss_mb: kb("VmHWM:") / 1024.0,
            cpu_seconds: ticks / TICKS_PER_SECOND,
        }
    }
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
    fn busy_counts_all_but_idle_and_iowait_and_says_what_was_stolen() {
        // Ticks: user nice system idle iowait irq softirq steal guest guest_nice.
        let from = CpuTicks::parse("cpu  1000 0 200 7000 300 0 100 400 0 0\ncpu0 1 2 3\n").unwrap();
        let later = CpuTicks::parse("cpu  1400 0 300 7300 400 0 100 500 0 0\ncpu0 1 2 3\n").unwrap();
        let busy = from.busy_until(later).unwrap();
        // 1,000 ticks went by: 300 idle, 100 waiting on I/O, 600 busy, 100 of them stolen.
        assert!((busy.share - 0.6).abs() < 1e-9, "busy {}", busy.share);
        assert!((busy.stolen - 0.1).abs() < 1e-9, "stolen {}", busy.stolen);
        assert!(from.busy_until(from).is_none(), "no ticks went by: no share to give");
    }

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
                    break from.busy_until(now).expect("ticks went by").share;
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
