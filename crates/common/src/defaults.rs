//! The defaults the contract fixes (contract §4, "Running the services"), named
//! once: both services' flags take them from here, and so does a laptop's
//! `scripts/run-local` (through `--help`).

pub const SETTINGS_LISTEN: &str = "127.0.0.1:50051";
pub const SETTINGS_DATABASE_URL: &str = "sqlite://var/settings.db?mode=rwc";
/// Where settings finds the notifier: its default listen address.
pub const NOTIFIER_URL: &str = "http://127.0.0.1:50052";
pub const NOTIFIER_LISTEN: &str = "127.0.0.1:50052";
pub const NOTIFIER_DATABASE_URL: &str = "sqlite://var/notifier.db?mode=rwc";
pub const MAIL_DIR: &str = "./var/mail";
pub const MAIL_FROM: &str = "Audio Conferencing <no-reply@localhost>";
pub const SMTP_CONNECTIONS: u16 = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_finds_the_notifier_where_it_listens_by_default() {
        assert_eq!(NOTIFIER_URL, format!("http://{NOTIFIER_LISTEN}"));
    }
}
