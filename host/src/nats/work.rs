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
//!
//! At a marker (see the route stage), the engine's share of population knowledge is published
//! to `PREFIX.share.P.K` (id `s<P>-<K>`), then every other partition's share of the marker
//! before is merged, in partition order, waiting for any not yet published (the lease kept
//! meanwhile). The last marker passed is stored with the state, so a replay merges the same
//! shares at the same places.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream::{self, object_store::ObjectStore, stream::LastRawMessageErrorKind};
use tokio::io::AsyncReadExt as _;

use super::lease::Lease;
use super::{MARKER, Names, WorkArgs, await_acks, connect};
use crate::alerts::Alerts;
use crate::annotation::Annotation;
use crate::annotation::Status;
use crate::plugin::{Batch, Plugin};
use crate::settings::Settings;

/// Messages fetched at once.
const BATCH: usize = 256;
/// The object store's metadata keys of the last input sequence a state covers, and of the last
/// marker it passed.
const COVERED: &str = "covered";
const PASSED: &str = "marker";
/// How long to wait between two looks for another partition's share.
const SHARE_POLL: Duration = Duration::from_millis(20);

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
    let partitions = super::partitions(&js, &names).await?;
    let sharing = super::share_every(&js, &names).await? > 0;
    // Compiled once here (and cached), the component loads at once under each lease: compiling
    // it under a lease, a partition at a time on a busy machine, could outlast the lease.
    tokio::task::block_in_place(|| super::plugin(&settings, None))?;
    let mut tasks = Vec::new();
    for &p in &args.partitions {
        anyhow::ensure!(
            p < partitions,
            "partition {p} does not exist: {} has {partitions}",
            names.prefix
        );
        let worker = Partition {
            js: js.clone(),
            names: names.clone(),
            settings: settings.clone(),
            number: p,
            partitions,
            sharing,
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
    /// The deployment's partitions, and whether they share population knowledge.
    partitions: u32,
    sharing: bool,
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
    /// The last marker passed.
    passed: Option<u64>,
    /// The stream of shares of population knowledge, when the partitions share.
    shares: Option<jetstream::stream::Stream>,
}

impl Partition {
    async fn run(&self) -> anyhow::Result<()> {
        let leases = self.js.get_key_value(self.names.leases()).await?;
        let mut lease = Lease::take(leases, self.number, &self.owner).await;
        let store = self.js.get_object_store(self.names.state()).await?;
        let stored = load_state(&store, self.number).await?;
        let covered = stored.covered;
        let mut plugin = tokio::task::block_in_place(|| {
            super::plugin(&self.settings, stored.snapshot.as_deref())
        })?;
        if self.sharing && stored.snapshot.is_none() {
            tokio::task::block_in_place(|| plugin.share_population())?;
        }
        tracing::info!(partition = self.number, covered, "scoring");
        let mut s = Scoring {
            plugin,
            alerts: Alerts::new(&self.settings.alerts.clone().unwrap_or_default()),
            covered,
            pending: Vec::new(),
            last: covered,
            passed: stored.passed,
            shares: if self.sharing {
                Some(self.js.get_stream(self.names.stream("SHARE")).await?)
            } else {
                None
            },
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
                self.score(&mut s, &mut lease, batch).await?;
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

    /// Scores the batch's new lines and publishes what they give, and exchanges population
    /// knowledge at its markers (a line delivered again, one already scored, is acknowledged
    /// with the pending ones). Stopped while waiting for a share, it leaves the rest of the
    /// batch unscored.
    async fn score(
        &self,
        s: &mut Scoring,
        lease: &mut Lease,
        batch: Vec<jetstream::Message>,
    ) -> anyhow::Result<()> {
        let mut run = Vec::with_capacity(batch.len());
        for m in batch {
            let seq = m
                .info()
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .stream_sequence;
            if seq <= s.last {
                continue;
            }
            let Some(k) = marker(&m) else {
                run.push((seq, m));
                continue;
            };
            self.judge(s, std::mem::take(&mut run)).await?;
            if !self.exchange(s, lease, k).await? {
                return Ok(());
            }
            s.passed = Some(k);
            s.last = seq;
            s.pending.push(m);
        }
        self.judge(s, run).await
    }

    /// At marker `k`: publishes this engine's share, then merges the others' shares of the
    /// marker before (if this partition passed it). False if stopped while waiting.
    async fn exchange(&self, s: &mut Scoring, lease: &mut Lease, k: u64) -> anyhow::Result<bool> {
        let mine = tokio::task::block_in_place(|| s.plugin.share_population())?;
        let message = jetstream::message::PublishMessage::build()
            .payload(mine.into())
            .message_id(format!("s{}-{k}", self.number));
        self.js
            .send_publish(self.names.share(self.number, k), message)
            .await?
            .await
            .context("JetStream did not store a share of population knowledge")?;
        let Some(shares) = s
            .shares
            .clone()
            .filter(|_| k > 0 && s.passed == Some(k - 1))
        else {
            return Ok(true);
        };
        for q in (0..self.partitions).filter(|&q| q != self.number) {
            let Some(theirs) = self.share_of(&shares, lease, q, k - 1).await? else {
                return Ok(false);
            };
            if let Err(e) = tokio::task::block_in_place(|| s.plugin.merge_population(&theirs)) {
                tracing::error!(
                    partition = self.number,
                    "partition {q}'s share {}: {e}",
                    k - 1
                );
            }
        }
        Ok(true)
    }

    /// Partition `q`'s share at marker `k`, waiting until it is published; `None` if stopped.
    async fn share_of(
        &self,
        shares: &jetstream::stream::Stream,
        lease: &mut Lease,
        q: u32,
        k: u64,
    ) -> anyhow::Result<Option<bytes::Bytes>> {
        let subject = self.names.share(q, k);
        let since = Instant::now();
        let mut said = false;
        loop {
            match shares.get_last_raw_message_by_subject(&subject).await {
                Ok(m) => return Ok(Some(m.payload)),
                Err(e) if matches!(e.kind(), LastRawMessageErrorKind::NoMessageFound) => {}
                Err(e) => anyhow::bail!("reading {subject}: {e}"),
            }
            if !said && since.elapsed() > Duration::from_secs(10) {
                tracing::info!(partition = self.number, "waiting for {subject}");
                said = true;
            }
            lease.keep().await?;
            tokio::select! {
                () = self.stop.cancelled() => return Ok(None),
                () = tokio::time::sleep(SHARE_POLL) => {}
            }
        }
    }

    /// Judges a run of lines (no marker among them) and publishes what they give.
    async fn judge(
        &self,
        s: &mut Scoring,
        fresh: Vec<(u64, jetstream::Message)>,
    ) -> anyhow::Result<()> {
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
        let mut metadata =
            std::collections::HashMap::from([(COVERED.to_owned(), s.last.to_string())]);
        if let Some(k) = s.passed {
            metadata.insert(PASSED.to_owned(), k.to_string());
        }
        let meta = jetstream::object_store::ObjectMetadata {
            name: object_name(self.number),
            metadata,
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

/// The marker number of a marker message.
fn marker(m: &jetstream::Message) -> Option<u64> {
    m.headers.as_ref()?.get(MARKER)?.as_str().parse().ok()
}

/// A partition's stored state.
#[derive(Debug, Default)]
struct Stored {
    /// The last input sequence it covers, and the last marker it passed.
    covered: u64,
    passed: Option<u64>,
    /// None for a partition never stored.
    snapshot: Option<Vec<u8>>,
}

/// The stored state of a partition.
async fn load_state(store: &ObjectStore, partition: u32) -> anyhow::Result<Stored> {
    let name = object_name(partition);
    let info = match store.info(&name).await {
        Ok(info) if !info.deleted => info,
        Ok(_) => return Ok(Stored::default()),
        Err(e) if e.kind() == jetstream::object_store::InfoErrorKind::NotFound => {
            return Ok(Stored::default());
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
    Ok(Stored {
        covered,
        passed: info.metadata.get(PASSED).and_then(|k| k.parse().ok()),
        snapshot: Some(snapshot),
    })
}
