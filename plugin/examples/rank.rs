//! Development aid: scores a JSON-lines file natively and writes one TSV row per event
//! (`line score novelty cold campaign_events field=value principal`) for analysis.
//!
//! `cargo run --release -p oddity-engine --example rank -- EVENTS.jsonl [CONFIG.toml] > scores.tsv`

use std::io::{BufRead, Write};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let events = std::fs::File::open(&args[1])?;
    let config = match args.get(2) {
        Some(p) => std::fs::read_to_string(p)?,
        None => String::new(),
    };
    let mut engine = oddity_engine::Engine::new(&config)?;
    let start = std::time::Instant::now();
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let mut n = 0;
    for (i, line) in std::io::BufReader::new(events).lines().enumerate() {
        let line = line?;
        n += 1;
        match engine.score_line(line.as_bytes()) {
            Ok(r) => writeln!(
                out,
                "{}\t{:.6}\t{:.3}\t{}\t{}\t{}={}\t{}",
                i + 1,
                r.score,
                r.novelty,
                u8::from(r.cold),
                r.campaign.as_ref().map_or(0, |c| c.events),
                r.most_novel.field,
                r.most_novel.value,
                r.principal
            )?,
            Err(e) => writeln!(out, "{}\t0\t0\t1\t0\terror={e}\t-", i + 1)?,
        }
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "{n} events in {secs:.3}s ({:.0}/s); {:?}",
        n as f64 / secs,
        engine.stats()
    );
    Ok(())
}
