//! `cloudtrail-gen`: writes a generated CloudTrail stream as JSON lines, and optionally the
//! ground-truth labels as CSV. Streams in constant memory; prints nothing but the events (and a
//! one-line summary on stderr).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use anyhow::{Context as _, Result, anyhow};
use clap::Parser;
use oddity_cloudtrail_gen::{GenConfig, generate};

/// Generate a realistic, labelled CloudTrail stream.
#[derive(Debug, Parser)]
#[command(name = "cloudtrail-gen", version, about)]
struct Args {
    /// Seed; the same seed reproduces the stream byte for byte.
    #[arg(long, default_value_t = GenConfig::default().seed)]
    seed: u64,
    /// Length of the stream in days [default: 14, or as many as --events needs].
    #[arg(long)]
    days: Option<u32>,
    /// People in the organisation.
    #[arg(long, default_value_t = GenConfig::default().humans)]
    humans: u32,
    /// Workload roles.
    #[arg(long, default_value_t = GenConfig::default().roles)]
    roles: u32,
    /// Stop after this many events (the number of days grows as needed).
    #[arg(long)]
    events: Option<u64>,
    /// Do not inject attack scenarios.
    #[arg(long)]
    no_attacks: bool,
    /// Inject only these scenarios (comma-separated names, such as `exfil-chain`). The untuned
    /// ones (`insider-snapshot`, `insider-backdoor`, `insider-trust`, `insider-cover`) are
    /// injected only when named here.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    scenarios: Vec<String>,
    /// Write labels as CSV: line,eventID,eventTime,principal,scenario,step,benign_novelty.
    #[arg(long, value_name = "FILE.csv")]
    labels: Option<PathBuf>,
    /// Output file, or `-` for stdout.
    #[arg(long, default_value = "-")]
    out: String,
}

fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n']) {
        std::borrow::Cow::Owned(format!("\"{}\"", s.replace('"', "\"\"")))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut cfg = GenConfig {
        seed: args.seed,
        humans: args.humans,
        roles: args.roles,
        attacks: !args.no_attacks,
        ..GenConfig::default()
    };
    oddity_cloudtrail_gen::check_scenarios(&args.scenarios).map_err(anyhow::Error::msg)?;
    cfg.only = args.scenarios.clone();
    cfg.days = args.days.unwrap_or(cfg.days);
    if let Some(n) = args.events {
        // Plan attacks within the span N events cover, and keep generating background beyond
        // it in case the estimate is short.
        let needed = cfg.days_for_events(n);
        cfg.days = args.days.map_or(needed, |d| d.max(needed));
        cfg.tail_days = cfg.days;
    }
    let limit = args.events.unwrap_or(u64::MAX);

    let started = Instant::now();
    // Generation and writing overlap: this thread renders events and labels into large
    // buffers, a writer thread writes them and hands the buffers back for reuse.
    let (full_tx, full_rx) = mpsc::sync_channel::<Chunk>(4);
    let (empty_tx, empty_rx) = mpsc::channel::<Chunk>();
    for _ in 0..4 {
        let _ = empty_tx.send(Chunk::default());
    }
    let (out_path, labels_path) = (args.out.clone(), args.labels.clone());
    let want_labels = labels_path.is_some();
    let writer =
        thread::spawn(move || write_all(&out_path, labels_path.as_deref(), &full_rx, &empty_tx));

    let mut stats = Stats::default();
    let mut chunk = empty_rx.recv().unwrap_or_default();
    for ev in generate(&cfg).take(usize::try_from(limit).unwrap_or(usize::MAX)) {
        stats.events += 1;
        stats.bytes += ev.json.len() as u64 + 1;
        if ev.label.scenario.is_some() {
            stats.attack_events += 1;
        }
        chunk.events.extend_from_slice(ev.json.as_bytes());
        chunk.events.push(b'\n');
        if want_labels {
            writeln!(
                chunk.labels,
                "{},{},{},{},{},{},{}",
                stats.events,
                ev.event_id(),
                ev.event_time(),
                csv_field(ev.principal()),
                ev.label.scenario.unwrap_or(""),
                ev.label.step,
                ev.label.benign_novelty.unwrap_or("")
            )?;
        }
        if chunk.events.len() >= CHUNK {
            let full = std::mem::replace(&mut chunk, empty_rx.recv().unwrap_or_default());
            if full_tx.send(full).is_err() {
                break; // the writer failed; its error is reported below
            }
        }
    }
    if !chunk.events.is_empty() {
        let _ = full_tx.send(chunk);
    }
    drop(full_tx);
    writer
        .join()
        .map_err(|_| anyhow!("writer thread panicked"))??;

    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "cloudtrail-gen: {} events ({} attack), {:.1} MB, avg {} B/event, {:.2}s, {:.0} events/s",
        stats.events,
        stats.attack_events,
        stats.bytes as f64 / 1e6,
        stats.bytes.checked_div(stats.events).unwrap_or(0),
        secs,
        stats.events as f64 / secs.max(1e-9)
    );
    Ok(())
}

/// Bytes of JSON lines per hand-off to the writer.
const CHUNK: usize = 4 << 20;

#[derive(Debug, Default)]
struct Chunk {
    events: Vec<u8>,
    labels: Vec<u8>,
}

#[derive(Debug, Default)]
struct Stats {
    events: u64,
    attack_events: u64,
    bytes: u64,
}

/// Writes chunks until the channel closes, returning each emptied chunk for reuse.
fn write_all(
    out_path: &str,
    labels_path: Option<&Path>,
    full: &mpsc::Receiver<Chunk>,
    empty: &mpsc::Sender<Chunk>,
) -> Result<()> {
    let mut out: Box<dyn Write> = if out_path == "-" {
        Box::new(io::stdout().lock())
    } else {
        Box::new(File::create(out_path).with_context(|| format!("creating {out_path}"))?)
    };
    let mut labels = match labels_path {
        Some(p) => {
            let mut f = File::create(p).with_context(|| format!("creating {}", p.display()))?;
            f.write_all(b"line,eventID,eventTime,principal,scenario,step,benign_novelty\n")
                .context("writing labels")?;
            Some(f)
        }
        None => None,
    };
    for mut chunk in full {
        out.write_all(&chunk.events).context("writing events")?;
        if let Some(f) = labels.as_mut() {
            f.write_all(&chunk.labels).context("writing labels")?;
        }
        chunk.events.clear();
        chunk.labels.clear();
        let _ = empty.send(chunk);
    }
    out.flush().context("flushing events")?;
    Ok(())
}
