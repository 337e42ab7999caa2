//! Postfix's `smtp-sink` (accepts and discards every message, as fast as it
//! can), and the ceiling for pushing email into it: lettre over our own
//! `TCP_NODELAY` sockets, as dialin's notifier does, with nothing else around it.

use std::{net::SocketAddr, path::Path, time::Duration};

use lettre::{
    Message,
    message::{Mailbox, MultiPart},
    transport::smtp::{client::AsyncSmtpConnection, extension::ClientId},
};
use tokio::{net::TcpStream, process::Child, time::Instant};

use crate::machine::Usage;

const SMTP_SINK: &str = "/usr/sbin/smtp-sink";

pub struct SmtpSink {
    pub addr: SocketAddr,
    process: Child,
}

impl SmtpSink {
    pub async fn start() -> Result<Self, String> {
        if !Path::new(SMTP_SINK).exists() {
            return Err(format!("{SMTP_SINK} is missing: apt-get install postfix"));
        }
        let addr = free_addr()?;
        let mut command = tokio::process::Command::new(SMTP_SINK);
        // smtp-sink refuses to run as root without a user to switch to.
        if is_root() {
            command.args(["-u", "nobody"]);
        }
        let process = command
            .arg(addr.to_string())
            .arg("1024")
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| format!("cannot start {SMTP_SINK}: {error}"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).await.is_err() {
            if Instant::now() > deadline {
                return Err(format!("{SMTP_SINK} did not listen on {addr} within 10 s"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self { addr, process })
    }

    /// The CPU time the sink has used so far: it is one single-threaded
    /// process, so a sink near a whole core is what limits a run.
    pub fn cpu_seconds(&self) -> f64 {
        Usage::of(&self.process).cpu_seconds
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|status| {
            status
                .lines()
                .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

pub fn free_addr() -> Result<SocketAddr, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|error| format!("no free loopback port: {error}"))
}

/// A message the size and shape of a dialin WELCOME email.
fn sample_message() -> Message {
    let mailbox = |text: &str| text.parse::<Mailbox>().expect("a fixed, valid mailbox");
    let text = "Hello Alex Martin,\n\nYou can now join meetings by phone.\n".repeat(12);
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><body><p>{}</p></body></html>",
        text.replace('\n', "<br>")
    );
    Message::builder()
        .from(mailbox("Audio Conferencing <no-reply@bench.example>"))
        .to(mailbox("Alex Martin <alex@bench.example>"))
        .subject("You can now join meetings by phone")
        .multipart(MultiPart::alternative_plain_html(text, html))
        .expect("a fixed, valid message")
}

/// Messages per second that `connections` lettre connections push into the
/// sink, `messages` in all.
pub async fn lettre_ceiling(sink: SocketAddr, connections: usize, messages: usize) -> Result<f64, String> {
    let message = sample_message();
    let bytes = message.formatted();
    let started = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for sender in 0..connections {
        let share = messages / connections + usize::from(sender < messages % connections);
        let (message, bytes) = (message.clone(), bytes.clone());
        senders.spawn(async move {
            let stream = TcpStream::connect(sink).await.map_err(|error| error.to_string())?;
            stream.set_nodelay(true).map_err(|error| error.to_string())?;
            let hello = ClientId::Domain("bench.example".into());
            let mut connection = AsyncSmtpConnection::connect_with_transport(Box::new(stream), &hello)
                .await
                .map_err(|error| error.to_string())?;
            for _ in 0..share {
                connection
                    .send(message.envelope(), &bytes)
                    .await
                    .map_err(|error| error.to_string())?;
            }
            connection.quit().await.map_err(|error| error.to_string())?;
            Ok::<(), String>(())
        });
    }
    while let Some(joined) = senders.join_next().await {
        joined.map_err(|error| error.to_string())??;
    }
    Ok(messages as f64 / started.elapsed().as_secs_f64())
}
