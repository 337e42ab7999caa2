//! A relay with a rate limit, as a provider runs one: it accepts at most so many
//! messages a second, and above that either answers late (slow) or refuses with
//! `451 4.7.0` (throttling, like SES or Exchange Online). It speaks just enough
//! SMTP for lettre and keeps what it accepted and refused, for the figures.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
    time::Instant,
};

/// What the relay does with a message above its rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverRate {
    /// Answers late: the message waits for its slot.
    Slow,
    /// Refuses it: `451 4.7.0 Too many messages, slow down`.
    Refuse,
}

/// A message the relay accepted.
#[derive(Clone, Debug)]
pub struct Accepted {
    pub at: Instant,
    pub recipient: String,
    pub message_id: String,
}

#[derive(Default)]
pub struct Log {
    pub accepted: Vec<Accepted>,
    pub refused: Vec<Instant>,
}

struct Limit {
    rate: f64,
    over: OverRate,
    /// Slow: when the next message may be accepted.
    next_slot: Instant,
    /// Refuse: when the messages of the last second were accepted.
    last_second: VecDeque<Instant>,
}

pub struct LimitedRelay {
    pub addr: SocketAddr,
    log: Arc<Mutex<Log>>,
    server: JoinHandle<()>,
}

impl LimitedRelay {
    pub async fn start(rate: f64, over: OverRate) -> Result<Self, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|error| error.to_string())?;
        let addr = listener.local_addr().map_err(|error| error.to_string())?;
        let log = Arc::new(Mutex::new(Log::default()));
        let limit = Arc::new(tokio::sync::Mutex::new(Limit {
            rate,
            over,
            next_slot: Instant::now(),
            last_second: VecDeque::new(),
        }));
        let server = {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(session(stream, Arc::clone(&limit), Arc::clone(&log)));
                }
            })
        };
        Ok(Self { addr, log, server })
    }

    /// What it accepted and refused so far.
    pub fn log<T>(&self, read: impl FnOnce(&Log) -> T) -> T {
        match self.log.lock() {
            Ok(log) => read(&log),
            Err(poisoned) => read(&poisoned.into_inner()),
        }
    }

    pub fn stop(self) {
        self.server.abort();
    }
}

/// One SMTP session: greeting, EHLO, then MAIL, RCPT, DATA as often as the
/// client sends them.
async fn session(stream: TcpStream, limit: Arc<tokio::sync::Mutex<Limit>>, log: Arc<Mutex<Log>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    if write.write_all(b"220 bench-relay ESMTP\r\n").await.is_err() {
        return;
    }
    let (mut recipient, mut line) = (String::new(), String::new());
    loop {
        line.clear();
        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim_end().to_ascii_uppercase();
        let reply: String = if command.starts_with("EHLO") || command.starts_with("HELO") {
            "250 bench-relay\r\n".into()
        } else if command.starts_with("RCPT TO:") {
            recipient = line.trim_end()[8..].trim().trim_matches(['<', '>']).to_owned();
            "250 OK\r\n".into()
        } else if command.starts_with("DATA") {
            if write.write_all(b"354 go ahead\r\n").await.is_err() {
                return;
            }
            let message_id = read_message(&mut lines).await;
            match admit(&limit).await {
                true => {
                    if let Ok(mut log) = log.lock() {
                        log.accepted.push(Accepted {
                            at: Instant::now(),
                            recipient: std::mem::take(&mut recipient),
                            message_id,
                        });
                    }
                    "250 OK\r\n".into()
                }
                false => {
                    if let Ok(mut log) = log.lock() {
                        log.refused.push(Instant::now());
                    }
                    "451 4.7.0 Too many messages, slow down\r\n".into()
                }
            }
        } else if command.starts_with("QUIT") {
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
        } else {
            // MAIL, RSET, NOOP
            "250 OK\r\n".into()
        };
        if write.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Reads the message up to the lone dot; returns its Message-ID.
async fn read_message(lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> String {
    let (mut message_id, mut line) = (String::new(), String::new());
    loop {
        line.clear();
        if lines.read_line(&mut line).await.unwrap_or(0) == 0 || line == ".\r\n" {
            return message_id;
        }
        if message_id.is_empty() && line.to_ascii_lowercase().starts_with("message-id:") {
            message_id = line[11..].trim().to_owned();
        }
    }
}

/// Whether a message may be accepted now (after waiting its turn, if slow).
async fn admit(limit: &tokio::sync::Mutex<Limit>) -> bool {
    let wait = {
        let mut limit = limit.lock().await;
        let now = Instant::now();
        match limit.over {
            OverRate::Slow => {
                let slot = limit.next_slot.max(now);
                limit.next_slot = slot + Duration::from_secs_f64(1.0 / limit.rate);
                slot - now
            }
            OverRate::Refuse => {
                while limit
                    .last_second
                    .front()
                    .is_some_and(|&at| now - at >= Duration::from_secs(1))
                {
                    limit.last_second.pop_front();
                }
                if limit.last_second.len() as f64 >= limit.rate {
                    return false;
                }
                limit.last_second.push_back(now);
                Duration::ZERO
            }
        }
    };
    tokio::time::sleep(wait).await;
    true
}
