//! Development aid: times judging natively. Reads a JSON-lines file into memory, runs it
//! through `Engine::judge` in batches of 256 lines, prints events/s and the notes' size, and
//! writes the notes to NOTES when given (to compare two builds' verdicts byte for byte).
//!
//! `cargo run --release -p oddity-engine --example annotate -- EVENTS.jsonl [NOTES]`

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: annotate EVENTS.jsonl")?;
    let notes_path = std::env::args().nth(2);
    let data = std::fs::read(&path)?;
    let mut batches = Vec::new();
    let mut start = 0;
    let mut count = 0;
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' {
            count += 1;
            if count % 256 == 0 {
                batches.push(&data[start..=i]);
                start = i + 1;
            }
        }
    }
    batches.push(&data[start..]);
    let mut engine = oddity_engine::Engine::new("")?;
    let t = std::time::Instant::now();
    let mut out_bytes = 0;
    let mut notes = Vec::new();
    for batch in &batches {
        let judged = engine.judge(oddity_engine::Batch::Lines(batch))?;
        out_bytes += judged.notes.len();
        if notes_path.is_some() {
            notes.extend_from_slice(&judged.notes);
        }
    }
    let secs = t.elapsed().as_secs_f64();
    if let Some(p) = notes_path {
        std::fs::write(p, notes)?;
    }
    eprintln!(
        "{count} events, {:.1} MB in, {:.1} MB of notes, {secs:.3} s, {:.0} events/s",
        data.len() as f64 / 1e6,
        out_bytes as f64 / 1e6,
        count as f64 / secs
    );
    Ok(())
}
