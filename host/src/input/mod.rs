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
//! skipped. Files named on the command line are always read. A followed directory
//! (`--follow DIR`) is read the same way, then watched for new files ([`watch`]). A source
//! that fails midway (truncated gzip, vanished file) keeps the events read so far, is reported
//! with its name, and the next source is read. An envelope or array that stops being JSON loses
//! nothing (see [`envelope`]), and is reported.

mod codec;
mod envelope;
mod follow;
mod lines;
mod registry;
mod watch;

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use codec::{Frame, LineCodec};
pub use registry::{Registry, Tracked};
pub use watch::{Watch, would_read};

/// The events of a whole text, each as one line: a CloudTrail delivery file's or a JSON array's
/// records (minified), or the lines of JSON lines; text where the structure broke comes as a
/// line of its own (a bad line, for the scorer to report).
pub fn event_lines(text: &[u8], max_value: usize) -> Vec<Vec<u8>> {
    let start = text.iter().position(|b| !b.is_ascii_whitespace());
    let array = start.is_some_and(|i| text[i] == b'[');
    if !array && !envelope::looks_like_envelope(text) {
        return text
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .map(<[u8]>::to_vec)
            .collect();
    }
    envelope::expand(text, max_value)
        .into_iter()
        .map(|piece| match piece {
            envelope::Piece::Record(r) | envelope::Piece::Bad(r) => r,
        })
        .collect()
}

/// A source of events, the pipeline's plug point for input: it frames what it reads into
/// batches of [`Item`]s and sends them in order until its end, a failure or `cancel`.
pub trait Source: Send + Sync + std::fmt::Debug {
    /// Its name in messages and in the summary.
    fn name(&self) -> String;

    /// The file it reads, when it is one (a file must not be both read and written).
    fn file(&self) -> Option<&Path> {
        None
    }

    /// The directory it follows, when it is one (`--follow DIR`): the reader then reads each
    /// file the directory's [`Watch`] takes as a source of its own (`read` reads them all as
    /// this one).
    fn directory(&self) -> Option<&Path> {
        None
    }

    /// Reads into batches on `tx`, numbering its items from 1 and tagging them with `index`;
    /// returns the number of events read. A failure keeps what was sent before it.
    fn read<'a>(
        &'a self,
        index: u32,
        opts: ReadOptions,
        tx: &'a mpsc::Sender<Batch>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<u64, InputError>>;
}

/// A byte stream: standard input, a file, or bytes in memory. Sniffed (gzip, delivery
/// envelopes and arrays, JSON lines) as the module says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stream {
    Stdin,
    File(PathBuf),
    /// A file followed as it grows, across rotation (`--follow`).
    Follow(PathBuf),
    /// A directory followed: its files, then those that come into it (`--follow`).
    Watch(PathBuf),
    Memory {
        name: String,
        bytes: Bytes,
    },
}

impl Source for Stream {
    fn name(&self) -> String {
        match self {
            Stream::Stdin => "<stdin>".to_owned(),
            Stream::File(p) | Stream::Follow(p) | Stream::Watch(p) => p.display().to_string(),
            Stream::Memory { name, .. } => name.clone(),
        }
    }

    fn file(&self) -> Option<&Path> {
        match self {
            Stream::File(p) | Stream::Follow(p) => Some(p),
            Stream::Stdin | Stream::Watch(_) | Stream::Memory { .. } => None,
        }
    }

    fn directory(&self) -> Option<&Path> {
        match self {
            Stream::Watch(dir) => Some(dir),
            _ => None,
        }
    }

    fn read<'a>(
        &'a self,
        index: u32,
        opts: ReadOptions,
        tx: &'a mpsc::Sender<Batch>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<u64, InputError>> {
        match self {
            Stream::Watch(dir) => Box::pin(watch::read_as_one(dir, index, opts, tx, cancel)),
            _ => Box::pin(read_stream(self, index, opts, tx, cancel)),
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

/// Lists the streams for the given paths: stdin for none or `-`, files as given, directories
/// walked in name order.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<Stream>, InputError> {
    if paths.is_empty() {
        return Ok(vec![Stream::Stdin]);
    }
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(Stream::Stdin);
            continue;
        }
        // A path that cannot be read is read as a file anyway: it fails then, is reported with
        // its name, and the other inputs are still read (exit code 2).
        let Ok(meta) = fs_err::metadata(p) else {
            out.push(Stream::File(p.clone()));
            continue;
        };
        if !meta.is_dir() {
            out.push(Stream::File(p.clone()));
            continue;
        }
        for entry in walk(p) {
            let entry = entry.map_err(|e| InputError {
                source_name: p.display().to_string(),
                message: e.to_string(),
                events: 0,
            })?;
            out.push(Stream::File(entry.into_path()));
        }
    }
    Ok(out)
}

/// Lists the streams for the given paths, followed (`--follow`): stdin for none or `-`,
/// directories watched for new files, files followed as they grow.
pub fn followed(paths: &[PathBuf]) -> Vec<Stream> {
    if paths.is_empty() {
        return vec![Stream::Stdin];
    }
    paths
        .iter()
        .map(|p| {
            if p.as_os_str() == "-" {
                Stream::Stdin
            } else if p.is_dir() {
                Stream::Watch(p.clone())
            } else {
                Stream::Follow(p.clone())
            }
        })
        .collect()
}

/// The log files under `dir`, recursively, in name order, and the errors met.
fn walk(dir: &Path) -> impl Iterator<Item = walkdir::Result<walkdir::DirEntry>> + use<> {
    walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !skipped_entry(&e.file_name().to_string_lossy()))
        .filter(|e| {
            e.as_ref()
                .map_or(true, |e| e.file_type().is_file() && is_log_file(e.path()))
        })
}

/// Whether an entry of a directory is passed over, with all it holds: hidden, or CloudTrail's
/// digests and Insights events.
fn skipped_entry(name: &str) -> bool {
    name.starts_with('.') || name == "CloudTrail-Digest" || name == "CloudTrail-Insight"
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
    /// Delivery envelopes or JSON arrays of records (see [`envelope`]).
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
        Some(b'{') if envelope::looks_like_envelope(text) => Layout::Records,
        _ => Layout::Lines,
    }
}

/// Options for reading.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    pub max_line: usize,
    pub batch: usize,
}

/// Opens on the blocking pool (opening may wait for ever: a FIFO without a writer); `None` when
/// the run is cancelled first.
async fn open_cancellable<T: Send + 'static>(
    open: impl FnOnce() -> std::io::Result<T> + Send + 'static,
    cancel: &CancellationToken,
) -> Result<Option<T>, String> {
    let opening = tokio::task::spawn_blocking(open);
    tokio::select! {
        biased;
        () = cancel.cancelled() => Ok(None),
        opened = opening => match opened {
            Ok(Ok(t)) => Ok(Some(t)),
            Ok(Err(e)) => Err(format!("cannot open: {e}")),
            Err(e) => Err(format!("cannot open: {e}")),
        },
    }
}

/// Reads one stream into batches on `tx`. Returns the number of events read.
async fn read_stream(
    source: &Stream,
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
        Stream::Stdin => crate::blocking::reader("<stdin>", std::io::stdin()),
        Stream::Memory { bytes, .. } => Ok(Box::new(std::io::Cursor::new(bytes.clone())) as Reader),
        Stream::Watch(_) => {
            return Err(fail(0, "a directory is read by its files".to_owned()));
        }
        Stream::Follow(p) => {
            let (path, token) = (p.clone(), cancel.clone());
            let open = move || follow::Tail::open(path, token);
            let Some(tail) = open_cancellable(open, cancel)
                .await
                .map_err(|e| fail(0, e))?
            else {
                return Ok(0);
            };
            crate::blocking::reader(&name, tail)
        }
        Stream::File(p) => {
            let path = p.clone();
            // The message names the source itself (fs_err would name it twice).
            #[allow(clippy::disallowed_methods)]
            let open = move || std::fs::File::open(path);
            let Some(file) = open_cancellable(open, cancel)
                .await
                .map_err(|e| fail(0, e))?
            else {
                return Ok(0);
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
        Layout::Lines => lines::read_lines(reader, index, opts, tx, cancel)
            .await
            .map_err(|(n, e)| fail(n, e)),
        Layout::Records => {
            let tx = tx.clone();
            let cancel = cancel.clone();
            let bridge = tokio_util::io::SyncIoBridge::new(reader);
            tokio::task::spawn_blocking(move || {
                envelope::read_records(bridge, index, opts, &tx, &cancel)
            })
            .await
            .map_err(|e| fail(0, format!("reader task failed: {e}")))?
            .map_err(|(n, e)| fail(n, e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lines_expand_envelopes_and_arrays_and_keep_lines() {
        let envelope = b"{\"Records\": [\n {\"eventName\": \"A\"},\n {\"eventName\": \"B\"}\n]}\n";
        let array = b"[\n  {\"eventName\": \"A\"},\n  {\"eventName\": \"B\"}\n]";
        let want = vec![
            b"{\"eventName\":\"A\"}".to_vec(),
            b"{\"eventName\":\"B\"}".to_vec(),
        ];
        assert_eq!(event_lines(envelope, 1 << 20), want);
        assert_eq!(event_lines(array, 1 << 20), want);
        let lines = b"{\"a\":1}\r\n\nnot json\n";
        assert_eq!(
            event_lines(lines, 1 << 20),
            vec![b"{\"a\":1}".to_vec(), b"not json".to_vec()]
        );
    }

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
