//! The `oddity` host: reads logs, runs them through the novelty plugin, writes them annotated.
//!
//! # Layout
//! - [`cli`]: command-line flags as parsed.
//! - [`settings`]: flags, `ODDITY_` environment and the TOML file, validated into [`settings::Settings`].
//! - [`input`]: the [`input::Source`] plug point; stdin, files, directories (JSON lines, CloudTrail
//!   envelopes, gzip) into batches.
//! - [`output`]: the [`output::Sink`] plug point; standard output, files, memory.
//! - [`blocking`]: standard input and output, and files, on threads of their own.
//! - [`plugin`]: the wasmtime sandbox around the WebAssembly component (the only file that sees wasmtime).
//! - [`annotation`]: notes as records, and the one splice of a note into its event.
//! - [`deadletter`]: the bad-lines policy, and the dead-letter file.
//! - [`pipeline`]: sources → reader → scorer → writer → sinks, state saving, recovery.
//! - [`ack`]: `oddity ack`, an analyst's verdict on an alert, recorded; benign ones suppressed.
//! - [`alerts`]: the events and campaigns that cross a threshold, as JSON lines for a SIEM.
//! - [`formats`]: alert formats for SIEMs (native, ECS, Splunk HEC).
//! - [`metrics`]: `--metrics`, the run's counters for Prometheus over HTTP.
//! - [`progress`]: the live progress line on a terminal.
//! - [`state`]: atomic state files: the snapshot and the input checkpoints.
//! - [`checkpoint`]: what of each input file the state learned, by file identity.
//! - [`problems`]: counting and rate-limited reporting of unscored lines.
//! - [`scored`]: reading scored files (gzip, long lines, times, the ranking by risk).
//! - [`suppress`]: the analyst's suppression rules for alerts.
//! - [`top`]: `oddity top`, the most novel events as a table.
//! - [`report`]: `oddity report`, a scored stream as one self-contained HTML page.
//! - [`export`]: `oddity plugin export`, the embedded component and its contract as files.

pub mod ack;
pub mod alerts;
pub mod annotation;
pub mod blocking;
pub mod checkpoint;
pub mod cli;
pub mod deadletter;
pub mod delivery;
pub mod export;
pub mod formats;
pub mod input;
pub mod metrics;
pub mod nats;
pub mod output;
pub mod pipeline;
pub mod plugin;
pub mod problems;
pub mod progress;
pub mod report;
pub mod scored;
pub mod settings;
pub mod sinks;
pub mod state;
pub mod suppress;
pub mod top;

/// Resolves on SIGINT or SIGTERM (Ctrl-C elsewhere): the run stops, saving what it learned.
pub async fn shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            _ => std::future::pending::<()>().await,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
