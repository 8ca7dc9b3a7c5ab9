//! `oddity score`: reader → scorer → writer, in order, one output line per input line.
//!
//! - The reader task frames the sources into batches ([`crate::input`]).
//! - The extractor thread sorts each batch's lines (blank and over-long ones the host answers
//!   itself). With `staged` (the default on two cores or more) it owns a second instance of the
//!   plugin that reads the batch's observations (`extract-batch`), so the scorer's instance
//!   only judges them (`judge-extracted`) and the writer adds its notes to the lines: JSON
//!   parsing and normalising move to another core.
//! - The scorer thread owns the plugin: it scores each batch with one call, saves the state when
//!   due, and after a plugin failure restores the last good snapshot into a fresh instance.
//! - The writer task renders annotations into the original lines and writes them, writes the
//!   alerts ([`crate::alerts`]) and shows the progress ([`crate::progress`]).
//!
//! Bounded channels between the stages keep memory flat and use a second core for parsing and
//! rendering while the plugin scores. On shutdown (signal) the reader stops, batches in flight
//! are finished and written, and the state is saved; when the downstream pipe closes, the state
//! is saved and the run ends quietly.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::alerts::{AlertCounts, Alerts};
use crate::annotation::{self, LineError, Status, render};
use crate::blocking;
use crate::codec::Frame;
use crate::deadletter::{BadLinePolicy, DeadLetter};
use crate::input::{self, Batch, ReadOptions, Source};
use crate::plugin::{self, Plugin, PluginError};
use crate::problems::Problems;
use crate::progress::Progress;
use crate::settings::{Settings, StateSettings};
use crate::state::StateFile;

/// What a run did.
#[derive(Debug, Default)]
pub struct Summary {
    /// Output lines written (one per input event).
    pub events: u64,
    pub scored: u64,
    pub unscored: u64,
    /// `kind=count` of unscored lines.
    pub breakdown: String,
    /// Sources that failed, with the reason.
    pub failed_sources: Vec<String>,
    /// Plugin calls that failed and were recovered from.
    pub plugin_failures: u64,
    /// Output lines of an untrusted plugin that did not keep their event (written as input).
    pub forged: u64,
    /// Saves of the state file that failed (the previous file is intact).
    pub failed_saves: u64,
    pub highest_score: f64,
    /// Alerts written, and where, when alerts are on.
    pub alerts: Option<(AlertCounts, String)>,
    /// Bad lines written to the dead-letter file (counted in `events` too), and its name.
    pub dead_lettered: Option<(u64, String)>,
    pub elapsed: Duration,
    /// The downstream pipe closed before the end.
    pub broken_pipe: bool,
    pub interrupted: bool,
    /// `quiet` was set: no summary unless something went wrong.
    pub quiet: bool,
}

impl Summary {
    /// Whether anything went wrong that the exit code should tell.
    pub fn partial(&self) -> bool {
        !self.failed_sources.is_empty()
            || self.plugin_failures > 0
            || self.forged > 0
            || self.failed_saves > 0
    }
}

/// One scored batch: the items, per item what became of it, and what the plugin gave for the
/// items it saw, one `\n`-terminated line each, in order.
struct Scored {
    batch: Batch,
    results: Vec<Outcome>,
    output: Vec<u8>,
    /// `output` holds notes to add to the input lines (`judge-extracted`), not output lines
    /// (`annotate-batch`).
    notes: bool,
}

/// What became of one item.
enum Outcome {
    /// The plugin saw the line: its output line is the next one of [`Scored::output`].
    Plugin(Status),
    /// The host writes the line (with a note for an object, as the annotation module decides).
    Host(LineError),
    /// A piece of an over-long line that is not its last.
    Piece,
}

/// Runs the whole job; `shutdown` resolves when the run should stop early.
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Summary> {
    let start = Instant::now();
    let sources = input::expand(&settings.paths).map_err(|e| anyhow!("input: {e}"))?;
    // Writing a file that is also read would destroy it (`-o` truncates before the reading).
    for source in &sources {
        if let Source::File(input) = source
            && let Some(written) = settings
                .written_files()
                .into_iter()
                .find(|w| crate::settings::same_file(input, w.path))
        {
            bail!(
                "{} is both an input and {written}; write to another file",
                input.display()
            );
        }
    }
    let names: Arc<Vec<String>> = Arc::new(sources.iter().map(Source::name).collect());
    let mut state = settings
        .state
        .clone()
        .map(|s| (StateFile::new(s.file.clone()), s));
    let snapshot = match &mut state {
        Some((file, _)) => file
            .load()
            .with_context(|| format!("state file {}", file.path().display()))?,
        None => None,
    };
    let wasm: Vec<u8> = match &settings.plugin {
        Some(p) => plugin::read_component(p)?,
        None => plugin::EMBEDDED.to_vec(),
    };
    let (config, limits, origin) = (
        settings.engine_config.clone(),
        settings.limits,
        settings.profile_origin.clone(),
    );
    let cache = settings.cache_dir.clone();
    let state_path = state.as_ref().map(|(f, _)| f.path().display().to_string());
    let restored = snapshot.is_some();
    let plugin = tokio::task::spawn_blocking(move || {
        Plugin::load(
            &wasm,
            &config,
            snapshot.as_deref(),
            limits,
            cache.as_deref(),
        )
        .map(|p| (p, snapshot))
    })
    .await?
    .map_err(|e| match (e, state_path) {
        (PluginError::Config(m), _) => anyhow!("configuration error ({origin}): {m}"),
        (PluginError::Snapshot(m), Some(path)) => {
            anyhow!("state file {path}: {m}; not starting, and the file is left as it is")
        }
        (e, _) => anyhow::Error::new(e),
    })?;
    let (plugin, last_good) = plugin;
    if restored {
        tracing::info!(state = %state.as_ref().map(|(f, _)| f.path().display().to_string()).unwrap_or_default(), "restored the model");
    }

    let cancel = CancellationToken::new();
    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let cancel = cancel.clone();
        let interrupted = interrupted.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = shutdown => {
                    interrupted.store(true, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!("stopping: finishing the events in flight and saving the state");
                    cancel.cancel();
                }
                () = cancel.cancelled() => {}
            }
        });
    }
    let (batch_tx, batch_rx) = mpsc::channel::<Batch>(4);
    let (out_tx, out_rx) = mpsc::channel::<Scored>(4);
    let opts = ReadOptions {
        max_line: settings.max_line_bytes,
        batch: settings.batch_size,
    };
    let reader = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let mut failed = Vec::new();
            for (i, source) in sources.iter().enumerate() {
                if cancel.is_cancelled() || batch_tx.is_closed() {
                    break;
                }
                if let Err(e) = input::read_source(source, i as u32, opts, &batch_tx, &cancel).await
                {
                    tracing::error!("{e}; going on with the next input");
                    failed.push(e.to_string());
                }
            }
            failed
        })
    };
    let max_line = settings.max_line_bytes;
    // The extractor's instance is made from the scorer's (same compiled component and
    // configuration); without one, the thread only sorts the batches on their way to the
    // scorer, which then reads the observations itself (`annotate-batch`).
    let extractor = if settings.staged {
        plugin
            .sibling()
            .inspect_err(|e| {
                tracing::warn!("no second plugin instance, reading on the scorer's thread: {e}");
            })
            .ok()
    } else {
        None
    };
    let (prepared_tx, prepared_rx) = mpsc::channel::<Prepared>(4);
    let extract = std::thread::Builder::new()
        .name("oddity-extractor".into())
        .spawn(move || extract_loop(extractor, batch_rx, prepared_tx, max_line))
        .context("starting the extractor thread")?;
    let scorer = std::thread::Builder::new()
        .name("oddity-scorer".into())
        .spawn({
            let key = settings.output_key.clone();
            move || score_loop(plugin, prepared_rx, out_tx, state, last_good, &key)
        })
        .context("starting the scorer thread")?;

    let output = match &settings.output {
        Some(p) => std::fs::File::create(p)
            .and_then(|f| blocking::Writer::new(&p.display().to_string(), f))
            .with_context(|| format!("output file {}", p.display()))?,
        None => blocking::Writer::new("<stdout>", std::io::stdout())
            .context("starting the output thread")?,
    };
    let alerts = match &settings.alerts {
        Some(a) => Some(AlertOutput {
            judge: Alerts::new(a),
            sink: a.sink.open().await?,
        }),
        None => None,
    };
    let dead_letter = match &settings.bad_lines {
        BadLinePolicy::Pass => None,
        BadLinePolicy::DeadLetter(path) => Some(DeadLetter::open(path).await?),
    };
    let dead_letter_name = dead_letter.as_ref().map(|d| d.name().to_owned());
    let progress = Progress::new(Progress::wanted(settings.quiet));
    let layout = Layout {
        key: &settings.output_key,
        names: &names,
        verify: settings.plugin.is_some(),
    };
    let written = write_loop(out_rx, output, alerts, dead_letter, progress, &layout).await;
    if written.as_ref().map_or(true, |w| w.broken_pipe) {
        // Nobody reads any more: stop reading; the scorer saves what it learned.
        cancel.cancel();
    }
    let failed_sources = reader.await.context("reader task")?;
    let scorer = tokio::task::spawn_blocking(move || scorer.join())
        .await?
        .map_err(|_| anyhow!("the scorer thread panicked"))??;
    tokio::task::spawn_blocking(move || extract.join())
        .await?
        .map_err(|_| anyhow!("the extractor thread panicked"))?;
    cancel.cancel();
    let written = written?;
    Ok(Summary {
        events: written.events,
        scored: written.scored,
        unscored: written.problems.total(),
        breakdown: written.problems.breakdown(),
        failed_sources,
        plugin_failures: scorer.plugin_failures,
        forged: written.forged,
        failed_saves: scorer.failed_saves,
        highest_score: written.highest,
        alerts: settings
            .alerts
            .as_ref()
            .map(|a| (written.alerts, a.sink.name())),
        dead_lettered: dead_letter_name.map(|name| (written.dead_lettered, name)),
        elapsed: start.elapsed(),
        broken_pipe: written.broken_pipe,
        interrupted: interrupted.load(std::sync::atomic::Ordering::Relaxed),
        quiet: settings.quiet,
    })
}

#[derive(Debug, Default)]
struct ScorerReport {
    plugin_failures: u64,
    failed_saves: u64,
}

/// Keeps the last good snapshot in memory this often when there is no state file, so that a
/// plugin failure does not lose everything learned.
const CHECKPOINT_EVENTS: u64 = 1_000_000;

fn score_loop(
    mut plugin: Plugin,
    mut rx: mpsc::Receiver<Prepared>,
    tx: mpsc::Sender<Scored>,
    state: Option<(StateFile, StateSettings)>,
    mut last_good: Option<Vec<u8>>,
    key: &str,
) -> anyhow::Result<ScorerReport> {
    let mut report = ScorerReport::default();
    let mut since_save = 0u64;
    let mut last_save = Instant::now();
    let save = |plugin: &mut Plugin,
                last_good: &mut Option<Vec<u8>>,
                report: &mut ScorerReport|
     -> anyhow::Result<()> {
        let bytes = plugin.snapshot().context("taking a snapshot")?;
        if let Some((file, _)) = &state
            && let Err(e) = file.save(&bytes)
        {
            report.failed_saves += 1;
            tracing::error!(state = %file.path().display(), "saving the state failed, the previous state file is intact: {e}");
        }
        *last_good = Some(bytes);
        Ok(())
    };
    while let Some(prepared) = rx.blocking_recv() {
        let scored = score_batch(&mut plugin, prepared, key, &mut last_good, &mut report)?;
        since_save += scored.results.len() as u64;
        if tx.blocking_send(scored).is_err() {
            break;
        }
        let due = match &state {
            Some((_, s)) => {
                s.every_events.is_some_and(|n| since_save >= n)
                    || s.every.is_some_and(|t| last_save.elapsed() >= t)
            }
            None => since_save >= CHECKPOINT_EVENTS,
        };
        if due {
            save(&mut plugin, &mut last_good, &mut report)?;
            since_save = 0;
            last_save = Instant::now();
        }
    }
    if state.is_some() {
        save(&mut plugin, &mut last_good, &mut report)?;
    }
    if let Ok([events, nodes, max_nodes, principals, prunes]) = plugin.stats() {
        tracing::info!(
            events,
            nodes,
            max_nodes,
            principals,
            prunes,
            "the model at the end of the run"
        );
    }
    Ok(report)
}

/// A batch on its way to the scorer: what the host already decided for each item, the lines
/// for the plugin and, when staged, their observations.
struct Prepared {
    batch: Batch,
    results: Vec<Outcome>,
    /// The items whose lines are in `buf`, in order.
    sent: Vec<usize>,
    /// Their lines, each `\n`-terminated.
    buf: Vec<u8>,
    /// What `extract-batch` read from `buf`, when a second instance did.
    extracted: Option<Vec<u8>>,
}

/// Sorts a batch's items: the lines for the plugin, and the ones the host answers itself
/// (blank, over-long). `long_len` carries the length of an over-long line across batches.
fn prepare(batch: Batch, max_line: usize, long_len: &mut usize) -> Prepared {
    let mut buf = Vec::new();
    let mut results: Vec<Outcome> = Vec::with_capacity(batch.len());
    let mut sent = Vec::with_capacity(batch.len());
    for (i, item) in batch.iter().enumerate() {
        match &item.frame {
            // Not an event: the host knows without asking the plugin.
            Frame::Line(line) if line.iter().all(u8::is_ascii_whitespace) => {
                results.push(Outcome::Host(LineError::Empty));
            }
            // The limit is the line's own length: a `\r` of a `\r\n` ending does not count.
            Frame::Line(line) if line.len() - usize::from(line.ends_with(b"\r")) <= max_line => {
                buf.extend_from_slice(line);
                buf.push(b'\n');
                sent.push(i);
                results.push(Outcome::Piece);
            }
            Frame::Line(line) => results.push(Outcome::Host(LineError::TooLong(line.len()))),
            Frame::Long { piece, last } => {
                *long_len += piece.len();
                results.push(if *last {
                    Outcome::Host(LineError::TooLong(std::mem::take(long_len)))
                } else {
                    Outcome::Piece
                });
            }
        }
    }
    Prepared {
        batch,
        results,
        sent,
        buf,
        extracted: None,
    }
}

/// The extractor thread: sorts each batch and, with a second instance, has it read the batch's
/// observations. When that instance fails, the batch goes on without them (the scorer then
/// reads it itself) and a fresh instance takes over.
fn extract_loop(
    mut extractor: Option<Plugin>,
    mut rx: mpsc::Receiver<Batch>,
    tx: mpsc::Sender<Prepared>,
    max_line: usize,
) {
    let mut long_len = 0;
    while let Some(batch) = rx.blocking_recv() {
        let mut prepared = prepare(batch, max_line, &mut long_len);
        if let Some(reader) = extractor.as_mut().filter(|_| !prepared.sent.is_empty()) {
            match reader.extract_batch(&prepared.buf) {
                Ok(extracted) => prepared.extracted = Some(extracted),
                Err(e) => {
                    tracing::warn!(
                        "reading a batch's observations failed, the scorer reads them: {e}"
                    );
                    if let Err(e) = reader.recover(None) {
                        tracing::warn!("no second plugin instance any more: {e}");
                        extractor = None;
                    }
                }
            }
        }
        if tx.blocking_send(prepared).is_err() {
            break;
        }
    }
}

fn score_batch(
    plugin: &mut Plugin,
    prepared: Prepared,
    key: &str,
    last_good: &mut Option<Vec<u8>>,
    report: &mut ScorerReport,
) -> anyhow::Result<Scored> {
    let Prepared {
        batch,
        mut results,
        sent,
        buf,
        extracted,
    } = prepared;
    let (output, notes) = if sent.is_empty() {
        (Vec::new(), false)
    } else {
        let outcome = match extracted.map(|x| plugin.judge_extracted(&x, sent.len())) {
            Some(Ok(Some(judged))) => Ok((judged, true)),
            Some(Err(e)) => Err(e),
            // Unstaged, or the observations were refused (nothing learned): the one-call path.
            Some(Ok(None)) | None => plugin
                .annotate_batch(&buf, sent.len(), key)
                .map(|out| (out, false)),
        };
        match outcome {
            Ok(((output, statuses), notes)) => {
                for (i, status) in sent.into_iter().zip(statuses) {
                    results[i] = Outcome::Plugin(status);
                }
                (output, notes)
            }
            Err(e) => {
                report.plugin_failures += 1;
                let reason = e.to_string();
                tracing::error!(
                    "{reason}; the batch's {} lines pass through unscored, restoring the last good state",
                    sent.len()
                );
                for i in sent {
                    results[i] = Outcome::Host(LineError::Plugin(reason.clone()));
                }
                plugin
                    .recover(last_good.as_deref())
                    .context("restarting the plugin after a failure")?;
                (Vec::new(), false)
            }
        }
    };
    Ok(Scored {
        batch,
        results,
        output,
        notes,
    })
}

#[derive(Debug, Default)]
struct Written {
    /// Output lines of an untrusted plugin that changed their event (replaced by the input).
    forged: u64,
    events: u64,
    scored: u64,
    highest: f64,
    alerts: AlertCounts,
    problems: Problems,
    broken_pipe: bool,
    dead_lettered: u64,
}

/// Which events alert, and where their lines go.
struct AlertOutput {
    judge: Alerts,
    sink: Box<dyn AsyncWrite + Unpin + Send>,
}

/// How output lines are made: the annotation's key, the source names for messages, and whether
/// the plugin's output lines are checked against their input (for an untrusted `--plugin`).
struct Layout<'a> {
    key: &'a str,
    names: &'a [String],
    verify: bool,
}

async fn write_loop(
    rx: mpsc::Receiver<Scored>,
    output: blocking::Writer,
    alerts: Option<AlertOutput>,
    mut dead_letter: Option<DeadLetter>,
    mut progress: Progress,
    layout: &Layout<'_>,
) -> anyhow::Result<Written> {
    let written = write_batches(
        rx,
        output,
        alerts,
        dead_letter.as_mut(),
        &mut progress,
        layout,
    )
    .await;
    progress.finish();
    let mut written = written?;
    if let Some(dl) = &mut dead_letter {
        dl.finish().await?;
        written.dead_lettered = dl.lines();
    }
    Ok(written)
}

async fn write_batches(
    mut rx: mpsc::Receiver<Scored>,
    mut w: blocking::Writer,
    mut alerts: Option<AlertOutput>,
    mut dead_letter: Option<&mut DeadLetter>,
    progress: &mut Progress,
    layout: &Layout<'_>,
) -> anyhow::Result<Written> {
    let (key, names) = (layout.key, layout.names);
    let mut out = Vec::with_capacity(256 * 1024);
    let mut alert_lines = Vec::new();
    let mut written = Written::default();
    while let Some(Scored {
        batch,
        results,
        output,
        notes,
    }) = rx.recv().await
    {
        out.clear();
        alert_lines.clear();
        let mut plugin_lines = Lines(&output);
        for (item, result) in batch.iter().zip(&results) {
            let source = || names[item.source as usize].as_str();
            if let Some(dl) = &mut dead_letter {
                let error = match result {
                    Outcome::Plugin(Status::Failed(e)) | Outcome::Host(e) => Some(e),
                    Outcome::Plugin(Status::Scored { .. }) | Outcome::Piece => None,
                };
                if dl.take(source(), item.number, &item.frame, error) {
                    if let Outcome::Plugin(_) = result {
                        plugin_lines.next();
                    }
                    // The error comes with a whole line, or with an over-long line's last piece.
                    if let Some(e) = error {
                        written.events += 1;
                        written.problems.record(source(), item.number, e);
                    }
                    continue;
                }
            }
            match (&item.frame, result) {
                (Frame::Line(input), Outcome::Plugin(status)) => {
                    let given = plugin_lines.next().unwrap_or_default();
                    let bare = input.strip_suffix(b"\r").unwrap_or(input);
                    let start = out.len();
                    // What the plugin gave: a note the host adds to the line (staged; a note
                    // cannot change the event), or the output line itself.
                    let kept = if notes {
                        let note = given.strip_suffix(b"\n").unwrap_or(given);
                        let valid = !layout.verify || note.is_empty() || is_one_json_value(note);
                        if valid {
                            if note.is_empty() || !annotation::splice_raw(bare, key, note, &mut out)
                            {
                                out.extend_from_slice(bare);
                            }
                            out.push(b'\n');
                        }
                        valid
                    } else if !layout.verify || keeps(input, given, key) {
                        out.extend_from_slice(given);
                        true
                    } else {
                        false
                    };
                    if !kept {
                        // An untrusted plugin may not rewrite or forge events, nor break them
                        // with a note that is not JSON: the input line is written with a note.
                        let e = LineError::Plugin(if notes {
                            "its note is not one JSON value".into()
                        } else {
                            "its output line does not keep the input line".into()
                        });
                        render(bare, key, &Err(e.clone()), &mut out);
                        out.push(b'\n');
                        written.events += 1;
                        written.forged += 1;
                        written.problems.record(source(), item.number, &e);
                        continue;
                    }
                    let line = &out[start..];
                    written.events += 1;
                    match status {
                        Status::Scored {
                            score,
                            severity,
                            campaign,
                        } => {
                            written.scored += 1;
                            written.highest = written.highest.max(*score);
                            if let Some(alerts) = &mut alerts {
                                if alerts.judge.wants(*severity, campaign.is_some()) {
                                    match annotation::read(line, key) {
                                        Some(note) => alerts.judge.observe(
                                            &note,
                                            source(),
                                            item.number,
                                            &mut alert_lines,
                                        ),
                                        None => alerts.judge.pass(),
                                    }
                                } else {
                                    alerts.judge.pass();
                                }
                            }
                        }
                        Status::Failed(e) => written.problems.record(source(), item.number, e),
                    }
                }
                (Frame::Line(line), Outcome::Host(e)) => {
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    render(line, key, &Err(e.clone()), &mut out);
                    out.push(b'\n');
                    written.events += 1;
                    written.problems.record(source(), item.number, e);
                }
                (Frame::Line(line), Outcome::Piece) => {
                    // Not reached: whole lines always have an outcome. Written as they are.
                    out.extend_from_slice(line);
                    out.push(b'\n');
                    written.events += 1;
                }
                (Frame::Long { piece, last }, outcome) => {
                    out.extend_from_slice(piece);
                    if *last {
                        out.push(b'\n');
                        written.events += 1;
                    }
                    if let Outcome::Host(e) = outcome {
                        written.problems.record(source(), item.number, e);
                    }
                }
            }
        }
        if let Some(dl) = &mut dead_letter {
            dl.write_out().await?;
        }
        let capacity = out.capacity();
        if let Err(e) = w
            .write(std::mem::replace(&mut out, Vec::with_capacity(capacity)))
            .await
        {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                written.broken_pipe = true;
                return Ok(written);
            }
            return Err(anyhow::Error::new(e).context("writing the output"));
        }
        if let Some(alerts) = &mut alerts {
            written.alerts = alerts.judge.counts();
            if !alert_lines.is_empty() {
                // Flushed at once: alerts are rare, and a SIEM following the file wants them now.
                let sent = match alerts.sink.write_all(&alert_lines).await {
                    Ok(()) => alerts.sink.flush().await,
                    Err(e) => Err(e),
                };
                match sent {
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                        written.broken_pipe = true;
                        return Ok(written);
                    }
                    other => other.context("writing the alerts")?,
                }
            }
        }
        progress.update(
            written.events,
            written.highest,
            alerts.as_ref().map(|_| written.alerts.total()),
        );
    }
    // The output thread flushes whenever it has nothing more to write: a live stream's lines go
    // out as soon as they are scored.
    match w.finish().await {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => written.broken_pipe = true,
        other => other.context("writing the output")?,
    }
    Ok(written)
}

/// The `\n`-terminated lines of a plugin's output, each with its newline (found with memchr).
struct Lines<'a>(&'a [u8]);

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.0.is_empty() {
            return None;
        }
        let end = memchr::memchr(b'\n', self.0).map_or(self.0.len(), |i| i + 1);
        let (line, rest) = self.0.split_at(end);
        self.0 = rest;
        Some(line)
    }
}

/// Whether `text` is exactly one JSON value (an untrusted plugin's note).
fn is_one_json_value(text: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(text).is_ok()
}

/// Whether `output` (a plugin's output line, with its newline) is `input` unchanged, or
/// `input` with exactly one member `key` added before its closing brace, whose value is one
/// JSON value: nothing else of the event may change.
fn keeps(input: &[u8], output: &[u8], key: &str) -> bool {
    let input = input.strip_suffix(b"\r").unwrap_or(input);
    let Some(body) = output.strip_suffix(b"\n") else {
        return false;
    };
    if body == input {
        return true;
    }
    let Some(end) = input.iter().rposition(|b| !b.is_ascii_whitespace()) else {
        return false;
    };
    if input[end] != b'}' || body.len() <= input.len() {
        return false;
    }
    let (head, tail) = (&input[..end], &input[end..]);
    let Some(middle) = body.strip_prefix(head).and_then(|m| m.strip_suffix(tail)) else {
        return false;
    };
    let empty = head.iter().skip(1).all(u8::is_ascii_whitespace);
    let middle = if empty {
        middle
    } else {
        match middle.strip_prefix(b",") {
            Some(m) => m,
            None => return false,
        }
    };
    let Ok(name) = serde_json::to_vec(key) else {
        return false;
    };
    let Some(value) = middle
        .strip_prefix(name.as_slice())
        .and_then(|m| m.strip_prefix(b":"))
    else {
        return false;
    };
    serde_json::from_slice::<serde::de::IgnoredAny>(value).is_ok()
}

#[cfg(test)]
mod tests {
    use super::keeps;

    #[test]
    fn a_plugin_line_must_keep_its_input() {
        let input = br#"{"a":1,"eventName":"Get"}"#;
        assert!(keeps(input, b"{\"a\":1,\"eventName\":\"Get\"}\n", "n"));
        assert!(keeps(
            input,
            b"{\"a\":1,\"eventName\":\"Get\",\"n\":{\"score\":1}}\n",
            "n"
        ));
        assert!(keeps(b"{}", b"{\"n\":{}}\n", "n"));
        assert!(keeps(b"not json", b"not json\n", "n"));
        // Forged: a changed value, a second member, another key, a missing newline.
        assert!(!keeps(
            input,
            b"{\"a\":2,\"eventName\":\"Get\",\"n\":{}}\n",
            "n"
        ));
        assert!(!keeps(
            input,
            b"{\"a\":1,\"eventName\":\"Get\",\"n\":{},\"eventName\":\"Put\"}\n",
            "n"
        ));
        assert!(!keeps(
            input,
            b"{\"a\":1,\"eventName\":\"Get\",\"m\":{}}\n",
            "n"
        ));
        assert!(!keeps(
            input,
            b"{\"a\":1,\"eventName\":\"Get\",\"n\":{}}",
            "n"
        ));
        assert!(!keeps(b"not json", b"forged\n", "n"));
    }
}
