//! `oddity`: parses flags, sets up logging, runs the pipeline, turns the outcome into an exit code.
//!
//! Exit codes: 0 success (also when stopped by a signal or a closed downstream pipe, after saving
//! the state); 1 the run could not start or failed; 2 the run finished but something went wrong
//! on the way (an input failed, the plugin failed on a batch, a state save failed).

use std::process::ExitCode;

use clap::Parser;
use oddity::cli::{Cli, Command, ExportArgs, LogFormat, PluginCommand, ScoreArgs};
use oddity::pipeline::{self, Summary};
use oddity::settings::Settings;

fn main() -> ExitCode {
    // A flag clap refuses is a run that could not start: exit code 1, not clap's 2 (which here
    // means "finished, but an input failed"); `--help` and `--version` print and exit 0.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let args = match cli.command {
        Some(Command::Score(args)) => *args,
        Some(Command::Top(top)) => {
            let stdout = std::io::stdout();
            return match oddity::top::run(
                &top.paths,
                &top.key,
                top.count,
                top.since.as_deref(),
                &mut stdout.lock(),
            ) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e)
                    if e.downcast_ref::<std::io::Error>()
                        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
                {
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            };
        }
        Some(Command::Report(report)) => {
            return match oddity::report::run(&report) {
                Ok(done) => {
                    if !report.quiet {
                        eprintln!("{done}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            };
        }
        Some(Command::Ack(ack)) => {
            return match oddity::ack::run(&ack) {
                Ok(done) => {
                    eprintln!("{done}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.into()),
            };
        }
        Some(Command::Nats(nats)) => return nats_command(&nats),
        Some(Command::Plugin(plugin)) => match plugin.command {
            PluginCommand::Export(export) => return export_plugin(&export),
        },
        None => cli.score,
    };
    init_logging(&args);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&anyhow::Error::new(e).context("starting the runtime")),
    };
    let outcome = runtime.block_on(score(&args));
    // Everything is written and saved by now. A read of standard input may still be blocked,
    // in its reader thread or the runtime's blocking pool (after a signal, or a closed
    // downstream pipe, while the upstream stays open): do not wait for it; exiting ends it.
    runtime.shutdown_background();
    match outcome {
        Ok(summary) => {
            if !summary.quiet || summary.partial() {
                let line = match args.log_format {
                    LogFormat::Text => describe(&summary),
                    LogFormat::Json => describe_json(&summary).to_string(),
                };
                log_line(&line);
            }
            if summary.partial() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => fail(&e),
    }
}

async fn score(args: &ScoreArgs) -> anyhow::Result<Summary> {
    let settings = Settings::load(args)?;
    let mut io = pipeline::open(&settings)?;
    io.hangups = hangups();
    pipeline::run(settings, io, oddity::shutdown()).await
}

/// SIGHUP, as a stream of requests to save the state and reopen the files written (logrotate's
/// `postrotate`, or on demand: `kill -HUP`).
fn hangups() -> Option<tokio::sync::mpsc::Receiver<()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup()).ok()?;
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                // A hangup already waiting covers this one too.
                let _ = tx.try_send(());
            }
        });
        Some(rx)
    }
    #[cfg(not(unix))]
    None
}

/// `oddity plugin export`.
fn export_plugin(args: &ExportArgs) -> ExitCode {
    match oddity::export::export(&args.output) {
        Ok(done) => {
            eprintln!("{done}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.into()),
    }
}

fn fail(e: &anyhow::Error) -> ExitCode {
    // A run that ends on an error says so on standard error too when its log goes nowhere
    // (`--reply` without `--log-file`): it is ending, the shipper's protocol no longer matters.
    let line = format!("oddity: error: {e:#}");
    if oddity::progress::logs_dropped() {
        eprintln!("{line}");
    } else {
        log_line(&line);
    }
    ExitCode::from(1)
}

/// Runs an `oddity nats` subcommand, logging to standard error.
fn nats_command(command: &oddity::nats::NatsCommand) -> ExitCode {
    init_logging(&ScoreArgs::default());
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(oddity::nats::run(command)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn init_logging(args: &ScoreArgs) {
    use oddity::progress::{Destination, log_to};
    match (&args.log_file, args.reply) {
        (Some(path), _) => match fs_err::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(file) => log_to(Destination::File(std::sync::Mutex::new(file))),
            Err(e) => eprintln!("oddity: the log file: {e}; logging to standard error"),
        },
        (None, Some(_)) => log_to(Destination::Nowhere),
        (None, None) => log_to(Destination::Stderr),
    }
    let default = match (args.quiet, args.verbose) {
        (true, _) => "warn",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let logs = tracing_subscriber::fmt()
        .with_writer(oddity::progress::LogWriter)
        .with_env_filter(filter)
        .with_target(false);
    match args.log_format {
        LogFormat::Json => logs.json().flatten_event(true).init(),
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .without_time()
            .init(),
    }
}

/// The summary as one JSON object, for `--log-format json`.
fn describe_json(s: &Summary) -> serde_json::Value {
    let (alerts, alerts_to) = match &s.alerts {
        Some((c, sink)) => (Some(c.total()), Some(sink.as_str())),
        None => (None, None),
    };
    serde_json::json!({
        "level": if s.partial() { "WARN" } else { "INFO" },
        "message": "summary",
        "events": s.events,
        "scored": s.scored,
        "unscored": s.unscored,
        "unscored_kinds": s.breakdown,
        "skipped": s.skipped,
        "seconds": s.elapsed.as_secs_f64(),
        "highest_score": s.highest_score,
        "alerts": alerts,
        "alerts_to": alerts_to,
        "dead_lettered": s.dead_lettered.as_ref().map(|(n, _)| n),
        "failed_inputs": s.failed_sources,
        "plugin_failures": s.plugin_failures,
        "refused_notes": s.forged,
        "failed_saves": s.failed_saves,
        "broken_pipe": s.broken_pipe,
        "interrupted": s.interrupted,
    })
}

fn describe(s: &Summary) -> String {
    let secs = s.elapsed.as_secs_f64();
    let mut text = if s.events == 0 {
        format!("oddity: no events in {secs:.2} s")
    } else {
        counts(s, secs)
    };
    more(s, &mut text);
    text
}

/// The events, their rate and the highest score.
fn counts(s: &Summary, secs: f64) -> String {
    format!(
        "oddity: {} events ({} scored, {} not scored{}) in {secs:.2} s, {:.0} events/s; highest score {:.4}",
        s.events,
        s.scored,
        s.unscored,
        if s.breakdown.is_empty() {
            String::new()
        } else {
            format!(": {}", s.breakdown)
        },
        s.events as f64 / secs.max(1e-9),
        s.highest_score,
    )
}

/// What else the run did: skipped, alerts, dead letters, and what went wrong.
fn more(s: &Summary, text: &mut String) {
    if s.skipped > 0 {
        text.push_str(&format!(
            "; {} events skipped: the state learned them before (--reread reads them again)",
            s.skipped
        ));
    }
    if let Some((counts, sink)) = &s.alerts {
        text.push_str(&format!(
            "; {} alerts ({} event, {} campaign) to {sink}",
            counts.total(),
            counts.events,
            counts.campaigns
        ));
        if counts.suppressed > 0 {
            text.push_str(&format!(", {} suppressed by rules", counts.suppressed));
        }
    }
    if let Some((lines, file)) = &s.dead_lettered {
        text.push_str(&format!(
            "; {lines} bad lines to the dead-letter file {file}"
        ));
    }
    for f in &s.failed_sources {
        text.push_str(&format!("\noddity: input failed: {f}"));
    }
    if s.forged > 0 {
        text.push_str(&format!(
            "\noddity: the plugin gave {} notes that are not one JSON value; their events were written as read, with a note that it failed",
            s.forged
        ));
    }
    if s.plugin_failures > 0 {
        text.push_str(&format!(
            "\noddity: the plugin failed on {} batches (lines passed through unscored)",
            s.plugin_failures
        ));
    }
    if s.failed_saves > 0 {
        text.push_str(&format!(
            "\noddity: {} state saves failed (the previous state file is intact)",
            s.failed_saves
        ));
    }
    if s.interrupted {
        text.push_str("\noddity: stopped by a signal after saving the state");
    }
}

/// One line to where the log goes (standard error, `--log-file`, or nowhere under `--reply`).
fn log_line(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(oddity::progress::LogWriter, "{line}");
}
