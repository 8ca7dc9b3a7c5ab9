//! Framing of CloudTrail delivery files (`{"Records": [...]}`, several concatenated) and JSON
//! arrays of records into one item per record, streamed, without parsing the records (the plugin
//! parses them, and says what is wrong with one that is not JSON).
//!
//! The framer follows only the structure: strings (with their escapes), brackets and braces,
//! commas between elements. So a record that is malformed inside but whose brackets balance
//! (a missing colon, an invalid literal, bytes that are not UTF-8) is one item like any other:
//! the plugin refuses it as one bad line, and the records after it are events. Where the
//! structure itself breaks (a file cut inside a record, a stray closing bracket, text that is
//! not JSON at the top level), what was read of the value being framed, up to the end of the
//! line the fault is on, is one bad item, and framing starts again on the next line: later
//! envelopes, arrays and objects in the file are read as such, and nothing is lost. A value
//! that spans lines and whose brackets do not match (a brace missing in a pretty-printed file)
//! is bad only in its first line, and framing starts again on the next. In a one-line file,
//! where a record's brackets or quotes break for good, the next record is found by how the
//! file's records begin (the first key of its first record, `{"eventVersion":`), and a framed
//! text that is not JSON and holds such a start is split there (records merged by a broken
//! string). A place is taken for a record's start only where the record that would start there
//! ends as records end (see `Framer::plausible`): an object nested in a broken record that
//! begins the same way is not written as an event.
//!
//! At the top level, an object with an array `Records` is an envelope (its other members are
//! dropped, they describe the delivery); any other object is a record itself (a file of JSON
//! lines whose first line looked like an envelope), as are the elements of a top-level array.

use std::io::Read;
use std::sync::LazyLock;

use bytes::Bytes;
use memchr::memmem;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::codec::Frame;
use super::lines::BATCH_BYTES;
use super::{Batch, Item, ReadOptions, Reader};

/// One item of the source, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// A record's text, minified to one line.
    Record(Vec<u8>),
    /// Text where the structure broke, as one line (its line ends made spaces); why is counted
    /// in the source's [`Faults`].
    Bad(Vec<u8>),
}

/// Why framing stopped.
#[derive(Debug)]
pub enum Stop {
    /// The consumer asked to stop.
    Closed,
    /// The source could not be read further (after what was read of it was handed on).
    Read(std::io::Error),
}

/// Where the structure broke, in a source framed to its end.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Faults {
    pub count: u64,
    /// The first: what was wrong, and how many items came before it.
    pub first: Option<(String, u64)>,
}

/// A structural fault.
#[derive(Debug)]
enum Fault {
    /// The text ended inside a value.
    Eof,
    /// A byte that cannot be there.
    Unexpected(u8),
    /// Between two elements of an array, a byte that is neither `,` nor `]`: the array ends
    /// there, and framing goes on from that byte (`[` alone on the first line of a file of
    /// JSON lines).
    Separator(u8),
    /// A value longer than the framer holds.
    TooLong,
    /// A read error.
    Io(std::io::Error),
    /// The consumer asked to stop.
    Closed,
}

impl Fault {
    fn describe(&self, what: &str) -> String {
        match self {
            Fault::Eof => format!("the text ends inside {what}"),
            Fault::Unexpected(b) if what == "the text" => format!(
                "unexpected {} where an envelope, an array or an object belongs",
                show(*b)
            ),
            Fault::Unexpected(b) => format!("unexpected {} in {what}", show(*b)),
            Fault::Separator(b) => format!(
                "unexpected {} after an element of an array, where `,` or `]` belongs",
                show(*b)
            ),
            Fault::TooLong => format!("{what} is longer than the framer holds"),
            Fault::Io(e) => format!("read error in {what}: {e}"),
            Fault::Closed => "stopped".to_owned(),
        }
    }
}

/// Reads `inner` and hands every item to `emit` (which returns `false` to stop).
pub struct Framer<R, F> {
    inner: R,
    emit: F,
    buf: Vec<u8>,
    /// Next byte to look at.
    pos: usize,
    /// Start of the bytes still needed (the value being framed); what is before it may go.
    keep: usize,
    eof: bool,
    /// The longest value held whole.
    max_value: usize,
    /// Items handed on.
    items: u64,
    faults: Faults,
    /// How the records of an array begin: `{` and the first key of its first record, with its
    /// colon (`{"eventVersion":`). Records of one file share their first key (serialisers write
    /// keys in one order), so where the structure breaks inside a one-line file, the next
    /// record's start is found by it.
    start: Option<Vec<u8>>,
    /// Whether an element of an array that is itself an envelope is expanded (one level: an
    /// expanded envelope's elements are not).
    nested_envelopes: bool,
}

impl<R, F> std::fmt::Debug for Framer<R, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Framer")
            .field("held", &self.buf.len())
            .field("pos", &self.pos)
            .field("items", &self.items)
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

const CHUNK: usize = 256 * 1024;

type R<T> = Result<T, Fault>;

impl<Rd: Read, F: FnMut(Piece) -> bool> Framer<Rd, F> {
    pub fn new(inner: Rd, max_value: usize, emit: F) -> Self {
        Framer {
            inner,
            emit,
            buf: Vec::with_capacity(CHUNK),
            pos: 0,
            keep: 0,
            eof: false,
            max_value,
            items: 0,
            faults: Faults::default(),
            start: None,
            nested_envelopes: true,
        }
    }

    fn hand(&mut self, piece: Piece) -> bool {
        self.items += 1;
        (self.emit)(piece)
    }

    /// A record's text as one line: minified, and (in text that is not JSON, whose strings may
    /// hold raw line ends) any line end left made a space.
    fn record(&self) -> Piece {
        let mut text = minify(&self.buf[self.keep..self.pos]);
        one_line(&mut text);
        Piece::Record(text)
    }

    /// Frames the whole source; where its structure broke, if anywhere.
    pub fn run(mut self) -> Result<Faults, Stop> {
        loop {
            // Whitespace (and byte-order marks) between top-level values.
            let first = loop {
                self.keep = self.pos;
                match self.peek() {
                    Ok(Some(b)) if b.is_ascii_whitespace() || matches!(b, 0xef | 0xbb | 0xbf) => {
                        self.pos += 1;
                    }
                    Ok(b) => break b,
                    Err(Fault::Io(e)) => return Err(Stop::Read(e)),
                    Err(_) => unreachable!("at the top level only reading fails"),
                }
            };
            let Some(first) = first else {
                return Ok(self.faults);
            };
            let outcome = match first {
                b'{' => self.object(),
                b'[' => self.array(),
                b => Err(Fault::Unexpected(b)),
            };
            let mut outcome = outcome;
            // After a fault, framing may go on among the records of an array (see `recover`).
            loop {
                match outcome {
                    Ok(true) => break,
                    Ok(false) => return Err(Stop::Closed),
                    Err(fault) => {
                        if !self.recover(fault)? {
                            break;
                        }
                        outcome = self.elements();
                    }
                }
            }
        }
    }

    /// After a fault: what was read of the value being framed (from `keep`), up to the end of
    /// the line the fault is on, is one bad item, and framing goes on after that line; after a
    /// `Separator` fault, framing goes on at the byte itself.
    /// `Ok(true)`: framing goes on among the records of an array, at a record's start found
    /// after the fault (see `start`): where a record closed too early left the rest of it
    /// between two records, and on the line after one broken by a raw line end.
    fn recover(&mut self, fault: Fault) -> Result<bool, Stop> {
        let what = match self.buf.get(self.keep) {
            Some(b'{') => "an object",
            Some(b'[') => "an array",
            _ => "the text",
        };
        self.note(fault.describe(what));
        match fault {
            Fault::Closed => return Err(Stop::Closed),
            Fault::Separator(_) => {
                self.keep = self.pos;
                return self.resume_on_line();
            }
            Fault::Io(e) => {
                self.hand_bad()?;
                return Err(Stop::Read(e));
            }
            Fault::Unexpected(_) => {
                // A value that spans lines and whose brackets do not match (a brace missing in
                // a pretty-printed file is found only at the bracket that closes the array): its
                // structure cannot say where it ends, so only its first line is bad, and framing
                // starts again on the next, where the records after it are found.
                let held = &self.buf[self.keep..self.pos.min(self.buf.len())];
                if let Some(i) = memchr::memchr(b'\n', held) {
                    self.pos = self.keep + i + 1;
                    self.hand_bad()?;
                    return Ok(false);
                }
            }
            Fault::Eof | Fault::TooLong => {}
        }
        // To the end of the line the fault is on (or of the text, or of what may be held).
        loop {
            let from = self.pos.min(self.buf.len());
            if let Some(i) = memchr::memchr(b'\n', &self.buf[from..]) {
                self.pos = from + i + 1;
                break;
            }
            self.pos = self.buf.len();
            if self.pos - self.keep > self.max_value {
                break;
            }
            match self.more() {
                Ok(true) => {}
                Ok(false) => break,
                Err(Fault::Io(e)) => {
                    self.hand_bad()?;
                    return Err(Stop::Read(e));
                }
                Err(_) => break,
            }
        }
        self.hand_bad()?;
        // The next line may go on inside a record (one broken by a raw line end): its start
        // up to the next record's is bad too.
        self.keep = self.pos;
        loop {
            match self.peek() {
                Ok(Some(b' ' | b'\t')) => self.pos += 1,
                Ok(Some(b'{' | b'[' | b'\n' | b'\r')) | Ok(None) => {
                    self.pos = self.keep;
                    return Ok(false);
                }
                Ok(Some(_)) => break,
                Err(Fault::Io(e)) => return Err(Stop::Read(e)),
                Err(_) => {
                    self.pos = self.keep;
                    return Ok(false);
                }
            }
        }
        self.pos = self.keep;
        self.resume_on_line()
    }

    /// From `keep` (= `pos`), the text up to a record's start later on the line, if there is
    /// one, is bad, and framing goes on at that start (`Ok(true)`); else nothing is consumed.
    fn resume_on_line(&mut self) -> Result<bool, Stop> {
        match self.next_start(None) {
            Ok(Some(at)) => {
                self.skip_to(at)?;
                Ok(true)
            }
            Ok(None) => {
                self.pos = self.keep;
                Ok(false)
            }
            Err(Fault::Io(e)) => Err(Stop::Read(e)),
            Err(_) => {
                self.pos = self.keep;
                Ok(false)
            }
        }
    }

    /// Where the next record starts after the one being framed (`keep`), on the same line and
    /// before `within` if given (else the line is read to its end first: after a fault): the
    /// records' start (see `start`) right after a comma, where a record plausibly starts.
    fn next_start(&mut self, within: Option<usize>) -> R<Option<usize>> {
        let Some(start) = self.start.clone() else {
            return Ok(None);
        };
        let end = if let Some(end) = within {
            end
        } else {
            // The rest of the line (bounded like a value).
            loop {
                let from = self.pos.min(self.buf.len());
                if memchr::memchr(b'\n', &self.buf[from..]).is_some()
                    || self.buf.len() - self.keep > self.max_value
                    || !self.more()?
                {
                    break;
                }
            }
            self.buf.len()
        };
        let line_end =
            memchr::memchr(b'\n', &self.buf[self.keep..end]).map_or(end, |i| self.keep + i);
        let from = self.keep + 1;
        if from >= line_end {
            return Ok(None);
        }
        // Offsets from `keep`, which reading (in `plausible`) may move.
        let candidates: Vec<usize> = memmem::find_iter(&self.buf[from..line_end], &start)
            .map(|i| from + i)
            .filter(|&at| {
                self.buf[self.keep..at]
                    .iter()
                    .rev()
                    .find(|b| !b.is_ascii_whitespace())
                    == Some(&b',')
            })
            .map(|at| at - self.keep)
            .collect();
        for off in candidates {
            if self.plausible(off) {
                return Ok(Some(self.keep + off));
            }
        }
        Ok(None)
    }

    /// Whether the record that would start `off` bytes after `keep` ends, by its structure,
    /// where a record ends: before the next record's start, or at the end of the array and of
    /// the envelope (then the line, or the text). An object inside a broken record that begins
    /// like a record (a nested item of the same shape) is followed by more of that record, and
    /// is not taken for one.
    fn plausible(&mut self, off: usize) -> bool {
        let back = self.pos - self.keep;
        self.pos = self.keep + off;
        let ok = self.value().is_ok()
            && match self.skip_space() {
                Ok(Some(b',')) => {
                    self.pos += 1;
                    matches!(self.skip_space(), Ok(Some(b'{'))) && self.starts_record_here()
                }
                Ok(Some(b']')) => {
                    self.pos += 1;
                    let mut next = self.skip_space();
                    if matches!(next, Ok(Some(b'}'))) {
                        self.pos += 1;
                        next = self.skip_space();
                    }
                    matches!(next, Ok(None | Some(b'{' | b'[')))
                }
                _ => false,
            };
        self.pos = self.keep + back;
        ok
    }

    /// Whether a record's start (see `start`) is at `pos`, right after a comma.
    fn starts_record_here(&mut self) -> bool {
        let Some(start) = self.start.clone() else {
            return false;
        };
        while self.buf.len() < self.pos + start.len() {
            if !matches!(self.more(), Ok(true)) {
                return false;
            }
        }
        self.buf[self.pos..].starts_with(&start)
            && self.buf[self.keep..self.pos]
                .iter()
                .rev()
                .find(|b| !b.is_ascii_whitespace())
                == Some(&b',')
    }

    /// Counts a fault, and skips to `at` (see `skip_to`).
    fn resume_at(&mut self, at: usize, reason: String) -> R<()> {
        self.note(reason);
        self.skip_to(at).map_err(|_| Fault::Closed)
    }

    /// Hands on `keep..at` (up to its last comma) as a bad item and goes on framing records at
    /// `at`.
    fn skip_to(&mut self, at: usize) -> Result<(), Stop> {
        self.pos = self.buf[self.keep..at]
            .iter()
            .rposition(|&b| b == b',')
            .map_or(at, |i| self.keep + i);
        self.hand_bad()?;
        self.pos = at;
        self.keep = at;
        Ok(())
    }

    /// Counts a fault (the first is kept, with the number of items before it).
    fn note(&mut self, reason: String) {
        self.faults.count += 1;
        if self.faults.first.is_none() {
            self.faults.first = Some((reason, self.items));
        }
    }

    /// Hands on `keep..pos` as a bad item, unless it is only whitespace and punctuation (the
    /// brackets and commas of a broken envelope are not events).
    fn hand_bad(&mut self) -> Result<(), Stop> {
        let end = self.pos.min(self.buf.len());
        let text = &self.buf[self.keep.min(end)..end];
        let Some(from) = text.iter().position(|b| !b.is_ascii_whitespace()) else {
            return Ok(());
        };
        let to = text
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .unwrap_or(from)
            + 1;
        let mut text = text[from..to].to_vec();
        self.keep = end;
        if text
            .iter()
            .all(|b| b.is_ascii_whitespace() || b"[]{},:".contains(b))
        {
            return Ok(());
        }
        one_line(&mut text);
        if self.hand(Piece::Bad(text)) {
            Ok(())
        } else {
            Err(Stop::Closed)
        }
    }

    /// Reads more into the buffer; `false` at the end of the text.
    fn more(&mut self) -> R<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.keep > 0 && self.keep >= self.buf.len() / 2 {
            self.buf.drain(..self.keep);
            self.pos -= self.keep;
            self.keep = 0;
        }
        let len = self.buf.len();
        self.buf.resize(len + CHUNK, 0);
        let n = loop {
            match self.inner.read(&mut self.buf[len..]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        self.buf.truncate(len + n.as_ref().copied().unwrap_or(0));
        match n {
            Ok(0) => {
                self.eof = true;
                Ok(false)
            }
            Ok(_) => Ok(true),
            Err(e) => Err(Fault::Io(e)),
        }
    }

    /// The byte at `pos`, reading more if needed; `None` at the end of the text.
    fn peek(&mut self) -> R<Option<u8>> {
        while self.pos >= self.buf.len() {
            if self.pos - self.keep > self.max_value {
                return Err(Fault::TooLong);
            }
            if !self.more()? {
                return Ok(None);
            }
        }
        Ok(Some(self.buf[self.pos]))
    }

    /// Skips whitespace; the next byte, if any.
    fn skip_space(&mut self) -> R<Option<u8>> {
        loop {
            match self.peek()? {
                Some(b) if b.is_ascii_whitespace() => self.pos += 1,
                other => return Ok(other),
            }
        }
    }

    /// A top-level object at `pos` (= `keep`): an envelope's records, or the object itself as a
    /// record. `Ok(false)`: the consumer stopped.
    fn object(&mut self) -> R<bool> {
        self.pos += 1;
        let mut envelope = false;
        loop {
            match self.skip_space()? {
                None => return Err(Fault::Eof),
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                Some(b'"') => {}
                Some(b) => return Err(Fault::Unexpected(b)),
            }
            // Offsets from `keep`, which reading more may move (with what it marks).
            let key = self.pos - self.keep;
            self.string()?;
            let records = &self.buf[self.keep + key..self.pos] == b"\"Records\"";
            match self.skip_space()? {
                Some(b':') => self.pos += 1,
                Some(b) => return Err(Fault::Unexpected(b)),
                None => return Err(Fault::Eof),
            }
            match self.skip_space()? {
                Some(b'[') if records => {
                    envelope = true;
                    if !self.array()? {
                        return Ok(false);
                    }
                }
                Some(_) => self.value()?,
                None => return Err(Fault::Eof),
            }
            match self.skip_space()? {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                Some(b) => return Err(Fault::Unexpected(b)),
                None => return Err(Fault::Eof),
            }
        }
        if envelope {
            self.keep = self.pos;
            return Ok(true);
        }
        let record = self.record();
        Ok(self.hand(record))
    }

    /// The elements of an array at `pos`, each one record (`keep` marks the one being framed).
    /// `Ok(false)`: the consumer stopped.
    fn array(&mut self) -> R<bool> {
        self.pos += 1;
        self.elements()
    }

    /// The elements of an array from `pos` (after its `[`, or at an element's start) to its
    /// `]`. `Ok(false)`: the consumer stopped.
    fn elements(&mut self) -> R<bool> {
        loop {
            self.keep = self.pos;
            match self.skip_space()? {
                None => return Err(Fault::Eof),
                Some(b']') => {
                    self.pos += 1;
                    self.keep = self.pos;
                    return Ok(true);
                }
                Some(b',') => {
                    // An empty element (`,,`): skipped.
                    self.note("an empty element in an array (`,,`)".to_owned());
                    self.pos += 1;
                    continue;
                }
                Some(_) => {}
            }
            self.keep = self.pos;
            match self.value() {
                Ok(()) => {}
                Err(fault @ (Fault::Eof | Fault::Unexpected(_))) => {
                    // Broken on its line: the text up to the next record's start is bad, and
                    // the records from there are records. Where the fault is itself at a
                    // record's start (`,{` in an object), framing resumes there; otherwise at
                    // the first start after the broken record's.
                    let here = matches!(fault, Fault::Unexpected(b'{'))
                        && self.starts_record_here()
                        && self.plausible(self.pos - self.keep);
                    let at = if here {
                        Some(self.pos)
                    } else {
                        self.next_start(None)?
                    };
                    let Some(at) = at else { return Err(fault) };
                    self.resume_at(at, fault.describe("a record"))?;
                    continue;
                }
                Err(fault) => return Err(fault),
            }
            // Records merged by a broken quote (the structure held, but the text holds the
            // start of another record and is not JSON): split where the next one starts.
            if let Some(at) = self.next_start(Some(self.pos))?
                && serde_json::from_slice::<serde::de::IgnoredAny>(&self.buf[self.keep..self.pos])
                    .is_err()
            {
                self.resume_at(at, "records merged by a broken string".to_owned())?;
                continue;
            }
            if self.nested_envelopes && looks_like_envelope(&self.buf[self.keep..self.pos]) {
                // An array of delivery envelopes: their records.
                for piece in expand(&self.buf[self.keep..self.pos], self.max_value) {
                    if !self.hand(piece) {
                        return Ok(false);
                    }
                }
            } else {
                let record = self.record();
                if self.start.is_none() {
                    self.start = first_key(&self.buf[self.keep..self.pos]);
                }
                if !self.hand(record) {
                    return Ok(false);
                }
            }
            self.keep = self.pos;
            loop {
                match self.skip_space()? {
                    Some(b',') => {
                        self.pos += 1;
                        break;
                    }
                    Some(b']') => {
                        self.pos += 1;
                        self.keep = self.pos;
                        return Ok(true);
                    }
                    Some(b'}') => {
                        // A stray closing brace after an element: skipped.
                        self.note("a stray `}` after an element of an array".to_owned());
                        self.pos += 1;
                    }
                    Some(b) => return Err(Fault::Separator(b)),
                    None => return Err(Fault::Eof),
                }
            }
        }
    }

    /// Skips one value at `pos` by its structure: a string, an object or array (brackets
    /// matched, strings skipped), or a bare token (a number, a literal) up to a delimiter.
    fn value(&mut self) -> R<()> {
        match self.peek()?.ok_or(Fault::Eof)? {
            b'"' => self.string(),
            b'{' | b'[' => self.nested(),
            b @ (b',' | b':' | b']' | b'}') => Err(Fault::Unexpected(b)),
            _ => {
                while let Some(b) = self.peek()? {
                    if b.is_ascii_whitespace() || matches!(b, b',' | b']' | b'}' | b':') {
                        break;
                    }
                    if matches!(b, b'{' | b'[' | b'"') {
                        return Err(Fault::Unexpected(b));
                    }
                    self.pos += 1;
                }
                Ok(())
            }
        }
    }

    /// An object or array at `pos`, to its matching close.
    fn nested(&mut self) -> R<()> {
        let mut closers: Vec<u8> = Vec::new();
        // Just after a comma in an object, where only a key (a string) may come.
        let mut key_next = false;
        loop {
            let b = self.peek()?.ok_or(Fault::Eof)?;
            if key_next && !b.is_ascii_whitespace() {
                key_next = false;
                // `,{` or `,[` inside an object is never JSON: the object was not closed (an
                // opener too many, a closer missing), and what follows the comma is likely the
                // next record. A fault here, not at the end of the text: framing a broken record
                // costs the distance to the next one, not to the end of the file.
                if matches!(b, b'{' | b'[') {
                    return Err(Fault::Unexpected(b));
                }
            }
            match b {
                b'{' => closers.push(b'}'),
                b'[' => closers.push(b']'),
                b',' => key_next = closers.last() == Some(&b'}'),
                b'}' | b']' => {
                    // On one line, a closer of the wrong kind closes the innermost all the
                    // same: the record is broken inside (the plugin's to refuse), and the
                    // records beside it in a one-line delivery file stay records. Across lines
                    // it is a fault (see `recover`).
                    if closers.pop() != Some(b)
                        && memchr::memchr(b'\n', &self.buf[self.keep..self.pos]).is_some()
                    {
                        return Err(Fault::Unexpected(b));
                    }
                    if closers.is_empty() {
                        self.pos += 1;
                        return Ok(());
                    }
                }
                b'"' => {
                    self.string()?;
                    continue;
                }
                _ => {}
            }
            self.pos += 1;
        }
    }

    /// A string at `pos`, past its closing quote.
    fn string(&mut self) -> R<()> {
        self.pos += 1;
        loop {
            if self.peek()?.is_none() {
                return Err(Fault::Eof);
            }
            let from = self.pos;
            match memchr::memchr3(b'"', b'\\', b'\n', &self.buf[from..]) {
                None => self.pos = self.buf.len(),
                Some(i) if self.buf[from + i] == b'\n' => {
                    // JSON strings hold no raw line end: a quote is missing (or one too many),
                    // and the line is where framing can start again.
                    self.pos = from + i;
                    return Err(Fault::Unexpected(b'\n'));
                }
                Some(i) => {
                    self.pos = from + i + 1;
                    if self.buf[from + i] == b'"' {
                        return Ok(());
                    }
                    // An escape: the next byte is part of it, whatever it is.
                    if self.peek()?.is_none() {
                        return Err(Fault::Eof);
                    }
                    self.pos += 1;
                }
            }
        }
    }
}

/// Whether `text` is an object with `"Records": [` among its first 256 bytes: a delivery
/// envelope, whichever member comes first (an object that merely mentions it is still a record,
/// read whole, when framed).
pub fn looks_like_envelope(text: &[u8]) -> bool {
    let text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
    let Some(open) = text.iter().position(|b| !b.is_ascii_whitespace()) else {
        return false;
    };
    if text[open] != b'{' {
        return false;
    }
    // The searcher is built once: building it costs more than searching 256 bytes.
    static RECORDS: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new(b"\"Records\""));
    let head = &text[open..text.len().min(open + 256)];
    RECORDS.find_iter(head).any(|at| {
        let mut after = head[at + 9..]
            .iter()
            .skip_while(|b| b.is_ascii_whitespace());
        after.next() == Some(&b':') && after.find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
    })
}

/// The records of `text`, an envelope met where a record was expected (a line of a file of
/// JSON lines, an element of an array): each a record (or bad text), no deeper envelope
/// expanded.
pub fn expand(text: &[u8], max_value: usize) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut framer = Framer::new(text, max_value, |p| {
        pieces.push(p);
        true
    });
    framer.nested_envelopes = false;
    // Reading a slice cannot fail, and the consumer never stops.
    let _ = framer.run();
    pieces
}

/// `{` and the first key of a record with its colon, as written (`{"eventVersion":`), when the
/// record is an object written without whitespace before its first key.
fn first_key(record: &[u8]) -> Option<Vec<u8>> {
    if !record.starts_with(b"{\"") {
        return None;
    }
    let close = memchr::memchr2(b'"', b'\\', &record[2..])? + 2;
    (record[close] == b'"' && record.get(close + 1) == Some(&b':') && close > 2)
        .then(|| record[..close + 2].to_vec())
}

/// Removes the whitespace between JSON tokens (record text keeps its exact values and key order;
/// a JSON string cannot contain a raw newline, so the result is one line).
fn minify(json: &[u8]) -> Vec<u8> {
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

/// A byte as a message shows it.
fn show(b: u8) -> String {
    if b == b'\n' {
        "line end".to_owned()
    } else if b.is_ascii_graphic() {
        format!("`{}`", char::from(b))
    } else {
        format!("byte 0x{b:02x}")
    }
}

/// Makes any line end a space: an item is one line.
fn one_line(text: &mut [u8]) {
    if memchr::memchr2(b'\n', b'\r', text).is_some() {
        for b in text {
            if matches!(*b, b'\n' | b'\r') {
                *b = b' ';
            }
        }
    }
}

/// The longest record of an envelope or array held whole (a record longer than this is a bad
/// item, in pieces): CloudTrail's records are far smaller, and it bounds memory on hostile input
/// (to a few times this).
pub(super) const MAX_RECORD: usize = 64 << 20;

/// Streams records out of envelopes or arrays (blocking; runs on the blocking pool); see
/// this module's [`Framer`]. Where the structure broke, nothing is lost, and the source is reported.
pub(super) fn read_records(
    bridge: tokio_util::io::SyncIoBridge<Reader>,
    index: u32,
    opts: ReadOptions,
    tx: &mpsc::Sender<Batch>,
    cancel: &CancellationToken,
) -> Result<u64, (u64, String)> {
    let mut sink = Batcher {
        batch: Vec::with_capacity(opts.batch),
        bytes: 0,
        opts,
        index,
        number: 0,
        tx,
        cancel,
        closed: false,
    };
    let framer = Framer::new(bridge, MAX_RECORD.max(opts.max_line), |piece| {
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

/// Gathers records into batches and hands them to the pipeline.
struct Batcher<'a> {
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

impl Batcher<'_> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames `text` read `chunk` bytes at a time; the items as strings ("!" before a bad one).
    fn frame_in(text: &str, chunk: usize, max_value: usize) -> Vec<String> {
        struct Slow<'a>(&'a [u8], usize);
        impl Read for Slow<'_> {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(out.len()).min(self.1);
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut items = Vec::new();
        Framer::new(Slow(text.as_bytes(), chunk), max_value, |p| {
            items.push(match p {
                Piece::Record(r) => String::from_utf8_lossy(&r).into_owned(),
                Piece::Bad(b) => format!("!{}", String::from_utf8_lossy(&b)),
            });
            true
        })
        .run()
        .expect("framed");
        items
    }

    fn frame(text: &str) -> Vec<String> {
        let whole = frame_in(text, usize::MAX, 1 << 20);
        for chunk in [1, 2, 3, 7] {
            assert_eq!(
                frame_in(text, chunk, 1 << 20),
                whole,
                "read {chunk} at a time"
            );
        }
        whole
    }

    #[test]
    fn minify_keeps_strings() {
        assert_eq!(
            minify(b"{ \"a b\" : [1, \"x \\\" y\"],\n \"c\":{} }"),
            b"{\"a b\":[1,\"x \\\" y\"],\"c\":{}}"
        );
    }

    #[test]
    fn envelopes_arrays_and_objects() {
        assert_eq!(
            frame(r#"{"Records":[{"a":1},{"b":"x,]}"}]}"#),
            [r#"{"a":1}"#, r#"{"b":"x,]}"}"#]
        );
        assert_eq!(
            frame(
                "{\"Records\": [\n {\"a\": [1, 2]} ,\n {\"b\": \"\\\"}\"}\n]}\n{\"Records\":[{\"c\":3}]}"
            ),
            [r#"{"a":[1,2]}"#, r#"{"b":"\"}"}"#, r#"{"c":3}"#]
        );
        // Members around `Records` describe the delivery; `Records` anywhere in the object.
        assert_eq!(
            frame(r#"{"digest":"x","Records":[{"a":1}],"more":{"k":[1]}}"#),
            [r#"{"a":1}"#]
        );
        assert_eq!(
            frame("[1, \"two\", {\"three\":3}]"),
            ["1", "\"two\"", "{\"three\":3}"]
        );
        assert_eq!(frame("[]\n{\"Records\":[]}\n"), Vec::<String>::new());
        // Objects that are not envelopes are records, also a `Records` that is not an array.
        assert_eq!(
            frame("{\"Records\":[]}\n{\"a\": 1}\n{\"Records\": \"x\"}\n"),
            [r#"{"a":1}"#, r#"{"Records":"x"}"#]
        );
        assert_eq!(frame("\u{feff}[{\"a\":1}]"), [r#"{"a":1}"#]);
    }

    #[test]
    fn a_record_broken_inside_is_one_item_and_the_rest_are_records() {
        assert_eq!(
            frame(r#"{"Records":[{"a":1},{BAD},{"c" 3},{"d":4}]}"#),
            [r#"{"a":1}"#, "{BAD}", r#"{"c"3}"#, r#"{"d":4}"#]
        );
        // A closer of the wrong kind inside a record of a one-line file, a doubled comma, a
        // stray brace: one bad record at most, the others records.
        assert_eq!(
            frame(r#"{"Records":[{"a":{"x":1]},{"b":2},,{"c":3}},{"d":4}]}"#),
            [r#"{"a":{"x":1]}"#, r#"{"b":2}"#, r#"{"c":3}"#, r#"{"d":4}"#]
        );
        // A quote missing in a pretty-printed record: its line is bad, the next record is one.
        assert_eq!(
            frame("[\n  {\n    \"a\": \"x,\n    \"b\": 2\n  },\n  {\"c\": 3}\n]\n"),
            [r#"!"a": "x,"#, r#"!"b": 2"#, r#"{"c":3}"#]
        );
    }

    /// In a one-line file, where a record's brackets or quotes are broken, the next record is
    /// found by how the records begin (their shared first key).
    #[test]
    fn a_one_line_file_finds_the_next_record_by_its_first_key() {
        let rec = |n: u32| format!(r#"{{"v":"1.08","n":{n},"r":[{{"k":"x"}}]}}"#);
        let file = |second: &str| {
            format!(
                r#"{{"Records":[{},{second},{},{}]}}"#,
                rec(1),
                rec(3),
                rec(4)
            )
        };
        let good: Vec<String> = [1, 3, 4].into_iter().map(rec).collect();
        // An opener too many: the brackets never balance again.
        let items = frame(&file(r#"{"v":"1.08","n":2,"r":[{"k":{"x"}]}"#));
        assert_eq!(items[0], good[0]);
        assert_eq!(items[1], r#"!{"v":"1.08","n":2,"r":[{"k":{"x"}]}"#);
        assert_eq!(items[2..], good[1..]);
        // A quote too many: the string runs on into the next records.
        let items = frame(&file(r#"{"v":"1.08","n":2,"r":[{"k":"x""}]}"#));
        assert_eq!(items[0], good[0]);
        assert!(items[1].starts_with('!'), "{items:?}");
        assert_eq!(items[items.len() - 2..], good[1..], "{items:?}");
        // A quote missing.
        let items = frame(&file(r#"{"v":"1.08","n":2,"r":[{"k":"x}]}"#));
        assert_eq!(items[0], good[0]);
        assert_eq!(items[items.len() - 2..], good[1..], "{items:?}");
        // An object inside a broken record that begins like a record is not taken for one:
        // it is followed by more of that record.
        for fake in [
            r#"{"v":"1.08","n":2,"r":[{"k":1},{"v":"1.08","n":99}],"x" 1}"#,
            r#"{"v":"1.08","n":2,"r":[{"k":1},{"v":"1.08","n":99}],"x":"1}"#,
        ] {
            let items = frame(&file(fake));
            assert_eq!(items[0], good[0]);
            assert!(items[1].contains(r#""n":99"#), "{items:?}");
            assert_eq!(items[2..], good[1..], "{items:?}");
        }
        // Many broken records: framing each costs the distance to the next, not to the end.
        let many: Vec<String> = (0..20_000)
            .map(|n| {
                if n % 2 == 1 {
                    r#"{"v":"1.08","n":2,"r":[{"k":{"x"}]}"#.to_owned()
                } else {
                    rec(n)
                }
            })
            .collect();
        let text = format!(r#"{{"Records":[{}]}}"#, many.join(","));
        let started = std::time::Instant::now();
        let items = frame_in(&text, usize::MAX, 1 << 20);
        assert_eq!(items.len(), 20_000);
        let broken = items
            .iter()
            .filter(|i| serde_json::from_str::<serde::de::IgnoredAny>(i).is_err())
            .count();
        assert_eq!(
            broken, 10_000,
            "the last is handed on as a record, broken inside"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "linear, not quadratic: {:?}",
            started.elapsed()
        );
        // A record closed too early: the rest of it, between two records, is not records (a
        // string, then bad text), and the records after it are.
        let items = frame(&file(r#"{"v":"1.08","n":2},"r":[{"k":"x"}]}"#));
        assert_eq!(
            items[..2],
            [good[0].clone(), r#"{"v":"1.08","n":2}"#.to_owned()]
        );
        assert_eq!(items[2..4], ["\"r\"", "!:[{\"k\":\"x\"}]}"], "{items:?}");
        assert_eq!(items[4..], good[1..], "{items:?}");
        // A raw line end inside a string: the record's two pieces are bad, the rest records.
        let items = frame(&file("{\"v\":\"1.08\",\"n\":2,\"r\":[{\"k\":\"x\ny\"}]}"));
        assert_eq!(items[0], good[0]);
        assert!(
            items[1].starts_with('!') && items[2].starts_with("!y"),
            "{items:?}"
        );
        assert_eq!(items[3..], good[1..], "{items:?}");
        // Objects inside a well-formed record that begin like records do not split it.
        let inside = r#"{"v":"1.08","n":2,"r":[{"v":"x"},{"v":"y"}]}"#;
        assert_eq!(frame(&file(inside))[1], inside);
    }

    #[test]
    fn an_array_of_envelopes_gives_their_records_one_level_deep() {
        assert_eq!(
            frame(r#"[{"Records":[{"a":1},{"b":2}]},{"c":3},{"Records":[{"Records":[{"d":4}]}]}]"#),
            [
                r#"{"a":1}"#,
                r#"{"b":2}"#,
                r#"{"c":3}"#,
                r#"{"Records":[{"d":4}]}"#
            ]
        );
        assert!(looks_like_envelope(b" {\"x\": 1, \"Records\" : [ ]}"));
        assert!(!looks_like_envelope(b"{\"Records\": \"x\"}"));
        assert!(!looks_like_envelope(b"[{\"Records\": []}]"));
    }

    #[test]
    fn faults_are_counted_with_the_first() {
        let mut n = 0;
        let faults = Framer::new(
            "[{\"a\":1}\n{\"b\":2}]\nnot json\n".as_bytes(),
            1 << 20,
            |_| {
                n += 1;
                true
            },
        )
        .run()
        .expect("framed");
        assert_eq!(n, 3);
        assert_eq!(faults.count, 3, "{faults:?}");
        let (first, before) = faults.first.expect("a fault");
        assert_eq!(before, 1);
        assert!(first.contains("unexpected `{` after an element"), "{first}");
    }

    #[test]
    fn a_broken_structure_is_bad_to_its_line_end_and_framing_starts_again() {
        // Cut inside the third record.
        assert_eq!(
            frame(r#"{"Records":[{"a":1},{"b":2},{"c":"#),
            [r#"{"a":1}"#, r#"{"b":2}"#, r#"!{"c":"#]
        );
        // `[` alone, then JSON lines without commas, then `]`: the array ends where a comma
        // is missing, the objects after it are records, the bracket is not an item.
        assert_eq!(
            frame("[\n{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n]\n"),
            [r#"{"a":1}"#, r#"{"b":2}"#, r#"{"c":3}"#]
        );
        // An envelope cut after its last record: nothing but brackets is missing.
        assert_eq!(frame(r#"{"Records":[{"a":1}]"#), [r#"{"a":1}"#]);
        // Text after an envelope, then an envelope again.
        assert_eq!(
            frame("{\"Records\":[{\"a\":1}]}\nnot json\n{\"Records\":[{\"b\":2}]}\n"),
            [r#"{"a":1}"#, "!not json", r#"{"b":2}"#]
        );
        // A stray closer inside a record of a one-line file: that record is broken, the
        // others are records.
        assert_eq!(
            frame("{\"Records\":[{\"a\":1},{\"b\":]},{\"c\":3}]}\n[{\"d\":4}]"),
            [r#"{"a":1}"#, r#"{"b":]"#, r#"{"c":3}"#, r#"{"d":4}"#]
        );
        // Text where an envelope belongs on a one-line file: the rest of that line is one item.
        assert_eq!(
            frame("{\"Records\":[{\"a\":1}]}x{\"Records\":[{\"b\":2}]}\n[{\"c\":3}]"),
            [r#"{"a":1}"#, r#"!x{"Records":[{"b":2}]}"#, r#"{"c":3}"#]
        );
        // A pretty-printed record cut short is one line.
        assert_eq!(
            frame("[\n  {\n    \"a\": 1,\n    \"b\": "),
            ["!{     \"a\": 1,     \"b\":"]
        );
        // A pretty-printed record missing its closing brace: its lines are bad, the records
        // after it are records.
        assert_eq!(
            frame("[\n  {\n    \"a\": {\"x\": 1},\n    \"b\": 2\n  ,\n  {\n    \"c\": 3\n  }\n]\n"),
            [r#"!"a": {"x": 1},"#, r#"!"b": 2"#, r#"{"c":3}"#]
        );
    }

    #[test]
    fn a_value_longer_than_the_maximum_is_bad() {
        let long = format!("[{{\"a\":\"{}\"}}]\n[{{\"b\":1}}]", "x".repeat(100));
        let items = frame_in(&long, 7, 50);
        let (last, bad) = items.split_last().expect("items");
        assert_eq!(last, r#"{"b":1}"#);
        assert!(bad[0].starts_with("!{\"a\":\"xxx"), "{items:?}");
        assert!(bad.iter().all(|b| b.starts_with('!')), "{items:?}");
        assert_eq!(
            bad.iter().map(|b| b.len() - 1).sum::<usize>(),
            r#"{"a":""}]"#.len() + 100,
            "every byte of the long line is in a bad item: {items:?}"
        );
    }

    #[test]
    fn a_read_error_hands_on_what_was_read() {
        struct Failing(Vec<u8>);
        impl Read for Failing {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                if self.0.is_empty() {
                    return Err(std::io::Error::other("corrupt deflate stream"));
                }
                let n = self.0.len().min(out.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0.drain(..n);
                Ok(n)
            }
        }
        let mut items = Vec::new();
        let stop = Framer::new(
            Failing(br#"{"Records":[{"a":1},{"b":"#.to_vec()),
            1 << 20,
            |p| {
                items.push(p);
                true
            },
        )
        .run();
        assert!(matches!(stop, Err(Stop::Read(_))), "{stop:?}");
        assert_eq!(items[0], Piece::Record(br#"{"a":1}"#.to_vec()));
        assert!(matches!(&items[1], Piece::Bad(b) if b == br#"{"b":"#));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn json_value() -> impl Strategy<Value = serde_json::Value> {
            let leaf = prop_oneof![
                Just(serde_json::Value::Null),
                any::<bool>().prop_map(serde_json::Value::from),
                any::<i64>().prop_map(serde_json::Value::from),
                "[a-z\"\\\\ ,:{}\\[\\]\\n\u{e9}]{0,8}".prop_map(serde_json::Value::from),
            ];
            leaf.prop_recursive(4, 32, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                    prop::collection::btree_map("[a-zR\"]{0,6}", inner, 0..4)
                        .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            /// Well-formed envelopes and arrays, compact or pretty, read in any chunks: one item
            /// per record, each the record's compact text, and no fault.
            #[test]
            fn well_formed_files_give_their_records(
                records in prop::collection::vec(json_value(), 0..6),
                envelope in any::<bool>(),
                pretty in any::<bool>(),
                chunk in 1usize..9,
            ) {
                let body = serde_json::Value::from(records.clone());
                let doc = if envelope {
                    serde_json::json!({"digest": "x", "Records": body})
                } else {
                    body
                };
                let text = if pretty {
                    serde_json::to_string_pretty(&doc)
                } else {
                    serde_json::to_string(&doc)
                }
                .expect("serialise");
                let items = frame_in(&text, chunk, 1 << 20);
                let want: Vec<String> = records
                    .iter()
                    .map(|r| serde_json::to_string(r).expect("serialise"))
                    .collect();
                prop_assert_eq!(items, want);
            }

            /// Any bytes: framing ends, every item is one non-empty line, and reading in chunks
            /// changes nothing.
            #[test]
            fn any_text_is_framed_into_lines(
                text in "[\\[\\]{}\",:\\\\ \n\ra1\u{e9}]{0,60}",
                chunk in 1usize..9,
            ) {
                let items = frame_in(&text, usize::MAX, 1 << 20);
                for item in &items {
                    let body = item.strip_prefix('!').unwrap_or(item);
                    prop_assert!(!body.is_empty());
                    prop_assert!(!item.contains('\n') && !item.contains('\r'), "{:?}", item);
                }
                prop_assert_eq!(frame_in(&text, chunk, 1 << 20), items);
            }
        }
    }
}
