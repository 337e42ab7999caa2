//! The fault suite: the real binaries as child processes, a real SMTP server
//! and a real database, broken for real (kill -9, SMTP down, a cut database
//! link, racing admins), with what the SMTP server received as the verdict.
//! Each test prints the counts it saw.

mod balancing;
mod crashes;
mod database;
mod metrics;
mod relay;
mod replicas;
mod secrecy;
mod smtp;
mod switch;

use std::collections::HashMap;

use dialin_tests::ReceivedEmail;

/// Received emails grouped by `Message-ID`.
pub fn by_message_id(received: &[ReceivedEmail]) -> HashMap<String, Vec<&ReceivedEmail>> {
    let mut groups: HashMap<String, Vec<&ReceivedEmail>> = HashMap::new();
    for email in received {
        groups.entry(email.message_id.clone()).or_default().push(email);
    }
    groups
}

pub fn user_ids(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|index| format!("{prefix}{index:04}")).collect()
}
