//! Following a file as it grows, across rotation (`tail -F`): reads return what is there, and
//! at the end wait for more instead of ending.
//!
//! At the end of the file, [`Tail`] checks, every [`POLL`]: whether the file was truncated in
//! place (copytruncate: read again from its start), and whether its name now names another file
//! (renamed away, a new one created: the new one is read from its start, once the old one is
//! read to its end). It ends when the run is cancelled.

use std::io::{self, Read, Seek as _, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::checkpoint::dev_ino;

/// How often the end of a followed file is checked for more.
pub const POLL: Duration = Duration::from_millis(25);

/// A file followed by name.
#[derive(Debug)]
pub struct Tail {
    path: PathBuf,
    file: fs_err::File,
    id: (u64, u64),
    cancel: CancellationToken,
}

impl Tail {
    pub fn open(path: PathBuf, cancel: CancellationToken) -> io::Result<Tail> {
        let file = fs_err::File::open(&path)?;
        let id = dev_ino(&file.metadata()?);
        Ok(Tail {
            path,
            file,
            id,
            cancel,
        })
    }

    /// The file the name now names, when it is another one than the one being read.
    fn replaced(&self) -> Option<fs_err::File> {
        let meta = fs_err::metadata(&self.path).ok()?;
        if dev_ino(&meta) == self.id {
            return None;
        }
        fs_err::File::open(&self.path).ok()
    }

    /// Whether the file is shorter than where reading stands (truncated in place).
    fn truncated(&mut self) -> io::Result<bool> {
        let len = self.file.metadata()?.len();
        Ok(len < self.file.stream_position()?)
    }
}

impl Read for Tail {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.file.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            if self.cancel.is_cancelled() {
                return Ok(0);
            }
            if let Some(next) = self.replaced() {
                tracing::info!(
                    "{}: rotated, reading the new file from its start",
                    self.path.display()
                );
                self.id = dev_ino(&next.metadata()?);
                self.file = next;
                continue;
            }
            if self.truncated()? {
                tracing::info!(
                    "{}: truncated, reading it from its start",
                    self.path.display()
                );
                self.file.seek(SeekFrom::Start(0))?;
                continue;
            }
            std::thread::sleep(POLL);
        }
    }
}
