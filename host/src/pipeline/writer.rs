//! The writer: turns each scored batch into output lines and alert lines (synchronously, in
//! [`Assembly`]), then writes them to the sinks, the dead-letter file and the progress line.

use std::io;

use anyhow::Context as _;
use tokio::sync::mpsc;

use super::scorer::{Outcome, Scored};
use crate::alerts::{AlertCounts, Alerts};
use crate::annotation::{self, Annotation, LineError, Status, render};
use crate::cli::Reply;
use crate::deadletter::DeadLetter;
use crate::input::{Frame, Item, Registry};
use crate::metrics::{Kind, Metrics};
use crate::output::Sink;
use crate::problems::Problems;
use crate::progress::Progress;

/// How output lines are made: the annotation's key, the source names for messages, and whether
/// the plugin's notes are checked before they go into events (an untrusted `--plugin`).
#[derive(Debug, Clone, Copy)]
pub struct Layout<'a> {
    pub key: &'a str,
    pub names: &'a Registry,
    pub verify: bool,
    /// A shipper's protocol answered (`--reply`).
    pub reply: Option<Reply>,
}

/// What was written, counted.
#[derive(Debug, Default)]
pub struct Written {
    /// Notes of an untrusted plugin that were not one JSON value (the event went out with a
    /// plugin-failed note instead).
    pub forged: u64,
    pub events: u64,
    pub scored: u64,
    pub highest: f64,
    pub alerts: AlertCounts,
    pub problems: Problems,
    pub broken_pipe: bool,
    pub dead_lettered: u64,
}

/// The per-event decisions of one batch: dead letter, verification of the note, the splice,
/// counting and alerting. No I/O: the output and alert lines pile up in `out` and `alerts_out`.
#[derive(Debug)]
pub struct Assembly<'a> {
    pub layout: Layout<'a>,
    pub alerts: Option<&'a mut Alerts>,
    pub dead_letter: Option<&'a mut DeadLetter>,
    pub written: &'a mut Written,
    pub out: Vec<u8>,
    pub alerts_out: Vec<u8>,
    /// Confirmations for the shipper (`--reply omprog`).
    pub replies: Vec<u8>,
}

impl Assembly<'_> {
    /// Assembles every item of a scored batch, in order.
    pub fn batch(&mut self, scored: &Scored) {
        let mut notes = Notes(&scored.notes);
        for (item, outcome) in scored.batch.iter().zip(&scored.outcomes) {
            let note = match outcome {
                Outcome::Plugin(_) => Some(notes.next().unwrap_or_default()),
                Outcome::Host(_) | Outcome::Piece => None,
            };
            self.item(item, outcome, note);
        }
    }

    /// One item, with the plugin's note when the plugin judged it; answered to the shipper
    /// when `--reply` is on.
    pub fn item(&mut self, item: &Item, outcome: &Outcome, note: Option<&[u8]>) {
        let (start, events) = (self.out.len(), self.written.events);
        self.line(item, outcome, note);
        let done = self.written.events > events;
        match self.layout.reply {
            Some(Reply::Omprog) if done => self.replies.extend_from_slice(b"OK\n"),
            Some(Reply::Mmexternal) => self.reply_mmexternal(item, start, done),
            Some(Reply::Omprog) | None => {}
        }
    }

    /// rsyslog's mmexternal: one reply per message, replacing its MSG with the output line
    /// (`{"msg": ...}`), or `{}` when the line goes out as it came (or to the dead-letter file).
    fn reply_mmexternal(&mut self, item: &Item, start: usize, done: bool) {
        let written = self.out.split_off(start);
        if !done {
            return;
        }
        let line = written.strip_suffix(b"\n").unwrap_or(&written);
        let input = match &item.frame {
            Frame::Line(l) => Some(l.strip_suffix(b"\r").unwrap_or(l)),
            Frame::Long { .. } => None,
        };
        match std::str::from_utf8(line) {
            Ok(text) if !line.is_empty() && input.is_some_and(|i| i != line) => {
                self.out.extend_from_slice(b"{\"msg\":");
                // A string always serialises.
                let _ = serde_json::to_writer(&mut self.out, text);
                self.out.extend_from_slice(b"}\n");
            }
            _ => self.out.extend_from_slice(b"{}\n"),
        }
    }

    /// One item's output line (nothing for a dead-lettered line or a piece of a long one).
    fn line(&mut self, item: &Item, outcome: &Outcome, note: Option<&[u8]>) {
        let source = self.layout.names[item.source as usize].as_str();
        if self.dead_lettered(item, outcome, source) {
            return;
        }
        match (&item.frame, outcome) {
            (Frame::Line(line), Outcome::Plugin(status)) => {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                self.judged(line, status, note.unwrap_or_default(), source, item.number);
            }
            (Frame::Line(line), Outcome::Host(e)) => {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                render(line, self.layout.key, &Err(e.clone()), &mut self.out);
                self.out.push(b'\n');
                self.written.events += 1;
                self.written.problems.record(source, item.number, e);
            }
            (Frame::Line(line), Outcome::Piece) => {
                // Not reached: whole lines always have an outcome. Written as they are.
                self.out.extend_from_slice(line);
                self.out.push(b'\n');
                self.written.events += 1;
            }
            (Frame::Long { piece, last }, outcome) => {
                self.out.extend_from_slice(piece);
                if *last {
                    self.out.push(b'\n');
                    self.written.events += 1;
                }
                if let Outcome::Host(e) = outcome {
                    self.written.problems.record(source, item.number, e);
                }
            }
        }
    }

    /// Whether the dead-letter file took the item (it then gives no output line).
    fn dead_lettered(&mut self, item: &Item, outcome: &Outcome, source: &str) -> bool {
        let Some(dl) = self.dead_letter.as_deref_mut() else {
            return false;
        };
        let error = match outcome {
            Outcome::Plugin(Status::Failed(e)) | Outcome::Host(e) => Some(e),
            Outcome::Plugin(Status::Scored { .. }) | Outcome::Piece => None,
        };
        if !dl.take(source, item.number, &item.frame, error) {
            return false;
        }
        // The error comes with a whole line, or with an over-long line's last piece.
        if let Some(e) = error {
            self.written.events += 1;
            self.written.problems.record(source, item.number, e);
        }
        true
    }

    /// A line the plugin judged: its note spliced in, counted, and alerted on.
    fn judged(&mut self, line: &[u8], status: &Status, note: &[u8], source: &str, number: u64) {
        let note = note.strip_suffix(b"\n").unwrap_or(note);
        if self.layout.verify && !note.is_empty() && !is_one_json_value(note) {
            // An untrusted plugin may not break or rewrite events with a note that is not
            // one JSON value: the line goes out with a note that the plugin failed on it.
            let e = LineError::Plugin("its note is not one JSON value".into());
            render(line, self.layout.key, &Err(e.clone()), &mut self.out);
            self.out.push(b'\n');
            self.written.events += 1;
            self.written.forged += 1;
            self.written.problems.record(source, number, &e);
            return;
        }
        if note.is_empty() || !annotation::splice_raw(line, self.layout.key, note, &mut self.out) {
            self.out.extend_from_slice(line);
        }
        self.out.push(b'\n');
        self.written.events += 1;
        match status {
            Status::Scored {
                score,
                severity,
                campaign_risk,
            } => {
                self.written.scored += 1;
                self.written.highest = self.written.highest.max(*score);
                if let Some(alerts) = self.alerts.as_deref_mut() {
                    if alerts.wants(*severity, campaign_risk.is_some()) {
                        match serde_json::from_slice::<Annotation>(note) {
                            Ok(a) => {
                                alerts.observe(&a, source, number, line, &mut self.alerts_out);
                            }
                            Err(_) => alerts.pass(),
                        }
                    } else {
                        alerts.pass();
                    }
                }
            }
            Status::Failed(e) => self.written.problems.record(source, number, e),
        }
    }
}

/// The `\n`-terminated notes of a batch, each with its newline (found with memchr).
struct Notes<'a>(&'a [u8]);

impl<'a> Iterator for Notes<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.0.is_empty() {
            return None;
        }
        let end = memchr::memchr(b'\n', self.0).map_or(self.0.len(), |i| i + 1);
        let (note, rest) = self.0.split_at(end);
        self.0 = rest;
        Some(note)
    }
}

/// The counters of [`Written`] before a batch, to add what the batch wrote to the metrics.
#[derive(Debug)]
struct Counted {
    events: u64,
    scored: u64,
    unscored: Vec<(&'static str, u64)>,
    alerts: AlertCounts,
}

impl Counted {
    fn of(w: &Written) -> Counted {
        Counted {
            events: w.events,
            scored: w.scored,
            unscored: w.problems.counts().collect(),
            alerts: w.alerts,
        }
    }

    /// Adds what was written since `self` to `m`.
    fn count(&self, w: &Written, m: &Metrics) {
        m.events_out.inc_by(w.events - self.events);
        m.scored.inc_by(w.scored - self.scored);
        for (kind, n) in w.problems.counts() {
            let was = self
                .unscored
                .iter()
                .find(|(k, _)| *k == kind)
                .map_or(0, |(_, v)| *v);
            if n > was {
                let label = Kind {
                    kind: kind.to_owned(),
                };
                m.unscored.get_or_create(&label).inc_by(n - was);
            }
        }
        for (kind, now, was) in [
            ("event", w.alerts.events, self.alerts.events),
            ("campaign", w.alerts.campaigns, self.alerts.campaigns),
            ("suppressed", w.alerts.suppressed, self.alerts.suppressed),
        ] {
            if now > was {
                let label = Kind {
                    kind: kind.to_owned(),
                };
                m.alerts.get_or_create(&label).inc_by(now - was);
            }
        }
    }
}

/// Whether `text` is exactly one JSON value (an untrusted plugin's note).
fn is_one_json_value(text: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(text).is_ok()
}

/// Where the writer writes.
#[derive(Debug)]
pub struct Outputs {
    pub output: Box<dyn Sink>,
    /// Where `--reply omprog` confirms.
    pub replies: Option<Box<dyn Sink>>,
    pub metrics: std::sync::Arc<Metrics>,
    pub alerts: Option<(Alerts, Vec<Box<dyn Sink>>)>,
    /// Batches written so far, for the scorer to save only what was written.
    pub written: tokio::sync::watch::Sender<u64>,
    pub dead_letter: Option<DeadLetter>,
    pub progress: Progress,
}

/// Writes every scored batch of `rx`; then finishes the sinks.
pub async fn write_loop(
    rx: mpsc::Receiver<Scored>,
    mut outputs: Outputs,
    layout: Layout<'_>,
) -> anyhow::Result<Written> {
    let mut written = Written::default();
    let outcome = write_batches(rx, &mut outputs, layout, &mut written).await;
    outputs.progress.finish();
    outcome?;
    if let Some(dl) = &mut outputs.dead_letter {
        dl.finish().await?;
        written.dead_lettered = dl.lines();
    }
    Ok(written)
}

/// A closed pipe ends the run quietly; any other error is the run's.
fn closed(result: io::Result<()>, written: &mut Written, what: &str) -> anyhow::Result<bool> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            written.broken_pipe = true;
            Ok(true)
        }
        other => other
            .with_context(|| format!("writing the {what}"))
            .map(|()| false),
    }
}

/// Opens the output, alert and dead-letter files again (SIGHUP, after a rotation); a file that
/// cannot be opened again is reported.
async fn reopen(outputs: &mut Outputs) {
    if let Err(e) = outputs.output.reopen().await {
        tracing::error!("reopening the output {}: {e}", outputs.output.name());
    }
    for sink in outputs.alerts.iter_mut().flat_map(|(_, sinks)| sinks) {
        if let Err(e) = sink.reopen().await {
            tracing::error!("reopening the alerts {}: {e}", sink.name());
        }
    }
    if let Some(dl) = &mut outputs.dead_letter
        && let Err(e) = dl.reopen().await
    {
        tracing::error!("reopening the dead-letter file {}: {e:#}", dl.name());
    }
}

async fn write_batches(
    mut rx: mpsc::Receiver<Scored>,
    outputs: &mut Outputs,
    layout: Layout<'_>,
    written: &mut Written,
) -> anyhow::Result<()> {
    let mut capacity = 256 * 1024;
    // omprog's first confirmation: ready for messages (the plugin is loaded).
    if let Some(sink) = &mut outputs.replies
        && closed(sink.write(b"OK\n".to_vec()).await, written, "replies")?
    {
        return Ok(());
    }
    while let Some(scored) = rx.recv().await {
        let before = Counted::of(written);
        let mut assembly = Assembly {
            layout,
            alerts: outputs.alerts.as_mut().map(|(judge, _)| judge),
            dead_letter: outputs.dead_letter.as_mut(),
            written,
            out: Vec::with_capacity(capacity),
            alerts_out: Vec::new(),
            replies: Vec::new(),
        };
        assembly.batch(&scored);
        let Assembly {
            out,
            alerts_out,
            replies,
            ..
        } = assembly;
        capacity = capacity.max(out.len());
        if let Some(dl) = &mut outputs.dead_letter {
            dl.write_out().await?;
        }
        if closed(outputs.output.write(out).await, written, "output")? {
            return Ok(());
        }
        if let Some(sink) = &mut outputs.replies
            && !replies.is_empty()
            && closed(sink.write(replies).await, written, "replies")?
        {
            return Ok(());
        }
        if let Some((judge, sinks)) = &mut outputs.alerts {
            written.alerts = judge.counts();
            // Written at once: alerts are rare, and a SIEM following the file wants them now.
            if !alerts_out.is_empty() {
                for sink in sinks.iter_mut() {
                    if closed(sink.write(alerts_out.clone()).await, written, "alerts")? {
                        return Ok(());
                    }
                }
            }
        }
        before.count(written, &outputs.metrics);
        outputs
            .metrics
            .batch_seconds
            .observe(scored.read_at.elapsed().as_secs_f64());
        let alerts = outputs.alerts.as_ref().map(|_| written.alerts.total());
        outputs
            .progress
            .update(written.events, written.highest, alerts);
        outputs.written.send_modify(|n| *n += 1);
        if scored.hangup {
            reopen(outputs).await;
        }
    }
    // The output thread flushes whenever it has nothing more to write: a live stream's lines go
    // out as soon as they are scored.
    if closed(outputs.output.finish().await, written, "output")? {
        return Ok(());
    }
    for sink in outputs.alerts.iter_mut().flat_map(|(_, sinks)| sinks) {
        closed(sink.finish().await, written, "alerts")?;
    }
    if let Some(sink) = &mut outputs.replies {
        closed(sink.finish().await, written, "replies")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::annotation::Severity;

    const EVENT: &[u8] = br#"{"eventName":"GetObject","n":1}"#;
    const NOTE: &[u8] = br#"{"score":0.5,"sequence":1}"#;

    fn item(line: &[u8]) -> Item {
        Item {
            frame: Frame::Line(Bytes::copy_from_slice(line)),
            source: 0,
            number: 1,
        }
    }

    fn scored() -> Outcome {
        Outcome::Plugin(Status::Scored {
            score: 0.5,
            severity: Severity::Info,
            campaign_risk: None,
        })
    }

    /// Assembles one item; its output line and what was counted.
    fn assemble(
        line: &[u8],
        outcome: &Outcome,
        note: Option<&[u8]>,
        verify: bool,
        dead_letter: Option<&mut DeadLetter>,
    ) -> (String, Written) {
        let names = Registry::default();
        names.register(&crate::input::Stream::Memory {
            name: "src".to_owned(),
            bytes: Bytes::new(),
        });
        let mut written = Written::default();
        let mut assembly = Assembly {
            layout: Layout {
                key: "novelty",
                names: &names,
                verify,
                reply: None,
            },
            alerts: None,
            dead_letter,
            written: &mut written,
            out: Vec::new(),
            alerts_out: Vec::new(),
            replies: Vec::new(),
        };
        assembly.item(&item(line), outcome, note);
        let out = String::from_utf8(assembly.out).expect("utf-8");
        (out, written)
    }

    #[test]
    fn a_note_goes_in_as_the_last_member() {
        let (out, written) = assemble(EVENT, &scored(), Some(NOTE), true, None);
        assert_eq!(
            out,
            "{\"eventName\":\"GetObject\",\"n\":1,\"novelty\":{\"score\":0.5,\"sequence\":1}}\n"
        );
        assert_eq!((written.events, written.scored, written.forged), (1, 1, 0));
        let (out, _) = assemble(b"{\"a\":1}\r", &scored(), Some(b"\n"), true, None);
        assert_eq!(
            out, "{\"a\":1}\n",
            "no note: the line as it came, without its \\r"
        );
    }

    #[test]
    fn an_untrusted_note_that_is_not_one_json_value_never_enters_the_event() {
        for bad in [&br#"{"score":1},"forged":true"#[..], b"{\"score\":", b"1 2"] {
            let (out, written) = assemble(EVENT, &scored(), Some(bad), true, None);
            let v: serde_json::Value = serde_json::from_str(&out).expect("still JSON");
            assert_eq!(v["novelty"]["error"], "plugin-failed", "{out}");
            assert!(v.get("forged").is_none());
            assert_eq!((written.events, written.scored, written.forged), (1, 0, 1));
        }
        // The embedded plugin is trusted: its notes are not parsed again.
        let (out, written) = assemble(EVENT, &scored(), Some(b"{\"score\":"), false, None);
        assert!(out.ends_with(",\"novelty\":{\"score\":}\n"), "{out}");
        assert_eq!(written.forged, 0);
    }

    #[test]
    fn lines_the_host_answers_are_written_with_their_error() {
        let empty = Outcome::Host(LineError::Empty);
        let (out, written) = assemble(b"  ", &empty, None, true, None);
        assert_eq!(out, "  \n");
        assert_eq!((written.events, written.problems.total()), (1, 1));
        let failed = Outcome::Host(LineError::Plugin("trapped".into()));
        let (out, _) = assemble(EVENT, &failed, None, true, None);
        let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(v["novelty"]["error"], "plugin-failed");
    }

    #[test]
    fn a_dead_lettered_line_is_counted_but_not_written() {
        let mut dl = DeadLetter::new("dl".into(), Box::new(tokio::io::sink()));
        let bad = Outcome::Plugin(Status::Failed(LineError::NotJson("at 1".into())));
        let (out, written) = assemble(b"not json", &bad, Some(b"\n"), true, Some(&mut dl));
        assert_eq!(out, "");
        assert_eq!((written.events, written.problems.total()), (1, 1));
        assert_eq!(dl.lines(), 1);
        let (out, _) = assemble(EVENT, &scored(), Some(NOTE), true, Some(&mut dl));
        assert!(out.contains("novelty"), "a good line is not taken");
        assert_eq!(dl.lines(), 1);
    }
}
