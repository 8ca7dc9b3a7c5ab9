//! Checkpoints: how many events of each input file the saved state has learned, so that a run
//! over the same files learns nothing twice and a grown file continues where it stopped.
//!
//! A file is known by its identity, which survives a rename (logrotate, `mv`): its device and
//! inode, with a hash of its first bytes to tell a new file that reuses the inode (or a file
//! rewritten in place) from the one that was read. A checkpoint resumes a file only when the
//! file still starts with the same bytes and is at least as long as it was; otherwise the file
//! is read from its start, with a warning naming why.
//!
//! Checkpoints are saved with the snapshot, in the same state file ([`crate::state`]), so the
//! two always agree: the events a checkpoint counts are the events the snapshot learned.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Bytes of a file's start that identify its contents.
const HEAD: u64 = 4096;

/// What a file is, read when it is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    /// Bytes hashed: the first [`HEAD`], or the whole file when shorter.
    pub head_len: u64,
    pub head: u64,
}

impl Identity {
    /// Reads `path`'s identity; `None` for what is not a regular file (a FIFO, a device).
    pub fn of(path: &Path) -> std::io::Result<Option<Identity>> {
        let meta = fs_err::metadata(path)?;
        if !meta.is_file() {
            return Ok(None);
        }
        let (dev, ino) = dev_ino(&meta);
        let (head_len, head) = head(path, HEAD)?;
        Ok(Some(Identity {
            dev,
            ino,
            size: meta.len(),
            head_len,
            head,
        }))
    }

    /// The key of its checkpoint.
    pub fn key(&self) -> String {
        format!("{}:{}", self.dev, self.ino)
    }
}

/// How many of the first `len` bytes of `path` there are, and their hash.
fn head(path: &Path, len: u64) -> std::io::Result<(u64, u64)> {
    let mut bytes = Vec::with_capacity(len as usize);
    fs_err::File::open(path)?
        .take(len)
        .read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64, xxhash_rust::xxh3::xxh3_64(&bytes)))
}

/// A file's device and inode.
#[cfg(unix)]
pub fn dev_ino(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt as _;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
pub fn dev_ino(_: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

/// What the saved state learned of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The file's name when it was last read (for messages).
    pub path: String,
    pub size: u64,
    pub head_len: u64,
    pub head: u64,
    /// Events of the file learned, from its start.
    pub events: u64,
}

/// Every file's checkpoint, by identity key.
pub type Checkpoints = BTreeMap<String, Checkpoint>;

/// Where to start reading a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// Never read: from the start.
    Fresh,
    /// After the first `n` events, which the state learned.
    After(u64),
    /// Read before, but it changed (why): from the start.
    Changed(String),
}

/// Where to start reading `path`, whose identity is `id`, given the saved checkpoints.
pub fn resume(checkpoints: &Checkpoints, path: &Path, id: &Identity) -> Resume {
    let Some(c) = checkpoints.get(&id.key()) else {
        return Resume::Fresh;
    };
    if id.size < c.size {
        return Resume::Changed(format!(
            "it is shorter than when it was read ({} bytes, was {}: truncated or replaced)",
            id.size, c.size
        ));
    }
    let same_start = if c.head_len == id.head_len {
        id.head == c.head
    } else {
        head(path, c.head_len).is_ok_and(|h| h == (c.head_len, c.head))
    };
    if !same_start {
        return Resume::Changed(format!(
            "it no longer starts as {} did (rewritten, or a new file in its place)",
            c.path
        ));
    }
    Resume::After(c.events)
}

/// A checkpoint for a file of identity `id` named `path`, `events` events learned.
pub fn checkpoint(path: &Path, id: &Identity, events: u64) -> Checkpoint {
    Checkpoint {
        path: path.display().to_string(),
        size: id.size,
        head_len: id.head_len,
        head: id.head,
        events,
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's own files: the messages need no path
mod tests {
    use super::*;

    fn id(path: &Path) -> Identity {
        Identity::of(path).expect("read").expect("a file")
    }

    #[test]
    fn a_file_resumes_when_it_grew_and_not_when_it_changed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.jsonl");
        std::fs::write(&path, "{\"a\":1}\n{\"a\":2}\n").expect("write");
        let first = id(&path);
        let mut saved = Checkpoints::new();
        assert_eq!(resume(&saved, &path, &first), Resume::Fresh);
        saved.insert(first.key(), checkpoint(&path, &first, 2));
        assert_eq!(resume(&saved, &path, &first), Resume::After(2));

        // Appended to: the same start, longer.
        let mut text = std::fs::read(&path).expect("read");
        text.extend_from_slice(b"{\"a\":3}\n");
        std::fs::write(&path, &text).expect("write");
        assert_eq!(resume(&saved, &path, &id(&path)), Resume::After(2));

        // Renamed: the same identity.
        let moved = dir.path().join("a.jsonl.1");
        std::fs::rename(&path, &moved).expect("rename");
        assert_eq!(resume(&saved, &moved, &id(&moved)), Resume::After(2));

        // Rewritten in place with other contents, and truncated.
        std::fs::write(&moved, "{\"b\":1}\n{\"b\":2}\n{\"b\":3}\n").expect("write");
        assert!(matches!(
            resume(&saved, &moved, &id(&moved)),
            Resume::Changed(_)
        ));
        std::fs::write(&moved, "{\"a\":1}\n").expect("write");
        assert!(matches!(
            resume(&saved, &moved, &id(&moved)),
            Resume::Changed(_)
        ));
    }

    #[test]
    fn a_long_file_is_known_by_its_first_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.jsonl");
        let line = format!("{{\"pad\":\"{}\"}}\n", "x".repeat(100));
        std::fs::write(&path, line.repeat(100)).expect("write");
        let first = id(&path);
        assert_eq!(first.head_len, HEAD);
        let mut saved = Checkpoints::new();
        saved.insert(first.key(), checkpoint(&path, &first, 100));
        let mut changed = line.repeat(100).into_bytes();
        changed[10] = b'y';
        std::fs::write(&path, &changed).expect("write");
        assert!(matches!(
            resume(&saved, &path, &id(&path)),
            Resume::Changed(_)
        ));
    }
}
