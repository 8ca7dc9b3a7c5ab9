//! Workers: each owned partition is scored by its own engine, from its own durable consumer.
//!
//! Per batch: the lines the stored state already covers (redelivered after a crash) are
//! acknowledged unscored; the others are judged, and each scored line is published to
//! `PREFIX.scored` under its input's message id (a bad line too, or to `PREFIX.dead` with
//! `--dead-letter`), each alert to `PREFIX.alerts` under its `alertId`, and JetStream's
//! acknowledgements awaited. Every `--save-every`, the lease is renewed, the snapshot is stored
//! in the object store with the last input sequence it covers, and only then is the input
//! acknowledged. A crash loses nothing (unacknowledged input is delivered again and scored from
//! the stored state, giving the same lines) and duplicates nothing (their message ids are
//! dropped by the duplicate window).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream::{self, object_store::ObjectStore};
use tokio::io::AsyncReadExt as _;

use super::lease::Lease;
use super::{Names, WorkArgs, await_acks, connect};
use crate::alerts::{AlertSettings, Alerts};
use crate::annotation::Annotation;
use crate::annotation::Status;
use crate::plugin::{Batch, Plugin};
use crate::settings::Settings;

/// Messages fetched at once.
const BATCH: usize = 256;
/// The object store's metadata key of the last input sequence a state covers.
const COVERED: &str = "covered";

/// `oddity nats work`.
pub async fn work(args: &WorkArgs) -> anyhow::Result<()> {
    let js = connect(&args.stage.nats.url).await?;
    let names = Names::new(&args.stage.nats.prefix);
    let settings = super::settings(args.stage.config.as_ref())?;
    let owner = format!(
        "{}:{}",
        fs_err::read_to_string("/proc/sys/kernel/hostname")
            .unwrap_or_default()
            .trim(),
        std::process::id()
    );
    let stop = super::stop_on_signal();
    let mut tasks = Vec::new();
    for &p in &args.partitions {
        let worker = Partition {
            js: js.clone(),
            names: names.clone(),
            settings: settings.clone(),
            number: p,
            owner: owner.clone(),
            save_every: args.save_every,
            idle_exit: args.idle_exit,
            dead_letter: args.dead_letter,
            stop: stop.clone(),
        };
        tasks.push(tokio::spawn(async move {
            let what = format!("partition {p}");
            super::resilient(&what, &worker.stop, || worker.run()).await
        }));
    }
    for task in tasks {
        task.await.context("a partition's task")??;
    }
    Ok(())
}

/// One owned partition.
#[derive(Debug)]
struct Partition {
    js: jetstream::Context,
    names: Names,
    settings: Settings,
    number: u32,
    owner: String,
    save_every: Duration,
    idle_exit: Option<Duration>,
    dead_letter: bool,
    stop: tokio_util::sync::CancellationToken,
}

/// A partition's engine and what it has done since its state was last stored.
struct Scoring {
    plugin: Plugin,
    alerts: Alerts,
    /// The last input sequence the stored state covers.
    covered: u64,
    /// Input scored and published, not yet covered by a stored state (not acknowledged).
    pending: Vec<jetstream::Message>,
    last: u64,
}

impl Partition {
    async fn run(&self) -> anyhow::Result<()> {
        let leases = self.js.get_key_value(self.names.leases()).await?;
        let mut lease = Lease::take(leases, self.number, &self.owner).await;
        let store = self.js.get_object_store(self.names.state()).await?;
        let (covered, snapshot) = load_state(&store, self.number).await?;
        let plugin =
            tokio::task::block_in_place(|| super::plugin(&self.settings, snapshot.as_deref()))?;
        tracing::info!(partition = self.number, covered, "scoring");
        let mut s = Scoring {
            plugin,
            alerts: Alerts::new(&alert_settings(&self.settings)),
            covered,
            pending: Vec::new(),
            last: covered,
        };
        let stream = self.js.get_stream(self.names.stream("PART")).await?;
        let name = format!("work-{}", self.number);
        let part = Some(self.names.part(self.number));
        let consumer = super::cursor(&stream, &name, part, covered + 1).await?;
        let (mut saved_at, mut input_at) = (Instant::now(), Instant::now());
        loop {
            let batch = tokio::select! {
                () = self.stop.cancelled() => break,
                batch = super::fetch(&consumer, BATCH) => batch?,
            };
            lease.keep().await?;
            if !batch.is_empty() {
                input_at = Instant::now();
                self.score(&mut s, batch).await?;
            }
            if !s.pending.is_empty() && saved_at.elapsed() >= self.save_every {
                self.save(&mut s, &mut lease, &store).await?;
                saved_at = Instant::now();
            }
            if self.idle_exit.is_some_and(|t| input_at.elapsed() >= t) {
                break;
            }
        }
        self.save(&mut s, &mut lease, &store).await?;
        lease.release().await;
        tracing::info!(partition = self.number, covered = s.covered, "stopped");
        Ok(())
    }

    /// Scores the batch's new lines and publishes what they give (a line delivered again, one
    /// already scored, is acknowledged with the pending ones).
    async fn score(&self, s: &mut Scoring, batch: Vec<jetstream::Message>) -> anyhow::Result<()> {
        let mut fresh = Vec::with_capacity(batch.len());
        for m in batch {
            let seq = m
                .info()
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .stream_sequence;
            if seq > s.last {
                fresh.push((seq, m));
            }
        }
        if fresh.is_empty() {
            return Ok(());
        }
        let mut lines = Vec::new();
        for (_, m) in &fresh {
            let one = m.payload.iter().map(|&b| if b == b'\n' { b' ' } else { b });
            lines.extend(one);
            lines.push(b'\n');
        }
        let judged =
            tokio::task::block_in_place(|| s.plugin.judge(Batch::Lines(&lines), fresh.len()))?
                .context("the plugin refused a batch of lines")?;
        let mut acks = Vec::with_capacity(fresh.len() * 2);
        let notes = judged.notes.split_inclusive(|&b| b == b'\n');
        for (((seq, m), note), status) in fresh.iter().zip(notes).zip(&judged.statuses) {
            let note = note.strip_suffix(b"\n").unwrap_or(note);
            let (subject, line) = self.output(&m.payload, note, status);
            let id = message_id(m, self.number, *seq);
            let message = jetstream::message::PublishMessage::build()
                .payload(line.into())
                .message_id(id);
            acks.push(self.js.send_publish(subject, message).await?);
            for alert in self.alerts(s, &m.payload, note, status, *seq) {
                acks.push(self.js.send_publish(self.names.alerts(), alert).await?);
            }
        }
        await_acks(&mut acks).await?;
        s.last = fresh.last().map_or(s.last, |(seq, _)| *seq);
        s.pending.extend(fresh.into_iter().map(|(_, m)| m));
        Ok(())
    }

    /// The subject and the line to publish for one judged input.
    fn output(&self, input: &[u8], note: &[u8], status: &Status) -> (String, Vec<u8>) {
        let mut line = Vec::with_capacity(input.len() + note.len() + 16);
        if note.is_empty()
            || !crate::annotation::splice_raw(input, &self.settings.output_key, note, &mut line)
        {
            line.clear();
            line.extend_from_slice(input);
        }
        let bad = matches!(status, Status::Failed(_));
        let subject = if bad && self.dead_letter {
            self.names.dead()
        } else {
            self.names.scored()
        };
        (subject, line)
    }

    /// The alerts of one judged input, as messages with their `alertId`.
    fn alerts(
        &self,
        s: &mut Scoring,
        input: &[u8],
        note: &[u8],
        status: &Status,
        seq: u64,
    ) -> Vec<jetstream::message::PublishMessage> {
        let Status::Scored {
            severity,
            campaign_risk,
            ..
        } = status
        else {
            return Vec::new();
        };
        if !s.alerts.wants(*severity, campaign_risk.is_some()) {
            s.alerts.pass();
            return Vec::new();
        }
        let Ok(a) = serde_json::from_slice::<Annotation>(note) else {
            s.alerts.pass();
            return Vec::new();
        };
        let mut out = Vec::new();
        s.alerts
            .observe(&a, &self.names.part(self.number), seq, input, &mut out);
        out.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let id: serde_json::Value = serde_json::from_slice(l).unwrap_or_default();
                jetstream::message::PublishMessage::build()
                    .payload(bytes::Bytes::copy_from_slice(l))
                    .message_id(id["alertId"].as_str().unwrap_or_default())
            })
            .collect()
    }

    /// Stores the state covering what was scored (the lease renewed first: a worker that lost
    /// it stores nothing), then acknowledges that input.
    async fn save(
        &self,
        s: &mut Scoring,
        lease: &mut Lease,
        store: &ObjectStore,
    ) -> anyhow::Result<()> {
        if s.last == s.covered {
            return Ok(());
        }
        lease.renew().await?;
        let snapshot = tokio::task::block_in_place(|| s.plugin.snapshot())?;
        let meta = jetstream::object_store::ObjectMetadata {
            name: object_name(self.number),
            metadata: std::collections::HashMap::from([(COVERED.to_owned(), s.last.to_string())]),
            ..Default::default()
        };
        store
            .put(meta, &mut &snapshot[..])
            .await
            .map_err(|e| anyhow::anyhow!("storing the state of partition {}: {e}", self.number))?;
        s.covered = s.last;
        super::ack_through(s.pending.last()).await?;
        s.pending.clear();
        Ok(())
    }
}

/// The scored line's message id: the input's own (the route's `r<raw sequence>-<line>`), or the
/// partition and sequence for input published without one.
fn message_id(m: &jetstream::Message, partition: u32, seq: u64) -> String {
    super::message_id(m.headers.as_ref()).unwrap_or_else(|| format!("p{partition}-{seq}"))
}

fn object_name(partition: u32) -> String {
    format!("partition-{partition}")
}

/// The stored state of a partition: the last input sequence it covers and the snapshot (none
/// for a partition never stored).
async fn load_state(store: &ObjectStore, partition: u32) -> anyhow::Result<(u64, Option<Vec<u8>>)> {
    let name = object_name(partition);
    let info = match store.info(&name).await {
        Ok(info) if !info.deleted => info,
        Ok(_) => return Ok((0, None)),
        Err(e) if e.kind() == jetstream::object_store::InfoErrorKind::NotFound => {
            return Ok((0, None));
        }
        Err(e) => {
            return Err(anyhow::anyhow!(
                "reading the state of partition {partition}: {e}"
            ));
        }
    };
    let covered: u64 = info
        .metadata
        .get(COVERED)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("the state of partition {partition} names no covered sequence"))?;
    let mut object = store
        .get(&name)
        .await
        .map_err(|e| anyhow::anyhow!("reading the state of partition {partition}: {e}"))?;
    let mut snapshot = Vec::new();
    object.read_to_end(&mut snapshot).await?;
    Ok((covered, Some(snapshot)))
}

/// The alert thresholds of the configuration, or the defaults.
fn alert_settings(settings: &Settings) -> AlertSettings {
    settings.alerts.clone().unwrap_or(AlertSettings {
        sinks: Vec::new(),
        queue: crate::delivery::QueueSettings::default(),
        min_severity: crate::alerts::DEFAULT_MIN_SEVERITY,
        campaign_min_events: crate::alerts::DEFAULT_CAMPAIGN_MIN_EVENTS,
        suppress: crate::suppress::Rules::default(),
    })
}
