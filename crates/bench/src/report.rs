//! The table: every figure beside its ceiling, as a ratio (1.00 = as good as
//! the ceiling). Throughput ratios are dialin ÷ ceiling; latency ratios are
//! ceiling ÷ dialin, so that for both, higher is closer.

use std::time::Duration;

use crate::{
    interactive,
    load::Figures,
    machine::Busy,
    scenarios::{Ceilings, DialinFigures, Onboarding},
};

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

fn ratio(value: f64, ceiling: f64) -> String {
    if ceiling > 0.0 {
        format!("{:.2}", value / ceiling)
    } else {
        "–".into()
    }
}

/// How busy the machine was, and how much of it the hypervisor took.
fn busy(busy: Option<Busy>) -> String {
    busy.map_or_else(
        || "–".into(),
        |busy| format!("{} ({} stolen)", percent(busy.share), percent(busy.stolen)),
    )
}

fn percent(share: f64) -> String {
    format!("{:.0} %", share * 100.0)
}

fn latency_ratio(value: Duration, ceiling: Duration) -> String {
    ratio(ceiling.as_secs_f64(), value.as_secs_f64())
}

pub fn print(ceilings: &Ceilings, runs: &[DialinFigures]) {
    let echo = &ceilings.echo;
    println!();
    println!(
        "Ceilings: tonic echo {:.0} req/s (p50 {}, p99 {}, p99.9 {}; p99 at half load {}; machine busy {} / {}); lettre into smtp-sink {:.0} msg/s (machine busy {}, smtp-sink {} of a core)",
        echo.throughput(),
        ms(echo.quantile(0.5)),
        ms(echo.quantile(0.99)),
        ms(echo.quantile(0.999)),
        ms(ceilings.echo_half.quantile(0.99)),
        busy(echo.machine_busy),
        busy(ceilings.echo_half.machine_busy),
        ceilings.lettre_per_second,
        busy(ceilings.lettre_spent.machine_busy),
        percent(ceilings.lettre_spent.sink_busy)
    );
    for run in runs {
        println!();
        println!("## {}", run.backend.name());
        println!();
        println!(
            "| call | req/s | ÷ echo | p50 | ÷ | p99 | ÷ | p99.9 | ÷ | p99 at half load | ÷ | machine busy (full / half load) | errors |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        let rows: [(&str, &Figures, Option<&Figures>); 4] = [
            ("GetTenantSettings", &run.get_settings, Some(&run.get_settings_half)),
            ("ResetPin, switch on", &run.reset_pin_on, Some(&run.reset_pin_on_half)),
            ("ResetPin, switch off", &run.reset_pin_off, None),
            ("AssignLicense", &run.assign_license, None),
        ];
        for (name, figures, half) in rows {
            let half = half.map_or(
                ("–".to_owned(), "–".to_owned(), busy(figures.machine_busy)),
                |half| {
                    (
                        ms(half.quantile(0.99)),
                        latency_ratio(half.quantile(0.99), ceilings.echo_half.quantile(0.99)),
                        format!("{} / {}", busy(figures.machine_busy), busy(half.machine_busy)),
                    )
                },
            );
            println!(
                "| {name} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {}{} |",
                figures.throughput(),
                ratio(figures.throughput(), echo.throughput()),
                ms(figures.quantile(0.5)),
                latency_ratio(figures.quantile(0.5), echo.quantile(0.5)),
                ms(figures.quantile(0.99)),
                latency_ratio(figures.quantile(0.99), echo.quantile(0.99)),
                ms(figures.quantile(0.999)),
                latency_ratio(figures.quantile(0.999), echo.quantile(0.999)),
                half.0,
                half.1,
                half.2,
                figures.errors,
                figures
                    .first_error
                    .as_deref()
                    .map(|error| format!(" ({error})"))
                    .unwrap_or_default(),
            );
        }
        println!();
        println!(
            "| onboarding | users | seconds | emails/s | ÷ lettre | CPU s / 1,000 emails | machine busy | smtp-sink (of a core) |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        let onboarding_rows: [(&str, &Onboarding); 2] = [
            ("AssignLicenses (1,000 a call)", &run.onboarding_batch),
            ("AssignLicense (single calls)", &run.onboarding_single),
        ];
        for (name, onboarding) in onboarding_rows {
            println!(
                "| {name} | {} | {:.1} | {:.0} | {} | {:.2} | {} | {} |",
                onboarding.users,
                onboarding.seconds,
                onboarding.emails_per_second(),
                ratio(onboarding.emails_per_second(), ceilings.lettre_per_second),
                onboarding.cpu_per_thousand(),
                busy(onboarding.spent.machine_busy),
                percent(onboarding.spent.sink_busy)
            );
        }
        println!();
        println!(
            "Suppressed path (switch off, AssignLicenses): {:.0} events/s recorded (machine busy {})",
            run.suppressed_per_second,
            busy(run.suppressed_machine_busy)
        );
        println!(
            "RSS: settings {:.0} MB idle, {:.0} MB peak; notifier {:.0} MB idle, {:.0} MB peak",
            run.idle.0.rss_mb, run.peak.0.peak_rss_mb, run.idle.1.rss_mb, run.peak.1.peak_rss_mb
        );
    }
}

/// The "interactive during bulk" table, for one database.
pub fn print_interactive(setup: &interactive::Setup, runs: &[interactive::Figures], timeline: bool) {
    println!();
    println!(
        "Interactive during bulk on {}: tenants a and c onboard {} users each while b and a reset a PIN a second for {} s; the relay takes {}/s",
        setup.backend.name(),
        setup.users,
        setup.seconds,
        setup.rate
    );
    println!(
        "| relay | interactive p50 | p99 | max | missing | bulk ÷ relay rate | refusals per accepted (after 10 s) | shares a / c | FAILED | duplicates |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for run in runs {
        println!(
            "| {} | {} | {} | {} | {} | {:.2} | {:.3} | {:.2} / {:.2} | {} | {} |",
            run.mode,
            ms(run.interactive_quantile(0.5)),
            ms(run.interactive_quantile(0.99)),
            ms(run.interactive_quantile(1.0)),
            run.missing,
            run.bulk_share,
            run.refusals_per_accepted,
            run.tenant_shares.0,
            run.tenant_shares.1,
            run.failed,
            run.duplicates
        );
    }
    if timeline {
        for run in runs {
            let seconds = |of: fn(&(usize, usize)) -> usize| {
                run.timeline
                    .iter()
                    .map(|second| of(second).to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            println!();
            println!("{}, accepted each second: {}", run.mode, seconds(|second| second.0));
            println!("{}, refused each second: {}", run.mode, seconds(|second| second.1));
        }
    }
}
