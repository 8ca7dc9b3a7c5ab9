//! Reading scored files, shared by `oddity top` and `oddity report`: lines of any length,
//! gzip, event times, the ranking by risk, short principal names.

use std::cmp::Ordering;
use std::io::{BufRead, BufReader, Read};

/// Longest scored line read; a longer one is counted and skipped.
pub const MAX_LINE: usize = 64 << 20;

/// One scored input, plain or gzip (by its magic bytes), as buffered text.
pub fn open<'a>(input: impl Read + 'a) -> std::io::Result<Box<dyn BufRead + 'a>> {
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let gzip = reader.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gzip {
        let decoder = flate2::bufread::MultiGzDecoder::new(reader);
        Box::new(BufReader::with_capacity(1 << 20, decoder))
    } else {
        Box::new(reader)
    })
}

/// Reads one line (without its newline) into `line`; `Some(false)` when it was longer than
/// `max` (the rest is skipped), `None` at the end of the input.
pub fn read_line(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<bool>> {
    line.clear();
    let mut fits = true;
    let mut any = false;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(any.then_some(fits));
        }
        any = true;
        let (chunk, done) = match memchr(buf) {
            Some(i) => (&buf[..i], i + 1),
            None => (buf, buf.len()),
        };
        if fits && line.len() + chunk.len() <= max {
            line.extend_from_slice(chunk);
        } else {
            fits = false;
            line.clear();
        }
        let ended = done > chunk.len();
        reader.consume(done);
        if ended {
            return Ok(Some(fits));
        }
    }
}

fn memchr(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\n')
}

/// The time of a `--since` flag: an event time as [`parse_time`] reads it, or a date (its
/// midnight, UTC).
pub fn parse_since(text: &str) -> anyhow::Result<f64> {
    parse_time(text)
        .or_else(|| parse_time(&format!("{text}T00:00:00Z")))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--since: \"{text}\" is not a time such as 2024-03-05 or 2024-03-05T08:00:00Z"
            )
        })
}

/// Seconds since the epoch from an event time: RFC 3339, a date-time without offset (taken as
/// UTC), or epoch seconds or milliseconds.
pub fn parse_time(text: &str) -> Option<f64> {
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Some(t.as_millisecond() as f64 / 1000.0);
    }
    if let Ok(dt) = text.parse::<jiff::civil::DateTime>()
        && let Ok(t) = jiff::tz::TimeZone::UTC.to_timestamp(dt)
    {
        return Some(t.as_millisecond() as f64 / 1000.0);
    }
    let n: f64 = text.trim().parse().ok()?;
    if !n.is_finite() {
        return None;
    }
    Some(if n.abs() >= 1e11 { n / 1000.0 } else { n })
}

/// Greater ranks higher: by risk, then score; the earlier event wins ties. `oddity top` ranks
/// by it too, so that its table and the report's agree.
pub fn by_risk(a: (f64, f64, u64), b: (f64, f64, u64)) -> Ordering {
    a.0.total_cmp(&b.0)
        .then(a.1.total_cmp(&b.1))
        .then(b.2.cmp(&a.2))
}

/// The principal without its identity-type prefix and ARN boilerplate.
pub fn short_principal(p: &str) -> &str {
    let p = p.split_once(' ').map_or(p, |(_, rest)| rest);
    p.rsplit_once(":user/")
        .or_else(|| p.rsplit_once(":role/"))
        .map_or(p, |(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded() {
        let text = b"short\nthis one is far too long\n\nlast";
        let mut r = BufReader::with_capacity(4, &text[..]);
        let mut line = Vec::new();
        let mut got = Vec::new();
        while let Some(fits) = read_line(&mut r, &mut line, 10).expect("read") {
            got.push((fits, String::from_utf8(line.clone()).expect("utf-8")));
        }
        assert_eq!(
            got,
            [
                (true, "short".to_owned()),
                (false, String::new()),
                (true, String::new()),
                (true, "last".to_owned())
            ]
        );
    }
}
