//! `oddity report`: a scored stream as one self-contained HTML page for an analyst.
//!
//! The page opens offline (inline SVG and CSS, a few lines of inline script, no fonts or
//! requests) and answers, in this order: which principal is doing something new (the campaigns
//! at a glance), how novel everything was over time (the plots), which events were the most
//! novel and why (the table, with link-ready event ids), how each campaign unfolded (a timeline
//! per campaign), and who the principals behind them are.
//!
//! # Layout
//! - this file: reading the inputs (files or standard input, plain or gzip) line by line, with
//!   a maximum line length, and writing the page.
//! - [`collect`]: the one pass over the stream, in bounded memory.
//! - [`plot`]: the SVG plots (plotters).
//! - [`page`]: what the template shows, and the rendering (minijinja, `template.html`).

pub mod collect;
pub mod page;
pub mod plot;

use std::io::{BufRead, Read, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::annotation;
use crate::cli::ReportArgs;
use crate::scored;
use collect::Collector;

/// What a report run did, as its one-line summary.
#[derive(Debug)]
pub struct Done {
    pub lines: u64,
    pub scored: u64,
    pub campaigns: usize,
    pub output: String,
    pub bytes: usize,
    pub elapsed: Duration,
}

impl std::fmt::Display for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "oddity report: {} lines ({} scored), {} campaigns; wrote {} ({} KiB) in {:.2} s",
            self.lines,
            self.scored,
            self.campaigns,
            self.output,
            self.bytes.div_ceil(1024),
            self.elapsed.as_secs_f64()
        )
    }
}

/// Reads the scored streams named in `args` and writes the report.
pub fn run(args: &ReportArgs) -> anyhow::Result<Done> {
    let start = Instant::now();
    let since = args
        .since
        .as_deref()
        .map(collect::parse_since)
        .transpose()?;
    let mut collector = Collector::new(args.top, since);
    let mut sources: Vec<String> = Vec::new();
    let stdin_only = [PathBuf::from("-")];
    let paths = if args.paths.is_empty() {
        &stdin_only[..]
    } else {
        &args.paths[..]
    };
    for p in paths {
        if p.as_os_str() == "-" {
            sources.push("<stdin>".to_owned());
            scan(std::io::stdin().lock(), &args.key, &mut collector).context("standard input")?;
        } else {
            sources.push(p.display().to_string());
            let f = fs_err::File::open(p)?;
            scan(f, &args.key, &mut collector).with_context(|| p.display().to_string())?;
        }
    }
    let collected = collector.finish();
    let page = page::build(&collected, args, &sources)?;
    let html = page::render(&page)?;
    let output = if args.output.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(html.as_bytes())
            .and_then(|()| out.flush())
            .context("writing the report to standard output")?;
        "standard output".to_owned()
    } else {
        write_file(&args.output, html.as_bytes())?;
        args.output.display().to_string()
    };
    Ok(Done {
        lines: collected.lines,
        scored: collected.scored,
        campaigns: collected.campaigns.len(),
        output,
        bytes: html.len(),
        elapsed: start.elapsed(),
    })
}

/// Writes beside the target and renames, so a browser never sees half a report.
fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report.html".to_owned());
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    fs_err::write(&tmp, bytes)?;
    fs_err::rename(&tmp, path)?;
    Ok(())
}

/// Reads one input, decompressing gzip (by its magic bytes), into the collector.
fn scan(input: impl Read, key: &str, collector: &mut Collector) -> anyhow::Result<()> {
    scan_lines(scored::open(input)?, key, collector)
}

fn scan_lines(
    mut reader: impl BufRead,
    key: &str,
    collector: &mut Collector,
) -> anyhow::Result<()> {
    let mut line = Vec::new();
    while let Some(fits) = scored::read_line(&mut reader, &mut line, scored::MAX_LINE)? {
        if !fits {
            collector.too_long();
            continue;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match annotation::read(&line, key) {
            Some(note) => collector.add(&line, note),
            None => collector.unscored(),
        }
    }
    Ok(())
}
