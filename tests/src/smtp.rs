//! A real SMTP server (Python's aiosmtpd, `tests/support/smtp_server.py`) on a
//! loopback port, and what it received, decoded.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
};

use serde::Deserialize;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

#[derive(Debug, Clone, Deserialize)]
pub struct ReceivedEmail {
    /// When the server accepted it, in Unix milliseconds.
    pub received_at: i64,
    pub message_id: String,
    pub envelope_to: Vec<String>,
    pub from: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Every header, as received.
    pub headers: std::collections::HashMap<String, String>,
}

impl ReceivedEmail {
    /// The delivery id the notifier put in the `Message-ID`.
    pub fn delivery_id(&self) -> &str {
        self.message_id
            .trim_start_matches('<')
            .split('@')
            .next()
            .unwrap_or_default()
    }

    /// Whether `needle` appears in the subject, the text or the HTML part,
    /// however the email groups digits.
    pub fn mentions(&self, needle: &str) -> bool {
        [&self.subject, &self.text, &self.html]
            .into_iter()
            .any(|part| reads(part, needle))
    }

    /// Whether `value` (a number, an ID, a PIN) shows in both the text and
    /// the HTML part, however the email groups its digits for reading
    /// (`123 4567`, `+1 425-555-0100`).
    pub fn shows(&self, value: &str) -> bool {
        reads(&self.text, value) && reads(&self.html, value)
    }
}

/// `part` contains `value` once the spaces and dashes that group digits are
/// taken out of both.
/// The most of `received` that the server accepted within any `window_ms`.
pub fn busiest_window(received: &[ReceivedEmail], window_ms: i64) -> usize {
    let times: Vec<i64> = received.iter().map(|email| email.received_at).collect();
    times
        .iter()
        .map(|&start| {
            times
                .iter()
                .filter(|&&at| at >= start && at < start + window_ms)
                .count()
        })
        .max()
        .unwrap_or_default()
}

fn reads(part: &str, value: &str) -> bool {
    let ungrouped = |text: &str| text.replace([' ', '\u{a0}', '-'], "");
    ungrouped(part).contains(&ungrouped(value))
}

pub struct SmtpServer {
    pub port: u16,
    out: PathBuf,
    reply: Option<String>,
    limit: Option<RelayLimit>,
    process: Option<Child>,
}

/// A relay's rate limit, and what it does above it.
#[derive(Clone, Copy, Debug)]
pub enum RelayLimit {
    /// Accepts at most this many messages a second, answering late above it.
    Slow(u32),
    /// Accepts at most this many in any second, answering `451 4.7.0` above it.
    Refuse(u32),
}

impl SmtpServer {
    /// Starts a server that accepts everything; `reply` makes it answer every
    /// message with that SMTP reply instead (e.g. `550 5.1.1 no such user`).
    pub async fn start(dir: &Path, reply: Option<&str>) -> Self {
        Self::start_limited(dir, reply, None).await
    }

    /// Starts a server that also holds to `limit`, as a relay does.
    pub async fn start_limited(dir: &Path, reply: Option<&str>, limit: Option<RelayLimit>) -> Self {
        let out = dir.join(format!("smtp-{}", uuid::Uuid::new_v4().simple()));
        let (port, process) = Self::spawn(&out, 0, reply, limit).await;
        Self {
            port,
            out,
            reply: reply.map(str::to_owned),
            limit,
            process: Some(process),
        }
    }

    /// When it refused a message for going too fast (Unix milliseconds), in order.
    pub fn refusals(&self) -> Vec<i64> {
        std::fs::read_to_string(self.out.join("refusals.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.trim().parse().ok())
            .collect()
    }

    /// The most connections that were open to it at once.
    pub fn most_connections(&self) -> usize {
        std::fs::read_to_string(self.out.join("connections.log"))
            .ok()
            .and_then(|most| most.trim().parse().ok())
            .unwrap_or_default()
    }

    /// Takes the server down: connections are refused until [`Self::restart`].
    pub async fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill().await;
        }
    }

    /// Brings the server back on the same port answering `reply` (None: accept).
    pub async fn restart_with_reply(&mut self, reply: Option<&str>) {
        self.reply = reply.map(str::to_owned);
        self.restart().await;
    }

    /// Brings the server back on the same port, keeping what it received.
    pub async fn restart(&mut self) {
        self.stop().await;
        let (port, process) = Self::spawn(&self.out, self.port, self.reply.as_deref(), self.limit).await;
        assert_eq!(port, self.port);
        self.process = Some(process);
    }

    async fn spawn(out: &Path, port: u16, reply: Option<&str>, limit: Option<RelayLimit>) -> (u16, Child) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/smtp_server.py");
        let mut command = Command::new("python3");
        command
            .arg(script)
            .args(["--port", &port.to_string(), "--out"])
            .arg(out)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        if let Some(reply) = reply {
            command.args(["--reply", reply]);
        }
        match limit {
            Some(RelayLimit::Slow(rate)) => command.args(["--max-rate", &rate.to_string(), "--over-rate", "slow"]),
            Some(RelayLimit::Refuse(rate)) => command.args(["--max-rate", &rate.to_string(), "--over-rate", "refuse"]),
            None => &mut command,
        };
        let mut process = command
            .spawn()
            .expect("start tests/support/smtp_server.py (needs python3 with aiosmtpd: pip install aiosmtpd)");
        let stdout = process.stdout.take().expect("piped stdout");
        let mut first_line = String::new();
        BufReader::new(stdout)
            .read_line(&mut first_line)
            .await
            .expect("read the SMTP server's port");
        let port = first_line.trim().parse().unwrap_or_else(|_| {
            panic!("the SMTP server did not start (is aiosmtpd installed?); it said {first_line:?}")
        });
        (port, process)
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<ReceivedEmail> {
        let Ok(entries) = std::fs::read_dir(&self.out) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "json"))
            .map(|entry| {
                let text = std::fs::read_to_string(entry.path()).expect("read a received message");
                serde_json::from_str(&text).expect("parse a received message")
            })
            .collect()
    }

    /// What was received for `delivery_id`.
    pub fn received_for(&self, delivery_id: &str) -> Vec<ReceivedEmail> {
        self.received()
            .into_iter()
            .filter(|email| email.delivery_id() == delivery_id)
            .collect()
    }
}
