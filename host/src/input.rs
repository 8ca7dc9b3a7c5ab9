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
//! envelope or array that stops being JSON loses nothing: from the fault on, the rest of the
//! file is read as lines (and the file is reported).

use std::io::Read as _;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::StreamExt;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use crate::codec::{Frame, LineCodec};

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
    Envelope,
    Array,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const BOM: &[u8] = b"\xef\xbb\xbf";
const SNIFF: usize = 256;

type Reader = Box<dyn AsyncRead + Unpin + Send>;

/// Reads up to `SNIFF` bytes; returns them and a reader that yields them again, then the rest.
async fn peek(mut r: Reader) -> std::io::Result<(Vec<u8>, Reader)> {
    let mut head = vec![0u8; SNIFF];
    let mut len = 0;
    while len < SNIFF {
        let n = r.read(&mut head[len..]).await?;
        if n == 0 {
            break;
        }
        len += n;
    }
    head.truncate(len);
    let again: Reader = Box::new(AsyncReadExt::chain(std::io::Cursor::new(head.clone()), r));
    Ok((head, again))
}

fn layout_of(head: &[u8]) -> Layout {
    let text = head.strip_prefix(BOM).unwrap_or(head);
    let mut rest = text.iter().copied().skip_while(u8::is_ascii_whitespace);
    match rest.next() {
        Some(b'[') => Layout::Array,
        Some(b'{') => {
            let after: Vec<u8> = rest.skip_while(u8::is_ascii_whitespace).take(10).collect();
            if after.starts_with(b"\"Records\"") {
                Layout::Envelope
            } else {
                Layout::Lines
            }
        }
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
        Layout::Lines => read_lines(reader, index, opts, tx, cancel, 0)
            .await
            .map_err(|(n, e)| fail(n, e)),
        layout => {
            let tx2 = tx.clone();
            let cancel2 = cancel.clone();
            let bridge = tokio_util::io::SyncIoBridge::new(reader);
            let outcome = tokio::task::spawn_blocking(move || {
                read_records(bridge, layout, index, opts, &tx2, &cancel2)
            })
            .await
            .map_err(|e| fail(0, format!("reader task failed: {e}")))?;
            match outcome {
                Ok(n) => Ok(n),
                Err(RecordsStop::Failed(n, e)) => Err(fail(n, e)),
                // Nothing of the file is dropped: what the JSON reader had taken since the last
                // record, and everything after it, is read as lines (events, or bad lines written
                // through), and the file is still reported.
                Err(RecordsStop::Resume {
                    number,
                    rest,
                    reader,
                    message,
                }) => {
                    let reader: Reader =
                        Box::new(AsyncReadExt::chain(std::io::Cursor::new(rest), reader));
                    let n = read_lines(reader, index, opts, tx, cancel, number)
                        .await
                        .map_err(|(n, e)| fail(n, e))?;
                    Err(fail(
                        n,
                        format!("{message}; from record {} on, read as lines", number + 1),
                    ))
                }
            }
        }
    }
}

/// Bytes a batch holds at most (beyond its last item): pieces of over-long lines are up to
/// `max-line-bytes` each, and a batch of them, counted only by items, could hold hundreds of
/// megabytes (an endless line, such as `/dev/zero`, would fill memory).
const BATCH_BYTES: usize = 1 << 20;

/// Reads JSON lines; `number` is the number of items of the source before them.
async fn read_lines(
    reader: Reader,
    index: u32,
    opts: ReadOptions,
    tx: &mpsc::Sender<Batch>,
    cancel: &CancellationToken,
    mut number: u64,
) -> Result<u64, (u64, String)> {
    use futures::FutureExt as _;
    let mut framed = FramedRead::with_capacity(reader, LineCodec::new(opts.max_line), 1 << 20);
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
            continuing = matches!(frame, Frame::Long { last: false, .. });
            bytes += match &frame {
                Frame::Line(line) => line.len(),
                Frame::Long { piece, .. } => piece.len(),
            };
            batch.push(Item {
                frame,
                source: index,
                number,
            });
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
            return Err((number, format!("read error: {e}")));
        }
    }
}

/// How reading records ended early.
enum RecordsStop {
    /// The source cannot be read further (a read error, a corrupt gzip stream).
    Failed(u64, String),
    /// The text is not (or no longer) envelopes or arrays: `rest` (what the JSON reader took
    /// since the last record, and what was buffered after it) and then `reader` are to be read
    /// as lines, numbered after `number`.
    Resume {
        number: u64,
        rest: Vec<u8>,
        reader: Reader,
        message: String,
    },
}

/// The JSON reader's source, buffered: keeps the bytes taken since the last record (or the
/// start of the top-level value), so that nothing is lost when the text turns out not to be
/// JSON.
struct Tracked<R> {
    inner: R,
    buf: Vec<u8>,
    /// Next byte to hand out.
    pos: usize,
    /// Start of the kept bytes.
    mark: usize,
    /// Set by the sink when it takes a record: the bytes before the next read are that
    /// record's, and are no longer kept.
    taken: std::rc::Rc<std::cell::Cell<bool>>,
}

impl<R: std::io::Read> Tracked<R> {
    const CHUNK: usize = 256 * 1024;

    fn new(inner: R, taken: std::rc::Rc<std::cell::Cell<bool>>) -> Self {
        Tracked {
            inner,
            buf: Vec::with_capacity(Self::CHUNK),
            pos: 0,
            mark: 0,
            taken,
        }
    }

    /// The bytes not yet handed out, reading more when there are none (empty at the end).
    fn fill(&mut self) -> std::io::Result<&[u8]> {
        if self.pos == self.buf.len() {
            self.buf.drain(..self.mark);
            self.pos -= self.mark;
            self.mark = 0;
            let len = self.buf.len();
            self.buf.resize(len + Self::CHUNK, 0);
            let n = loop {
                match self.inner.read(&mut self.buf[len..]) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    other => break other,
                }
            };
            self.buf.truncate(len + n.as_ref().copied().unwrap_or(0));
            n?;
        }
        Ok(&self.buf[self.pos..])
    }

    /// Drops what is kept: the next byte starts a value.
    fn forget(&mut self) {
        self.mark = self.pos;
        self.taken.set(false);
    }

    /// The bytes taken since the last record or the start of the top-level value.
    fn kept(&self) -> &[u8] {
        if self.taken.get() {
            &[]
        } else {
            &self.buf[self.mark..self.pos]
        }
    }
}

impl<R: std::io::Read> std::io::Read for Tracked<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.taken.replace(false) {
            self.mark = self.pos;
        }
        let buf = self.fill()?;
        let n = buf.len().min(out.len());
        out[..n].copy_from_slice(&buf[..n]);
        self.pos += n;
        Ok(n)
    }
}

/// Streams records out of envelopes or arrays (blocking; runs on the blocking pool).
fn read_records(
    bridge: tokio_util::io::SyncIoBridge<Reader>,
    layout: Layout,
    index: u32,
    opts: ReadOptions,
    tx: &mpsc::Sender<Batch>,
    cancel: &CancellationToken,
) -> Result<u64, RecordsStop> {
    let taken = std::rc::Rc::new(std::cell::Cell::new(false));
    let mut sink = Sink {
        batch: Vec::with_capacity(opts.batch),
        bytes: 0,
        opts,
        index,
        number: 0,
        tx,
        cancel,
        closed: false,
        taken: taken.clone(),
    };
    let mut reader = Tracked::new(bridge, taken);
    let result = (|| -> Result<(), serde_json::Error> {
        loop {
            // Skip whitespace (and stray byte-order marks) between top-level values; stop at
            // the end.
            let next = loop {
                let buf = reader.fill().map_err(serde_json::Error::io)?;
                if buf.is_empty() {
                    break None;
                }
                match buf.iter().position(|b| {
                    !b.is_ascii_whitespace() && *b != 0xef && *b != 0xbb && *b != 0xbf
                }) {
                    Some(i) => {
                        let b = buf[i];
                        reader.pos += i;
                        break Some(b);
                    }
                    None => reader.pos += buf.len(),
                }
            };
            reader.forget();
            let Some(first) = next else { return Ok(()) };
            if sink.closed {
                return Ok(());
            }
            // Whatever the first value was, an envelope or an array may follow, and so may an
            // object that is neither (a file of JSON lines after a first line that looked like
            // an envelope or an array): it is a record itself, never dropped.
            let mut de = serde_json::Deserializer::from_reader(&mut reader);
            match first {
                b'{' => EnvelopeSeed(&mut sink).deserialize(&mut de)?,
                b'[' => RecordsSeed(&mut sink).deserialize(&mut de)?,
                _ => {
                    return Err(de::Error::custom(match layout {
                        Layout::Envelope => {
                            "expected another {\"Records\": [...]} envelope or a JSON object"
                        }
                        _ => "expected another JSON array of records or a JSON object",
                    }));
                }
            }
        }
    })();
    sink.flush();
    let number = sink.number;
    match result {
        Ok(()) => Ok(number),
        Err(e) if e.is_io() => {
            // The rest cannot be read; what was taken of the record being read is kept, as
            // one bad line whatever line ends it had.
            let mut part = minify(reader.kept());
            if sink.closed || part.iter().all(u8::is_ascii_whitespace) {
                return Err(RecordsStop::Failed(number, format!("read error: {e}")));
            }
            for b in &mut part {
                if matches!(*b, b'\n' | b'\r') {
                    *b = b' ';
                }
            }
            sink.push_raw(Bytes::from(part));
            sink.flush();
            Err(RecordsStop::Failed(sink.number, format!("read error: {e}")))
        }
        Err(e) => {
            // What was taken since the last record, and what is buffered after it; the line
            // end after the last record is not a line of its own.
            let rest = &reader.buf[reader.pos - reader.kept().len()..];
            let blank = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
            Err(RecordsStop::Resume {
                number,
                rest: rest[blank..].to_vec(),
                reader: reader.inner.into_inner(),
                message: format!("invalid JSON: {e}"),
            })
        }
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
    /// Tells the reader that a record was taken.
    taken: std::rc::Rc<std::cell::Cell<bool>>,
}

impl Sink<'_> {
    fn push(&mut self, raw: &RawValue) {
        self.push_text(raw.get().as_bytes());
    }

    fn push_text(&mut self, json: &[u8]) {
        self.push_raw(Bytes::from(minify(json)));
    }

    /// Takes one item as it is (a record's text, minified, or what was read of a record cut
    /// short).
    fn push_raw(&mut self, line: Bytes) {
        if self.closed {
            return;
        }
        self.taken.set(true);
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

/// Removes the whitespace between JSON tokens (record text keeps its exact values and key order;
/// a JSON string cannot contain a raw newline, so the result is one line).
pub fn minify(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for &b in json {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
            out.push(b);
        } else if !b.is_ascii_whitespace() {
            out.push(b);
        }
    }
    out
}

struct EnvelopeSeed<'s, 'a>(&'s mut Sink<'a>);

impl<'de> DeserializeSeed<'de> for EnvelopeSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a CloudTrail delivery envelope {\"Records\": [...]}")
    }
    /// An object with `Records` is an envelope: its records are streamed and its other members
    /// ignored. One without is a record itself: its members, kept as they come, are written
    /// back as one (minified) object.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut members: Vec<(String, Box<RawValue>)> = Vec::new();
        let mut envelope = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "Records" {
                envelope = true;
                members.clear();
                map.next_value_seed(RecordsSeed(&mut *self.0))?;
            } else if envelope {
                map.next_value::<IgnoredAny>()?;
            } else {
                let value = map.next_value::<Box<RawValue>>()?;
                members.push((key, value));
            }
        }
        if !envelope {
            let mut text = b"{".to_vec();
            for (i, (key, value)) in members.iter().enumerate() {
                if i > 0 {
                    text.push(b',');
                }
                text.extend_from_slice(
                    serde_json::to_string(key)
                        .map_err(de::Error::custom)?
                        .as_bytes(),
                );
                text.push(b':');
                text.extend_from_slice(value.get().as_bytes());
            }
            text.push(b'}');
            self.0.push_text(&text);
        }
        Ok(())
    }
}

struct RecordsSeed<'s, 'a>(&'s mut Sink<'a>);

impl<'de> DeserializeSeed<'de> for RecordsSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RecordsSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of records (\"Records\" must be an array)")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
            self.0.push(&raw);
        }
        Ok(())
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
    fn sniffs_layouts() {
        assert_eq!(layout_of(b"  {\n  \"Records\" : ["), Layout::Envelope);
        assert_eq!(layout_of(b"\xef\xbb\xbf{\"Records\":[]}"), Layout::Envelope);
        assert_eq!(layout_of(b"[{\"a\":1}]"), Layout::Array);
        assert_eq!(layout_of(b"{\"eventVersion\":\"1.08\"}\n"), Layout::Lines);
        assert_eq!(layout_of(b"not json"), Layout::Lines);
        assert_eq!(layout_of(b""), Layout::Lines);
    }

    #[test]
    fn minify_keeps_strings() {
        assert_eq!(
            minify(b"{ \"a b\" : [1, \"x \\\" y\"],\n \"c\":{} }"),
            b"{\"a b\":[1,\"x \\\" y\"],\"c\":{}}"
        );
    }
}
