//! The state file: the plugin's snapshot bytes on disk, replaced atomically.
//!
//! A save writes a temporary file beside the target, fsyncs it, renames it over the target and
//! fsyncs the directory, so a crash or a full disk at any moment leaves either the previous
//! snapshot or the new one, never a mix. The bytes themselves are versioned and checksummed by
//! the engine; this file only moves them.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Where the snapshot lives.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    pub fn new(path: PathBuf) -> StateFile {
        StateFile { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved snapshot, or `None` when there is no file yet.
    pub fn load(&self) -> std::io::Result<Option<Vec<u8>>> {
        match fs_err::read(&self.path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces the snapshot with `bytes`, atomically.
    pub fn save(&self, bytes: &[u8]) -> std::io::Result<()> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "state".into());
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let result = (|| {
            let mut f = fs_err::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            drop(f);
            fs_err::rename(&tmp, &self.path)?;
            // The rename is durable once the directory is.
            if let Ok(d) = std::fs::File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_replaces_and_load_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = StateFile::new(dir.path().join("s.bin"));
        assert_eq!(state.load().expect("load"), None);
        state.save(b"one").expect("save");
        state.save(b"two").expect("save");
        assert_eq!(
            state.load().expect("load").as_deref(),
            Some(b"two".as_slice())
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    }
}
