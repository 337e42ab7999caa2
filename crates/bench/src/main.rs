//! `dialin-bench`: measures what this machine can do (a bare tonic server, raw
//! lettre into Postfix's smtp-sink), then dialin against it, and prints each
//! figure as a ratio to its ceiling. See BENCHMARKS.md.

mod dialin;
mod echo;
mod interactive;
mod load;
mod machine;
mod relay;
mod report;
mod scenarios;
mod smtp;

use std::{process::ExitCode, time::Duration};

use clap::Parser;

use crate::{dialin::Backend, scenarios::Plan, smtp::SmtpSink};

#[derive(Debug, Parser)]
#[command(name = "dialin-bench", about = "How close dialin gets to this machine's ceilings")]
struct Args {
    /// A few seconds with tiny counts, so CI keeps the benchmark working. Its figures mean nothing.
    #[arg(long)]
    smoke: bool,
    /// Concurrent callers.
    #[arg(long, default_value_t = 64)]
    callers: usize,
    /// HTTP/2 connections the callers share.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Seconds of warm-up before each measured run.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// Seconds each measured run lasts.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Users licensed in each onboarding run.
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    /// SMTP connections, for dialin and for the lettre ceiling alike.
    #[arg(long, default_value_t = 16)]
    smtp_connections: usize,
    #[arg(long, value_enum, default_value = "both")]
    database: Databases,
    #[arg(long, value_enum, default_value = "onboarding")]
    scenario: Scenario,
    /// Interactive during bulk: what the relay accepts a second.
    #[arg(long, default_value_t = 50.0)]
    relay_rate: f64,
    /// Interactive during bulk: users each of two tenants onboards.
    #[arg(long, default_value_t = 100_000)]
    bulk_users: usize,
    /// Interactive during bulk: seconds of one interactive change a second.
    #[arg(long, default_value_t = 60)]
    interactive_seconds: u64,
    /// Interactive during bulk: only these relays (by the name the report
    /// gives them, e.g. "refusing relay, rate unknown"); all when none.
    #[arg(long = "relay")]
    relays: Vec<String>,
    /// Interactive during bulk: also print what the relay accepted and refused
    /// in each second (the throttle's sawtooth).
    #[arg(long)]
    timeline: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Scenario {
    /// The ceilings, then dialin's calls and onboarding against them.
    Onboarding,
    /// A relay with a rate limit, a bulk backlog and interactive changes.
    InteractiveDuringBulk,
    Both,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Databases {
    Sqlite,
    Postgres,
    Both,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(unknown) = args
        .relays
        .iter()
        .find(|relay| !interactive::MODES.iter().any(|mode| mode.name == relay.as_str()))
    {
        let names: Vec<&str> = interactive::MODES.iter().map(|mode| mode.name).collect();
        eprintln!("dialin-bench: no relay {unknown:?}; the relays are {names:?}");
        return ExitCode::from(2);
    }
    let plan = if args.smoke {
        Plan {
            callers: 4,
            connections: 2,
            warmup: Duration::from_millis(200),
            duration: Duration::from_millis(500),
            users: 200,
            smtp_connections: 4,
            email_deadline: Duration::from_secs(120),
        }
    } else {
        Plan {
            callers: args.callers,
            connections: args.connections,
            warmup: Duration::from_secs(args.warmup),
            duration: Duration::from_secs(args.seconds),
            users: args.users,
            smtp_connections: args.smtp_connections,
            email_deadline: Duration::from_secs(3600),
        }
    };
    let backends = match args.database {
        Databases::Sqlite => vec![Backend::Sqlite],
        Databases::Postgres => vec![Backend::Postgres],
        Databases::Both => vec![Backend::Sqlite, Backend::Postgres],
    };
    let scenario = if args.smoke { Scenario::Both } else { args.scenario };
    let (relay_rate, bulk_users, interactive_seconds) = if args.smoke {
        (50.0, 300, 3)
    } else {
        (args.relay_rate, args.bulk_users, args.interactive_seconds)
    };
    let setups: Vec<interactive::Setup> = backends
        .iter()
        .map(|&backend| interactive::Setup {
            backend,
            modes: interactive::MODES
                .iter()
                .map(|mode| mode.name)
                .filter(|name| args.relays.iter().any(|relay| relay == name))
                .collect(),
            rate: relay_rate,
            users: bulk_users,
            seconds: interactive_seconds,
            smtp_connections: plan.smtp_connections.min(4),
        })
        .collect();
    let outcome = async {
        if scenario != Scenario::InteractiveDuringBulk {
            run(&plan, &backends).await?;
        }
        if scenario != Scenario::Onboarding {
            for setup in &setups {
                let figures = interactive::run(setup).await?;
                report::print_interactive(setup, &figures, args.timeline);
            }
        }
        Ok::<(), String>(())
    };
    match outcome.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("dialin-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(plan: &Plan, backends: &[Backend]) -> Result<(), String> {
    let sink = SmtpSink::start().await?;
    eprintln!("measuring the ceilings …");
    let ceilings = scenarios::ceilings(plan, &sink).await?;
    let mut runs = Vec::new();
    for &backend in backends {
        eprintln!("measuring dialin on {} …", backend.name());
        runs.push(scenarios::dialin(plan, backend, &sink).await?);
    }
    report::print(&ceilings, &runs);
    Ok(())
}
