//! The observations [`crate::Engine::extract`] reads from a batch, as bytes that
//! [`crate::Engine::judge`] of another engine (another instance of the component, on another
//! core) judges: a batch judged in two stages.
//!
//! Layout, all integers little-endian:
//! - header: the magic `ODDX1`, the configuration fingerprint (u32 length, UTF-8), the number
//!   of lines (u32);
//! - per line, a tag byte: `0` observed, then one string per profile field, then the optional
//!   time and the optional id (a byte `0`/`1`, then the string); `1` not UTF-8; `2` not JSON
//!   and `4` field missing (`5` duplicate), each followed by its reason (a string); `3` not an
//!   object.
//! - a string is a u32 length and that many bytes of UTF-8.
//!
//! The decoder trusts nothing: lengths are checked against the input, strings are validated as
//! UTF-8, and a fingerprint other than the engine's is refused (the two engines must read the
//! same fields the same way).

use std::borrow::Cow;

use crate::engine::{BatchError, Extracted, ScoreError};

const MAGIC: &[u8] = b"ODDX1";

const OBSERVED: u8 = 0;
const NOT_UTF8: u8 = 1;
const NOT_JSON: u8 = 2;
const NOT_OBJECT: u8 = 3;
const FIELD_MISSING: u8 = 4;
const DUPLICATE: u8 = 5;

/// Writes the observations of a batch.
#[derive(Debug)]
pub struct Writer {
    out: Vec<u8>,
    count_at: usize,
    lines: u32,
}

impl Writer {
    pub fn new(fingerprint: &str, capacity: usize) -> Writer {
        let mut out = Vec::with_capacity(capacity);
        out.extend_from_slice(MAGIC);
        string(&mut out, fingerprint);
        let count_at = out.len();
        out.extend_from_slice(&0u32.to_le_bytes());
        Writer {
            out,
            count_at,
            lines: 0,
        }
    }

    pub fn push(&mut self, line: &Result<Extracted<'_>, ScoreError>) {
        self.lines += 1;
        let out = &mut self.out;
        match line {
            Ok(e) => {
                out.push(OBSERVED);
                for v in &e.values {
                    string(out, v);
                }
                for o in [&e.time, &e.id] {
                    match o {
                        Some(s) => {
                            out.push(1);
                            string(out, s);
                        }
                        None => out.push(0),
                    }
                }
            }
            Err(ScoreError::NotUtf8) => out.push(NOT_UTF8),
            Err(ScoreError::NotJson(m)) => {
                out.push(NOT_JSON);
                string(out, m);
            }
            Err(ScoreError::NotObject) => out.push(NOT_OBJECT),
            Err(ScoreError::FieldMissing(m)) => {
                out.push(FIELD_MISSING);
                string(out, m);
            }
            Err(ScoreError::Duplicate(m)) => {
                out.push(DUPLICATE);
                string(out, m);
            }
        }
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.out[self.count_at..self.count_at + 4].copy_from_slice(&self.lines.to_le_bytes());
        self.out
    }
}

fn string(out: &mut Vec<u8>, s: &str) {
    // A value longer than 4 GiB cannot come from a line the host accepted (and the engine
    // truncates values to the field's maximum length long before).
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A cursor over encoded observations.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| format!("truncated at byte {}", self.at))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn str(&mut self) -> Result<&'a str, String> {
        let n = self.u32()? as usize;
        let at = self.at;
        std::str::from_utf8(self.take(n)?)
            .map_err(|_| format!("a string at byte {at} is not UTF-8"))
    }

    fn option(&mut self) -> Result<Option<&'a str>, String> {
        match self.byte()? {
            0 => Ok(None),
            1 => self.str().map(Some),
            b => Err(format!("bad option tag {b} at byte {}", self.at - 1)),
        }
    }
}

/// Decodes the observations of a batch read by an engine with this `fingerprint` and `fields`
/// profile fields: one entry per line, borrowing from `bytes`.
pub fn decode<'a>(
    bytes: &'a [u8],
    fingerprint: &str,
    fields: usize,
) -> Result<Vec<Result<Extracted<'a>, ScoreError>>, BatchError> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(MAGIC.len()).ok() != Some(MAGIC) {
        return Err(BatchError::Corrupt(
            "not extracted observations (bad magic)".into(),
        ));
    }
    let theirs = r.str().map_err(BatchError::Corrupt)?;
    if theirs != fingerprint {
        return Err(BatchError::Foreign(format!(
            "observations extracted with configuration {theirs}, this engine has {fingerprint}"
        )));
    }
    lines(&mut r, fields).map_err(BatchError::Corrupt)
}

/// The lines after the header.
fn lines<'a>(
    r: &mut Reader<'a>,
    fields: usize,
) -> Result<Vec<Result<Extracted<'a>, ScoreError>>, String> {
    let bytes = r.bytes;
    let lines = r.u32()? as usize;
    // Every line takes at least one byte: a count beyond the input is a lie, not a reason to
    // allocate.
    let mut out = Vec::with_capacity(lines.min(bytes.len() - r.at));
    for _ in 0..lines {
        let line = match r.byte()? {
            OBSERVED => {
                let values = (0..fields)
                    .map(|_| r.str().map(Cow::Borrowed))
                    .collect::<Result<Vec<_>, _>>()?;
                let time = r.option()?.map(Cow::Borrowed);
                let id = r.option()?.map(Cow::Borrowed);
                Ok(Extracted { values, time, id })
            }
            NOT_UTF8 => Err(ScoreError::NotUtf8),
            NOT_JSON => Err(ScoreError::NotJson(r.str()?.to_owned())),
            NOT_OBJECT => Err(ScoreError::NotObject),
            FIELD_MISSING => Err(ScoreError::FieldMissing(r.str()?.to_owned())),
            DUPLICATE => Err(ScoreError::Duplicate(r.str()?.to_owned())),
            t => return Err(format!("bad line tag {t} at byte {}", r.at - 1)),
        };
        out.push(line);
    }
    if r.at != bytes.len() {
        return Err(format!(
            "{} bytes after the last of {lines} lines",
            bytes.len() - r.at
        ));
    }
    Ok(out)
}
