//! Where the scored lines and the alerts go: the pipeline's plug point for output.
//!
//! A [`Sink`] takes whole `\n`-terminated lines, batch by batch, in order. The host's own are
//! standard output and files ([`Lines`], written on a thread of their own, see
//! [`crate::blocking`]) and memory ([`Memory`], for tests and embedding); network sinks
//! implement the same trait.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use crate::blocking;

/// A destination for lines.
pub trait Sink: Send + std::fmt::Debug {
    /// Its name in messages and in the summary.
    fn name(&self) -> String;

    /// Takes a batch of whole lines. An error means nothing more can be written (a closed
    /// pipe is [`io::ErrorKind::BrokenPipe`]).
    fn write(&mut self, lines: Vec<u8>) -> BoxFuture<'_, io::Result<()>>;

    /// Writes out and flushes everything taken; the sink is closed afterwards.
    fn finish(&mut self) -> BoxFuture<'_, io::Result<()>>;

    /// Writes out what was taken and opens the destination again (SIGHUP: a log rotated by
    /// renaming gets a new file; one truncated in place is written from its new end). Nothing
    /// to do for most sinks.
    fn reopen(&mut self) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Lines to standard output or a file, on a writer thread. A file is written in append mode,
/// so that a copy-and-truncate rotation (logrotate's `copytruncate`) leaves no hole.
#[derive(Debug)]
pub struct Lines {
    name: String,
    writer: blocking::Writer,
    /// The file, when it is one.
    path: Option<std::path::PathBuf>,
}

impl Lines {
    pub fn stdout() -> io::Result<Lines> {
        Ok(Lines {
            name: "standard output".to_owned(),
            writer: blocking::Writer::new("<stdout>", io::stdout())?,
            path: None,
        })
    }

    /// A file, created or truncated.
    pub fn create(path: &Path) -> io::Result<Lines> {
        fs_err::File::create(path)?;
        Self::append(path)
    }

    /// A file, appended to (created when missing): a log that others follow across runs.
    pub fn append(path: &Path) -> io::Result<Lines> {
        let file = fs_err::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Self::file(path, file.into_parts().0)
    }

    fn file(path: &Path, file: std::fs::File) -> io::Result<Lines> {
        let name = path.display().to_string();
        Ok(Lines {
            writer: blocking::Writer::new(&name, file)?,
            name,
            path: Some(path.to_owned()),
        })
    }
}

impl Sink for Lines {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn write(&mut self, lines: Vec<u8>) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(self.writer.write(lines))
    }

    fn finish(&mut self) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(self.writer.finish())
    }

    fn reopen(&mut self) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(async move {
            let Some(path) = self.path.clone() else {
                return Ok(());
            };
            self.writer.finish().await?;
            *self = Lines::append(&path)?;
            Ok(())
        })
    }
}

/// Lines kept in memory, shared with whoever holds a clone.
#[derive(Debug, Clone, Default)]
pub struct Memory {
    lines: Arc<Mutex<Vec<u8>>>,
}

impl Memory {
    /// Everything written so far.
    pub fn contents(&self) -> Vec<u8> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Sink for Memory {
    fn name(&self) -> String {
        "<memory>".to_owned()
    }

    fn write(&mut self, lines: Vec<u8>) -> BoxFuture<'_, io::Result<()>> {
        let written = self
            .lines
            .lock()
            .map(|mut l| l.extend_from_slice(&lines))
            .map_err(|_| io::Error::other("the memory sink is poisoned"));
        Box::pin(std::future::ready(written))
    }

    fn finish(&mut self) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Lines as syslog messages (RFC 5424) over TCP, octet-counted (RFC 6587): one message per line,
/// facility local0, its severity from the alert's. A lost connection is opened again and the
/// batch sent again, five times at most, waiting longer each time; then the write fails.
#[derive(Debug)]
pub struct Syslog {
    addr: std::net::SocketAddr,
    stream: Option<tokio::net::TcpStream>,
    host: String,
}

impl Syslog {
    pub fn new(addr: std::net::SocketAddr) -> Syslog {
        let host = fs_err::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty() && h.is_ascii() && !h.contains(' '))
            .unwrap_or_else(|| "-".to_owned());
        Syslog {
            addr,
            stream: None,
            host,
        }
    }

    /// The octet-counted frames of a batch of lines.
    fn frames(&self, lines: &[u8]) -> Vec<u8> {
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
            out.extend_from_slice(format!("{} ", head.len() + line.len()).as_bytes());
            out.extend_from_slice(head.as_bytes());
            out.extend_from_slice(line);
        }
        out
    }

    async fn send(&mut self, frames: &[u8]) -> io::Result<()> {
        use tokio::io::AsyncWriteExt as _;
        let mut wait = std::time::Duration::from_millis(100);
        let mut tries = 0;
        loop {
            let sent = async {
                if self.stream.is_none() {
                    self.stream = Some(tokio::net::TcpStream::connect(self.addr).await?);
                }
                let stream = self.stream.as_mut().expect("connected just now");
                stream.write_all(frames).await?;
                stream.flush().await
            }
            .await;
            match sent {
                Ok(()) => return Ok(()),
                Err(e) if tries < 5 => {
                    tracing::warn!("syslog {}: {e}; sending again in {wait:?}", self.addr);
                    self.stream = None;
                    tries += 1;
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The syslog severity of an alert line: from its severity where the alert formats put it.
fn severity(line: &[u8]) -> u8 {
    let alert: serde_json::Value = serde_json::from_slice(line).unwrap_or_default();
    let name = [
        &alert["severity"],
        &alert["oddity"]["severity"],
        &alert["unmapped"]["oddity"]["severity"],
        &alert["event"]["severity"],
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

impl Sink for Syslog {
    fn name(&self) -> String {
        format!("syslog+tcp://{}", self.addr)
    }

    fn write(&mut self, lines: Vec<u8>) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(async move {
            let frames = self.frames(&lines);
            self.send(&frames).await
        })
    }

    fn finish(&mut self) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(async move {
            if let Some(mut stream) = self.stream.take() {
                use tokio::io::AsyncWriteExt as _;
                stream.shutdown().await?;
            }
            Ok(())
        })
    }
}
