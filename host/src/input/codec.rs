//! Newline-delimited framing with a maximum line length, over bytes (not strings: a line that is
//! not UTF-8 is still a line, and is passed through).
//!
//! The maximum bounds memory. A longer line is not an error that ends the stream: it is handed
//! on in pieces of at most the maximum, which the pipeline writes through unchanged, so one input
//! line still gives one output line.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::Decoder;

/// One frame of input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A whole line, without its `\n` (a trailing `\r` is kept; the engine ignores it).
    Line(Bytes),
    /// A piece of a line longer than the maximum; `last` ends the line.
    Long { piece: Bytes, last: bool },
}

/// The codec. `max` is the longest line, in bytes, that is framed whole.
#[derive(Debug)]
pub struct LineCodec {
    max: usize,
    /// Bytes of the buffer already searched for `\n`.
    scanned: usize,
    /// Inside a line longer than `max`.
    in_long: bool,
}

impl LineCodec {
    pub fn new(max: usize) -> LineCodec {
        LineCodec {
            max: max.max(1),
            scanned: 0,
            in_long: false,
        }
    }
}

impl Decoder for LineCodec {
    type Item = Frame;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, std::io::Error> {
        let limit = buf.len().min(self.max.saturating_add(1));
        if let Some(i) = memchr::memchr(b'\n', &buf[self.scanned.min(limit)..limit]) {
            let i = self.scanned.min(limit) + i;
            let mut line = buf.split_to(i + 1);
            line.truncate(i);
            self.scanned = 0;
            return Ok(Some(if std::mem::take(&mut self.in_long) {
                Frame::Long {
                    piece: line.freeze(),
                    last: true,
                }
            } else {
                Frame::Line(line.freeze())
            }));
        }
        if buf.len() > self.max {
            // No newline within the maximum: hand on a piece, keep reading the same line.
            let piece = buf.split_to(self.max).freeze();
            self.scanned = 0;
            self.in_long = true;
            return Ok(Some(Frame::Long { piece, last: false }));
        }
        self.scanned = buf.len();
        Ok(None)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, std::io::Error> {
        if let Some(frame) = self.decode(buf)? {
            return Ok(Some(frame));
        }
        self.scanned = 0;
        if buf.is_empty() {
            // A long line that ended exactly at a piece boundary and end of input still needs
            // its end marked.
            if std::mem::take(&mut self.in_long) {
                return Ok(Some(Frame::Long {
                    piece: Bytes::new(),
                    last: true,
                }));
            }
            return Ok(None);
        }
        let rest = buf.split().freeze();
        Ok(Some(if std::mem::take(&mut self.in_long) {
            Frame::Long {
                piece: rest,
                last: true,
            }
        } else {
            Frame::Line(rest)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[u8], max: usize, chunk: usize) -> Vec<Frame> {
        let mut codec = LineCodec::new(max);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for part in input.chunks(chunk.max(1)) {
            buf.extend_from_slice(part);
            while let Some(f) = codec.decode(&mut buf).expect("decode") {
                out.push(f);
            }
        }
        while let Some(f) = codec.decode_eof(&mut buf).expect("decode") {
            out.push(f);
        }
        out
    }

    fn line(s: &str) -> Frame {
        Frame::Line(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn splits_lines_in_any_chunking() {
        for chunk in [1, 2, 3, 7, 100] {
            assert_eq!(
                frames(b"a\n\nbc\r\nd", 10, chunk),
                vec![line("a"), line(""), line("bc\r"), line("d")]
            );
        }
    }

    #[test]
    fn long_lines_come_in_pieces_and_the_stream_goes_on() {
        for chunk in [1, 3, 100] {
            let got = frames(b"0123456789\nok\n", 4, chunk);
            let pieces: Vec<u8> = got
                .iter()
                .take_while(|f| matches!(f, Frame::Long { .. }))
                .flat_map(|f| match f {
                    Frame::Long { piece, .. } => piece.to_vec(),
                    Frame::Line(_) => Vec::new(),
                })
                .collect();
            assert_eq!(pieces, b"0123456789", "chunk {chunk}");
            let lasts = got
                .iter()
                .filter(|f| matches!(f, Frame::Long { last: true, .. }))
                .count();
            assert_eq!(lasts, 1, "chunk {chunk}");
            assert_eq!(got.last(), Some(&line("ok")));
        }
        // A line of exactly the maximum is whole.
        assert_eq!(frames(b"0123\n", 4, 100), vec![line("0123")]);
        // A long last line without a newline still ends.
        let got = frames(b"01234567", 4, 2);
        assert!(
            matches!(got.last(), Some(Frame::Long { last: true, .. })),
            "{got:?}"
        );
    }
}
