//! `oddity nats`: oddity past one machine, on NATS JetStream.
//!
//! Raw events are published to `PREFIX.raw` (stream `PREFIX_RAW`). One route stage reads them,
//! names each line's principal with the engine's own extractor (`entities`) and publishes the
//! line to `PREFIX.part.N` (stream `PREFIX_PART`), N a stable hash of the principal. Workers
//! each own partitions (a durable consumer `work-N` per partition, a lease in the key-value
//! bucket `PREFIX-leases`), score their lines and publish them to `PREFIX.scored` and the alerts
//! to `PREFIX.alerts`, every message with a message id derived from its input, so that
//! JetStream's duplicate window drops a replay. A partition's state (the engine's snapshot and
//! the last input sequence it covers) lives in the object store `PREFIX-state`; input is
//! acknowledged only once its output is published (with JetStream's acknowledgement) and the
//! state that learned it is stored.
//!
//! Population knowledge is shared at markers: after every `--share-every` raw messages the
//! route stage puts a marker into every partition; at marker K each worker publishes what its
//! engine learned into the population since the marker before to `PREFIX.share.P.K` (stream
//! `PREFIX_SHARE`), then merges every other partition's share of marker K-1, waiting for it if
//! need be. A marker has one place in each partition's input, so a replay shares and merges
//! the same, and scores stay deterministic. See docs/scale-out.md.

mod lease;
mod route;
mod work;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, stream};
use clap::{Args, Subcommand};
use futures::StreamExt as _;

pub use route::route;
pub use work::work;

/// `oddity nats` subcommands.
#[derive(Debug, Subcommand, Clone)]
pub enum NatsCommand {
    /// Create the streams, the lease bucket and the state store (idempotent).
    Setup(SetupArgs),
    /// Publish the events of files (JSON lines, CloudTrail delivery files, JSON arrays; plain
    /// or .gz) to PREFIX.raw, one message each.
    Publish(PublishArgs),
    /// Route PREFIX.raw to the partitions by principal.
    Route(StageArgs),
    /// Score partitions: own them, score their lines, publish, store the state.
    Work(WorkArgs),
    /// Copy the scored stream to a file (for checks and examples), with what it held.
    Collect(CollectArgs),
    /// Print the messages in each stream and each partition's stored state as one JSON line.
    Status(Connection),
}

/// Where the NATS server is and the names' prefix.
#[derive(Debug, Args, Clone)]
pub struct Connection {
    /// The NATS server.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub url: String,
    /// Prefix of subjects (`PREFIX.raw`), streams (`PREFIX_RAW`) and buckets (`PREFIX-state`).
    #[arg(long, default_value = "oddity")]
    pub prefix: String,
}

#[derive(Debug, Args, Clone)]
pub struct SetupArgs {
    #[command(flatten)]
    pub nats: Connection,
    /// Partitions (fixed for the life of the streams).
    #[arg(long)]
    pub partitions: u32,
    /// Replicas of every stream and bucket (3 on a three-node cluster).
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
    /// Raw messages between two exchanges of population knowledge between the partitions'
    /// engines (fixed for the life of the streams); 0 keeps it partition-local.
    #[arg(long, default_value_t = DEFAULT_SHARE_EVERY)]
    pub share_every: u64,
}

#[derive(Debug, Args, Clone)]
pub struct PublishArgs {
    #[command(flatten)]
    pub nats: Connection,
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct StageArgs {
    #[command(flatten)]
    pub nats: Connection,
    /// The configuration file (profile, engine settings), as for scoring.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct WorkArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// The partitions this worker owns (each waits for its lease).
    #[arg(long, value_delimiter = ',', required = true)]
    pub partitions: Vec<u32>,
    /// How often the state is stored and the input acknowledged.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub save_every: Duration,
    /// Lines that are not events go to PREFIX.dead instead of PREFIX.scored.
    #[arg(long)]
    pub dead_letter: bool,
    /// Stop after this long without input (default: run until SIGTERM).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub idle_exit: Option<Duration>,
}

#[derive(Debug, Args, Clone)]
pub struct CollectArgs {
    #[command(flatten)]
    pub nats: Connection,
    /// Write `{"id": MESSAGE_ID, "line": SCORED_LINE}` lines here.
    #[arg(long)]
    pub out: PathBuf,
    /// Wait until the stream holds this many messages (at most --wait).
    #[arg(long)]
    pub expect: Option<u64>,
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub wait: Duration,
}

/// The names of one deployment.
#[derive(Debug, Clone)]
pub struct Names {
    pub prefix: String,
}

impl Names {
    pub fn new(prefix: &str) -> Names {
        Names {
            prefix: prefix.to_owned(),
        }
    }

    fn stream(&self, what: &str) -> String {
        format!("{}_{what}", self.prefix.to_ascii_uppercase())
    }

    pub fn raw(&self) -> String {
        format!("{}.raw", self.prefix)
    }

    pub fn part(&self, n: u32) -> String {
        format!("{}.part.{n}", self.prefix)
    }

    pub fn scored(&self) -> String {
        format!("{}.scored", self.prefix)
    }

    pub fn alerts(&self) -> String {
        format!("{}.alerts", self.prefix)
    }

    pub fn dead(&self) -> String {
        format!("{}.dead", self.prefix)
    }

    pub fn leases(&self) -> String {
        format!("{}-leases", self.prefix)
    }

    pub fn state(&self) -> String {
        format!("{}-state", self.prefix)
    }

    pub fn config(&self) -> String {
        format!("{}-config", self.prefix)
    }

    /// The subject of partition `p`'s share of population knowledge at marker `k`.
    pub fn share(&self, p: u32, k: u64) -> String {
        format!("{}.share.{p}.{k}", self.prefix)
    }
}

/// Raw messages between two markers, unless set up otherwise.
pub const DEFAULT_SHARE_EVERY: u64 = 1000;
/// How long shares of population knowledge are kept (a worker replaying from a stored state
/// merges them again).
const SHARES_KEPT: Duration = Duration::from_secs(7 * 86_400);
/// The header of a marker message: the marker's number.
pub const MARKER: &str = "Oddity-Marker";

/// How long a partition's lease lasts without renewal.
pub const LEASE: Duration = Duration::from_secs(6);
/// How long JetStream remembers message ids to drop a replay.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);

/// Connects, retrying with backoff for about a minute (a server restarting).
pub async fn connect(url: &str) -> anyhow::Result<jetstream::Context> {
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connect(url)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    Ok(jetstream::new(client))
}

/// `oddity nats setup`.
pub async fn setup(args: &SetupArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.partitions > 0, "--partitions must be at least 1");
    let js = connect(&args.nats.url).await?;
    let names = Names::new(&args.nats.prefix);
    for (what, subjects) in [
        ("RAW", vec![names.raw()]),
        ("PART", vec![format!("{}.part.*", names.prefix)]),
        ("SCORED", vec![names.scored()]),
        ("ALERTS", vec![names.alerts()]),
        ("DEAD", vec![names.dead()]),
        ("SHARE", vec![format!("{}.share.>", names.prefix)]),
    ] {
        js.get_or_create_stream(stream::Config {
            name: names.stream(what),
            subjects,
            max_age: if what == "SHARE" {
                SHARES_KEPT
            } else {
                Duration::ZERO
            },
            duplicate_window: DUPLICATE_WINDOW,
            num_replicas: args.replicas,
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .with_context(|| format!("stream {}", names.stream(what)))?;
    }
    let leases = key_value(&js, &names.leases(), LEASE, args.replicas).await?;
    drop(leases);
    let config = key_value(&js, &names.config(), Duration::ZERO, args.replicas).await?;
    fixed(&config, &names, "partitions", args.partitions.into()).await?;
    fixed(&config, &names, "share-every", args.share_every).await?;
    js.create_object_store(jetstream::object_store::Config {
        bucket: names.state(),
        num_replicas: args.replicas,
        ..Default::default()
    })
    .await
    .context("the state store")?;
    tracing::info!(
        "set up {}: {} partitions, {} replicas, population shared every {} raw messages",
        names.prefix,
        args.partitions,
        args.replicas,
        args.share_every
    );
    Ok(())
}

/// Stores a setting fixed once set up, or checks that it is unchanged.
async fn fixed(
    config: &jetstream::kv::Store,
    names: &Names,
    key: &str,
    value: u64,
) -> anyhow::Result<()> {
    match config.get(key).await? {
        Some(v) if v != value.to_string().as_bytes() => anyhow::bail!(
            "the deployment {} has {key} {}, not {value}: it is fixed once set up",
            names.prefix,
            String::from_utf8_lossy(&v),
        ),
        Some(_) => Ok(()),
        None => {
            config.put(key, value.to_string().into()).await?;
            Ok(())
        }
    }
}

/// A key-value bucket, made as `create_key_value` makes one (a stream `KV_<bucket>`); by hand,
/// as async-nats asks the server for account details that nats-server 2.9 does not give.
async fn key_value(
    js: &jetstream::Context,
    bucket: &str,
    max_age: Duration,
    replicas: usize,
) -> anyhow::Result<jetstream::kv::Store> {
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_age,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        num_replicas: replicas,
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .with_context(|| format!("the key-value bucket {bucket}"))?;
    js.get_key_value(bucket)
        .await
        .with_context(|| format!("the key-value bucket {bucket}"))
}

/// The deployment's partition count, as set up.
pub async fn partitions(js: &jetstream::Context, names: &Names) -> anyhow::Result<u32> {
    let n = setting(js, names, "partitions")
        .await?
        .context("no partition count: run oddity nats setup")?;
    Ok(u32::try_from(n)?)
}

/// Raw messages between two markers as set up (0: population knowledge stays partition-local,
/// as in a deployment set up before markers existed).
pub async fn share_every(js: &jetstream::Context, names: &Names) -> anyhow::Result<u64> {
    Ok(setting(js, names, "share-every").await?.unwrap_or(0))
}

async fn setting(js: &jetstream::Context, names: &Names, key: &str) -> anyhow::Result<Option<u64>> {
    let config = js
        .get_key_value(names.config())
        .await
        .with_context(|| format!("{} is not set up (oddity nats setup)", names.prefix))?;
    let Some(v) = config.get(key).await? else {
        return Ok(None);
    };
    let v = std::str::from_utf8(&v)?.trim();
    Ok(Some(v.parse().with_context(|| format!("{key} = {v:?}"))?))
}

/// `oddity nats publish`: each line one message, its id the file's name and line number.
pub async fn publish(args: &PublishArgs) -> anyhow::Result<()> {
    let js = connect(&args.nats.url).await?;
    let names = Names::new(&args.nats.prefix);
    let mut total = 0u64;
    for path in &args.files {
        let text = read_text(path)?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let mut acks = Vec::new();
        for (i, line) in crate::input::event_lines(&text, crate::settings::DEFAULT_MAX_LINE)
            .into_iter()
            .enumerate()
        {
            let message = jetstream::message::PublishMessage::build()
                .payload(line.into())
                .message_id(format!("{name}:{}", i + 1));
            acks.push(js.send_publish(names.raw(), message).await?);
            if acks.len() >= 4096 {
                await_acks(&mut acks).await?;
            }
            total += 1;
        }
        await_acks(&mut acks).await?;
    }
    tracing::info!("published {total} lines to {}", names.raw());
    Ok(())
}

/// The bytes of a file, gunzipped if it is gzip.
fn read_text(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let mut text = Vec::new();
    crate::scored::open(fs_err::File::open(path)?)?.read_to_end(&mut text)?;
    Ok(text)
}

/// A message's id (`Nats-Msg-Id`), if it was published with one.
fn message_id(headers: Option<&async_nats::HeaderMap>) -> Option<String> {
    headers?.get("Nats-Msg-Id").map(|v| v.as_str().to_owned())
}

/// Waits for JetStream's acknowledgement of every publication in `acks`.
pub async fn await_acks(
    acks: &mut Vec<jetstream::context::PublishAckFuture>,
) -> anyhow::Result<()> {
    for ack in acks.drain(..) {
        ack.await.context("JetStream did not store a publication")?;
    }
    Ok(())
}

/// Up to `max` messages of a pull consumer, waiting at most 100 ms for them.
async fn fetch(
    consumer: &jetstream::consumer::PullConsumer,
    max: usize,
) -> anyhow::Result<Vec<jetstream::Message>> {
    let mut messages = consumer
        .fetch()
        .max_messages(max)
        .expires(Duration::from_millis(100))
        .messages()
        .await?;
    let mut batch = Vec::new();
    while let Some(m) = messages.next().await {
        batch.push(m.map_err(|e| anyhow::anyhow!("fetching: {e}"))?);
    }
    Ok(batch)
}

/// A stop token cancelled by SIGTERM or SIGINT.
fn stop_on_signal() -> tokio_util::sync::CancellationToken {
    let stop = tokio_util::sync::CancellationToken::new();
    let signal = stop.clone();
    tokio::spawn(async move {
        crate::shutdown().await;
        signal.cancel();
    });
    stop
}

/// Runs `stage` until it ends well or `stop` is cancelled; a failure (the broker gone, a lease
/// lost, a publication not acknowledged) is reported and the stage started again after a
/// backoff from 1 s to 30 s: it resumes from the stored position, so nothing is lost or doubled.
async fn resilient<F, Fut>(
    what: &str,
    stop: &tokio_util::sync::CancellationToken,
    mut stage: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut wait = Duration::from_secs(1);
    loop {
        match stage().await {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::warn!("{what}: {e:#}; starting again in {wait:?}");
                tokio::select! {
                    () = stop.cancelled() => return Err(e),
                    () = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Acknowledges `message` and, the consumer acknowledging all, every message before it.
async fn ack_through(message: Option<&jetstream::Message>) -> anyhow::Result<()> {
    if let Some(m) = message {
        m.ack()
            .await
            .map_err(|e| anyhow::anyhow!("acknowledging: {e}"))?;
    }
    Ok(())
}

/// A durable pull consumer `name` on `stream`, made anew to deliver from `start` (the stored
/// position is the truth; a consumer is only a cursor, owned by one process at a time: a new
/// owner must not get an earlier owner's unacknowledged messages after newer ones).
async fn cursor(
    stream: &stream::Stream,
    name: &str,
    filter: Option<String>,
    start: u64,
) -> anyhow::Result<jetstream::consumer::PullConsumer> {
    let _ = stream.delete_consumer(name).await;
    stream
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some(name.to_owned()),
            filter_subject: filter.unwrap_or_default(),
            deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
                start_sequence: start.max(1),
            },
            ack_policy: jetstream::consumer::AckPolicy::All,
            ack_wait: Duration::from_secs(60),
            max_ack_pending: 1_000_000,
            ..Default::default()
        })
        .await
        .with_context(|| format!("the consumer {name}"))
}

/// `oddity nats collect`.
pub async fn collect(args: &CollectArgs) -> anyhow::Result<()> {
    let js = connect(&args.nats.url).await?;
    let names = Names::new(&args.nats.prefix);
    let mut stream = js.get_stream(names.stream("SCORED")).await?;
    let start = std::time::Instant::now();
    if let Some(want) = args.expect {
        while stream.info().await?.state.messages < want && start.elapsed() < args.wait {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let total = stream.info().await?.state.messages;
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
        .await?;
    let mut messages = consumer.messages().await?;
    let mut out = Vec::new();
    let mut seen = 0u64;
    while seen < total {
        let message = messages.next().await.context("the scored stream ended")??;
        let id = message_id(message.headers.as_ref()).unwrap_or_default();
        let line = String::from_utf8_lossy(&message.payload);
        serde_json::to_writer(&mut out, &serde_json::json!({"id": id, "line": line}))?;
        out.push(b'\n');
        seen += 1;
    }
    fs_err::write(&args.out, out)?;
    eprintln!("{seen} scored messages in {}", names.scored());
    Ok(())
}

/// `oddity nats status`: `{"raw": N, "part": N, "scored": N, "alerts": N, "dead": N,
/// "share": N, "partitions": [{"partition": P, "state_bytes": B, "covered": SEQ, "marker": K},
/// ...]}`.
pub async fn status(args: &Connection) -> anyhow::Result<()> {
    let js = connect(&args.url).await?;
    let names = Names::new(&args.prefix);
    let mut counts = serde_json::Map::new();
    for what in ["RAW", "PART", "SCORED", "ALERTS", "DEAD", "SHARE"] {
        let mut stream = js.get_stream(names.stream(what)).await?;
        let n = stream.info().await?.state.messages;
        counts.insert(what.to_ascii_lowercase(), n.into());
    }
    counts.insert(
        "partitions".to_owned(),
        partition_states(&js, &names).await?.into(),
    );
    println!("{}", serde_json::Value::Object(counts));
    Ok(())
}

/// Each partition's stored state: its bytes and the last input sequence it covers.
async fn partition_states(
    js: &jetstream::Context,
    names: &Names,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let store = js.get_object_store(names.state()).await?;
    let mut states = Vec::new();
    for p in 0..partitions(js, names).await? {
        let state = match store.info(format!("partition-{p}")).await {
            Ok(info) if !info.deleted => serde_json::json!({
                "partition": p,
                "state_bytes": info.size,
                "covered": info.metadata.get("covered").and_then(|c| c.parse::<u64>().ok()),
                "marker": info.metadata.get("marker").and_then(|c| c.parse::<u64>().ok()),
            }),
            _ => serde_json::json!({"partition": p, "state_bytes": 0, "covered": 0}),
        };
        states.push(state);
    }
    Ok(states)
}

/// Runs an `oddity nats` subcommand.
pub async fn run(command: &NatsCommand) -> anyhow::Result<()> {
    match command {
        NatsCommand::Setup(a) => setup(a).await,
        NatsCommand::Publish(a) => publish(a).await,
        NatsCommand::Route(a) => route(a).await,
        NatsCommand::Work(a) => work(a).await,
        NatsCommand::Collect(a) => collect(a).await,
        NatsCommand::Status(a) => status(a).await,
    }
}

/// The partition of a principal: a stable hash (xxh3, seed 0) modulo the partition count.
pub fn partition_of(principal: &str, partitions: u32) -> u32 {
    (xxhash_rust::xxh3::xxh3_64(principal.as_bytes()) % u64::from(partitions)) as u32
}

/// The engine settings of `--config` (profile, engine, limits, cache), as scoring reads them.
fn settings(config: Option<&PathBuf>) -> anyhow::Result<crate::settings::Settings> {
    let args = crate::cli::ScoreArgs {
        config: config.cloned(),
        ..crate::cli::ScoreArgs::default()
    };
    Ok(crate::settings::Settings::load(&args)?)
}

/// A fresh or restored plugin for `settings`.
fn plugin(
    settings: &crate::settings::Settings,
    snapshot: Option<&[u8]>,
) -> anyhow::Result<crate::plugin::Plugin> {
    let wasm: Vec<u8> = match &settings.plugin {
        Some(p) => crate::plugin::read_component(p)?,
        None => crate::plugin::EMBEDDED.to_vec(),
    };
    Ok(crate::plugin::Plugin::load(
        &wasm,
        &settings.engine_config,
        snapshot,
        settings.limits,
        settings.cache_dir.as_deref(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_principal_keeps_its_partition() {
        let p = "IAMUser arn:aws:iam::111122223333:user/raul";
        assert_eq!(partition_of(p, 8), partition_of(p, 8));
        assert!(partition_of(p, 8) < 8);
        let spread: std::collections::HashSet<u32> = (0..200)
            .map(|i| partition_of(&format!("AssumedRole role-{i}"), 4))
            .collect();
        assert_eq!(spread.len(), 4);
    }
}
