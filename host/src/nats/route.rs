//! The route stage: `PREFIX.raw` to `PREFIX.part.N` by principal.
//!
//! A durable consumer (`route`) reads the raw messages in order; each line of a message (a
//! message may hold several JSON lines) gets its principal from the engine's own extractor
//! (`entities`: nothing learned) and goes to the partition of that principal, with the message
//! id `r<raw sequence>-<line>`, so a replay after a crash is dropped by JetStream. A line that
//! is not an event goes to the partition of its own bytes, where the worker handles it as a bad
//! line. After every raw message whose sequence is a multiple of `share-every`, a marker goes to
//! every partition (no payload, the header `Oddity-Marker: K`, K the sequence divided by
//! `share-every`, id `r<raw sequence>-m<partition>`): where the workers exchange population
//! knowledge. The raw message is acknowledged once all its lines and markers are stored. One
//! route process keeps each principal's events in order; run it under a supervisor (it holds
//! no state).

use async_nats::jetstream;

use super::{MARKER, Names, StageArgs, await_acks, connect, partition_of, partitions};

/// Messages fetched at once.
const BATCH: usize = 512;

/// `oddity nats route`.
pub async fn route(args: &StageArgs) -> anyhow::Result<()> {
    let stop = super::stop_on_signal();
    super::resilient("route", &stop, || route_once(args, &stop)).await
}

/// Routes from where the partitions' stream stops until `stop`.
async fn route_once(
    args: &StageArgs,
    stop: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let js = connect(&args.nats.url).await?;
    let names = Names::new(&args.nats.prefix);
    let n = partitions(&js, &names).await?;
    let route = Route {
        partitions: n,
        share_every: super::share_every(&js, &names).await?,
    };
    let settings = super::settings(args.config.as_ref())?;
    let mut plugin = super::plugin(&settings, None)?;
    let stream = js.get_stream(names.stream("RAW")).await?;
    let start = routed(&js, &names).await?;
    let consumer = super::cursor(&stream, "route", None, start).await?;
    tracing::info!(
        "routing {} to {n} partitions from raw message {start}",
        names.raw()
    );
    loop {
        let batch = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            batch = super::fetch(&consumer, BATCH) => batch?,
        };
        if !batch.is_empty() {
            forward(&js, &names, route, &mut plugin, &batch).await?;
        }
    }
}

/// The raw sequence of the last line routed (from the partitions' stream's last message id,
/// `r<raw sequence>-<line>`): routing starts again at that raw message (its lines already
/// routed are dropped as duplicates), or at the start.
async fn routed(js: &jetstream::Context, names: &Names) -> anyhow::Result<u64> {
    let mut part = js.get_stream(names.stream("PART")).await?;
    let last = part.info().await?.state.last_sequence;
    if last == 0 {
        return Ok(1);
    }
    let message = part
        .get_raw_message(last)
        .await
        .map_err(|e| anyhow::anyhow!("reading the last routed line: {e}"))?;
    let id = super::message_id(Some(&message.headers)).unwrap_or_default();
    Ok(id
        .strip_prefix('r')
        .and_then(|rest| rest.split('-').next())
        .and_then(|seq| seq.parse().ok())
        .unwrap_or(1))
}

/// How the deployment was set up.
#[derive(Debug, Clone, Copy)]
struct Route {
    partitions: u32,
    share_every: u64,
}

/// Publishes every line of `batch` to its partition, and the markers, then acknowledges the
/// batch.
async fn forward(
    js: &jetstream::Context,
    names: &Names,
    route: Route,
    plugin: &mut crate::plugin::Plugin,
    batch: &[jetstream::Message],
) -> anyhow::Result<()> {
    let n = route.partitions;
    let mut lines = Vec::new();
    let mut origin = Vec::new();
    let mut seqs = Vec::with_capacity(batch.len());
    for message in batch {
        let seq = message
            .info()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .stream_sequence;
        seqs.push(seq);
        for (i, line) in message
            .payload
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .enumerate()
        {
            lines.extend_from_slice(line);
            lines.push(b'\n');
            origin.push((seq, i, line));
        }
    }
    let entities = tokio::task::block_in_place(|| plugin.entities(&lines))?;
    anyhow::ensure!(
        entities.len() == origin.len(),
        "the plugin named {} entities for {} lines",
        entities.len(),
        origin.len()
    );
    let mut acks = Vec::with_capacity(origin.len());
    let mut routed = origin.into_iter().zip(entities).peekable();
    for seq in seqs {
        while let Some(((_, i, line), entity)) = routed.next_if(|((s, ..), _)| *s == seq) {
            let part = match &entity {
                Some(principal) => partition_of(principal, n),
                None => (xxhash_rust::xxh3::xxh3_64(line) % u64::from(n)) as u32,
            };
            let message = jetstream::message::PublishMessage::build()
                .payload(bytes::Bytes::copy_from_slice(line))
                .message_id(format!("r{seq}-{i}"));
            acks.push(js.send_publish(names.part(part), message).await?);
        }
        if route.share_every > 0 && seq.is_multiple_of(route.share_every) {
            for part in 0..n {
                let marker = jetstream::message::PublishMessage::build()
                    .header(MARKER, (seq / route.share_every).to_string().as_str())
                    .message_id(format!("r{seq}-m{part}"));
                acks.push(js.send_publish(names.part(part), marker).await?);
            }
        }
    }
    await_acks(&mut acks).await?;
    super::ack_through(batch.last()).await
}
