//! Makes a ~1 KB-per-event CloudTrail stream from a generated one (`bench/throughput.sh`):
//! drops `responseElements`, `additionalEventData`, `tlsDetails` and `resources`, which
//! oddity does not read. JSON lines in, JSON lines out. With `--unique-agents`, every event
//! also gets a user agent of its own (a million distinct agents for a million events), to fill
//! the model up to its node cap.

use std::io::{BufRead, BufWriter, Write};

fn main() -> std::io::Result<()> {
    let stdin = std::io::stdin();
    let input = std::io::BufReader::with_capacity(1 << 20, stdin.lock());
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    let unique = std::env::args().any(|a| a == "--unique-agents");
    for (n, line) in input.lines().enumerate() {
        let line = line?;
        let mut v: serde_json::Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(_) => continue,
        };
        if let Some(o) = v.as_object_mut() {
            for k in [
                "responseElements",
                "additionalEventData",
                "tlsDetails",
                "resources",
            ] {
                o.remove(k);
            }
            if unique {
                // Letters past `f`, so that no normaliser sees an id to mask.
                let mut name = String::from("agent-");
                let mut k = n;
                loop {
                    name.push(char::from(b'g' + (k % 20) as u8));
                    k /= 20;
                    if k == 0 {
                        break;
                    }
                }
                o.insert("userAgent".into(), format!("{name}/1.0").into());
            }
        }
        serde_json::to_writer(&mut out, &v)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}
