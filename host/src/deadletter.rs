//! The dead-letter file: where bad lines go instead of the output, under the `dead-letter`
//! policy (`[bad-lines]`, `--dead-letter FILE`).
//!
//! A *bad* line is one that is not an event at all: empty (or only whitespace), not UTF-8, not
//! JSON, JSON but not an object, or longer than `max-line-bytes`. A JSON object that lacks an
//! observation field is an event, and stays in the output with its `field-missing` note; so do
//! the lines of a batch the plugin failed on. Under the default `pass` policy bad lines are
//! written to the output unchanged.
//!
//! Each dead-lettered line becomes one JSON line, appended to the file:
//!
//! ```json
//! {"source":"app.log","line":7,"reason":"not-json","text":"GET /index.html","bytes":15,"detail":"not JSON: expected value at line 1 column 1"}
//! ```
//!
//! `text` holds the line exactly (without its `\n` or `\r\n`) when it is UTF-8 and was read
//! whole; otherwise `base64` holds its bytes (a line longer than `max-line-bytes` arrives in
//! pieces and is encoded as it streams, so memory stays bounded). `line` is the line number, or
//! the record number in a CloudTrail envelope or array. So every input line is in exactly one
//! of the output and the dead-letter file, and the file says where each of its lines came from.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::annotation::LineError;
use crate::input::Frame;

/// What to do with bad lines.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BadLinePolicy {
    /// Write them to the output unchanged.
    #[default]
    Pass,
    /// Append them to this file instead of writing them to the output.
    DeadLetter(PathBuf),
}

/// Whether `error` makes a line bad (not an event), rather than an event that was not scored.
pub fn is_bad(error: &LineError) -> bool {
    matches!(
        error,
        LineError::Empty
            | LineError::NotUtf8
            | LineError::NotJson(_)
            | LineError::NotObject
            | LineError::TooLong(_)
    )
}

/// The open dead-letter file and the records of the current batch.
pub struct DeadLetter {
    name: String,
    /// The file, when it is one (reopened on SIGHUP).
    path: Option<PathBuf>,
    sink: Box<dyn AsyncWrite + Unpin + Send>,
    /// Records not yet written.
    buf: Vec<u8>,
    /// Inside an over-long line: up to two bytes not yet base64-encoded, and its length so far.
    carry: Option<(Vec<u8>, usize)>,
    lines: u64,
}

impl std::fmt::Debug for DeadLetter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetter")
            .field("name", &self.name)
            .field("lines", &self.lines)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Head<'a> {
    source: &'a str,
    line: u64,
    reason: &'a str,
}

impl DeadLetter {
    /// Opens `path` for appending, creating it.
    pub async fn open(path: &Path) -> anyhow::Result<DeadLetter> {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await
            .map_err(|e| anyhow::anyhow!("dead-letter file {}: {e}", path.display()))?;
        let mut dl = DeadLetter::new(path.display().to_string(), Box::new(file));
        dl.path = Some(path.to_owned());
        Ok(dl)
    }

    /// A dead-letter file writing to `sink`.
    pub fn new(name: String, sink: Box<dyn AsyncWrite + Unpin + Send>) -> DeadLetter {
        DeadLetter {
            name,
            path: None,
            sink,
            buf: Vec::new(),
            carry: None,
            lines: 0,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Lines dead-lettered so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Takes the item (`frame`, with `error` when the line was judged) if it is (part of) a bad
    /// line: records it and returns true; the caller then leaves it out of the output. Every
    /// piece of an over-long line is taken; its record is complete with the last piece.
    pub fn take(
        &mut self,
        source: &str,
        number: u64,
        frame: &Frame,
        error: Option<&LineError>,
    ) -> bool {
        match frame {
            Frame::Line(line) => {
                let Some(error) = error.filter(|e| is_bad(e)) else {
                    return false;
                };
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                self.head(source, number, error.kind());
                match std::str::from_utf8(line) {
                    Ok(text) => {
                        self.buf.extend_from_slice(b",\"text\":");
                        json(&mut self.buf, text);
                    }
                    Err(_) => {
                        self.buf.extend_from_slice(b",\"base64\":\"");
                        base64(line, &mut self.buf);
                        self.buf.push(b'"');
                    }
                }
                self.tail(line.len(), error);
            }
            Frame::Long { piece, last } => {
                let (mut pending, mut len) = match self.carry.take() {
                    Some(carry) => carry,
                    None => {
                        self.head(source, number, "too-long");
                        self.buf.extend_from_slice(b",\"base64\":\"");
                        (Vec::with_capacity(3), 0)
                    }
                };
                len += piece.len();
                // Base64 encodes groups of three bytes: complete the group left from the
                // previous piece, encode the whole groups, and keep the rest for the next.
                let mut piece: &[u8] = piece;
                if !pending.is_empty() {
                    let take = (3 - pending.len()).min(piece.len());
                    pending.extend_from_slice(&piece[..take]);
                    piece = &piece[take..];
                    if pending.len() == 3 {
                        base64(&pending, &mut self.buf);
                        pending.clear();
                    }
                }
                let cut = piece.len() - piece.len() % 3;
                base64(&piece[..cut], &mut self.buf);
                pending.extend_from_slice(&piece[cut..]);
                if *last {
                    base64(&pending, &mut self.buf);
                    self.buf.push(b'"');
                    let error = error.cloned().unwrap_or(LineError::TooLong(len));
                    self.tail(len, &error);
                } else {
                    self.carry = Some((pending, len));
                }
            }
        }
        true
    }

    fn head(&mut self, source: &str, line: u64, reason: &str) {
        let at = self.buf.len();
        if serde_json::to_writer(
            &mut self.buf,
            &Head {
                source,
                line,
                reason,
            },
        )
        .is_ok()
        {
            // Reopen the object to add the line.
            self.buf.pop();
        } else {
            self.buf.truncate(at);
            self.buf.push(b'{');
        }
    }

    fn tail(&mut self, bytes: usize, error: &LineError) {
        self.buf
            .extend_from_slice(format!(",\"bytes\":{bytes},\"detail\":").as_bytes());
        json(&mut self.buf, &error.to_string());
        self.buf.extend_from_slice(b"}\n");
        self.lines += 1;
    }

    /// Writes the records so far to the file.
    pub async fn write_out(&mut self) -> anyhow::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.sink
            .write_all(&self.buf)
            .await
            .map_err(|e| anyhow::anyhow!("writing the dead-letter file {}: {e}", self.name))?;
        self.buf.clear();
        Ok(())
    }

    /// Writes out what is pending and opens its file again by name (after a rotation: the
    /// renamed file is left to its new name, a new one is created).
    pub async fn reopen(&mut self) -> anyhow::Result<()> {
        self.finish().await?;
        if let Some(path) = self.path.clone() {
            *self = DeadLetter {
                buf: std::mem::take(&mut self.buf),
                carry: self.carry.take(),
                lines: self.lines,
                ..DeadLetter::open(&path).await?
            };
        }
        Ok(())
    }

    /// Writes and flushes everything.
    pub async fn finish(&mut self) -> anyhow::Result<()> {
        self.write_out().await?;
        self.sink
            .flush()
            .await
            .map_err(|e| anyhow::anyhow!("writing the dead-letter file {}: {e}", self.name))
    }
}

fn json(out: &mut Vec<u8>, text: &str) {
    if serde_json::to_writer(&mut *out, text).is_err() {
        out.extend_from_slice(b"\"\"");
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
fn base64(bytes: &[u8], out: &mut Vec<u8>) {
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn encoded(bytes: &[u8]) -> String {
        let mut out = Vec::new();
        base64(bytes, &mut out);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn base64_matches_rfc_4648() {
        for (plain, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(encoded(plain.as_bytes()), want);
        }
    }

    fn records(dl: &DeadLetter) -> Vec<serde_json::Value> {
        dl.buf
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).expect("json"))
            .collect()
    }

    #[test]
    fn bad_lines_are_taken_and_events_are_not() {
        let mut dl = DeadLetter::new("dl".into(), Box::new(tokio::io::sink()));
        let line = |s: &[u8]| Frame::Line(Bytes::copy_from_slice(s));
        assert!(!dl.take("f", 1, &line(b"{}"), None));
        assert!(!dl.take(
            "f",
            2,
            &line(b"{}"),
            Some(&LineError::FieldMissing("action".into()))
        ));
        assert!(!dl.take("f", 3, &line(b"{}"), Some(&LineError::Plugin("x".into()))));
        assert!(dl.take(
            "f",
            4,
            &line(b"not \"json\"\r"),
            Some(&LineError::NotJson("oops".into()))
        ));
        assert!(dl.take("f", 5, &line(b"\xff\xfe"), Some(&LineError::NotUtf8)));
        assert!(dl.take("f", 6, &line(b""), Some(&LineError::Empty)));
        let got = records(&dl);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0]["source"], "f");
        assert_eq!(got[0]["line"], 4);
        assert_eq!(got[0]["reason"], "not-json");
        assert_eq!(
            got[0]["text"], "not \"json\"",
            "the line without its \\r\\n"
        );
        assert_eq!(got[0]["bytes"], 10);
        assert_eq!(got[0]["detail"], "not JSON: oops");
        assert_eq!(got[1]["base64"], "//4=");
        assert_eq!(got[1]["reason"], "not-utf8");
        assert_eq!(got[2]["text"], "");
        assert_eq!(dl.lines(), 3);
    }

    #[test]
    fn a_long_line_streams_as_base64_in_any_pieces() {
        let long: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for size in [1, 2, 3, 4, 7, 999, 1000] {
            let mut dl = DeadLetter::new("dl".into(), Box::new(tokio::io::sink()));
            let pieces: Vec<&[u8]> = long.chunks(size).collect();
            for (i, p) in pieces.iter().enumerate() {
                let last = i + 1 == pieces.len();
                let error = LineError::TooLong(long.len());
                assert!(dl.take(
                    "f",
                    9,
                    &Frame::Long {
                        piece: Bytes::copy_from_slice(p),
                        last
                    },
                    last.then_some(&error)
                ));
            }
            let got = records(&dl);
            assert_eq!(got.len(), 1, "pieces of {size}");
            assert_eq!(got[0]["base64"], encoded(&long), "pieces of {size}");
            assert_eq!(got[0]["bytes"], 1000);
            assert_eq!(got[0]["reason"], "too-long");
            assert_eq!(got[0]["line"], 9);
        }
    }
}
