//! Input: standard input, files and directories, as batches of events.
//!
//! Every source is sniffed: gzip is decompressed (by its magic bytes, whatever the name), then
//! the text is one of
//! - a CloudTrail S3 delivery file `{"Records":[...]}` (or several concatenated): one event per
//!   record, streamed, so a large file is never held whole;
//! - a JSON array of records (as Stratus Red Team and `aws cloudtrail lookup-events` write);
//! - JSON lines (anything else): one event per line, framed by [`LineCodec`].
//!
//! Directories are walked recursively in name order, which for CloudTrail delivery keys is time
//! order. In a directory only log files are read (`.json`, `.jsonl`, `.ndjson`, `.log`, and those
//! with `.gz`); hidden entries, `CloudTrail-Digest` folders (integrity digests, not events) and
//! `CloudTrail-Insight` folders (Insights events: statistics about API call rates, not calls) are
//! skipped. Files named on the command line are always read. A source that fails midway (truncated gzip, vanished file)
//! keeps the events read so far, is reported with its name, and the next source is read. An
//! envelope or array that stops being JSON loses nothing (see [`crate::records`]), and is
//! reported.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use crate::codec::{Frame, LineCodec};
use crate::records::{Piece, Stop};

/// Where events come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Stdin,
    File(PathBuf),
}

impl Source {
    pub fn name(&self) -> String {
        match self {
            Source::Stdin => "<stdin>".to_owned(),
            Source::File(p) => p.display().to_string(),
        }
    }
}

/// One event (or a piece of an over-long line) and where it came from.
#[derive(Debug, Clone)]
pub struct Item {
    pub frame: Frame,
    /// Index into the source list.
    pub source: u32,
    /// 1-based line number (JSON lines) or record number (envelopes and arrays).
    pub number: u64,
}

pub type Batch = Vec<Item>;

/// Why a source could not be read (wholly or in part).
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {message} (after {events} events)")]
pub struct InputError {
    pub source_name: String,
    pub message: String,
    pub events: u64,
}

/// Lists the sources for the given paths: stdin for none or `-`, files as given, directories
/// walked in name order.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<Source>, String> {
    if paths.is_empty() {
        return Ok(vec![Source::Stdin]);
    }
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(Source::Stdin);
            continue;
        }
        // A path that cannot be read is read as a file anyway: it fails then, is reported with
        // its name, and the other inputs are still read (exit code 2).
        let Ok(meta) = std::fs::metadata(p) else {
            out.push(Source::File(p.clone()));
            continue;
        };
        if !meta.is_dir() {
            out.push(Source::File(p.clone()));
            continue;
        }
        let walker = walkdir::WalkDir::new(p)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| {
                let name = e.file_name().to_string_lossy();
                e.depth() == 0
                    || !(name.starts_with('.')
                        || name == "CloudTrail-Digest"
                        || name == "CloudTrail-Insight")
            });
        for entry in walker {
            let entry = entry.map_err(|e| format!("{}: {e}", p.display()))?;
            if entry.file_type().is_file() && is_log_file(entry.path()) {
                out.push(Source::File(entry.into_path()));
            }
        }
    }
    Ok(out)
}

/// Whether a file found in a directory is one to read.
fn is_log_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    [".json", ".jsonl", ".ndjson", ".log"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// How text is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Lines,
    /// Delivery envelopes or JSON arrays of records (see [`crate::records`]).
    Records,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const BOM: &[u8] = b"\xef\xbb\xbf";
const SNIFF: usize = 256;

type Reader = Box<dyn AsyncRead + Unpin + Send>;

/// Reads up to `SNIFF` bytes, or less once a whole first line that is more than a bracket has
/// come (a live stream of short events must not wait for a second one before the first is
/// scored; a pretty-printed envelope or array opens with a line of one bracket); returns them
/// and a reader that yields them again, then the rest.
async fn peek(mut r: Reader) -> std::io::Result<(Vec<u8>, Reader)> {
    let mut head = vec![0u8; SNIFF];
    let mut len = 0;
    while len < SNIFF {
        let n = r.read(&mut head[len..]).await?;
        if n == 0 {
            break;
        }
        len += n;
        if first_line_decides(&head[..len]) {
            break;
        }
    }
    head.truncate(len);
    let again: Reader = Box::new(AsyncReadExt::chain(std::io::Cursor::new(head.clone()), r));
    Ok((head, again))
}

/// Whether `head` holds a whole first line that is more than an opening bracket.
fn first_line_decides(head: &[u8]) -> bool {
    let Some(end) = memchr::memchr(b'\n', head) else {
        return false;
    };
    let line = head[..end].strip_prefix(BOM).unwrap_or(&head[..end]);
    let text: Vec<u8> = line
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    !matches!(text.as_slice(), [] | [b'{'] | [b'['])
}

fn layout_of(head: &[u8]) -> Layout {
    let text = head.strip_prefix(BOM).unwrap_or(head);
    // A whole first line that is more than a bracket decides alone: an envelope on the second
    // line of a file of JSON lines does not make the file a delivery file (that line gives its
    // records where it is, see `read_lines`).
    let text = match memchr::memchr(b'\n', text) {
        Some(end) if first_line_decides(head) => &text[..end],
        _ => text,
    };
    let mut rest = text.iter().copied().skip_while(u8::is_ascii_whitespace);
    match rest.next() {
        Some(b'[') => Layout::Records,
        Some(b'{') if crate::records::looks_like_envelope(text) => Layout::Records,
        _ => Layout::Lines,
    }
}

/// Options for reading.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    pub max_line: usize,
    pub batch: usize,
}

/// Reads one source into batches on `tx`. Returns the number of events read.
pub async fn read_source(
    source: &Source,
    index: u32,
    opts: ReadOptions,
    tx: &mpsc::Sender<Batch>,
    cancel: &CancellationToken,
) -> Result<u64, InputError> {
    let name = source.name();
    let fail = |events: u64, message: String| InputError {
        source_name: name.clone(),
        message,
        events,
    };
    // Opening and the first read may wait for ever (a FIFO without a writer, a quiet stream):
    // a stop request (SIGTERM) ends the wait; the blocked thread is left behind, and exiting
    // ends it.
    let raw: Reader = match source {
        Source::Stdin => crate::blocking::reader("<stdin>", std::io::stdin()),
        Source::File(p) => {
            let path = p.clone();
            let open = tokio::task::spawn_blocking(move || std::fs::File::open(path));
            let file = tokio::select! {
                biased;
                () = cancel.cancelled() => return Ok(0),
                f = open => f
                    .map_err(|e| fail(0, format!("cannot open: {e}")))?
                    .map_err(|e| fail(0, format!("cannot open: {e}")))?,
            };
            crate::blocking::reader(&name, file)
        }
    }
    .map_err(|e| fail(0, format!("cannot start reading: {e}")))?;
    let (head, raw) = tokio::select! {
        biased;
        () = cancel.cancelled() => return Ok(0),
        r = peek(raw) => r.map_err(|e| fail(0, format!("cannot read: {e}")))?,
    };
    let (mut reader, head) = if head.starts_with(&GZIP_MAGIC) {
        let mut gz = async_compression::tokio::bufread::GzipDecoder::new(BufReader::new(raw));
        gz.multiple_members(true);
        let (head, r) = tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(0),
            r = peek(Box::new(gz)) => r.map_err(|e| fail(0, format!("cannot decompress: {e}")))?,
        };
        (r, head)
    } else {
        (raw, head)
    };
    // A UTF-8 byte-order mark (files written on Windows) is not part of the first event.
    if head.starts_with(BOM) {
        let mut bom = [0u8; BOM.len()];
        reader
            .read_exact(&mut bom)
            .await
            .map_err(|e| fail(0, format!("cannot read: {e}")))?;
    }
    match layout_of(&head) {
        Layout::Lines => read_lines(reader, index, opts, tx, cancel)
            .await
            .map_err(|(n, e)| fail(n, e)),
        Layout::Records => {
            let tx = tx.clone();
            let cancel = cancel.clone();
            let bridge = tokio_util::io::SyncIoBridge::new(reader);
            tokio::task::spawn_blocking(move || read_records(bridge, index, opts, &tx, &cancel))
                .await
                .map_err(|e| fail(0, format!("reader task failed: {e}")))?
                .map_err(|(n, e)| fail(n, e))
        }
    }
}

/// Bytes a batch holds at most (beyond its last item): pieces of over-long lines are up to
/// `max-line-bytes` each, and a batch of them, counted only by items, could hold hundreds of
/// megabytes (an endless line, such as `/dev/zero`, would fill memory).
const BATCH_BYTES: usize = 1 << 20;

async fn read_lines(
    reader: Reader,
    index: u32,
    opts: ReadOptions,
    tx: &mpsc::Sender<Batch>,
    cancel: &CancellationToken,
) -> Result<u64, (u64, String)> {
    use futures::FutureExt as _;
    // One byte more than the longest line: a line ended by `\r\n` holds its `\r` (the limit
    // is the line's own length, checked when the batch is prepared).
    let mut framed = FramedRead::with_capacity(
        reader,
        LineCodec::new(opts.max_line.saturating_add(1)),
        1 << 20,
    );
    let mut number = 0u64;
    // Inside an over-long line whose pieces span batches: its next piece is the same line.
    let mut continuing = false;
    loop {
        let first = tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(number),
            f = framed.next() => f,
        };
        let Some(first) = first else {
            return Ok(number);
        };
        let mut batch = Vec::with_capacity(opts.batch.min(1024));
        let mut bytes = 0usize;
        let mut error = None;
        let mut next = Some(first);
        while let Some(frame) = next.take() {
            let frame = match frame {
                Ok(frame) => frame,
                Err(e) => {
                    error = Some(e.to_string());
                    // What was read of the line the error cut (a gzip stream cut short) is
                    // kept: the end of that line, or a line of its own.
                    let rest = framed.read_buffer_mut().split().freeze();
                    if rest.is_empty() && !continuing {
                        break;
                    }
                    if continuing {
                        Frame::Long {
                            piece: rest,
                            last: true,
                        }
                    } else {
                        Frame::Line(rest)
                    }
                }
            };
            if !continuing {
                number += 1;
            }
            // A byte-order mark that begins a line (files written on Windows, concatenated) is
            // not part of the event, as at the start of a file.
            let frame = match frame {
                Frame::Line(line) if line.starts_with(BOM) => Frame::Line(line.slice(BOM.len()..)),
                frame => frame,
            };
            continuing = matches!(frame, Frame::Long { last: false, .. });
            bytes += match &frame {
                Frame::Line(line) => line.len(),
                Frame::Long { piece, .. } => piece.len(),
            };
            match frame {
                // A delivery envelope on a line of its own (a file of JSON lines that holds one
                // after its first line): its records, each with the line's number. A line that
                // gives no record (an empty envelope, or one cut before its first record: only
                // brackets, which are not a bad item in a delivery file) is still a line of
                // the stream, and gives its own output line like any other.
                Frame::Line(line)
                    if line.first() == Some(&b'{')
                        && crate::records::looks_like_envelope(&line) =>
                {
                    let pieces = crate::records::expand(&line, MAX_RECORD.max(opts.max_line));
                    if pieces.is_empty() {
                        batch.push(Item {
                            frame: Frame::Line(line),
                            source: index,
                            number,
                        });
                    }
                    for piece in pieces {
                        let (Piece::Record(text) | Piece::Bad(text)) = piece;
                        batch.push(Item {
                            frame: Frame::Line(Bytes::from(text)),
                            source: index,
                            number,
                        });
                    }
                }
                frame => batch.push(Item {
                    frame,
                    source: index,
                    number,
                }),
            }
            if error.is_some() || batch.len() >= opts.batch || bytes >= BATCH_BYTES {
                break;
            }
            // What is already read joins the batch: full batches from files, and no waiting
            // for a batch to fill on a slow live stream.
            next = framed.next().now_or_never().flatten();
        }
        if !batch.is_empty() && tx.send(batch).await.is_err() {
            return Ok(number);
        }
        if let Some(e) = error {
            return Err((
                number,
                format!(
                    "read error: {e} (what was read is kept; the rest of the file cannot be read)"
                ),
            ));
        }
    }
}

/// The longest record of an envelope or array held whole (a record longer than this is a bad
/// item, in pieces): CloudTrail's records are far smaller, and it bounds memory on hostile input
/// (to a few times this).
const MAX_RECORD: usize = 64 << 20;

/// Streams records out of envelopes or arrays (blocking; runs on the blocking pool); see
/// [`crate::records`]. Where the structure broke, nothing is lost, and the source is reported.
fn read_records(
    bridge: tokio_util::io::SyncIoBridge<Reader>,
    index: u32,
    opts: ReadOptions,
    tx: &mpsc::Sender<Batch>,
    cancel: &CancellationToken,
) -> Result<u64, (u64, String)> {
    let mut sink = Sink {
        batch: Vec::with_capacity(opts.batch),
        bytes: 0,
        opts,
        index,
        number: 0,
        tx,
        cancel,
        closed: false,
    };
    let framer = crate::records::Framer::new(bridge, MAX_RECORD.max(opts.max_line), |piece| {
        match piece {
            Piece::Record(text) | Piece::Bad(text) => sink.push(Bytes::from(text)),
        }
        !sink.closed
    });
    let outcome = framer.run();
    sink.flush();
    let number = sink.number;
    match outcome {
        Ok(faults) => match faults.first {
            None => Ok(number),
            Some((first, before)) => Err((
                number,
                format!(
                    "not a well-formed delivery file or array at {} place{} (the first after record {before}: {first}); nothing was dropped: what is not a record is written as a bad line",
                    faults.count,
                    if faults.count == 1 { "" } else { "s" },
                ),
            )),
        },
        Err(Stop::Closed) => Ok(number),
        Err(Stop::Read(e)) => Err((
            number,
            format!("read error: {e} (what was read is kept; the rest of the file cannot be read)"),
        )),
    }
}

struct Sink<'a> {
    batch: Batch,
    /// Bytes in `batch`.
    bytes: usize,
    opts: ReadOptions,
    index: u32,
    number: u64,
    tx: &'a mpsc::Sender<Batch>,
    cancel: &'a CancellationToken,
    closed: bool,
}

impl Sink<'_> {
    /// Takes one item (a record's text, minified, or text that is not a record).
    fn push(&mut self, line: Bytes) {
        if self.closed {
            return;
        }
        self.number += 1;
        self.bytes += line.len();
        self.batch.push(Item {
            frame: Frame::Line(line),
            source: self.index,
            number: self.number,
        });
        if self.batch.len() >= self.opts.batch || self.bytes >= BATCH_BYTES {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.batch.is_empty() || self.closed {
            return;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(self.opts.batch));
        self.bytes = 0;
        if self.cancel.is_cancelled() || self.tx.blocking_send(batch).is_err() {
            self.closed = true;
        }
    }
}

/// Reads a whole file, for small auxiliary files (profiles, snapshots).
pub fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_first_line_decides_without_waiting() {
        assert!(first_line_decides(b"{\"a\":1}\n"));
        assert!(first_line_decides(b"not json\n"));
        assert!(!first_line_decides(b"{\"a\":1}"), "no line end yet");
        assert!(
            !first_line_decides(b"{\n  \"Records\": ["),
            "a pretty-printed envelope"
        );
        assert!(
            !first_line_decides(b"\xef\xbb\xbf[\r\n  {"),
            "a pretty-printed array"
        );
        assert!(!first_line_decides(b"\n\n"), "blank lines");
    }

    #[test]
    fn sniffs_layouts() {
        assert_eq!(layout_of(b"  {\n  \"Records\" : ["), Layout::Records);
        assert_eq!(
            layout_of(br#"{"digest": "x", "Records": [{"a": 1}]}"#),
            Layout::Records
        );
        assert_eq!(layout_of(br#"{"Records": "x"}"#), Layout::Lines);
        assert_eq!(
            layout_of(b"{\"a\":1}\n{\"Records\":[]}\n"),
            Layout::Lines,
            "the first line decides"
        );
        assert_eq!(layout_of(b"{\"Records\":[]}\n{\"a\":1}\n"), Layout::Records);
        assert_eq!(layout_of(b"\xef\xbb\xbf{\"Records\":[]}"), Layout::Records);
        assert_eq!(layout_of(b"[{\"a\":1}]"), Layout::Records);
        assert_eq!(layout_of(b"{\"eventVersion\":\"1.08\"}\n"), Layout::Lines);
        assert_eq!(layout_of(b"not json"), Layout::Lines);
        assert_eq!(layout_of(b""), Layout::Lines);
    }
}
