//! The extractor and scorer threads: sorting each batch's lines, reading their observations on
//! a second plugin instance (staged), judging them, saving the state when due, and recovering
//! from a plugin failure.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use tokio::sync::mpsc;

use crate::annotation::{LineError, Status};
use crate::checkpoint::Checkpoints;
use crate::input::{Batch, Frame, Registry, Tracked};
use crate::metrics::Metrics;
use crate::plugin::{self, Judged, Plugin};
use crate::settings::StateSettings;
use crate::state::{Saved, StateFile};

/// Keeps the last good snapshot in memory this often when there is no state file, so that a
/// plugin failure does not lose everything learned.
const CHECKPOINT_EVENTS: u64 = 1_000_000;

/// What became of one item.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The plugin judged the line: its note is the next one of [`Scored::notes`].
    Plugin(Status),
    /// The host answers the line itself (with a note for an object, as the annotation module
    /// decides).
    Host(LineError),
    /// A piece of an over-long line that is not its last.
    Piece,
}

/// One scored batch: the items, what became of each, and one `\n`-terminated note per item
/// the plugin judged, in order.
#[derive(Debug)]
pub struct Scored {
    pub batch: Batch,
    pub outcomes: Vec<Outcome>,
    pub notes: Vec<u8>,
    /// A hangup (SIGHUP) after this batch: the state was saved, the writer reopens its files.
    pub hangup: bool,
    /// When the batch was taken from the reader.
    pub read_at: Instant,
}

/// A batch on its way to the scorer: what the host already decided for each item, the lines
/// for the plugin and, when staged, their observations.
#[derive(Debug)]
pub struct Prepared {
    batch: Batch,
    outcomes: Vec<Outcome>,
    /// The items whose lines are in `buf`, in order.
    sent: Vec<usize>,
    /// Their lines, each `\n`-terminated.
    buf: Vec<u8>,
    /// What `extract` read from `buf`, when a second instance did.
    observations: Option<Vec<u8>>,
    /// A hangup marker (no items): save the state, and have the writer reopen its files.
    hangup: bool,
    read_at: Instant,
}

impl Prepared {
    /// The marker of a hangup, sent through the pipeline behind the batches before it.
    pub fn hangup() -> Prepared {
        Prepared {
            batch: Vec::new(),
            outcomes: Vec::new(),
            sent: Vec::new(),
            buf: Vec::new(),
            observations: None,
            hangup: true,
            read_at: Instant::now(),
        }
    }
}

/// Sorts a batch's items: the lines for the plugin, and the ones the host answers itself
/// (blank, over-long). `long_len` carries the length of an over-long line across batches.
pub fn prepare(batch: Batch, max_line: usize, long_len: &mut usize) -> Prepared {
    // The lines sent and their newlines, reserved at once: grown line by line, the buffer
    // would be copied at every doubling.
    let size = batch
        .iter()
        .map(|item| match &item.frame {
            Frame::Line(line) => line.len() + 1,
            Frame::Long { .. } => 0,
        })
        .sum();
    let mut buf = Vec::with_capacity(size);
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut sent = Vec::with_capacity(batch.len());
    for (i, item) in batch.iter().enumerate() {
        outcomes.push(match &item.frame {
            // Not an event: the host knows without asking the plugin.
            Frame::Line(line) if line.iter().all(u8::is_ascii_whitespace) => {
                Outcome::Host(LineError::Empty)
            }
            // The limit is the line's own length: a `\r` of a `\r\n` ending does not count.
            Frame::Line(line) if line.len() - usize::from(line.ends_with(b"\r")) <= max_line => {
                buf.extend_from_slice(line);
                buf.push(b'\n');
                sent.push(i);
                Outcome::Piece
            }
            Frame::Line(line) => Outcome::Host(LineError::TooLong(line.len())),
            Frame::Long { piece, last } => {
                *long_len += piece.len();
                if *last {
                    Outcome::Host(LineError::TooLong(std::mem::take(long_len)))
                } else {
                    Outcome::Piece
                }
            }
        });
    }
    Prepared {
        batch,
        outcomes,
        sent,
        buf,
        observations: None,
        hangup: false,
        read_at: Instant::now(),
    }
}

/// The extractor thread: sorts each batch and, with a second instance, has it read the batch's
/// observations. When that instance fails, the batch goes on without them (the scorer then
/// reads it itself) and a fresh instance takes over.
pub fn extract_loop(
    mut extractor: Option<Plugin>,
    mut rx: mpsc::Receiver<Batch>,
    tx: mpsc::Sender<Prepared>,
    max_line: usize,
    metrics: &Metrics,
) {
    let mut long_len = 0;
    while let Some(batch) = rx.blocking_recv() {
        metrics.events_in.inc_by(events(&batch));
        let mut prepared = prepare(batch, max_line, &mut long_len);
        if let Some(reader) = extractor.as_mut().filter(|_| !prepared.sent.is_empty()) {
            match reader.extract(&prepared.buf) {
                Ok(observations) => prepared.observations = Some(observations),
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

/// The events of a batch: whole lines, and over-long lines at their last piece.
fn events(batch: &Batch) -> u64 {
    batch
        .iter()
        .filter(|item| match item.frame {
            Frame::Line(_) => true,
            Frame::Long { last, .. } => last,
        })
        .count() as u64
}

/// What the scorer thread did besides scoring.
#[derive(Debug, Default)]
pub struct ScorerReport {
    pub plugin_failures: u64,
    pub failed_saves: u64,
}

/// The scorer thread: owns the plugin and the state file.
#[derive(Debug)]
pub struct Scorer {
    pub plugin: Plugin,
    pub state: Option<(StateFile, StateSettings)>,
    /// The snapshot the plugin restarts from after a failure.
    pub last_good: Option<Vec<u8>>,
    pub report: ScorerReport,
    /// The checkpoints restored, saved again with those of this run's files.
    pub checkpoints: Checkpoints,
    /// Per source, its checkpoint key and checkpoint (its events counted as they are scored),
    /// for the files that have an identity; taken from `sources` as sources are registered.
    pub tracked: Vec<Tracked>,
    /// The run's sources (a followed directory's files are registered as the run goes).
    pub sources: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    /// Batches the writer has written (alerts queued on disk included).
    pub written: Option<tokio::sync::watch::Receiver<u64>>,
    /// Batches sent to the writer.
    pub sent: u64,
}

impl Scorer {
    /// Scores every batch of `rx` onto `tx`, saving when due and at the end.
    pub fn run(
        mut self,
        mut rx: mpsc::Receiver<Prepared>,
        tx: mpsc::Sender<Scored>,
    ) -> anyhow::Result<ScorerReport> {
        let mut since_save = 0u64;
        let mut last_save = Instant::now();
        while let Some(prepared) = rx.blocking_recv() {
            let hangup = prepared.hangup;
            if hangup && self.state.is_some() {
                self.save()?;
                since_save = 0;
                last_save = Instant::now();
                tracing::info!("hangup: the state is saved, the output files are reopened");
            }
            let scored = self.score(prepared)?;
            self.count(&scored.batch);
            since_save += scored.outcomes.len() as u64;
            if tx.blocking_send(scored).is_err() {
                break;
            }
            self.sent += 1;
            let due = match &self.state {
                Some((_, s)) => {
                    s.every_events.is_some_and(|n| since_save >= n)
                        || s.every.is_some_and(|t| last_save.elapsed() >= t)
                }
                None => since_save >= CHECKPOINT_EVENTS,
            };
            if due {
                self.save()?;
                since_save = 0;
                last_save = Instant::now();
            }
        }
        if self.state.is_some() {
            self.save()?;
        }
        self.log_stats();
        Ok(self.report)
    }

    /// Counts a scored batch's events (whole lines, and over-long lines at their last piece)
    /// in their files' checkpoints.
    fn count(&mut self, batch: &Batch) {
        self.track_registered();
        for item in batch {
            let event = match item.frame {
                Frame::Line(_) => true,
                Frame::Long { last, .. } => last,
            };
            if event && let Some(Some((_, c))) = self.tracked.get_mut(item.source as usize) {
                c.events += 1;
            }
        }
    }

    /// Takes the checkpoints of the sources registered since into `tracked`.
    fn track_registered(&mut self) {
        let new = self.sources.tracked_from(self.tracked.len());
        self.tracked.extend(new);
    }

    /// Takes a snapshot, keeps it as the last good one and writes it to the state file with
    /// the checkpoints of what it learned.
    fn save(&mut self) -> anyhow::Result<()> {
        self.wait_for_writer();
        self.track_registered();
        let start = Instant::now();
        let bytes = self.plugin.snapshot().context("taking a snapshot")?;
        let saved = self
            .state
            .as_ref()
            .map(|(file, _)| file.save(&self.saved(&bytes).encode()));
        match &saved {
            Some(Ok(())) => {
                self.metrics.state_saves.inc();
                self.metrics
                    .state_save_seconds
                    .observe(start.elapsed().as_secs_f64());
            }
            Some(Err(_)) => {
                self.metrics.state_save_failures.inc();
            }
            None => {}
        }
        if let (Some((file, _)), Some(Err(e))) = (&self.state, saved) {
            self.report.failed_saves += 1;
            tracing::error!(state = %file.path().display(), "saving the state failed, the previous state file is intact: {e}");
        }
        self.last_good = Some(bytes);
        Ok(())
    }

    /// Waits until the writer has written every batch sent (so a state never covers events
    /// whose alerts are not queued yet); at once if the writer is gone.
    fn wait_for_writer(&mut self) {
        let sent = self.sent;
        if let (Some(written), Some(_)) = (&mut self.written, &self.state) {
            let _ = futures::executor::block_on(written.wait_for(|&n| n >= sent));
        }
    }

    /// What the state file holds after this run so far.
    fn saved(&self, snapshot: &[u8]) -> Saved {
        let mut checkpoints = self.checkpoints.clone();
        for (key, c) in self.tracked.iter().flatten() {
            checkpoints.insert(key.clone(), c.clone());
        }
        Saved {
            snapshot: snapshot.to_vec(),
            checkpoints,
        }
    }

    fn log_stats(&mut self) {
        if let Ok([events, nodes, max_nodes, principals, prunes]) = self.plugin.stats() {
            tracing::info!(
                events,
                nodes,
                max_nodes,
                principals,
                prunes,
                "the model at the end of the run"
            );
        }
    }

    /// Judges one batch: from its observations when a sibling read them and the plugin takes
    /// them, else from its lines. After a plugin failure the batch's lines pass unscored and the
    /// plugin restarts from the last good snapshot.
    fn score(&mut self, prepared: Prepared) -> anyhow::Result<Scored> {
        let Prepared {
            batch,
            mut outcomes,
            sent,
            buf,
            observations,
            hangup,
            read_at,
        } = prepared;
        if sent.is_empty() {
            return Ok(Scored {
                batch,
                outcomes,
                notes: Vec::new(),
                hangup,
                read_at,
            });
        }
        let staged = match &observations {
            Some(o) => self
                .plugin
                .judge(plugin::Batch::Observations(o), sent.len()),
            None => Ok(None),
        };
        let judged = match staged {
            Ok(Some(judged)) => Ok(judged),
            // Unstaged, or the observations were refused (nothing learned): from the lines.
            Ok(None) => self
                .plugin
                .judge_lines(buf, sent.len())
                .map(Option::unwrap_or_default),
            Err(e) => Err(e),
        };
        let notes = match judged {
            Ok(Judged { notes, statuses }) if statuses.len() == sent.len() => {
                for (i, status) in sent.into_iter().zip(statuses) {
                    outcomes[i] = Outcome::Plugin(status);
                }
                notes
            }
            Ok(_) => self.failed(&mut outcomes, sent, "refused a batch of lines".into())?,
            Err(e) => self.failed(&mut outcomes, sent, e.to_string())?,
        };
        Ok(Scored {
            batch,
            outcomes,
            notes,
            hangup,
            read_at,
        })
    }

    /// A failed batch: its lines pass unscored, and the plugin restarts from the last good
    /// snapshot.
    fn failed(
        &mut self,
        outcomes: &mut [Outcome],
        sent: Vec<usize>,
        reason: String,
    ) -> anyhow::Result<Vec<u8>> {
        self.report.plugin_failures += 1;
        self.metrics.plugin_restarts.inc();
        tracing::error!(
            "{reason}; the batch's {} lines pass through unscored, restoring the last good state",
            sent.len()
        );
        for i in sent {
            outcomes[i] = Outcome::Host(LineError::Plugin(reason.clone()));
        }
        self.plugin
            .recover(self.last_good.as_deref())
            .context("restarting the plugin after a failure")?;
        Ok(Vec::new())
    }
}
