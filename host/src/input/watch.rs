//! Following a directory (`--follow DIR`): the log files it holds, in name order, then each
//! file that comes into it, once, whole.
//!
//! The directory is walked as [`super::expand`] walks it (recursively, in name order, log file
//! names only, no hidden entries, no `CloudTrail-Digest` or `CloudTrail-Insight` folders) at
//! the start, then every [`POLL`], or after [`IDLE`] times as long as the last walk took when
//! that is longer (a directory of very many files is walked less often rather than taking
//! more than a tenth of a core). A file is taken when its path was not taken before in this
//! run, it is not empty, and its size and modification time were the same at the walk
//! before: a file still being written (a gzip file copied in place) is not read half. A
//! syncer writes under a temporary name and renames into place (`aws s3 sync`: `NAME.` and 8
//! random characters; rclone: `.partial`; rsync: `.NAME.XXXXXX`; `.tmp`, `.part`,
//! `.crdownload`): such a name is not a log file name, or is hidden, and is never taken.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Batch, InputError, ReadOptions, Stream, is_log_file, skipped_entry, walk};

/// How often a followed directory is walked for new files, at the most.
pub const POLL: Duration = Duration::from_millis(250);

/// After a walk, the watch waits at least this many times as long as the walk took.
const IDLE: u32 = 9;

/// A directory followed: the files to read, as they come.
#[derive(Debug)]
pub struct Watch {
    scan: Scan,
    /// The wait before the next walk (none before the first).
    pause: Option<Duration>,
}

/// What the walks of a directory found.
#[derive(Debug, Default)]
struct Scan {
    dir: PathBuf,
    /// The files taken, by path.
    taken: HashSet<PathBuf>,
    /// Files of the last walk not taken yet, with their size and modification time then.
    pending: HashMap<PathBuf, Seen>,
    /// Errors of the walks already reported (each is reported once).
    reported: HashSet<String>,
}

/// A file's size and modification time at a walk.
type Seen = (u64, Option<SystemTime>);

impl Watch {
    pub fn new(dir: PathBuf) -> Watch {
        Watch {
            scan: Scan {
                dir,
                ..Scan::default()
            },
            pause: None,
        }
    }

    /// Waits for the next files ready to read, in name order (walking on the blocking pool);
    /// `None` once the run is cancelled.
    pub async fn next(&mut self, cancel: &CancellationToken) -> Option<Vec<PathBuf>> {
        loop {
            if let Some(pause) = self.pause {
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => return None,
                    () = tokio::time::sleep(pause) => {}
                }
            }
            let mut scan = std::mem::take(&mut self.scan);
            let start = Instant::now();
            let (scan, ready) = tokio::task::spawn_blocking(move || {
                let ready = scan.walk();
                (scan, ready)
            })
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            self.scan = scan;
            self.pause = Some(POLL.max(start.elapsed() * IDLE));
            if cancel.is_cancelled() {
                return None;
            }
            if !ready.is_empty() {
                return Some(ready);
            }
        }
    }
}

impl Scan {
    /// Walks the directory; the files ready to read, in name order.
    fn walk(&mut self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for entry in walk(&self.dir) {
            match entry {
                Ok(entry) if self.taken.contains(entry.path()) => {}
                // A file gone since it was listed is not there.
                Ok(entry) => found.extend(entry.metadata().ok().map(|meta| {
                    let seen = (meta.len(), meta.modified().ok());
                    (entry.into_path(), seen)
                })),
                Err(e) => self.report(&e),
            }
        }
        self.ready(found)
    }

    /// Of the files a walk found, those ready to read: not empty, and as they were at the walk
    /// before; the others wait for the next walk.
    fn ready(&mut self, found: Vec<(PathBuf, Seen)>) -> Vec<PathBuf> {
        let mut pending = HashMap::with_capacity(found.len());
        let mut ready = Vec::new();
        for (path, seen) in found {
            if seen.0 > 0 && self.pending.get(&path) == Some(&seen) {
                self.taken.insert(path.clone());
                ready.push(path);
            } else {
                pending.insert(path, seen);
            }
        }
        self.pending = pending;
        ready
    }

    /// Reports an error of a walk, once.
    fn report(&mut self, e: &walkdir::Error) {
        let message = e.to_string();
        if self.reported.insert(message.clone()) {
            tracing::warn!(
                "{}: {message}; watching the rest of the directory",
                self.dir.display()
            );
        }
    }
}

/// Whether following `dir` would read `path` (a file the run writes must not be read).
pub fn would_read(dir: &Path, path: &Path) -> bool {
    let (Ok(dir), Some(path)) = (fs_err::canonicalize(dir), resolved(path)) else {
        return false;
    };
    let Ok(inside) = path.strip_prefix(&dir) else {
        return false;
    };
    is_log_file(&path)
        && inside.components().all(|c| match c {
            Component::Normal(name) => !skipped_entry(&name.to_string_lossy()),
            _ => false,
        })
}

/// `path` made absolute with its links resolved, whether the file exists yet or not.
fn resolved(path: &Path) -> Option<PathBuf> {
    if let Ok(p) = fs_err::canonicalize(path) {
        return Some(p);
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Some(fs_err::canonicalize(parent).ok()?.join(path.file_name()?))
}

/// Reads every file the watch of `dir` takes as the one source `index` (each file numbered
/// from 1), until the run is cancelled; the events read. A file that fails is reported, and
/// the next one is read.
pub(super) async fn read_as_one(
    dir: &Path,
    index: u32,
    opts: ReadOptions,
    tx: &mpsc::Sender<Batch>,
    cancel: &CancellationToken,
) -> Result<u64, InputError> {
    let mut watch = Watch::new(dir.to_owned());
    let mut events = 0;
    while let Some(files) = watch.next(cancel).await {
        for file in files {
            match super::read_stream(&Stream::File(file), index, opts, tx, cancel).await {
                Ok(n) => events += n,
                Err(e) => {
                    events += e.events;
                    tracing::error!("{e}; going on with the next file");
                }
            }
        }
    }
    Ok(events)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's own files: the messages need no path
mod tests {
    use super::*;

    fn names(dir: &Path, files: &[PathBuf]) -> Vec<String> {
        files
            .iter()
            .map(|f| {
                let rel = f.strip_prefix(dir).expect("inside");
                rel.display().to_string()
            })
            .collect()
    }

    #[test]
    fn a_file_is_taken_once_when_it_was_the_same_at_two_walks() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        std::fs::create_dir_all(dir.join("2024/01")).expect("mkdir");
        std::fs::write(dir.join("2024/01/b.json.gz"), "x").expect("write");
        std::fs::write(dir.join("2024/01/a.json"), "x").expect("write");
        std::fs::write(dir.join("empty.jsonl"), "").expect("write");
        std::fs::write(dir.join("c.json.gz.a1B2c3D4"), "x").expect("write");
        std::fs::write(dir.join(".c.json.XXXXXX"), "x").expect("write");
        std::fs::write(dir.join("d.json.partial"), "x").expect("write");
        let mut scan = Scan {
            dir: dir.to_owned(),
            ..Scan::default()
        };
        assert!(scan.walk().is_empty(), "seen once: not yet");
        let ready = scan.walk();
        assert_eq!(
            names(dir, &ready),
            ["2024/01/a.json", "2024/01/b.json.gz"],
            "in name order; no empty file, no temporary name"
        );
        assert!(scan.walk().is_empty(), "taken once");

        std::fs::write(dir.join("e.jsonl"), "{}\n").expect("write");
        assert!(scan.walk().is_empty());
        std::fs::write(dir.join("e.jsonl"), "{}\n{}\n").expect("grow");
        assert!(scan.walk().is_empty(), "still growing");
        std::fs::rename(dir.join("c.json.gz.a1B2c3D4"), dir.join("c.json.gz")).expect("mv");
        std::fs::write(dir.join("empty.jsonl"), "{}\n").expect("write");
        assert_eq!(
            names(dir, &scan.walk()),
            ["e.jsonl"],
            "grown, then the same"
        );
        assert_eq!(names(dir, &scan.walk()), ["c.json.gz", "empty.jsonl"]);
    }

    #[tokio::test]
    async fn read_as_one_source_the_files_are_numbered_each_from_1() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_owned();
        std::fs::write(dir.join("a.jsonl"), "{\"a\":1}\n{\"a\":2}\n").expect("write");
        let (tx, mut rx) = mpsc::channel(4);
        let cancel = CancellationToken::new();
        let opts = ReadOptions {
            max_line: 1024,
            batch: 64,
        };
        let (d, stop) = (dir.clone(), cancel.clone());
        let reading = tokio::spawn(async move { read_as_one(&d, 7, opts, &tx, &stop).await });
        let numbers = |batch: Batch| -> Vec<(u32, u64)> {
            batch.iter().map(|i| (i.source, i.number)).collect()
        };
        assert_eq!(numbers(rx.recv().await.expect("a")), [(7, 1), (7, 2)]);
        std::fs::write(dir.join("b.jsonl"), "{\"b\":1}\n").expect("write");
        assert_eq!(numbers(rx.recv().await.expect("b")), [(7, 1)]);
        cancel.cancel();
        assert_eq!(reading.await.expect("join").expect("read"), 3);
    }

    #[test]
    fn a_written_file_in_the_directory_would_be_read() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("logs");
        std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
        assert!(
            would_read(&dir, &dir.join("sub/out.jsonl")),
            "not there yet"
        );
        assert!(would_read(&dir, &dir.join("sub/../out.json.gz")));
        assert!(!would_read(&dir, &dir.join("state.snap")), "not a log file");
        assert!(!would_read(&dir, &dir.join(".hidden/out.jsonl")));
        assert!(!would_read(&dir, &tmp.path().join("out.jsonl")), "outside");
    }
}
