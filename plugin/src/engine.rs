//! [`Engine`]: configuration, extraction and the model behind one API, the same natively and
//! inside the WebAssembly component.

use std::borrow::Cow;
use std::ops::Range;

use crate::config::{ConfigError, Settings};
use crate::extract::{ExtractError, Extractor, Slots};
use crate::model::{Model, Observation, ScoreRecord};
use crate::normalize::truncate;
use crate::snapshot::{self, DecodeError};

/// Why a line was not scored. The engine learns nothing from such a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScoreError {
    NotUtf8,
    NotJson(String),
    NotObject,
    FieldMissing(String),
}

impl std::fmt::Display for ScoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScoreError::NotUtf8 => f.write_str("not UTF-8"),
            ScoreError::NotJson(m) => write!(f, "not JSON: {m}"),
            ScoreError::NotObject => f.write_str("not a JSON object"),
            ScoreError::FieldMissing(m) => write!(f, "field missing: {m}"),
        }
    }
}

impl std::error::Error for ScoreError {}

/// Why a snapshot could not be restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    Config(ConfigError),
    Decode(DecodeError),
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotError::Config(e) => e.fmt(f),
            SnapshotError::Decode(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SnapshotError {}

/// Size counters of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub events: u64,
    pub nodes: u64,
    pub max_nodes: u64,
    pub principals: u64,
    pub prunes: u64,
}

/// A learning novelty detector for one stream.
#[derive(Debug)]
pub struct Engine {
    settings: Settings,
    fingerprint: String,
    extractor: Extractor,
    /// For each profile field, its range of extractor slots (one per path, in order).
    field_slots: Vec<Range<usize>>,
    time_slot: Option<usize>,
    id_slot: Option<usize>,
    model: Model,
}

/// Seconds between the Unix epoch and 2000-01-01, the engine's time origin.
const EPOCH_2000: i64 = 946_684_800;

/// Event time in seconds since 2000-01-01: RFC 3339 text, or epoch seconds or milliseconds.
pub fn parse_time(text: &str) -> Option<u32> {
    let unix = if let Ok(x) = text.trim().parse::<f64>() {
        if !x.is_finite() {
            return None;
        }
        // Beyond year 5000 in seconds means milliseconds.
        (if x.abs() > 1e11 { x / 1000.0 } else { x }) as i64
    } else {
        use time::format_description::well_known::{Iso8601, Rfc3339};
        let t = time::OffsetDateTime::parse(text, &Rfc3339)
            .or_else(|_| time::OffsetDateTime::parse(text, &Iso8601::DEFAULT))
            .ok()?;
        t.unix_timestamp()
    };
    Some((unix - EPOCH_2000).clamp(0, i64::from(u32::MAX)) as u32)
}

impl Engine {
    /// A fresh engine from configuration text (see [`Settings::parse`]).
    pub fn new(config: &str) -> Result<Engine, ConfigError> {
        let settings = Settings::parse(config)?;
        let model = Model::new(&settings);
        Ok(Engine::assemble(settings, model))
    }

    /// An engine continuing from snapshot bytes learned with the same configuration.
    pub fn restore(config: &str, bytes: &[u8]) -> Result<Engine, SnapshotError> {
        let settings = Settings::parse(config).map_err(SnapshotError::Config)?;
        let model = snapshot::decode(bytes, &settings.fingerprint(), &settings.engine)
            .map_err(SnapshotError::Decode)?;
        Ok(Engine::assemble(settings, model))
    }

    fn assemble(settings: Settings, model: Model) -> Engine {
        let profile = &settings.profile;
        let mut paths = Vec::new();
        let mut field_slots = Vec::with_capacity(profile.fields.len());
        for f in &profile.fields {
            let start = paths.len();
            paths.extend(f.paths.iter().cloned());
            field_slots.push(start..paths.len());
        }
        let mut extra = |p: &Option<Vec<String>>| {
            p.as_ref().map(|p| {
                paths.push(p.clone());
                paths.len() - 1
            })
        };
        let time_slot = extra(&profile.time);
        let id_slot = extra(&profile.id);
        let extractor = Extractor::new(&paths);
        let fingerprint = settings.fingerprint();
        Engine {
            settings,
            fingerprint,
            extractor,
            field_slots,
            time_slot,
            id_slot,
            model,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The configuration fingerprint stored in snapshots.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Scores one line (without its newline), then learns it.
    pub fn score_line(&mut self, line: &[u8]) -> Result<ScoreRecord, ScoreError> {
        let mut slots: Slots<'_> = Vec::new();
        self.extractor
            .extract(line, &mut slots)
            .map_err(|e| match e {
                ExtractError::NotUtf8 => ScoreError::NotUtf8,
                ExtractError::NotJson(m) => ScoreError::NotJson(m),
                ExtractError::NotObject => ScoreError::NotObject,
            })?;
        let profile = &self.settings.profile;
        let mut values = Vec::with_capacity(profile.fields.len());
        for (field, range) in profile.fields.iter().zip(&self.field_slots) {
            let found = range
                .clone()
                .find_map(|i| slots[i].take().filter(|v| !v.is_empty()));
            // A default is already a category: it is used as it is, not normalised.
            let value = match (found, &field.default) {
                (Some(v), _) => field.normalize.iter().fold(v, |v, n| n.apply(v)),
                (None, Some(d)) => Cow::Owned(d.clone()),
                (None, None) => {
                    let paths: Vec<String> = field.paths.iter().map(|p| p.join(".")).collect();
                    return Err(ScoreError::FieldMissing(format!(
                        "{} (path {})",
                        field.name,
                        paths.join(", ")
                    )));
                }
            };
            values.push(truncate(value, field.max_len));
        }
        let time_text = self
            .time_slot
            .and_then(|i| slots[i].take())
            .map(Cow::into_owned);
        let id_text = self
            .id_slot
            .and_then(|i| slots[i].take())
            .map(Cow::into_owned);
        let time = time_text.as_deref().and_then(parse_time);
        let obs = Observation {
            values,
            time,
            time_text,
            id_text,
        };
        Ok(self.model.observe(&self.settings, &obs))
    }

    /// Scores a batch of `\n`-terminated lines (see the WIT contract), one result per line.
    pub fn score_batch(&mut self, batch: &[u8]) -> Vec<Result<ScoreRecord, ScoreError>> {
        let mut out = Vec::with_capacity(batch.iter().filter(|&&b| b == b'\n').count() + 1);
        let mut rest = batch;
        while !rest.is_empty() {
            let (line, next) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &rest[rest.len()..]),
            };
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            out.push(self.score_line(line));
            rest = next;
        }
        out
    }

    /// The model as snapshot bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        snapshot::encode(&self.model, &self.fingerprint)
    }

    pub fn stats(&self) -> Stats {
        Stats {
            events: self.model.events,
            nodes: self.model.tree.len() as u64,
            max_nodes: self.settings.engine.max_nodes,
            principals: self.model.entities.len() as u64,
            prunes: self.model.prunes,
        }
    }
}
