//! JSON lines: a stream framed at newlines into batches of items (a line longer than the maximum
//! comes in pieces); a delivery envelope met on a line of its own gives its records.

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use super::codec::{Frame, LineCodec};
use super::envelope::{MAX_RECORD, Piece};
use super::{BOM, Batch, Item, ReadOptions, Reader};

/// Bytes a batch holds at most (beyond its last item): pieces of over-long lines are up to
/// `max-line-bytes` each, and a batch of them, counted only by items, could hold hundreds of
/// megabytes (an endless line, such as `/dev/zero`, would fill memory).
pub(super) const BATCH_BYTES: usize = 1 << 20;

pub(super) async fn read_lines(
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
                        && super::envelope::looks_like_envelope(&line) =>
                {
                    let pieces = super::envelope::expand(&line, MAX_RECORD.max(opts.max_line));
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
