//! A bounded queue of lines on disk, for at-least-once delivery across crashes and restarts.
//!
//! The lines live in segment files (`00000000000000000001.q`, ...) appended to and synced
//! before [`Queue::push`] returns; a `head` file (replaced atomically) says where the first line
//! not yet delivered starts. [`Queue::pop`] moves the head past what was delivered and deletes
//! the segments left behind. A crash in the middle of a push leaves a torn last line, cut off
//! when the queue is opened again (it was never acknowledged). Lines are one JSON value each, so
//! a queue can be read with `cat`.

use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use fs_err as fs;

/// A segment is closed once it holds this much.
const SEGMENT_BYTES: u64 = 4 << 20;

/// What happens when the queue holds its maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// The writer waits for deliveries (scoring stops meanwhile); nothing is lost.
    #[default]
    Block,
    /// The oldest segment is dropped (its lines counted) to make room.
    DropOldest,
}

/// Where the next line to deliver starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    segment: u64,
    offset: u64,
}

/// Lines taken from the head of the queue, for one delivery.
#[derive(Debug, Default)]
pub struct Peeked {
    pub lines: Vec<u8>,
    pub count: usize,
    end: Option<Position>,
}

/// The queue in `dir`.
#[derive(Debug)]
pub struct Queue {
    dir: PathBuf,
    head: Position,
    /// The segment appended to, and its length.
    tail: Position,
    /// Bytes of all segments from the head's.
    bytes: u64,
    max_bytes: u64,
    dropped: u64,
}

impl Queue {
    /// Opens (or creates) the queue in `dir`, holding at most `max_bytes`.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Queue> {
        fs::create_dir_all(dir)?;
        let mut segments = segments(dir)?;
        let head = read_head(dir)?.unwrap_or(Position {
            segment: segments.first().copied().unwrap_or(1),
            offset: 0,
        });
        for &s in segments.iter().filter(|&&s| s < head.segment) {
            fs::remove_file(segment_path(dir, s))?;
        }
        segments.retain(|&s| s >= head.segment);
        let tail_segment = segments.last().copied().unwrap_or(head.segment);
        let tail_len = cut_torn_line(&segment_path(dir, tail_segment))?;
        let mut queue = Queue {
            dir: dir.to_owned(),
            head,
            tail: Position {
                segment: tail_segment,
                offset: tail_len,
            },
            bytes: 0,
            max_bytes,
            dropped: 0,
        };
        if head.segment == tail_segment && head.offset > tail_len {
            queue.head.offset = tail_len;
        }
        queue.bytes = queue.measure()?;
        Ok(queue)
    }

    /// Lines not yet delivered, in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.head == self.tail
    }

    /// Lines dropped to make room, since the queue was opened.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Whether `more` bytes fit.
    pub fn fits(&self, more: u64) -> bool {
        self.bytes + more <= self.max_bytes || self.is_empty()
    }

    /// Appends whole lines (each ending in a newline) and syncs them to disk.
    pub fn push(&mut self, lines: &[u8]) -> io::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        if self.tail.offset >= SEGMENT_BYTES {
            self.tail = Position {
                segment: self.tail.segment + 1,
                offset: 0,
            };
        }
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(segment_path(&self.dir, self.tail.segment))?;
        file.write_all(lines)?;
        file.sync_data()?;
        self.tail.offset += lines.len() as u64;
        self.bytes += lines.len() as u64;
        Ok(())
    }

    /// Drops the oldest segment to make room (the head's, unless it is the one appended to);
    /// returns how many lines went.
    pub fn drop_oldest(&mut self) -> io::Result<u64> {
        if self.head.segment == self.tail.segment {
            return Ok(0);
        }
        let path = segment_path(&self.dir, self.head.segment);
        let rest = read_from(&path, self.head.offset, u64::MAX)?;
        let lines = rest.iter().filter(|&&b| b == b'\n').count() as u64;
        self.advance(Position {
            segment: self.head.segment + 1,
            offset: 0,
        })?;
        self.dropped += lines;
        Ok(lines)
    }

    /// Up to `max_lines` lines (and about `max_bytes`) from the head, without removing them.
    pub fn peek(&self, max_lines: usize, max_bytes: usize) -> io::Result<Peeked> {
        let mut at = self.head;
        let mut peeked = Peeked::default();
        while peeked.count < max_lines && peeked.lines.len() < max_bytes && at != self.tail {
            let path = segment_path(&self.dir, at.segment);
            let chunk = read_from(&path, at.offset, max_bytes as u64)?;
            let mut taken = 0;
            for line in chunk.split_inclusive(|&b| b == b'\n') {
                let full = line.ends_with(b"\n");
                if !full || peeked.count == max_lines || peeked.lines.len() >= max_bytes {
                    break;
                }
                peeked.lines.extend_from_slice(line);
                peeked.count += 1;
                taken += line.len() as u64;
            }
            at.offset += taken;
            if at.segment < self.tail.segment && at.offset >= fs::metadata(&path)?.len() {
                at = Position {
                    segment: at.segment + 1,
                    offset: 0,
                };
            } else if taken == 0 {
                break;
            }
        }
        peeked.end = Some(at);
        Ok(peeked)
    }

    /// Removes what `peeked` took (it was delivered).
    pub fn pop(&mut self, peeked: &Peeked) -> io::Result<()> {
        match peeked.end {
            Some(end) if end != self.head => self.advance(end),
            _ => Ok(()),
        }
    }

    /// Moves the head to `to`, durably, and deletes the segments before it; an emptied queue
    /// starts a new segment (and keeps no file of lines).
    fn advance(&mut self, mut to: Position) -> io::Result<()> {
        if to == self.tail {
            to = Position {
                segment: self.tail.segment + 1,
                offset: 0,
            };
        }
        write_head(&self.dir, to)?;
        for s in self.head.segment..to.segment {
            match fs::remove_file(segment_path(&self.dir, s)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        self.head = to;
        if self.head.segment > self.tail.segment {
            self.tail = self.head;
        }
        self.bytes = self.measure()?;
        Ok(())
    }

    /// Bytes from the head to the tail.
    fn measure(&self) -> io::Result<u64> {
        let mut total = 0;
        for s in self.head.segment..=self.tail.segment {
            let len = match fs::metadata(segment_path(&self.dir, s)) {
                Ok(m) => m.len(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
                Err(e) => return Err(e),
            };
            total += len;
        }
        Ok(total.saturating_sub(self.head.offset))
    }
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:020}.q"))
}

/// The segment numbers in `dir`, in order.
fn segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name.strip_suffix(".q").and_then(|n| n.parse().ok()) {
            found.push(n);
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// Cuts a torn last line (one without its newline) off a segment; returns its length.
fn cut_torn_line(path: &Path) -> io::Result<u64> {
    let Ok(mut file) = fs::OpenOptions::new().read(true).write(true).open(path) else {
        return Ok(0);
    };
    let len = file.metadata()?.len();
    let mut keep = len;
    let mut buf = [0u8; 4096];
    while keep > 0 {
        let start = keep.saturating_sub(buf.len() as u64);
        let n = (keep - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            keep = start + i as u64 + 1;
            break;
        }
        keep = start;
    }
    if keep < len {
        tracing::warn!(
            "{}: cut off a line torn by a crash ({} bytes, never acknowledged)",
            path.display(),
            len - keep
        );
        file.set_len(keep)?;
        file.sync_data()?;
    }
    Ok(keep)
}

/// Up to `max` bytes of `path` from `offset` (to its end if shorter).
fn read_from(path: &Path, offset: u64, max: u64) -> io::Result<Vec<u8>> {
    let mut file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    file.seek(SeekFrom::Start(offset))?;
    let mut out = Vec::new();
    file.take(max).read_to_end(&mut out)?;
    Ok(out)
}

fn read_head(dir: &Path) -> io::Result<Option<Position>> {
    let text = match fs::read_to_string(dir.join("head")) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut parts = text.split_whitespace().map(str::parse::<u64>);
    match (parts.next(), parts.next()) {
        (Some(Ok(segment)), Some(Ok(offset))) => Ok(Some(Position { segment, offset })),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: not a queue head (\"SEGMENT OFFSET\")",
                dir.join("head").display()
            ),
        )),
    }
}

/// Replaces the head file atomically (a new file synced, renamed over, the directory synced).
fn write_head(dir: &Path, at: Position) -> io::Result<()> {
    let tmp = dir.join("head.tmp");
    let mut file = fs::File::create(&tmp)?;
    writeln!(file, "{} {}", at.segment, at.offset)?;
    file.sync_all()?;
    fs::rename(&tmp, dir.join("head"))?;
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(range: std::ops::Range<usize>) -> Vec<u8> {
        range
            .map(|i| format!("{{\"n\":{i}}}\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn lines_come_out_in_order_and_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut q = Queue::open(dir.path(), 1 << 30).expect("open");
        q.push(&lines(0..10)).expect("push");
        let first = q.peek(4, 1 << 20).expect("peek");
        assert_eq!(first.lines, lines(0..4));
        q.pop(&first).expect("pop");
        drop(q);
        let q = Queue::open(dir.path(), 1 << 30).expect("reopen");
        let rest = q.peek(100, 1 << 20).expect("peek");
        assert_eq!(rest.lines, lines(4..10));
        assert_eq!(rest.count, 6);
    }

    #[test]
    fn a_torn_last_line_is_cut_off() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut q = Queue::open(dir.path(), 1 << 30).expect("open");
        q.push(&lines(0..3)).expect("push");
        drop(q);
        let seg = segment_path(dir.path(), 1);
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(&seg)
            .expect("open");
        f.write_all(b"{\"torn\":").expect("write");
        let q = Queue::open(dir.path(), 1 << 30).expect("reopen");
        assert_eq!(q.peek(100, 1 << 20).expect("peek").lines, lines(0..3));
    }

    #[test]
    fn segments_roll_over_and_are_deleted_when_delivered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut q = Queue::open(dir.path(), 1 << 30).expect("open");
        let big = vec![b'x'; 1 << 20];
        let line = [&big[..], b"\n"].concat();
        for _ in 0..6 {
            q.push(&line).expect("push");
        }
        assert!(segments(dir.path()).expect("list").len() >= 2);
        loop {
            let p = q.peek(1000, 8 << 20).expect("peek");
            if p.count == 0 {
                break;
            }
            q.pop(&p).expect("pop");
        }
        assert!(q.is_empty());
        assert_eq!(q.bytes(), 0);
        assert_eq!(segments(dir.path()).expect("list").len(), 0);
    }

    #[test]
    fn dropping_the_oldest_counts_its_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut q = Queue::open(dir.path(), 1 << 30).expect("open");
        let big: Vec<u8> = (0..5000)
            .map(|i| format!("{{\"n\":{i},\"pad\":\"{}\"}}\n", "y".repeat(1000)))
            .collect::<String>()
            .into_bytes();
        q.push(&big).expect("push");
        q.push(&lines(0..2)).expect("push");
        assert_eq!(q.drop_oldest().expect("drop"), 5000);
        assert_eq!(q.dropped(), 5000);
        assert_eq!(q.peek(100, 1 << 20).expect("peek").lines, lines(0..2));
    }
}
