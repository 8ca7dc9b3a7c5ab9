//! `oddity score`: sources → reader → extractor → scorer → writer → sinks, in order, one output
//! line per input line. [`open`] opens the command line's sources and sinks; [`run`] takes any.
//!
//! - The reader task has the [`Source`]s frame what they read into batches ([`crate::input`]).
//! - The extractor thread sorts each batch's lines (blank and over-long ones the host answers
//!   itself). With `staged` (the default on two cores or more) it owns a second instance of the
//!   plugin that reads the batch's observations (`extract`), so the scorer's instance only
//!   judges them: JSON parsing and normalising move to another core (`scorer`).
//! - The scorer thread owns the plugin: it judges each batch with one call, saves the state when
//!   due, and after a plugin failure restores the last good snapshot into a fresh instance.
//! - The writer task adds each note to its line, writes the lines and the alerts
//!   ([`crate::alerts`]) to their [`Sink`]s and shows the progress (`writer`).
//!
//! Bounded channels between the stages keep memory flat and use a second core for parsing and
//! rendering while the plugin scores. On shutdown (signal) the reader stops, batches in flight
//! are finished and written, and the state is saved; when the downstream pipe closes, the state
//! is saved and the run ends quietly.

mod scorer;
mod writer;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::alerts::{AlertCounts, Alerts};
use crate::checkpoint::Checkpoints;
use crate::cli::Reply;
use crate::deadletter::{BadLinePolicy, DeadLetter};
use crate::input::{self, Batch, ReadOptions, Registry, Source};
use crate::metrics::Metrics;
use crate::output::{self, Sink};
use crate::plugin::{self, Plugin, PluginError};
use crate::progress::Progress;
use crate::settings::Settings;
use crate::state::{Saved, StateFile};
use scorer::{Prepared, Scored, Scorer};
use writer::{Layout, Outputs};

/// What a run reads and where it writes: the plug points.
#[derive(Debug)]
pub struct Io {
    pub sources: Vec<Box<dyn Source>>,
    pub output: Box<dyn Sink>,
    /// Where alert lines go (oddity's native JSON; each sink renders its format), when
    /// `[alerts]` is on.
    pub alerts: Vec<Box<dyn Sink>>,
    /// Hangups (SIGHUP): each saves the state and reopens the files written, behind the
    /// batches already read.
    pub hangups: Option<mpsc::Receiver<()>>,
    /// Where `--reply omprog` confirms each message (standard output).
    pub replies: Option<Box<dyn Sink>>,
    /// The run's counters (the network sinks count their deliveries in them).
    pub metrics: Arc<Metrics>,
}

/// The command line's sources and sinks: standard input or the files and directories named,
/// standard output or `output`, and the alerts file (appended to).
pub fn open(settings: &Settings) -> anyhow::Result<Io> {
    let streams = if settings.follow {
        input::followed(&settings.paths)
    } else {
        input::expand(&settings.paths).context("input")?
    };
    // Writing a file that is also read would destroy it (`-o` truncates before the reading).
    for stream in &streams {
        if let Some(input) = stream.file()
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
        if let Some(dir) = stream.directory()
            && let Some(written) = settings
                .written_files()
                .into_iter()
                .find(|w| input::would_read(dir, w.path))
        {
            bail!(
                "{} is {written}, in the followed directory {}, which would read it; write it elsewhere",
                written.path.display(),
                dir.display()
            );
        }
    }
    let omprog = settings.reply == Some(Reply::Omprog);
    let output: Box<dyn Sink> = match &settings.output {
        Some(p) if let Some(addr) = crate::settings::syslog_output(p) => {
            Box::new(output::Syslog::new(addr?, None))
        }
        // omprog restarts its program at will: its scored stream is appended to.
        Some(p) if omprog => Box::new(
            output::Lines::append(p).with_context(|| format!("output file {}", p.display()))?,
        ),
        Some(p) => Box::new(
            output::Lines::create(p).with_context(|| format!("output file {}", p.display()))?,
        ),
        None => Box::new(output::Lines::stdout().context("starting the output thread")?),
    };
    let metrics = Arc::new(Metrics::default());
    let alerts = match &settings.alerts {
        None => Vec::new(),
        Some(a) => crate::sinks::open(
            &a.sinks,
            a.queue,
            settings.state.as_ref().map(|s| s.file.as_path()),
            &metrics,
        )?,
    };
    let sources = streams
        .into_iter()
        .map(|s| Box::new(s) as Box<dyn Source>)
        .collect();
    let replies: Option<Box<dyn Sink>> = if omprog {
        Some(Box::new(
            output::Lines::stdout().context("starting the replies thread")?,
        ))
    } else {
        None
    };
    Ok(Io {
        sources,
        output,
        alerts,
        hangups: None,
        replies,
        metrics,
    })
}

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
    /// Events of input files not read again: the state learned them before (checkpoints).
    pub skipped: u64,
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

/// Runs the whole job over `io`; `shutdown` resolves when the run should stop early.
pub async fn run(
    settings: Settings,
    io: Io,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Summary> {
    let start = Instant::now();
    let Io {
        sources,
        output,
        alerts: alert_sinks,
        hangups,
        replies,
        metrics,
    } = io;
    let serving = serve_metrics(&settings, &metrics).await?;
    let (mut scorer, restored) = load(&settings, metrics.clone()).await?;
    let registry = scorer.sources.clone();
    let starts = sources
        .iter()
        .map(|s| registry.register(s.as_ref()))
        .collect();
    if restored && let Some(s) = &settings.state {
        tracing::info!(state = %s.file.display(), "restored the model");
    }
    let cancel = CancellationToken::new();
    let interrupted = Arc::new(AtomicBool::new(false));
    stop_on(shutdown, cancel.clone(), interrupted.clone());
    let (batch_tx, batch_rx) = mpsc::channel::<Batch>(4);
    let (out_tx, out_rx) = mpsc::channel::<Scored>(4);
    let (written_tx, written_rx) = tokio::sync::watch::channel(0u64);
    scorer.written = Some(written_rx);
    let opts = ReadOptions {
        max_line: settings.max_line_bytes,
        batch: settings.batch_size,
    };
    let reader = tokio::spawn(read_all(
        sources,
        starts,
        registry.clone(),
        opts,
        settings.follow,
        batch_tx,
        cancel.clone(),
    ));
    let max_line = settings.max_line_bytes;
    // The extractor's instance is made from the scorer's (same compiled component and
    // configuration); without one, the thread only sorts the batches on their way to the
    // scorer, which then reads the observations itself.
    let extractor = if settings.staged {
        scorer
            .plugin
            .sibling()
            .inspect_err(|e| {
                tracing::warn!("no second plugin instance, reading on the scorer's thread: {e}");
            })
            .ok()
    } else {
        None
    };
    let (prepared_tx, prepared_rx) = mpsc::channel::<Prepared>(4);
    if let Some(hangups) = hangups {
        tokio::spawn(relay_hangups(hangups, prepared_tx.downgrade()));
    }
    let counted = metrics.clone();
    let extract = std::thread::Builder::new()
        .name("oddity-extractor".into())
        .spawn(move || {
            scorer::extract_loop(extractor, batch_rx, prepared_tx, max_line, &counted);
        })
        .context("starting the extractor thread")?;
    let scoring = std::thread::Builder::new()
        .name("oddity-scorer".into())
        .spawn(move || scorer.run(prepared_rx, out_tx))
        .context("starting the scorer thread")?;

    let alerts_name = (!alert_sinks.is_empty()).then(|| {
        let names: Vec<String> = alert_sinks.iter().map(|s| s.name()).collect();
        names.join(", ")
    });
    let alerts = match &settings.alerts {
        Some(a) if !alert_sinks.is_empty() => Some((Alerts::new(a), alert_sinks)),
        _ => None,
    };
    let dead_letter = match &settings.bad_lines {
        BadLinePolicy::Pass => None,
        BadLinePolicy::DeadLetter(path) => Some(DeadLetter::open(path).await?),
    };
    let dead_letter_name = dead_letter.as_ref().map(|d| d.name().to_owned());
    let outputs = Outputs {
        output,
        replies,
        metrics: metrics.clone(),
        alerts,
        written: written_tx,
        dead_letter,
        progress: Progress::new(Progress::wanted(settings.quiet)),
    };
    let layout = Layout {
        key: &settings.output_key,
        names: &registry,
        verify: settings.plugin.is_some(),
        reply: settings.reply,
    };
    let written = writer::write_loop(out_rx, outputs, layout).await;
    if written.as_ref().map_or(true, |w| w.broken_pipe) {
        // Nobody reads any more: stop reading; the scorer saves what it learned.
        cancel.cancel();
    }
    let (failed_sources, skipped) = reader.await.context("reader task")?;
    let scorer = tokio::task::spawn_blocking(move || scoring.join())
        .await?
        .map_err(|_| anyhow!("the scorer thread panicked"))??;
    tokio::task::spawn_blocking(move || extract.join())
        .await?
        .map_err(|_| anyhow!("the extractor thread panicked"))?;
    cancel.cancel();
    serving.cancel();
    let written = written?;
    Ok(Summary {
        events: written.events,
        scored: written.scored,
        unscored: written.problems.total(),
        breakdown: written.problems.breakdown(),
        failed_sources,
        skipped,
        plugin_failures: scorer.plugin_failures,
        forged: written.forged,
        failed_saves: scorer.failed_saves,
        highest_score: written.highest,
        alerts: alerts_name.map(|name| (written.alerts, name)),
        dead_lettered: dead_letter_name.map(|name| (written.dead_lettered, name)),
        elapsed: start.elapsed(),
        broken_pipe: written.broken_pipe,
        interrupted: interrupted.load(Ordering::Relaxed),
        quiet: settings.quiet,
    })
}

/// The plugin, restored from the state file when there is one, and the scorer that owns
/// them; whether a model was restored.
async fn load(settings: &Settings, metrics: Arc<Metrics>) -> anyhow::Result<(Scorer, bool)> {
    let mut state = settings
        .state
        .clone()
        .map(|s| (StateFile::new(s.file.clone()), s));
    let saved = match &mut state {
        Some((file, _)) => {
            let path = file.path().display().to_string();
            let bytes = file.load().with_context(|| format!("state file {path}"))?;
            bytes.map(Saved::decode).transpose().with_context(|| {
                format!("state file {path}; not starting, and the file is left as it is")
            })?
        }
        None => None,
    };
    let (snapshot, checkpoints) = match saved {
        Some(s) => (Some(s.snapshot), s.checkpoints),
        None => (None, Checkpoints::new()),
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
    let (plugin, last_good) = tokio::task::spawn_blocking(move || {
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
    let sources = Registry::new(checkpoints.clone(), state.is_some(), settings.reread);
    let scorer = Scorer {
        plugin,
        state,
        last_good,
        report: scorer::ScorerReport::default(),
        checkpoints,
        tracked: Vec::new(),
        sources: Arc::new(sources),
        metrics,
        written: None,
        sent: 0,
    };
    Ok((scorer, restored))
}

/// Sends a hangup marker through the pipeline for each hangup, while the pipeline runs (a weak
/// sender: the relay does not keep the channel open once the reader is done).
async fn relay_hangups(mut hangups: mpsc::Receiver<()>, tx: mpsc::WeakSender<Prepared>) {
    while hangups.recv().await.is_some() {
        let Some(tx) = tx.upgrade() else { break };
        if tx.send(Prepared::hangup()).await.is_err() {
            break;
        }
    }
}

/// Serves the metrics while the run lasts (`--metrics`); cancel the token to stop.
async fn serve_metrics(
    settings: &Settings,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<CancellationToken> {
    let stop = CancellationToken::new();
    if let Some(addr) = settings.metrics {
        let listener = crate::metrics::bind(addr)
            .await
            .with_context(|| format!("--metrics {addr}"))?;
        tracing::info!("serving metrics at http://{addr}/metrics");
        tokio::spawn(crate::metrics::serve(
            listener,
            metrics.clone(),
            stop.clone(),
        ));
    }
    Ok(stop)
}

/// Cancels the run when `shutdown` resolves first.
fn stop_on(
    shutdown: impl Future<Output = ()> + Send + 'static,
    cancel: CancellationToken,
    interrupted: Arc<AtomicBool>,
) {
    tokio::spawn(async move {
        tokio::select! {
            () = shutdown => {
                interrupted.store(true, Ordering::Relaxed);
                tracing::warn!("stopping: finishing the events in flight and saving the state");
                cancel.cancel();
            }
            () = cancel.cancelled() => {}
        }
    });
}

/// The reader task: each source (with its index and the events to skip, as registered) less
/// the events its checkpoint covers, in turn, or all at once when they are followed (a followed
/// file never ends); a followed directory's files are registered as sources as they come. The
/// failures, by name, and the events skipped.
async fn read_all(
    sources: Vec<Box<dyn Source>>,
    starts: Vec<(u32, u64)>,
    registry: Arc<Registry>,
    opts: ReadOptions,
    follow: bool,
    tx: mpsc::Sender<Batch>,
    cancel: CancellationToken,
) -> (Vec<String>, u64) {
    let reads = sources.iter().zip(starts).map(|(source, (index, skip))| {
        let (tx, cancel, registry) = (&tx, &cancel, &registry);
        async move {
            match source.directory() {
                Some(dir) => read_directory(dir, registry, opts, tx, cancel).await,
                None => {
                    let (failed, skipped) =
                        read_one(source.as_ref(), index, skip, opts, tx, cancel).await;
                    (failed.into_iter().collect(), skipped)
                }
            }
        }
    });
    let done = if follow {
        futures::future::join_all(reads).await
    } else {
        let mut done = Vec::new();
        for read in reads {
            done.push(read.await);
        }
        done
    };
    let skipped = done.iter().map(|(_, n)| n).sum();
    (done.into_iter().flat_map(|(f, _)| f).collect(), skipped)
}

/// Reads one source less its first `skip` events; its failure, and the events skipped.
async fn read_one(
    source: &dyn Source,
    index: u32,
    skip: u64,
    opts: ReadOptions,
    tx: &mpsc::Sender<Batch>,
    cancel: &CancellationToken,
) -> (Option<String>, u64) {
    if cancel.is_cancelled() || tx.is_closed() {
        return (None, 0);
    }
    let (read, skipped) = if skip == 0 {
        (source.read(index, opts, tx, cancel).await, 0)
    } else {
        read_after(source, index, skip, opts, tx, cancel).await
    };
    let failed = read.err().map(|e| {
        tracing::error!("{e}; going on with the next input");
        e.to_string()
    });
    (failed, skipped)
}

/// Reads the files a followed directory holds and those that come into it, in turn, each
/// registered as a source (with its checkpoint) when it is taken, until the run is cancelled;
/// the failures, by name, and the events skipped.
async fn read_directory(
    dir: &Path,
    registry: &Registry,
    opts: ReadOptions,
    tx: &mpsc::Sender<Batch>,
    cancel: &CancellationToken,
) -> (Vec<String>, u64) {
    let mut watch = input::Watch::new(dir.to_owned());
    let (mut failed, mut skipped) = (Vec::new(), 0);
    'watch: while let Some(files) = watch.next(cancel).await {
        for file in files {
            if cancel.is_cancelled() || tx.is_closed() {
                break 'watch;
            }
            let source = input::Stream::File(file);
            let (index, skip) = registry.register(&source);
            let (f, s) = read_one(&source, index, skip, opts, tx, cancel).await;
            failed.extend(f);
            skipped += s;
        }
    }
    (failed, skipped)
}

/// Reads `source` and passes on what follows its first `skip` events; the events skipped.
async fn read_after(
    source: &dyn Source,
    index: u32,
    skip: u64,
    opts: ReadOptions,
    tx: &mpsc::Sender<Batch>,
    cancel: &CancellationToken,
) -> (Result<u64, input::InputError>, u64) {
    let (inner_tx, mut inner_rx) = mpsc::channel::<Batch>(4);
    let read = async move {
        let inner_tx = inner_tx;
        source.read(index, opts, &inner_tx, cancel).await
    };
    let forward = async move {
        let mut seen = 0u64;
        while let Some(mut batch) = inner_rx.recv().await {
            batch.retain(|item| {
                let keep = seen >= skip;
                if matches!(
                    item.frame,
                    input::Frame::Line(_) | input::Frame::Long { last: true, .. }
                ) {
                    seen += 1;
                }
                keep
            });
            if !batch.is_empty() && tx.send(batch).await.is_err() {
                break;
            }
        }
        seen.min(skip)
    };
    let (read, skipped) = tokio::join!(read, forward);
    if skipped > 0 {
        tracing::info!(
            "{}: skipped its first {skipped} events, which the state learned before",
            source.name()
        );
    }
    (read, skipped)
}
