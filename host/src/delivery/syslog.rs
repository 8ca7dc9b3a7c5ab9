//! Syslog over TCP: each line one RFC 5424 message, octet-counted (RFC 6587), facility local0,
//! its severity from the alert's. TCP has no acknowledgement of its own: a batch counts as
//! delivered once written and flushed to the receiver's socket. An alert longer than the
//! receiver takes (`max-message-bytes`) is shortened first ([`super::fit`]), so that it arrives
//! as whole JSON.

use std::io;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::AsyncWriteExt as _;

use super::{Delivery, Sender};

#[derive(Debug)]
pub struct SyslogSender {
    addr: std::net::SocketAddr,
    stream: Option<tokio::net::TcpStream>,
    host: String,
    /// The longest message the receiver takes, header included; `None`: any.
    max_message: Option<usize>,
    /// Messages shortened to fit so far.
    shortened: u64,
}

impl SyslogSender {
    /// A sender to `addr` whose messages are at most `max_message` bytes (`None`: as long as
    /// their lines).
    pub fn new(addr: std::net::SocketAddr, max_message: Option<usize>) -> SyslogSender {
        let host = fs_err::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty() && h.is_ascii() && !h.contains(' '))
            .unwrap_or_else(|| "-".to_owned());
        SyslogSender {
            addr,
            stream: None,
            host,
            max_message,
            shortened: 0,
        }
    }

    /// The octet-counted frames of a batch of lines.
    fn frames(&mut self, lines: &[u8]) -> Vec<u8> {
        let now = jiff::Timestamp::now()
            .round(jiff::Unit::Microsecond)
            .unwrap_or_else(|_| jiff::Timestamp::now());
        let mut out = Vec::with_capacity(lines.len() + 128);
        for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let pri = 16 * 8 + severity(line);
            let head = format!(
                "<{pri}>1 {now} {} oddity {} alert - ",
                self.host,
                std::process::id()
            );
            let line = self.fitted(line, head.len());
            out.extend_from_slice(format!("{} ", head.len() + line.len()).as_bytes());
            out.extend_from_slice(head.as_bytes());
            out.extend_from_slice(&line);
        }
        out
    }

    /// `line` shortened to what the receiver takes after a header of `head` bytes.
    fn fitted<'l>(&mut self, line: &'l [u8], head: usize) -> std::borrow::Cow<'l, [u8]> {
        let Some(max) = self.max_message else {
            return std::borrow::Cow::Borrowed(line);
        };
        let (line, shortened) = super::fit::fit(line, max.saturating_sub(head));
        if shortened {
            self.shortened += 1;
            if self.shortened == 1 {
                tracing::warn!(
                    "syslog {}: an alert is longer than max-message-bytes ({max}); alerts \
                     this long lose their oldest campaign events (counted in \
                     campaignEventsOmitted). Raise the receiver's limit and max-message-bytes \
                     to keep them whole",
                    self.addr
                );
            }
        }
        line
    }

    /// Sends the frames once, connecting first if need be; a failed connection is dropped.
    async fn send_once(&mut self, frames: &[u8]) -> io::Result<()> {
        let sent = async {
            if self.stream.is_none() {
                self.stream = Some(tokio::net::TcpStream::connect(self.addr).await?);
            }
            let stream = self.stream.as_mut().expect("connected just now");
            stream.write_all(frames).await?;
            stream.flush().await
        }
        .await;
        if sent.is_err() {
            self.stream = None;
        }
        sent
    }

    /// Sends `lines`, trying again `tries` times after a failure, waiting longer each time.
    pub async fn send_retrying(&mut self, lines: &[u8], tries: u32) -> io::Result<()> {
        let frames = self.frames(lines);
        let mut wait = Duration::from_millis(100);
        for _ in 0..tries {
            match self.send_once(&frames).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!("syslog {}: {e}; sending again in {wait:?}", self.addr);
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
            }
        }
        self.send_once(&frames).await
    }

    /// Closes the connection, if open.
    pub async fn close(&mut self) -> io::Result<()> {
        match self.stream.take() {
            Some(mut stream) => stream.shutdown().await,
            None => Ok(()),
        }
    }
}

impl Sender for SyslogSender {
    fn name(&self) -> String {
        format!("syslog+tcp://{}", self.addr)
    }

    fn batch(&self) -> usize {
        500
    }

    fn send<'a>(&'a mut self, lines: &'a [u8]) -> BoxFuture<'a, Delivery> {
        Box::pin(async move {
            let frames = self.frames(lines);
            match self.send_once(&frames).await {
                Ok(()) => Delivery::Done,
                Err(e) => Delivery::Retry(e.to_string(), None),
            }
        })
    }
}

/// The syslog severity of a line: from the severity where the alert formats put it, or the
/// scored event's note.
fn severity(line: &[u8]) -> u8 {
    let alert: serde_json::Value = serde_json::from_slice(line).unwrap_or_default();
    let name = [
        &alert["severity"],
        &alert["oddity"]["severity"],
        &alert["unmapped"]["oddity"]["severity"],
        &alert["event"]["severity"],
        &alert["novelty"]["severity"],
    ]
    .into_iter()
    .find_map(|v| v.as_str())
    .unwrap_or("low");
    match name {
        "critical" => 2,
        "high" => 3,
        "medium" => 4,
        "low" => 5,
        _ => 6,
    }
}
