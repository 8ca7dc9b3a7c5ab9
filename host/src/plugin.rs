//! The plugin sandbox: loads the oddity component with wasmtime and drives its `engine` resource.
//! This is the only file of the host that sees wasmtime or WIT-generated types; everything else
//! gets notes, [`Status`]es and plain errors.
//!
//! The plugin runs in a store that grants nothing the contract does not need (events carry their
//! own time, so it needs no clock): no preopened files, no environment, arguments or working
//! directory, no network (TCP, UDP and name lookup denied), stdio that goes nowhere, clocks
//! fixed at the Unix epoch, randomness that is a constant stream of zeros, and no sleeping
//! (waiting on the monotonic clock traps, so a plugin cannot block the host outside its fuel).
//! On top of that, a memory cap and a fuel budget per call. A trap (panic, fuel or memory
//! exhausted) poisons the whole store, so [`Plugin::recover`] builds a new store and instance
//! and restores the last good snapshot.

use std::path::Path;
use std::time::Duration;

use wasmtime::component::{Component, Linker, ResourceAny};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{
    Deterministic, HostMonotonicClock, HostWallClock, ResourceTable, WasiCtx, WasiCtxView, WasiView,
};

use crate::annotation::{LineError, Severity, Status};

wasmtime::component::bindgen!({ path: "../wit", world: "oddity" });

use oddity::detector::types::{self as wit};

/// The component built from `plugin/` by the build script.
pub const EMBEDDED: &[u8] = include_bytes!(env!("EMBEDDED_PLUGIN_WASM"));

/// Limits of the sandbox.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Linear memory cap in bytes.
    pub memory: usize,
    /// Fuel (roughly, wasm instructions) per call; `None` for no limit. Metering costs about a
    /// fifth of the plugin's speed, so the default budget is the deadline instead.
    pub fuel: Option<u64>,
    /// Wall-clock time one call may take (epoch interruption, checked every [`TICK`]); `None`
    /// for no limit.
    pub deadline: Option<Duration>,
}

/// How often the epoch advances when a deadline is set.
pub const TICK: Duration = Duration::from_millis(10);

/// What went wrong talking to the plugin.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("cannot load the plugin: {0}")]
    Load(String),
    #[error("the plugin refused the configuration: {0}")]
    Config(String),
    #[error("the plugin refused the snapshot: {0}")]
    Snapshot(String),
    #[error("the plugin trapped: {0}")]
    Trap(String),
    #[error("the plugin broke the contract: {0}")]
    Contract(String),
    #[error("the plugin refused population knowledge shared by another partition: {0}")]
    Share(String),
}

struct Host {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// One loaded plugin with one engine.
pub struct Plugin {
    engine: Engine,
    pre: OddityPre<Host>,
    store: Store<Host>,
    bindings: Oddity,
    resource: ResourceAny,
    limits: Limits,
    config: String,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// What `judge` gives for a batch: one `\n`-terminated note per line (the JSON object to add
/// to the line under the output key; empty for a line that is not an object) and what became
/// of each line.
#[derive(Debug, Default)]
pub struct Judged {
    pub notes: Vec<u8>,
    pub statuses: Vec<Status>,
}

/// A batch for [`Plugin::judge`]: `\n`-terminated lines, or what [`Plugin::extract`] of a
/// sibling read from them.
#[derive(Debug, Clone, Copy)]
pub enum Batch<'a> {
    Lines(&'a [u8]),
    Observations(&'a [u8]),
}

/// A trap as one line: its cause (`wasm trap: all fuel consumed...`, a host function's refusal),
/// without the wasm backtrace, which goes to the debug log.
fn trap(e: wasmtime::Error) -> PluginError {
    tracing::debug!("plugin trap: {e:?}");
    PluginError::Trap(e.root_cause().to_string())
}

fn config_text(e: wit::ConfigError) -> String {
    match e {
        wit::ConfigError::Syntax(m) | wit::ConfigError::Invalid(m) => m,
    }
}

impl Plugin {
    /// Loads the component (`bytes`: a component binary) and creates an engine from `config`,
    /// restoring `snapshot` when given.
    pub fn load(
        bytes: &[u8],
        config: &str,
        snapshot: Option<&[u8]>,
        limits: Limits,
        cache: Option<&Path>,
    ) -> Result<Plugin, PluginError> {
        let mut cfg = Config::new();
        cfg.wasm_component_model(true);
        cfg.concurrency_support(false);
        cfg.consume_fuel(limits.fuel.is_some());
        cfg.epoch_interruption(limits.deadline.is_some());
        // Profiling aid: `WASM_PERFMAP=1` writes /tmp/perf-<pid>.map, so that `perf report`
        // names the plugin's functions.
        if std::env::var_os("WASM_PERFMAP").is_some() {
            cfg.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&cfg).map_err(|e| PluginError::Load(format!("{e:#}")))?;
        if limits.deadline.is_some() {
            // The clock of the deadline: ends when the engine is gone.
            let weak = engine.weak();
            std::thread::Builder::new()
                .name("oddity-epoch".into())
                .spawn(move || {
                    while let Some(engine) = weak.upgrade() {
                        engine.increment_epoch();
                        drop(engine);
                        std::thread::sleep(TICK);
                    }
                })
                .map_err(|e| PluginError::Load(format!("starting the deadline clock: {e}")))?;
        }
        let component = compile(&engine, bytes, cache)?;
        let mut linker: Linker<Host> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .and_then(|()| forbid_sleep(&mut linker))
            .map_err(|e| PluginError::Load(format!("{e:#}")))?;
        let pre = linker
            .instantiate_pre(&component)
            .and_then(OddityPre::new)
            .map_err(|e| {
                PluginError::Load(format!(
                    "the component does not export oddity:detector@0.6.1: {e:#}"
                ))
            })?;
        let (mut store, bindings) = instantiate(&engine, &pre, limits)?;
        let resource = create_engine(&bindings, &mut store, config, snapshot, limits.fuel)?;
        Ok(Plugin {
            engine,
            pre,
            store,
            bindings,
            resource,
            limits,
            config: config.to_owned(),
        })
    }

    fn refuel(&mut self) {
        if let Some(f) = self.limits.fuel {
            // Fuel is only off when the store was built without metering, which `load` rules out.
            let _ = self.store.set_fuel(f);
        }
        if let Some(d) = self.limits.deadline {
            self.store.set_epoch_deadline(deadline_ticks(d));
        }
    }

    /// Scores, then learns, a batch of `lines` lines: their notes and statuses. `Ok(None)`
    /// when the engine refused a batch of observations (it learned nothing then).
    pub fn judge(&mut self, batch: Batch<'_>, lines: usize) -> Result<Option<Judged>, PluginError> {
        let batch = match batch {
            Batch::Lines(b) => wit::Batch::Lines(b.to_vec()),
            Batch::Observations(b) => wit::Batch::Observations(b.to_vec()),
        };
        self.judge_wit(&batch, lines)
    }

    /// [`Plugin::judge`] of `\n`-terminated lines handed over: no copy of them is made before
    /// they cross into the plugin.
    pub fn judge_lines(
        &mut self,
        buf: Vec<u8>,
        lines: usize,
    ) -> Result<Option<Judged>, PluginError> {
        self.judge_wit(&wit::Batch::Lines(buf), lines)
    }

    fn judge_wit(
        &mut self,
        batch: &wit::Batch,
        lines: usize,
    ) -> Result<Option<Judged>, PluginError> {
        self.refuel();
        let out = self
            .bindings
            .oddity_detector_detector()
            .engine()
            .call_judge(&mut self.store, self.resource, batch)
            .map_err(trap)?;
        match out {
            Ok(judged) => checked(judged, lines).map(Some),
            Err(wit::BatchError::Foreign(reason) | wit::BatchError::Corrupt(reason)) => {
                tracing::warn!("the plugin refused the batch's observations: {reason}");
                Ok(None)
            }
        }
    }

    /// Another engine from the same component and configuration, in its own store, fresh (it
    /// is for stage one of the staged fast path, which learns nothing): no second compilation.
    pub fn sibling(&self) -> Result<Plugin, PluginError> {
        let (mut store, bindings) = instantiate(&self.engine, &self.pre, self.limits)?;
        let resource = create_engine(&bindings, &mut store, &self.config, None, self.limits.fuel)?;
        Ok(Plugin {
            engine: self.engine.clone(),
            pre: self.pre.clone(),
            store,
            bindings,
            resource,
            limits: self.limits,
            config: self.config.clone(),
        })
    }

    /// Stage one of judging on two cores (`extract`): the observations of a batch of
    /// `\n`-terminated lines, for [`Plugin::judge`] of a sibling.
    pub fn extract(&mut self, lines: &[u8]) -> Result<Vec<u8>, PluginError> {
        self.refuel();
        self.bindings
            .oddity_detector_detector()
            .engine()
            .call_extract(&mut self.store, self.resource, lines)
            .map_err(trap)
    }

    /// The entity (principal) of each line of `lines`, or `None` for a line that is not an
    /// event; nothing learned.
    pub fn entities(&mut self, lines: &[u8]) -> Result<Vec<Option<String>>, PluginError> {
        self.refuel();
        self.bindings
            .oddity_detector_detector()
            .engine()
            .call_entities(&mut self.store, self.resource, lines)
            .map_err(trap)
    }

    /// What the engine learned into the population since the last call (the first starts
    /// recording), for [`Plugin::merge_population`] of other partitions' engines.
    pub fn share_population(&mut self) -> Result<Vec<u8>, PluginError> {
        self.refuel();
        self.bindings
            .oddity_detector_detector()
            .engine()
            .call_share_population(&mut self.store, self.resource)
            .map_err(trap)
    }

    /// Adds another partition's share to the engine's population knowledge.
    pub fn merge_population(&mut self, share: &[u8]) -> Result<(), PluginError> {
        self.refuel();
        self.bindings
            .oddity_detector_detector()
            .engine()
            .call_merge_population(&mut self.store, self.resource, share)
            .map_err(trap)?
            .map_err(
                |(wit::BatchError::Foreign(m) | wit::BatchError::Corrupt(m))| PluginError::Share(m),
            )
    }

    /// The engine's snapshot bytes.
    pub fn snapshot(&mut self) -> Result<Vec<u8>, PluginError> {
        self.refuel();
        self.bindings
            .oddity_detector_detector()
            .engine()
            .call_snapshot(&mut self.store, self.resource)
            .map_err(trap)
    }

    /// The engine's configuration fingerprint.
    pub fn fingerprint(&mut self) -> Result<String, PluginError> {
        self.refuel();
        self.bindings
            .oddity_detector_detector()
            .engine()
            .call_fingerprint(&mut self.store, self.resource)
            .map_err(trap)
    }

    /// (events, nodes, max nodes, principals, prunes).
    pub fn stats(&mut self) -> Result<[u64; 5], PluginError> {
        self.refuel();
        let s = self
            .bindings
            .oddity_detector_detector()
            .engine()
            .call_stats(&mut self.store, self.resource)
            .map_err(trap)?;
        Ok([s.events, s.nodes, s.max_nodes, s.principals, s.prunes])
    }

    /// After a trap: a fresh store and instance, restored from `snapshot` (the last good state),
    /// or a fresh engine when there is none.
    pub fn recover(&mut self, snapshot: Option<&[u8]>) -> Result<(), PluginError> {
        let (store, bindings) = instantiate(&self.engine, &self.pre, self.limits)?;
        self.store = store;
        self.bindings = bindings;
        self.resource = create_engine(
            &self.bindings,
            &mut self.store,
            &self.config,
            snapshot,
            self.limits.fuel,
        )?;
        Ok(())
    }
}

/// Checks a batch's notes and verdicts against its `lines` lines: one of each per line.
fn checked(judged: wit::Judged, lines: usize) -> Result<Judged, PluginError> {
    let wit::Judged { notes, verdicts } = judged;
    let notes = notes.into_bytes();
    let newlines = memchr::memchr_iter(b'\n', &notes).count();
    if verdicts.len() != lines || newlines != lines || notes.last().is_some_and(|&b| b != b'\n') {
        return Err(PluginError::Contract(format!(
            "{} verdicts and {newlines} notes for a batch of {lines} lines",
            verdicts.len()
        )));
    }
    let statuses = verdicts
        .into_iter()
        .map(|v| match v {
            Ok(v) => Status::Scored {
                score: v.score,
                severity: severity(v.severity),
                campaign_risk: v.campaign_risk,
            },
            Err(e) => Status::Failed(line_error(e)),
        })
        .collect();
    Ok(Judged { notes, statuses })
}

fn create_engine(
    bindings: &Oddity,
    store: &mut Store<Host>,
    config: &str,
    snapshot: Option<&[u8]>,
    fuel: Option<u64>,
) -> Result<ResourceAny, PluginError> {
    if let Some(f) = fuel {
        store.set_fuel(f).map_err(trap)?;
    }
    let api = bindings.oddity_detector_detector().engine();
    match snapshot {
        None => api
            .call_create(&mut *store, config)
            .map_err(trap)?
            .map_err(|e| PluginError::Config(config_text(e))),
        Some(bytes) => api
            .call_restore(&mut *store, config, bytes)
            .map_err(trap)?
            .map_err(|e| match e {
                wit::SnapshotError::Config(c) => PluginError::Config(config_text(c)),
                wit::SnapshotError::NotASnapshot(m) => {
                    PluginError::Snapshot(format!("not a snapshot: {m}"))
                }
                wit::SnapshotError::Version(m) => {
                    PluginError::Snapshot(format!("format version: {m}"))
                }
                wit::SnapshotError::Checksum(m) => PluginError::Snapshot(format!("checksum: {m}")),
                wit::SnapshotError::Mismatch(m) => {
                    PluginError::Snapshot(format!(
                        "settings mismatch: {m} (it was written with another profile or other engine settings, or by an oddity whose built-in profile or model differs; run with the configuration that wrote it, or move the file away to learn afresh)"
                    ))
                }
            }),
    }
}

/// The WASI context of a plugin: nothing beyond what the contract needs.
fn sandbox() -> WasiCtx {
    WasiCtx::builder()
        // No preopened directories, environment, arguments or stdio: the builder's defaults.
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .wall_clock(FixedClock)
        .monotonic_clock(FixedClock)
        .secure_random(Deterministic::new(vec![0]))
        .insecure_random(Deterministic::new(vec![0]))
        .insecure_random_seed(0)
        // The host allocates what a guest asks for here, outside the guest's memory cap.
        .max_random_size(64 << 10)
        .build()
}

/// Both WASI clocks, stopped at the Unix epoch (wall) and at zero (monotonic).
struct FixedClock;

impl HostWallClock for FixedClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FixedClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Replaces the monotonic clock's `subscribe-*` functions with traps. A pollable from them
/// waits in real time inside a host call, where fuel does not run out: a plugin could block
/// the scorer for ever. Nothing else a plugin can reach waits (no files, sockets or stdin).
fn forbid_sleep(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    for name in ["subscribe-duration", "subscribe-instant"] {
        clock.func_new(name, move |_, _, _, _| {
            Err(wasmtime::Error::msg(format!(
                "the plugin called {MONOTONIC_CLOCK}#{name}: waiting is not allowed"
            )))
        })?;
    }
    linker.allow_shadowing(false);
    Ok(())
}

/// The monotonic clock interface as `wasmtime_wasi::p2` links it (imports of earlier 0.2
/// versions resolve to it).
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// Epoch ticks in a deadline, at least one.
fn deadline_ticks(d: Duration) -> u64 {
    (d.as_millis() / TICK.as_millis()).max(1) as u64 + 1
}

fn instantiate(
    engine: &Engine,
    pre: &OddityPre<Host>,
    limits: Limits,
) -> Result<(Store<Host>, Oddity), PluginError> {
    let host = Host {
        wasi: sandbox(),
        table: ResourceTable::new(),
        limits: StoreLimitsBuilder::new()
            .memory_size(limits.memory)
            .instances(64)
            .build(),
    };
    let mut store = Store::new(engine, host);
    store.limiter(|h| &mut h.limits);
    if let Some(d) = limits.deadline {
        // Set before instantiating: instantiation runs guest code too.
        store.set_epoch_deadline(deadline_ticks(d));
    }
    if let Some(f) = limits.fuel {
        store
            .set_fuel(f)
            .map_err(|e| PluginError::Load(format!("{e:#}")))?;
    }
    let bindings = pre
        .instantiate(&mut store)
        .map_err(|e| PluginError::Load(format!("instantiating: {e:#}")))?;
    Ok((store, bindings))
}

/// Compiles the component, or loads the machine code compiled by an earlier run from the cache
/// directory `cache` (see `cache-dir` in the settings). Compiling takes about a second; loading, about a millisecond. The cache key covers the
/// component's bytes and everything about this wasmtime build and configuration that the
/// machine code depends on, so a stale entry is never used; a corrupted one fails its checksum
/// and is rebuilt.
fn compile(engine: &Engine, bytes: &[u8], cache: Option<&Path>) -> Result<Component, PluginError> {
    use std::hash::{Hash, Hasher};
    let load_error = |e: wasmtime::Error| PluginError::Load(format!("{e:#}"));
    let Some(dir) = cache else {
        return Component::new(engine, bytes).map_err(load_error);
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    let key = format!(
        "{:016x}{:016x}",
        xxhash_rust::xxh3::xxh3_64(bytes),
        h.finish()
    );
    let path = dir.join(format!("{key}.cwasm"));
    if let Ok(cached) = fs_err::read(&path)
        && let Some(artifact) = verified(&cached)
    {
        // SAFETY: `deserialize` trusts its input to be machine code that wasmtime produced.
        // These bytes were produced by `precompile_component` below, for this exact engine
        // configuration (the key), written atomically into the user's own cache directory, and
        // their checksum was verified just now, so they are not truncated or corrupted.
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize(engine, artifact) };
        match loaded {
            Ok(c) => return Ok(c),
            Err(e) => {
                tracing::debug!(cache = %path.display(), "cached plugin unusable, recompiling: {e:#}")
            }
        }
    }
    let artifact = engine.precompile_component(bytes).map_err(load_error)?;
    let component = {
        #[allow(unsafe_code)]
        // SAFETY: the bytes were produced by `precompile_component` on this engine just now.
        let c = unsafe { Component::deserialize(engine, &artifact) };
        c.map_err(load_error)?
    };
    if let Err(e) = store_artifact(dir, &path, &artifact) {
        tracing::warn!(cache = %dir.display(), "cannot cache the compiled plugin, every start compiles it (about a second): {e}");
    }
    Ok(component)
}

const CACHE_MAGIC: &[u8; 8] = b"ODDITYCW";

/// The artifact inside a cache file, if its checksum holds.
fn verified(file: &[u8]) -> Option<&[u8]> {
    let rest = file.strip_prefix(CACHE_MAGIC.as_slice())?;
    let (sum, artifact) = rest.split_at_checked(8)?;
    let sum = u64::from_le_bytes(sum.try_into().ok()?);
    (xxhash_rust::xxh3::xxh3_64(artifact) == sum).then_some(artifact)
}

fn store_artifact(dir: &Path, path: &Path, artifact: &[u8]) -> std::io::Result<()> {
    fs_err::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".tmp-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let mut bytes = Vec::with_capacity(artifact.len() + 16);
    bytes.extend_from_slice(CACHE_MAGIC);
    bytes.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(artifact).to_le_bytes());
    bytes.extend_from_slice(artifact);
    fs_err::write(&tmp, &bytes)?;
    fs_err::rename(&tmp, path).inspect_err(|_| {
        let _ = fs_err::remove_file(&tmp);
    })
}

/// Loads a component from a file (`--plugin`).
pub fn read_component(path: &Path) -> Result<Vec<u8>, PluginError> {
    fs_err::read(path).map_err(|e| PluginError::Load(e.to_string()))
}

fn line_error(e: wit::ScoreError) -> LineError {
    match e {
        wit::ScoreError::NotUtf8 => LineError::NotUtf8,
        wit::ScoreError::NotJson(m) => LineError::NotJson(m),
        wit::ScoreError::NotObject => LineError::NotObject,
        wit::ScoreError::FieldMissing(m) => LineError::FieldMissing(m),
        wit::ScoreError::Duplicate(m) => LineError::Duplicate(m),
    }
}

fn severity(s: wit::Severity) -> Severity {
    match s {
        wit::Severity::Info => Severity::Info,
        wit::Severity::Low => Severity::Low,
        wit::Severity::Medium => Severity::Medium,
        wit::Severity::High => Severity::High,
        wit::Severity::Critical => Severity::Critical,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotation;

    fn limits() -> Limits {
        Limits {
            memory: 256 << 20,
            fuel: Some(10_000_000_000),
            deadline: Some(Duration::from_secs(30)),
        }
    }

    fn batch() -> String {
        let event = |user: &str, action: &str, i: usize| {
            format!(
                r#"{{"userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::1:user/{user}"}},"eventSource":"ec2.amazonaws.com","eventName":"{action}","eventID":"{user}{action}{i}"}}"#
            )
        };
        let mut batch = String::new();
        for i in 0..40 {
            batch.push_str(&event(["a", "b", "c"][i % 3], ["X", "Y"][i % 2], i));
            batch.push('\n');
        }
        // A repeated delivery: noted, not learned again.
        batch.push_str(&event("a", "X", 0));
        batch.push('\n');
        batch.push_str("[not an object]\n{\"eventName\":\"X\"}\n");
        batch
    }

    fn notes(judged: &Judged) -> Vec<&[u8]> {
        judged
            .notes
            .split(|&b| b == b'\n')
            .take(judged.statuses.len())
            .collect()
    }

    #[test]
    fn judging_in_one_stage_or_two_gives_the_same_notes_and_model() {
        let mut one = Plugin::load(EMBEDDED, "", None, limits(), None).expect("load");
        let mut two = Plugin::load(EMBEDDED, "", None, limits(), None).expect("load");
        let mut reader = two.sibling().expect("sibling");
        let batch = batch();
        let lines = batch.lines().count();
        let whole = one
            .judge(Batch::Lines(batch.as_bytes()), lines)
            .expect("judge");
        let observations = reader.extract(batch.as_bytes()).expect("extract");
        let staged = two
            .judge(Batch::Observations(&observations), lines)
            .expect("judge");
        let (whole, staged) = (whole.expect("lines"), staged.expect("fits"));
        assert_eq!(whole.notes, staged.notes);
        assert_eq!(whole.statuses, staged.statuses);
        assert_eq!(one.snapshot().expect("one"), two.snapshot().expect("two"));
        assert_eq!(
            reader.stats().expect("stats")[0],
            0,
            "the reader learns nothing"
        );
        for (line, (note, status)) in batch.lines().zip(notes(&whole).iter().zip(&whole.statuses)) {
            let mut out = Vec::new();
            let spliced = annotation::splice_raw(line.as_bytes(), "novelty", note, &mut out);
            match status {
                Status::Scored { score, .. } => {
                    assert!(spliced, "{line}");
                    let back = annotation::read(&out, "novelty").expect("a score record");
                    assert!((back.score - *score).abs() < 5e-7, "rounded to 6 decimals");
                }
                Status::Failed(LineError::FieldMissing(_) | LineError::Duplicate(_)) => {
                    assert!(spliced);
                }
                Status::Failed(_) => assert!(note.is_empty()),
            }
        }
    }

    #[test]
    fn observations_of_another_configuration_are_refused_before_learning() {
        let mut judge = Plugin::load(EMBEDDED, "", None, limits(), None).expect("load");
        let other = "[engine]\nwarm-up = 3\n";
        let mut reader = Plugin::load(EMBEDDED, other, None, limits(), None).expect("load");
        let batch = batch();
        let observations = reader.extract(batch.as_bytes()).expect("extract");
        let lines = batch.lines().count();
        let refused = judge.judge(Batch::Observations(&observations), lines);
        assert!(refused.expect("no trap").is_none());
        assert_eq!(judge.stats().expect("stats")[0], 0);
    }
}
