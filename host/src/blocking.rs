//! Standard input and output, and files, on threads of their own.
//!
//! tokio's `stdin`, `stdout` and `fs::File` hand every read and write to its blocking pool,
//! whose idle threads and wake-ups cost about one futex call per two events at 200,000 events
//! a second on two cores (measured with `strace -f -c`). A thread that owns the file and does
//! plain blocking I/O in 1 MiB pieces, talking to the async side over a short channel, costs
//! a fraction of that.

use std::io::{self, Read, Write};
use std::thread::JoinHandle;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncRead;
use tokio::sync::mpsc;
use tokio_util::io::StreamReader;

/// Bytes per read.
const CHUNK: usize = 1 << 20;

/// `read` as an async reader: a thread reads it in pieces of up to 1 MiB, two pieces ahead.
/// The thread ends at the end of input, after an error (which the reader then returns), or
/// when the reader is dropped (after its current read).
pub fn reader(
    name: &str,
    mut read: impl Read + Send + 'static,
) -> io::Result<Box<dyn AsyncRead + Unpin + Send>> {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(2);
    std::thread::Builder::new()
        .name(format!("oddity-read {name}"))
        .spawn(move || {
            loop {
                let mut buf = BytesMut::zeroed(CHUNK);
                let piece = match read.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        buf.truncate(n);
                        Ok(buf.freeze())
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => Err(e),
                };
                let failed = piece.is_err();
                if tx.blocking_send(piece).is_err() || failed {
                    break;
                }
            }
        })?;
    let pieces = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|piece| (piece, rx))
    });
    Ok(Box::new(StreamReader::new(Box::pin(pieces))))
}

/// An output on its own thread: [`Writer::write`] hands over whole buffers; the thread writes
/// them through a 1 MiB buffer and flushes whenever nothing more is waiting, so a live stream's
/// lines go out as soon as they are scored.
#[derive(Debug)]
pub struct Writer {
    tx: Option<mpsc::Sender<Vec<u8>>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Writer {
    pub fn new(name: &str, write: impl Write + Send + 'static) -> io::Result<Writer> {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(4);
        let thread = std::thread::Builder::new()
            .name(format!("oddity-write {name}"))
            .spawn(move || {
                let mut w = io::BufWriter::with_capacity(CHUNK, write);
                while let Some(buf) = rx.blocking_recv() {
                    // A whole batch's output goes straight out, not copied into the buffer
                    // first; small pieces are gathered.
                    if buf.len() >= CHUNK / 8 {
                        w.flush()?;
                        w.get_mut().write_all(&buf)?;
                    } else {
                        w.write_all(&buf)?;
                    }
                    if rx.is_empty() {
                        w.flush()?;
                    }
                }
                w.flush()
            })?;
        Ok(Writer {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Hands `buf` to the thread. An error is the thread's (such as a closed pipe): it wrote
    /// nothing more after it.
    pub async fn write(&mut self, buf: Vec<u8>) -> io::Result<()> {
        let sent = match &self.tx {
            Some(tx) => tx.send(buf).await.is_ok(),
            None => false,
        };
        if sent { Ok(()) } else { self.finish().await }
    }

    /// Waits until everything handed over is written and flushed.
    pub async fn finish(&mut self) -> io::Result<()> {
        self.tx = None;
        let Some(thread) = self.thread.take() else {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the output is closed",
            ));
        };
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(io::Error::other)?
            .unwrap_or_else(|_| Err(io::Error::other("the output thread panicked")))
    }
}
