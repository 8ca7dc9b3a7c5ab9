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

/// The scored stream as syslog messages over TCP (`-o syslog+tcp://HOST:PORT`): sent at once,
/// a lost connection opened again five times at most (the stream is not queued on disk: its
/// events are scored again from the state's checkpoint after a crash).
#[derive(Debug)]
pub struct Syslog {
    sender: crate::delivery::SyslogSender,
}

impl Syslog {
    /// Messages to `addr`, shortened to `max_message` bytes if given (see [`crate::delivery`]).
    pub fn new(addr: std::net::SocketAddr, max_message: Option<usize>) -> Syslog {
        Syslog {
            sender: crate::delivery::SyslogSender::new(addr, max_message),
        }
    }
}

impl Sink for Syslog {
    fn name(&self) -> String {
        crate::delivery::Sender::name(&self.sender)
    }

    fn write(&mut self, lines: Vec<u8>) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(async move { self.sender.send_retrying(&lines, 5).await })
    }

    fn finish(&mut self) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(self.sender.close())
    }
}
