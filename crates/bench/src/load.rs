//! The load generator: `callers` concurrent callers over `connections` HTTP/2
//! connections, each calling in a loop through a warm-up and then a measured
//! period. Every answer's gRPC status is checked: an error is counted, never
//! taken for a fast success.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use hdrhistogram::Histogram;
use tokio::time::Instant;
use tonic::{Status, transport::Channel};

use crate::machine::{self, Busy, CpuTicks};

#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub callers: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Calls per second across all callers (open loop, latency measured from
    /// each call's scheduled start); `None`: each caller calls again as soon
    /// as it has its answer (closed loop, for throughput).
    pub rate: Option<f64>,
}

pub struct Figures {
    /// Successful calls in the measured period.
    pub calls: u64,
    /// Successful calls in all, warm-up included (each may have queued an email).
    pub all_ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub seconds: f64,
    /// Microseconds.
    pub latency: Histogram<u64>,
    /// How busy the whole machine was over the measured period.
    pub machine_busy: Option<Busy>,
}

impl Figures {
    pub fn throughput(&self) -> f64 {
        self.calls as f64 / self.seconds
    }

    pub fn quantile(&self, quantile: f64) -> Duration {
        Duration::from_micros(self.latency.value_at_quantile(quantile))
    }
}

/// `connections` separate HTTP/2 connections to `addr`, set up as dialin's
/// own clients set theirs up.
pub async fn connect(addr: SocketAddr, connections: usize) -> Result<Vec<Channel>, tonic::transport::Error> {
    let mut channels = Vec::with_capacity(connections);
    for _ in 0..connections {
        let endpoint = Channel::from_shared(format!("http://{addr}"))
            .expect("a socket address is a valid URI")
            .tcp_nodelay(true)
            .http2_adaptive_window(true);
        channels.push(endpoint.connect().await?);
    }
    Ok(channels)
}

/// Runs `call(channel, sequence)` under `load`; `sequence` numbers each call of
/// the run uniquely (for calls that need fresh ids).
pub async fn run<F, Fut>(load: Load, channels: &[Channel], call: F) -> Figures
where
    F: Fn(Channel, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Status>> + Send,
{
    let call = Arc::new(call);
    let start = Instant::now();
    let measure_from = start + load.warmup;
    let end = measure_from + load.duration;
    let interval = load
        .rate
        .map(|rate| Duration::from_secs_f64(load.callers as f64 / rate));
    let machine_busy = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from).await;
        let from = CpuTicks::now();
        tokio::time::sleep_until(end).await;
        machine::busy_since(from)
    });
    let mut callers = tokio::task::JoinSet::new();
    for caller in 0..load.callers {
        let channel = channels[caller % channels.len()].clone();
        let call = Arc::clone(&call);
        callers.spawn(async move {
            let mut latency = new_histogram();
            let (mut calls, mut all_ok, mut errors, mut first_error) = (0u64, 0u64, 0u64, None);
            // Callers start spread over one interval, not in step.
            let mut scheduled =
                start + interval.map_or(Duration::ZERO, |i| i.mul_f64(caller as f64 / load.callers as f64));
            let mut sequence = caller as u64;
            loop {
                let began = match interval {
                    Some(interval) => {
                        let at = scheduled;
                        scheduled += interval;
                        tokio::time::sleep_until(at).await;
                        at
                    }
                    None => Instant::now(),
                };
                if began >= end {
                    break;
                }
                let outcome = call(channel.clone(), sequence).await;
                sequence += load.callers as u64;
                all_ok += u64::from(outcome.is_ok());
                if began < measure_from {
                    continue;
                }
                match outcome {
                    Ok(()) => {
                        calls += 1;
                        let micros = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
                        let _ = latency.record(micros.max(1));
                    }
                    Err(status) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("{:?}: {}", status.code(), status.message()));
                    }
                }
            }
            (calls, all_ok, errors, first_error, latency)
        });
    }
    let mut figures = Figures {
        calls: 0,
        all_ok: 0,
        errors: 0,
        first_error: None,
        seconds: load.duration.as_secs_f64(),
        latency: new_histogram(),
        machine_busy: None,
    };
    while let Some(Ok((calls, all_ok, errors, first_error, latency))) = callers.join_next().await {
        figures.calls += calls;
        figures.all_ok += all_ok;
        figures.errors += errors;
        figures.first_error = figures.first_error.or(first_error);
        let _ = figures.latency.add(&latency);
    }
    figures.machine_busy = machine_busy.await.ok().flatten();
    figures
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("fixed, valid bounds")
}
