//! The parse-only reference: the floor of any JSON-annotating log filter, to measure oddity
//! against in the same run (`bench/throughput.sh`).
//!
//! Reads JSON lines on standard input; for each line parses the whole document with
//! `serde_json` into a `Value`, takes the fields oddity's CloudTrail profile reads, and writes the
//! line back with a constant annotation spliced in before the closing brace. Single-threaded,
//! buffered I/O, no scoring. A line that is not a JSON object is written unchanged.

use std::io::{BufRead, BufWriter, Write};

use serde_json::Value;

/// The paths the built-in CloudTrail profile reads.
const PATHS: &[&[&str]] = &[
    &["userIdentity", "type"],
    &["userIdentity", "arn"],
    &["userIdentity", "sessionContext", "sessionIssuer", "arn"],
    &["userIdentity", "invokedBy"],
    &["eventSource"],
    &["eventName"],
    &["errorCode"],
    &["sourceIPAddress"],
    &["userAgent"],
    &["requestParameters", "bucketName"],
    &["eventTime"],
    &["eventID"],
];

fn main() -> std::io::Result<()> {
    let stdin = std::io::stdin();
    let mut input = std::io::BufReader::with_capacity(1 << 20, stdin.lock());
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    let mut line = Vec::new();
    let mut found = 0u64;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        match serde_json::from_slice::<Value>(text) {
            Ok(v @ Value::Object(_)) => {
                for path in PATHS {
                    let mut at = &v;
                    for key in *path {
                        at = &at[*key];
                    }
                    if at.as_str().is_some() {
                        found += 1;
                    }
                }
                let end = text.iter().rposition(|&b| b == b'}').unwrap_or(text.len());
                out.write_all(&text[..end])?;
                out.write_all(b",\"novelty\":{\"score\":0.5}}\n")?;
            }
            _ => {
                out.write_all(text)?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()?;
    eprintln!("parse-reference: {found} field values found");
    Ok(())
}
