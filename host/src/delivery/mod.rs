//! Delivering alerts to receivers over the network, at least once across crashes and restarts.
//!
//! A [`Queued`] sink appends each batch of alert lines to a [`queue::Queue`] on disk (synced
//! before the write returns, and so before the state that learned their events is saved) and
//! wakes its delivery task, which sends the lines at the queue's head with a [`Sender`] (HTTP,
//! syslog) and removes them only once the receiver took them. A receiver that fails is tried
//! again with exponential backoff and jitter, for as long as it takes; one that refuses a batch
//! (a 4xx other than 408 and 429) gets it set aside in `refused.jsonl` beside the queue, with an
//! error. When the run ends, the task delivers for at most `drain` more; what is left stays
//! queued for the next run.

mod fit;
pub mod http;
pub mod queue;
mod syslog;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::Notify;

use crate::metrics::{Metrics, SinkLabel};
use crate::output::Sink;
pub use queue::WhenFull;
use queue::{Peeked, Queue};
pub use syslog::SyslogSender;

/// What became of a batch sent to a receiver.
#[derive(Debug)]
pub enum Delivery {
    Done,
    /// Worth another try, after the wait the receiver asked for, if it did.
    Retry(String, Option<Duration>),
    /// The receiver will never take this batch.
    Refused(String),
}

/// Sends batches of lines to one receiver.
pub trait Sender: Send + Sync + std::fmt::Debug {
    fn name(&self) -> String;

    /// Lines per batch at most.
    fn batch(&self) -> usize;

    fn send<'a>(&'a mut self, lines: &'a [u8]) -> BoxFuture<'a, Delivery>;
}

/// The `[alerts.queue]` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    pub max_bytes: u64,
    pub when_full: WhenFull,
    /// How long the end of a run waits for deliveries.
    pub drain: Duration,
}

impl Default for QueueSettings {
    fn default() -> QueueSettings {
        QueueSettings {
            max_bytes: 256 << 20,
            when_full: WhenFull::Block,
            drain: Duration::from_secs(30),
        }
    }
}

/// What the writer and the delivery task share.
#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    /// Lines were queued, or the run is ending.
    more: Notify,
    /// Lines were delivered (room for a blocked writer).
    room: Notify,
    ending: std::sync::atomic::AtomicBool,
    label: SinkLabel,
    metrics: Arc<Metrics>,
}

impl Shared {
    fn queue(&self) -> std::io::Result<MutexGuard<'_, Queue>> {
        self.queue
            .lock()
            .map_err(|_| std::io::Error::other("the delivery queue is poisoned"))
    }
}

/// A sink whose lines are queued on disk and delivered by a task of their own.
#[derive(Debug)]
pub struct Queued {
    name: String,
    dir: PathBuf,
    shared: Arc<Shared>,
    settings: QueueSettings,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Queued {
    /// Opens the queue in `dir` (what an earlier run left there is delivered first) and starts
    /// delivering with `sender`.
    pub fn start(
        sender: Box<dyn Sender>,
        dir: &Path,
        settings: QueueSettings,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Queued> {
        let queue = Queue::open(dir, settings.max_bytes)?;
        let name = sender.name();
        if !queue.is_empty() {
            tracing::info!(
                "{name}: {} bytes of alerts left queued by an earlier run are delivered first",
                queue.bytes()
            );
        }
        let label = SinkLabel { sink: name.clone() };
        metrics
            .alerts_queued_bytes
            .get_or_create(&label)
            .set(queue.bytes() as i64);
        let shared = Arc::new(Shared {
            queue: Mutex::new(queue),
            more: Notify::new(),
            room: Notify::new(),
            ending: false.into(),
            label,
            metrics,
        });
        let task = tokio::spawn(deliver(shared.clone(), sender, dir.join("refused.jsonl")));
        Ok(Queued {
            name,
            dir: dir.to_owned(),
            shared,
            settings,
            task: Some(task),
        })
    }

    async fn push(&mut self, lines: Vec<u8>) -> std::io::Result<()> {
        let mut warned = false;
        loop {
            let room = self.shared.room.notified();
            {
                let mut queue = self.shared.queue()?;
                if queue.fits(lines.len() as u64) {
                    queue.push(&lines)?;
                    self.gauge(&queue);
                    self.shared.more.notify_one();
                    return Ok(());
                }
                if self.settings.when_full == WhenFull::DropOldest {
                    let dropped = queue.drop_oldest()?;
                    tracing::warn!(
                        "{}: the alert queue is full: dropped its {dropped} oldest alerts",
                        self.name
                    );
                    self.shared
                        .metrics
                        .alerts_dropped
                        .get_or_create(&self.shared.label)
                        .inc_by(dropped);
                    continue;
                }
            }
            if !warned {
                tracing::warn!(
                    "{}: the alert queue ({}) is full: scoring waits for deliveries",
                    self.name,
                    self.dir.display()
                );
                warned = true;
            }
            room.await;
        }
    }

    fn gauge(&self, queue: &Queue) {
        self.shared
            .metrics
            .alerts_queued_bytes
            .get_or_create(&self.shared.label)
            .set(queue.bytes() as i64);
    }

    /// Delivers for at most the drain time; what is left stays queued.
    async fn drain(&mut self) -> std::io::Result<()> {
        self.shared
            .ending
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.shared.more.notify_one();
        let Some(mut task) = self.task.take() else {
            return Ok(());
        };
        if tokio::time::timeout(self.settings.drain, &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
        let left = self.shared.queue()?.bytes();
        if left > 0 {
            tracing::warn!(
                "{}: {left} bytes of alerts are still queued in {} (delivered by the next run)",
                self.name,
                self.dir.display()
            );
        }
        Ok(())
    }
}

impl Sink for Queued {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn write(&mut self, lines: Vec<u8>) -> BoxFuture<'_, std::io::Result<()>> {
        Box::pin(self.push(lines))
    }

    fn finish(&mut self) -> BoxFuture<'_, std::io::Result<()>> {
        Box::pin(self.drain())
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The delivery task: sends the queue's head until the run ends with the queue empty.
async fn deliver(shared: Arc<Shared>, mut sender: Box<dyn Sender>, refused: PathBuf) {
    let mut failures = 0u32;
    loop {
        let more = shared.more.notified();
        let peeked = match shared.queue().and_then(|q| q.peek(sender.batch(), 4 << 20)) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("{}: reading the alert queue: {e}", sender.name());
                return;
            }
        };
        if peeked.count == 0 {
            if shared.ending.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            more.await;
            continue;
        }
        let outcome = sender.send(&peeked.lines).await;
        if let Err(e) = settle(&shared, &*sender, &peeked, outcome, &mut failures, &refused).await {
            tracing::error!("{}: the alert queue: {e}", sender.name());
            return;
        }
    }
}

/// Acts on what became of `peeked`: removes it when delivered or refused, waits before another
/// try otherwise.
async fn settle(
    shared: &Shared,
    sender: &dyn Sender,
    peeked: &Peeked,
    outcome: Delivery,
    failures: &mut u32,
    refused: &Path,
) -> std::io::Result<()> {
    let m = &shared.metrics;
    match outcome {
        Delivery::Done => {
            if *failures > 0 {
                tracing::info!(
                    "{}: delivering again after {failures} failed tries",
                    sender.name()
                );
            }
            *failures = 0;
            remove(shared, peeked)?;
            m.alerts_delivered
                .get_or_create(&shared.label)
                .inc_by(peeked.count as u64);
        }
        Delivery::Refused(why) => {
            tracing::error!(
                "{}: refused {} alerts ({why}); they are kept in {}",
                sender.name(),
                peeked.count,
                refused.display()
            );
            set_aside(refused, &peeked.lines)?;
            remove(shared, peeked)?;
            m.alerts_refused
                .get_or_create(&shared.label)
                .inc_by(peeked.count as u64);
        }
        Delivery::Retry(why, asked) => {
            *failures += 1;
            m.delivery_retries.get_or_create(&shared.label).inc();
            let wait = asked.unwrap_or_else(|| backoff(*failures));
            if *failures == 1 || failures.is_power_of_two() {
                tracing::warn!(
                    "{}: {why}; {} alerts wait, trying again in {wait:.1?} (try {failures})",
                    sender.name(),
                    peeked.count
                );
            }
            tokio::time::sleep(wait).await;
        }
    }
    Ok(())
}

fn remove(shared: &Shared, peeked: &Peeked) -> std::io::Result<()> {
    let mut queue = shared.queue()?;
    queue.pop(peeked)?;
    shared
        .metrics
        .alerts_queued_bytes
        .get_or_create(&shared.label)
        .set(queue.bytes() as i64);
    shared.room.notify_waiters();
    Ok(())
}

/// Appends refused lines to `path`, synced.
fn set_aside(path: &Path, lines: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut file = fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(lines)?;
    file.sync_data()
}

/// The wait before try `n + 1`: exponential from 200 ms to at most 60 s, with full jitter
/// (many oddity processes that lost one receiver do not come back at once).
fn backoff(n: u32) -> Duration {
    let ceiling = Duration::from_millis(200)
        .saturating_mul(1 << n.min(16))
        .min(Duration::from_secs(60));
    let fraction: f64 = rand::random_range(0.5..=1.0);
    ceiling.mul_f64(fraction)
}

/// Lines in `format`, from native alert lines.
#[derive(Debug)]
pub struct Formatted {
    pub format: crate::formats::Format,
    pub inner: Box<dyn Sink>,
}

impl Formatted {
    fn render(&self, lines: &[u8]) -> Vec<u8> {
        if self.format == crate::formats::Format::Native {
            return lines.to_vec();
        }
        let mut out = Vec::with_capacity(lines.len() * 2);
        for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let Ok(native) = serde_json::from_slice(line) else {
                continue;
            };
            // Serialising a JSON value into memory cannot fail.
            if serde_json::to_writer(&mut out, &self.format.render(native)).is_ok() {
                out.push(b'\n');
            }
        }
        out
    }
}

impl Sink for Formatted {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn write(&mut self, lines: Vec<u8>) -> BoxFuture<'_, std::io::Result<()>> {
        let rendered = self.render(&lines);
        self.inner.write(rendered)
    }

    fn finish(&mut self) -> BoxFuture<'_, std::io::Result<()>> {
        self.inner.finish()
    }

    fn reopen(&mut self) -> BoxFuture<'_, std::io::Result<()>> {
        self.inner.reopen()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_a_minute_with_jitter() {
        assert!(backoff(1) <= Duration::from_millis(400));
        assert!(backoff(1) >= Duration::from_millis(200));
        assert!(backoff(30) <= Duration::from_secs(60));
        assert!(backoff(30) >= Duration::from_secs(30));
    }
}
