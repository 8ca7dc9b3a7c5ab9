//! `oddity score`: reader → scorer → writer, in order, one output line per input line.
//!
//! - The reader task frames the sources into batches ([`crate::input`]).
//! - The scorer thread owns the plugin: it scores each batch with one call, saves the state when
//!   due, and after a plugin failure restores the last good snapshot into a fresh instance.
//! - The writer task renders annotations into the original lines and writes them, writes the
//!   alerts ([`crate::alerts`]) and shows the progress ([`crate::progress`]).
//!
//! Bounded channels between the three keep memory flat and use a second core for parsing and
//! rendering while the plugin scores. On shutdown (signal) the reader stops, batches in flight
//! are finished and written, and the state is saved; when the downstream pipe closes, the state
//! is saved and the run ends quietly.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::alerts::{AlertCounts, Alerts};
use crate::annotation::{Annotation, LineError, render};
use crate::codec::Frame;
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
    /// Saves of the state file that failed (the previous file is intact).
    pub failed_saves: u64,
    pub highest_score: f64,
    /// Alerts written, and where, when alerts are on.
    pub alerts: Option<(AlertCounts, String)>,
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
        !self.failed_sources.is_empty() || self.plugin_failures > 0 || self.failed_saves > 0
    }
}

/// One scored batch: the items and, per item, its result (`None` for the non-final pieces of
/// an over-long line).
struct Scored {
    batch: Batch,
    results: Vec<Option<Result<Annotation, LineError>>>,
}

/// Runs the whole job; `shutdown` resolves when the run should stop early.
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Summary> {
    let start = Instant::now();
    let sources = input::expand(&settings.paths).map_err(|e| anyhow!("input: {e}"))?;
    let names: Arc<Vec<String>> = Arc::new(sources.iter().map(Source::name).collect());
    let state = settings
        .state
        .clone()
        .map(|s| (StateFile::new(s.file.clone()), s));
    let snapshot = match &state {
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
    let scorer = std::thread::Builder::new()
        .name("oddity-scorer".into())
        .spawn(move || score_loop(plugin, batch_rx, out_tx, state, last_good, max_line))
        .context("starting the scorer thread")?;

    let output: Box<dyn AsyncWrite + Unpin + Send> = match &settings.output {
        Some(p) => Box::new(
            tokio::fs::File::create(p)
                .await
                .with_context(|| format!("output file {}", p.display()))?,
        ),
        None => Box::new(tokio::io::stdout()),
    };
    let alerts = match &settings.alerts {
        Some(a) => Some(AlertOutput {
            judge: Alerts::new(a),
            sink: a.sink.open().await?,
        }),
        None => None,
    };
    let progress = Progress::new(Progress::wanted(settings.quiet));
    let written = write_loop(
        out_rx,
        output,
        alerts,
        progress,
        &settings.output_key,
        &names,
    )
    .await;
    if written.as_ref().map_or(true, |w| w.broken_pipe) {
        // Nobody reads any more: stop reading; the scorer saves what it learned.
        cancel.cancel();
    }
    let failed_sources = reader.await.context("reader task")?;
    let scorer = tokio::task::spawn_blocking(move || scorer.join())
        .await?
        .map_err(|_| anyhow!("the scorer thread panicked"))??;
    cancel.cancel();
    let written = written?;
    Ok(Summary {
        events: written.events,
        scored: written.scored,
        unscored: written.problems.total(),
        breakdown: written.problems.breakdown(),
        failed_sources,
        plugin_failures: scorer.plugin_failures,
        failed_saves: scorer.failed_saves,
        highest_score: written.highest,
        alerts: settings
            .alerts
            .as_ref()
            .map(|a| (written.alerts, a.sink.name())),
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
    mut rx: mpsc::Receiver<Batch>,
    tx: mpsc::Sender<Scored>,
    state: Option<(StateFile, StateSettings)>,
    mut last_good: Option<Vec<u8>>,
    max_line: usize,
) -> anyhow::Result<ScorerReport> {
    let mut report = ScorerReport::default();
    let mut since_save = 0u64;
    let mut last_save = Instant::now();
    let mut buf = Vec::new();
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
    while let Some(batch) = rx.blocking_recv() {
        let results = score_batch(
            &mut plugin,
            &batch,
            max_line,
            &mut buf,
            &mut last_good,
            &mut report,
        )?;
        since_save += results.len() as u64;
        if tx.blocking_send(Scored { batch, results }).is_err() {
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
    Ok(report)
}

fn score_batch(
    plugin: &mut Plugin,
    batch: &Batch,
    max_line: usize,
    buf: &mut Vec<u8>,
    last_good: &mut Option<Vec<u8>>,
    report: &mut ScorerReport,
) -> anyhow::Result<Vec<Option<Result<Annotation, LineError>>>> {
    buf.clear();
    let mut results: Vec<Option<Result<Annotation, LineError>>> = Vec::with_capacity(batch.len());
    let mut sent = Vec::with_capacity(batch.len());
    let mut long_len = 0usize;
    for (i, item) in batch.iter().enumerate() {
        match &item.frame {
            Frame::Line(line) if line.len() <= max_line => {
                buf.extend_from_slice(line);
                buf.push(b'\n');
                sent.push(i);
                results.push(None);
            }
            Frame::Line(line) => results.push(Some(Err(LineError::TooLong(line.len())))),
            Frame::Long { piece, last } => {
                long_len += piece.len();
                if *last {
                    results.push(Some(Err(LineError::TooLong(std::mem::take(&mut long_len)))));
                } else {
                    results.push(None);
                }
            }
        }
    }
    if sent.is_empty() {
        return Ok(results);
    }
    match plugin.score_batch(buf, sent.len()) {
        Ok(scored) => {
            for (i, r) in sent.into_iter().zip(scored) {
                results[i] = Some(r);
            }
        }
        Err(e) => {
            report.plugin_failures += 1;
            let reason = e.to_string();
            tracing::error!(
                "{reason}; the batch's {} lines pass through unscored, restoring the last good state",
                sent.len()
            );
            for i in sent {
                results[i] = Some(Err(LineError::Plugin(reason.clone())));
            }
            plugin
                .recover(last_good.as_deref())
                .context("restarting the plugin after a failure")?;
        }
    }
    Ok(results)
}

#[derive(Debug, Default)]
struct Written {
    events: u64,
    scored: u64,
    highest: f64,
    alerts: AlertCounts,
    problems: Problems,
    broken_pipe: bool,
}

/// Which events alert, and where their lines go.
struct AlertOutput {
    judge: Alerts,
    sink: Box<dyn AsyncWrite + Unpin + Send>,
}

async fn write_loop(
    rx: mpsc::Receiver<Scored>,
    output: Box<dyn AsyncWrite + Unpin + Send>,
    alerts: Option<AlertOutput>,
    mut progress: Progress,
    key: &str,
    names: &[String],
) -> anyhow::Result<Written> {
    let written = write_batches(rx, output, alerts, &mut progress, key, names).await;
    progress.finish();
    written
}

async fn write_batches(
    mut rx: mpsc::Receiver<Scored>,
    output: Box<dyn AsyncWrite + Unpin + Send>,
    mut alerts: Option<AlertOutput>,
    progress: &mut Progress,
    key: &str,
    names: &[String],
) -> anyhow::Result<Written> {
    let mut w = BufWriter::with_capacity(256 * 1024, output);
    let mut out = Vec::with_capacity(256 * 1024);
    let mut alert_lines = Vec::new();
    let mut written = Written::default();
    while let Some(Scored { batch, results }) = rx.recv().await {
        out.clear();
        alert_lines.clear();
        for (item, result) in batch.iter().zip(&results) {
            match &item.frame {
                Frame::Line(line) => {
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    match result {
                        Some(r) => render(line, key, r, &mut out),
                        None => out.extend_from_slice(line),
                    }
                    out.push(b'\n');
                    written.events += 1;
                }
                Frame::Long { piece, last } => {
                    out.extend_from_slice(piece);
                    if *last {
                        out.push(b'\n');
                        written.events += 1;
                    }
                }
            }
            match result {
                Some(Ok(a)) => {
                    written.scored += 1;
                    written.highest = written.highest.max(a.score);
                    if let Some(alerts) = &mut alerts {
                        let source = &names[item.source as usize];
                        alerts
                            .judge
                            .observe(a, source, item.number, &mut alert_lines);
                    }
                }
                Some(Err(e)) => {
                    written
                        .problems
                        .record(&names[item.source as usize], item.number, e)
                }
                None => {}
            }
        }
        if let Err(e) = w.write_all(&out).await {
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
    match w.flush().await {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => written.broken_pipe = true,
        other => other.context("writing the output")?,
    }
    Ok(written)
}
