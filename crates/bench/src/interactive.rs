//! "Interactive during bulk": tenants `a` and `c` each onboard many users while
//! tenant `b`, and `a` itself, reset one PIN a second, all through a relay that
//! takes `rate` messages a second. Three relays: one that answers late above its
//! rate, one that refuses above it (its rate unknown to dialin), and the same
//! refusing relay with `DIALIN_SMTP_MAX_RATE` set to its rate.

use std::{collections::HashMap, time::Duration};

use dialin_proto::settings::v1::{self as settings, settings_service_client::SettingsServiceClient};
use tokio::time::Instant;

use crate::{
    dialin::{Backend, Dialin},
    load,
    relay::{LimitedRelay, OverRate},
    scenarios::{add_toll_number, license_batches, license_request},
};

/// Users per tenant whose PINs are reset, one a second, in turn.
const TARGETS: usize = 10;
/// Refusals are counted after this long: the first throttle finds the relay's rate.
const SETTLING: Duration = Duration::from_secs(10);

pub struct Mode {
    pub name: &'static str,
    over: OverRate,
    /// Whether dialin is told the relay's rate.
    cap_known: bool,
}

pub const MODES: [Mode; 3] = [
    Mode {
        name: "slow relay",
        over: OverRate::Slow,
        cap_known: false,
    },
    Mode {
        name: "refusing relay, rate unknown",
        over: OverRate::Refuse,
        cap_known: false,
    },
    Mode {
        name: "refusing relay, DIALIN_SMTP_MAX_RATE set",
        over: OverRate::Refuse,
        cap_known: true,
    },
];

pub struct Setup {
    pub backend: Backend,
    /// Which of [`MODES`] to run (by name): all when empty.
    pub modes: Vec<&'static str>,
    /// What the relay accepts a second.
    pub rate: f64,
    /// Users each of `a` and `c` onboards.
    pub users: usize,
    /// How long the interactive changes go on.
    pub seconds: u64,
    pub smtp_connections: usize,
}

pub struct Figures {
    pub mode: &'static str,
    /// From each `ResetPin`'s return to the relay accepting its email.
    pub interactive: Vec<Duration>,
    /// Resets whose email had not arrived 10 s after the last one.
    pub missing: usize,
    /// Bulk emails accepted a second, as a share of the relay's rate.
    pub bulk_share: f64,
    /// Refusals per accepted email, after the first [`SETTLING`].
    pub refusals_per_accepted: f64,
    /// Tenant `a`'s and `c`'s shares of the bulk emails accepted.
    pub tenant_shares: (f64, f64),
    pub failed: u64,
    /// Message-IDs the relay accepted more than once.
    pub duplicates: usize,
    /// What the relay accepted and refused in each second of the window: the
    /// throttle's sawtooth.
    pub timeline: Vec<(usize, usize)>,
}

impl Figures {
    pub fn interactive_quantile(&self, quantile: f64) -> Duration {
        let mut sorted = self.interactive.clone();
        sorted.sort();
        let at = ((sorted.len() as f64 - 1.0) * quantile).round() as usize;
        sorted.get(at).copied().unwrap_or_default()
    }
}

pub async fn run(setup: &Setup) -> Result<Vec<Figures>, String> {
    let mut figures = Vec::new();
    for mode in MODES
        .iter()
        .filter(|mode| setup.modes.is_empty() || setup.modes.contains(&mode.name))
    {
        eprintln!("interactive during bulk on {}: {} …", setup.backend.name(), mode.name);
        figures.push(run_mode(setup, mode).await?);
    }
    Ok(figures)
}

async fn run_mode(setup: &Setup, mode: &Mode) -> Result<Figures, String> {
    let relay = LimitedRelay::start(setup.rate, mode.over).await?;
    let env = if mode.cap_known {
        vec![("DIALIN_SMTP_MAX_RATE", format!("{}/s", setup.rate))]
    } else {
        Vec::new()
    };
    let dialin = Dialin::start(setup.backend, relay.addr, setup.smtp_connections, &env).await?;
    let outcome = measure(setup, mode, &relay, &dialin).await;
    dialin.stop().await;
    relay.stop();
    outcome
}

async fn measure(setup: &Setup, mode: &Mode, relay: &LimitedRelay, dialin: &Dialin) -> Result<Figures, String> {
    let channels = load::connect(dialin.settings_addr, 2)
        .await
        .map_err(|error| error.to_string())?;
    let mut client = SettingsServiceClient::new(channels[0].clone());
    for tenant_id in ["a", "b", "c"] {
        add_toll_number(&mut client, tenant_id).await?;
    }
    for target in 0..TARGETS {
        for tenant_id in ["a", "b"] {
            client
                .assign_license(license_request(tenant_id, &format!("{tenant_id}-i{target}")))
                .await
                .map_err(|status| format!("AssignLicense: {status:?}"))?;
        }
    }
    let welcomed = 2 * TARGETS;
    wait_for(relay, Duration::from_secs(120), |log| log.accepted.len() >= welcomed).await?;
    let onboarding: Vec<_> = ["a", "c"]
        .into_iter()
        .map(|tenant_id| {
            let (channels, users) = (channels.clone(), setup.users);
            tokio::spawn(
                async move { license_batches(&channels, tenant_id, &format!("{tenant_id}-bulk"), users, 1).await },
            )
        })
        .collect();
    // The backlog has formed once the relay takes bulk emails.
    wait_for(relay, Duration::from_secs(120), |log| {
        log.accepted.len() > welcomed + 10
    })
    .await?;

    let start = Instant::now();
    let mut resets: Vec<(String, Instant)> = Vec::new();
    for second in 0..setup.seconds {
        let tenant_id = ["b", "a"][usize::try_from(second).unwrap_or(0) % 2];
        let user_id = format!("{tenant_id}-i{}", (second / 2) % TARGETS as u64);
        client
            .reset_pin(settings::ResetPinRequest {
                tenant_id: tenant_id.into(),
                user_id: user_id.clone(),
                ..Default::default()
            })
            .await
            .map_err(|status| format!("ResetPin: {status:?}"))?;
        resets.push((format!("{user_id}@bench.example"), Instant::now()));
        tokio::time::sleep_until(start + Duration::from_secs(second + 1)).await;
    }
    let end = Instant::now();
    let arrived = |log: &crate::relay::Log| {
        resets.iter().all(|(to, returned)| {
            log.accepted
                .iter()
                .any(|email| &email.recipient == to && email.at > *returned)
        })
    };
    // Waits for the last interactive emails; what has not come by then is missing.
    let _ = wait_for(relay, Duration::from_secs(10), arrived).await;
    for task in onboarding {
        task.abort();
    }
    let failed = dialin.emails("FAILED").await?;
    Ok(relay.log(|log| {
        let mut interactive = Vec::new();
        let mut missing = 0;
        for (to, returned) in &resets {
            match log
                .accepted
                .iter()
                .find(|email| &email.recipient == to && email.at > *returned)
            {
                Some(email) => interactive.push(email.at - *returned),
                None => missing += 1,
            }
        }
        let in_window = |at: Instant, from: Instant| at >= from && at <= end;
        let bulk: Vec<&str> = log
            .accepted
            .iter()
            .filter(|email| in_window(email.at, start) && email.recipient.contains("-bulk-"))
            .map(|email| email.recipient.as_str())
            .collect();
        let window = (end - start).as_secs_f64();
        let of_a = bulk.iter().filter(|to| to.starts_with("a-")).count() as f64;
        let of_c = bulk.iter().filter(|to| to.starts_with("c-")).count() as f64;
        let settled = start + SETTLING;
        let accepted_late = log.accepted.iter().filter(|email| in_window(email.at, settled)).count();
        let refused_late = log.refused.iter().filter(|&&at| in_window(at, settled)).count();
        let mut timeline = vec![(0, 0); usize::try_from((end - start).as_secs()).unwrap_or(0) + 1];
        let second = |at: Instant| usize::try_from((at - start).as_secs()).unwrap_or(0);
        for email in log.accepted.iter().filter(|email| in_window(email.at, start)) {
            timeline[second(email.at)].0 += 1;
        }
        for &at in log.refused.iter().filter(|&&at| in_window(at, start)) {
            timeline[second(at)].1 += 1;
        }
        let mut copies: HashMap<&str, usize> = HashMap::new();
        for email in &log.accepted {
            *copies.entry(email.message_id.as_str()).or_default() += 1;
        }
        Figures {
            mode: mode.name,
            interactive,
            missing,
            bulk_share: bulk.len() as f64 / window / setup.rate,
            refusals_per_accepted: refused_late as f64 / accepted_late.max(1) as f64,
            tenant_shares: (of_a / (of_a + of_c).max(1.0), of_c / (of_a + of_c).max(1.0)),
            failed,
            duplicates: copies.values().filter(|&&count| count > 1).count(),
            timeline,
        }
    }))
}

async fn wait_for(
    relay: &LimitedRelay,
    timeout: Duration,
    done: impl Fn(&crate::relay::Log) -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while !relay.log(&done) {
        if Instant::now() > deadline {
            return Err(format!("the relay did not get there within {timeout:?}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
