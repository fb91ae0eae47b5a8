//! A minimal SMTP server that keeps what it receives: a real SMTP peer over TCP for tests,
//! benches and demos (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT; no TLS, no auth).
//!
//! It can be told to misbehave like real servers do: refuse transactions with a 4xx/5xx
//! reply (greylisting, outage), or stall after the message body, never confirming it (a
//! server hanging mid-send). A message counts as received only once it has been answered
//! `250`, exactly as a client sees it.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::Notify,
};

/// A message the sink accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Envelope sender.
    pub from: String,
    /// Envelope recipients.
    pub to: Vec<String>,
    /// The message as transmitted (headers and body, dot-unstuffed, CRLF line ends).
    pub data: Vec<u8>,
}

impl Received {
    /// The message as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// How the sink answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Accept every message.
    Accept,
    /// Answer `MAIL FROM` with `code` (e.g. 451, 421, 550); `times: None` means forever,
    /// `Some(n)` the next `n` transactions, then accept again.
    Refuse {
        /// The SMTP reply code.
        code: u16,
        /// How many transactions to refuse.
        times: Option<usize>,
    },
    /// Read the message body but never answer it (the client hangs until it gives up).
    Stall,
}

#[derive(Debug)]
struct State {
    messages: Vec<Received>,
    behaviour: Behaviour,
    refused: usize,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    received: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking connection task cannot leave the state half-updated (every update is
        // one assignment), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running sink. Clones share the same server.
#[derive(Debug, Clone)]
pub struct SmtpSink {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl SmtpSink {
    /// Starts a sink on a free port of 127.0.0.1.
    pub async fn start() -> std::io::Result<Self> {
        Self::bind("127.0.0.1:0".parse().map_err(std::io::Error::other)?).await
    }

    /// Starts a sink on `addr`.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                messages: Vec::new(),
                behaviour: Behaviour::Accept,
                refused: 0,
            }),
            received: Notify::new(),
        });
        let accept_shared = shared.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = accept_shared.clone();
                tokio::spawn(async move {
                    if let Err(e) = session(stream, shared).await {
                        tracing::debug!(error = %e, "smtp sink session ended");
                    }
                });
            }
        });
        Ok(SmtpSink { addr, shared })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `smtp://127.0.0.1:{port}`, for `SMTP_URL`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Changes how the sink answers from now on.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.shared.lock().behaviour = behaviour;
    }

    /// Messages accepted so far.
    pub fn messages(&self) -> Vec<Received> {
        self.shared.lock().messages.clone()
    }

    /// Transactions refused so far.
    pub fn refused(&self) -> usize {
        self.shared.lock().refused
    }

    /// Waits until at least `n` messages were accepted; `false` on timeout.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.received.notified();
            if self.shared.lock().messages.len() >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.shared.lock().messages.len() >= n;
            }
        }
    }
}

/// Decides whether to refuse the transaction now starting; returns the reply code if so.
fn refusal(shared: &Shared) -> Option<u16> {
    let mut state = shared.lock();
    match state.behaviour {
        Behaviour::Refuse { code, times } => {
            match times {
                Some(0) => {
                    state.behaviour = Behaviour::Accept;
                    return None;
                }
                Some(n) => {
                    state.behaviour = Behaviour::Refuse {
                        code,
                        times: Some(n - 1),
                    };
                }
                None => {}
            }
            state.refused += 1;
            Some(code)
        }
        _ => None,
    }
}

async fn session(stream: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    // Replies are small writes answered by the client's next command: without NODELAY,
    // Nagle and delayed ACKs add ~40 ms to every round trip.
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    write.write_all(b"220 pique-sink ESMTP ready\r\n").await?;
    let mut from = String::new();
    let mut to: Vec<String> = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => {
                write
                    .write_all(b"250-pique-sink\r\n250-8BITMIME\r\n250 SIZE 52428800\r\n")
                    .await?
            }
            "HELO" => write.write_all(b"250 pique-sink\r\n").await?,
            "MAIL" => {
                if let Some(code) = refusal(&shared) {
                    let reply = format!("{code} {} sink refusing\r\n", enhanced(code));
                    write.write_all(reply.as_bytes()).await?;
                    if code == 421 {
                        // 421 means the server closes the connection.
                        return Ok(());
                    }
                    continue;
                }
                from = angle_arg(command);
                to.clear();
                write.write_all(b"250 2.1.0 OK\r\n").await?;
            }
            "RCPT" => {
                to.push(angle_arg(command));
                write.write_all(b"250 2.1.5 OK\r\n").await?;
            }
            "DATA" => {
                write
                    .write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let data = read_data(&mut reader).await?;
                if shared.lock().behaviour == Behaviour::Stall {
                    // Hold the connection open without answering until the client leaves.
                    let mut sink = String::new();
                    while reader.read_line(&mut sink).await? > 0 {
                        sink.clear();
                    }
                    return Ok(());
                }
                {
                    let mut state = shared.lock();
                    state.messages.push(Received {
                        from: from.clone(),
                        to: to.clone(),
                        data,
                    });
                }
                shared.received.notify_waiters();
                write.write_all(b"250 2.0.0 queued\r\n").await?;
            }
            "RSET" => {
                from.clear();
                to.clear();
                write.write_all(b"250 2.0.0 OK\r\n").await?;
            }
            "NOOP" => write.write_all(b"250 2.0.0 OK\r\n").await?,
            "QUIT" => {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            _ => {
                write
                    .write_all(b"502 5.5.2 command not recognised\r\n")
                    .await?
            }
        }
    }
}

/// Reads a DATA body up to the lone `.` line, undoing dot-stuffing.
async fn read_data(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "eof in DATA",
            ));
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(data);
        }
        let content = if line.starts_with(b"..") {
            &line[1..]
        } else {
            &line[..]
        };
        data.extend_from_slice(content);
    }
}

/// The address inside `<...>` of a MAIL/RCPT command.
fn angle_arg(command: &str) -> String {
    match (command.find('<'), command.find('>')) {
        (Some(a), Some(b)) if b > a => command[a + 1..b].to_string(),
        _ => command.split(':').nth(1).unwrap_or("").trim().to_string(),
    }
}

fn enhanced(code: u16) -> &'static str {
    match code {
        400..=499 => "4.3.0",
        _ => "5.7.1",
    }
}
