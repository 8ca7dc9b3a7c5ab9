//! The state file: the plugin's snapshot bytes and the input checkpoints
//! ([`crate::checkpoint`]) on disk, together, replaced atomically.
//!
//! Layout: the magic `ODDITYST`, a version byte (1), the checkpoints as JSON (a u32 length, a
//! u64 xxh3 of the JSON, all little-endian, then the JSON), then the snapshot's bytes. A file
//! without the magic is a bare snapshot (state files of builds before checkpoints): it restores,
//! with no checkpoints.
//!
//! A save writes a temporary file beside the target (`.NAME.tmp`), fsyncs it, renames it over
//! the target and fsyncs the directory, so a crash (`kill -9`) or a full disk at any moment
//! leaves either the previous snapshot or the new one, never a mix; a failed save removes its
//! temporary file and leaves the previous snapshot as it was. One process at a time uses a
//! state file: [`StateFile::load`] takes an exclusive lock on `.NAME.lock` (released when the
//! process ends, however it ends), so a second run on the same file refuses to start instead
//! of losing one run's learning. The bytes themselves are versioned and checksummed by the
//! engine; this file only moves them.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::checkpoint::Checkpoints;

const MAGIC: &[u8; 8] = b"ODDITYST";
const VERSION: u8 = 1;

/// What a state file holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Saved {
    pub snapshot: Vec<u8>,
    pub checkpoints: Checkpoints,
}

/// Why a state file's checkpoints could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("written by a newer oddity (state file version {0}, this one reads 1)")]
    Version(u8),
    #[error("truncated (its checkpoints end past the file)")]
    Truncated,
    #[error("its checkpoints do not match their checksum")]
    Checksum,
    #[error("its checkpoints are not valid: {0}")]
    Json(#[from] serde_json::Error),
}

impl Saved {
    pub fn encode(&self) -> Vec<u8> {
        let json = serde_json::to_vec(&self.checkpoints).unwrap_or_else(|_| b"{}".to_vec());
        let mut out = Vec::with_capacity(21 + json.len() + self.snapshot.len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&(json.len() as u32).to_le_bytes());
        out.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(&json).to_le_bytes());
        out.extend_from_slice(&json);
        out.extend_from_slice(&self.snapshot);
        out
    }

    pub fn decode(bytes: Vec<u8>) -> Result<Saved, StateError> {
        let Some(rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
            return Ok(Saved {
                snapshot: bytes,
                checkpoints: Checkpoints::new(),
            });
        };
        let (&version, rest) = rest.split_first().ok_or(StateError::Truncated)?;
        if version != VERSION {
            return Err(StateError::Version(version));
        }
        let (len, rest) = rest.split_at_checked(4).ok_or(StateError::Truncated)?;
        let (sum, rest) = rest.split_at_checked(8).ok_or(StateError::Truncated)?;
        let len = u32::from_le_bytes(len.try_into().map_err(|_| StateError::Truncated)?);
        let sum = u64::from_le_bytes(sum.try_into().map_err(|_| StateError::Truncated)?);
        let (json, snapshot) = rest
            .split_at_checked(len as usize)
            .ok_or(StateError::Truncated)?;
        if xxhash_rust::xxh3::xxh3_64(json) != sum {
            return Err(StateError::Checksum);
        }
        Ok(Saved {
            checkpoints: serde_json::from_slice(json)?,
            snapshot: snapshot.to_vec(),
        })
    }
}

/// Where the snapshot lives.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    /// The lock held while this process uses the file.
    lock: Option<std::fs::File>,
}

impl StateFile {
    pub fn new(path: PathBuf) -> StateFile {
        StateFile { path, lock: None }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `.NAME.suffix` beside the state file.
    fn sibling(&self, suffix: &str) -> PathBuf {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "state".into());
        dir.join(format!(".{name}.{suffix}"))
    }

    /// Takes the lock on the state file (once), and removes a temporary file that a run killed
    /// while saving left behind.
    fn lock(&mut self) -> std::io::Result<()> {
        if self.lock.is_some() {
            return Ok(());
        }
        let path = self.sibling("lock");
        let file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?
            .into_parts()
            .0;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(std::io::Error::other(format!(
                    "in use by another oddity process (it holds the lock {})",
                    path.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("locking {}: {e}", path.display()),
                ));
            }
        }
        let _ = fs_err::remove_file(self.sibling("tmp"));
        self.lock = Some(file);
        Ok(())
    }

    /// Locks the state file for this process and reads the saved snapshot, or `None` when
    /// there is no file yet.
    pub fn load(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        self.lock()?;
        match fs_err::read(&self.path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces the snapshot with `bytes`, atomically.
    pub fn save(&self, bytes: &[u8]) -> std::io::Result<()> {
        let tmp = self.sibling("tmp");
        let result = (|| {
            let mut f = fs_err::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            drop(f);
            fs_err::rename(&tmp, &self.path)?;
            // The rename is durable once the directory is.
            if let Some(dir) = tmp.parent()
                && let Ok(d) = fs_err::File::open(dir)
            {
                let _ = d.sync_all();
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = fs_err::remove_file(&tmp);
        }
        result
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's own files: the messages need no path
mod tests {
    use super::*;

    #[test]
    fn save_replaces_and_load_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut state = StateFile::new(dir.path().join("s.bin"));
        assert_eq!(state.load().expect("load"), None);
        state.save(b"one").expect("save");
        state.save(b"two").expect("save");
        assert_eq!(
            state.load().expect("load").as_deref(),
            Some(b"two".as_slice())
        );
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [".s.bin.lock", "s.bin"],
            "no temporary file left behind"
        );
    }

    #[test]
    fn one_process_at_a_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut first = StateFile::new(dir.path().join("s.bin"));
        first.load().expect("load");
        let mut second = StateFile::new(dir.path().join("s.bin"));
        let e = second.load().expect_err("locked");
        assert!(e.to_string().contains("in use"), "{e}");
        drop(first);
        second.load().expect("free again");
    }

    #[test]
    fn a_failed_save_keeps_the_previous_snapshot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut state = StateFile::new(dir.path().join("s.bin"));
        state.load().expect("load");
        state.save(b"good").expect("save");
        // The temporary file cannot be created: as on a full disk, the save fails before the
        // rename.
        std::fs::create_dir(dir.path().join(".s.bin.tmp")).expect("mkdir");
        assert!(state.save(b"lost").is_err());
        assert_eq!(std::fs::read(state.path()).expect("read"), b"good");
    }

    #[test]
    fn a_temporary_file_left_by_a_killed_run_is_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(".s.bin.tmp"), b"half a snap").expect("write");
        let mut state = StateFile::new(dir.path().join("s.bin"));
        assert_eq!(state.load().expect("load"), None);
        assert!(!dir.path().join(".s.bin.tmp").exists());
    }
}
