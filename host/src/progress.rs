//! Live progress on standard error while scoring: events, events per second, the highest score
//! so far and the alerts written.
//!
//! Shown only when standard error is a terminal and `--quiet` is not set; otherwise nothing is
//! drawn and the end-of-run summary line (in `main.rs`) is all there is. The writer task updates
//! it once per batch, at most every [`UPDATE_EVERY`], and indicatif redraws at most 10 times a
//! second. Log lines go through [`LogWriter`], which lifts the bar while a line is written so
//! that the two do not mix.

use std::io::{IsTerminal as _, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The most often the writer touches the bar.
pub const UPDATE_EVERY: Duration = Duration::from_millis(100);

/// The bar being shown, if any; standard error is one per process, so is this.
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Where log lines go when not to standard error: a file (`--log-file`), or nowhere (`--reply`
/// without a log file: rsyslog reads its child's standard error as replies).
static DESTINATION: std::sync::OnceLock<Destination> = std::sync::OnceLock::new();

/// Where log lines go.
#[derive(Debug)]
pub enum Destination {
    Stderr,
    File(Mutex<fs_err::File>),
    Nowhere,
}

/// Sends every later log line (and the summary) to `destination`; the first call wins.
pub fn log_to(destination: Destination) {
    let _ = DESTINATION.set(destination);
}

/// Whether log lines are dropped.
pub fn logs_dropped() -> bool {
    matches!(DESTINATION.get(), Some(Destination::Nowhere))
}

/// A progress line, or nothing.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    last: Instant,
    shown_highest: f64,
    shown_alerts: u64,
}

impl Progress {
    /// Whether a progress line should be drawn: standard error is a terminal and not `quiet`.
    pub fn wanted(quiet: bool) -> bool {
        !quiet && std::io::stderr().is_terminal()
    }

    /// A progress line when `enabled`, else one that draws nothing.
    pub fn new(enabled: bool) -> Progress {
        let bar = enabled.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
            let style = ProgressStyle::with_template(
                "{spinner} {human_pos} events, {per_sec:0}, {msg} [{elapsed}]",
            )
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.set_message("highest score -");
            // Keeps the spinner turning while the input is slow (a pipe, a network disk).
            bar.enable_steady_tick(Duration::from_millis(200));
            if let Ok(mut active) = ACTIVE.lock() {
                *active = Some(bar.clone());
            }
            bar
        });
        Progress {
            bar,
            last: Instant::now(),
            shown_highest: -1.0,
            shown_alerts: 0,
        }
    }

    /// Shows the counts so far (cheap when called more often than [`UPDATE_EVERY`]).
    pub fn update(&mut self, events: u64, highest: f64, alerts: Option<u64>) {
        let Some(bar) = &self.bar else { return };
        if self.last.elapsed() < UPDATE_EVERY {
            return;
        }
        self.last = Instant::now();
        bar.set_position(events);
        let alerts_now = alerts.unwrap_or(0);
        if highest != self.shown_highest || alerts_now != self.shown_alerts {
            self.shown_highest = highest;
            self.shown_alerts = alerts_now;
            bar.set_message(match alerts {
                Some(n) => format!("highest score {highest:.4}, {n} alerts"),
                None => format!("highest score {highest:.4}"),
            });
        }
    }

    /// Removes the line, leaving the terminal to the summary.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
            if let Ok(mut active) = ACTIVE.lock() {
                *active = None;
            }
        }
    }
}

/// Standard error for log lines, lifting the progress line (if any) while one is written; or
/// the destination set with [`log_to`].
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match DESTINATION.get() {
            Some(Destination::Nowhere) => return Ok(buf.len()),
            Some(Destination::File(file)) => {
                let mut file = file
                    .lock()
                    .map_err(|_| std::io::Error::other("the log file is poisoned"))?;
                file.write_all(buf)?;
                return Ok(buf.len());
            }
            Some(Destination::Stderr) | None => {}
        }
        let write = || std::io::stderr().lock().write_all(buf);
        match ACTIVE.lock().ok().and_then(|a| a.clone()) {
            Some(bar) => bar.suspend(write)?,
            None => write()?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        LogWriter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_progress_draws_nothing() {
        let mut p = Progress::new(false);
        p.update(10, 0.5, Some(1));
        assert!(p.bar.is_none());
        p.finish();
        let mut w = LogWriter;
        assert_eq!(w.write(b"").expect("write"), 0);
    }
}
