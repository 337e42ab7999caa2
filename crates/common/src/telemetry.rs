//! Structured logs for both services, set up in one place.

use tracing_subscriber::{EnvFilter, fmt};

/// Installs the global subscriber: `RUST_LOG` filters (default `info`), and
/// `DIALIN_LOG_FORMAT=json` switches to one JSON object per line for log shippers.
/// Calling it twice (tests start several services in one process) is harmless.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("DIALIN_LOG_FORMAT").is_ok_and(|format| format == "json");
    let builder = fmt().with_env_filter(filter).with_target(true);
    let _already_set = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
