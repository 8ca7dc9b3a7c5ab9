//! [`Engine`]: configuration, extraction and the model behind one API, the same natively and
//! inside the WebAssembly component.

use std::borrow::Cow;
use std::hash::Hasher;
use std::ops::Range;

use crate::config::{ConfigError, Settings, Severity, Source};
use crate::extract::{ExtractError, Extractor, Slots};
use crate::model::{ComponentNovelty, Judgement, Model, ScoreRecord, ViewScore};
use crate::normalize::truncate;
use crate::render::{Note, Slot, error_note, note};
use crate::snapshot::{self, DecodeError};

/// Why a line was not scored. The engine learns nothing from such a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScoreError {
    NotUtf8,
    NotJson(String),
    NotObject,
    FieldMissing(String),
    /// Its event id was seen within the duplicate window; the text says when.
    Duplicate(String),
}

impl std::fmt::Display for ScoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScoreError::NotUtf8 => f.write_str("not UTF-8"),
            ScoreError::NotJson(m) => write!(f, "not JSON: {m}"),
            ScoreError::NotObject => f.write_str("not a JSON object"),
            ScoreError::FieldMissing(m) => write!(f, "field missing: {m}"),
            ScoreError::Duplicate(m) => write!(f, "duplicate: {m}"),
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
    /// For each profile field, its sources' extractor slots, in order.
    field_slots: Vec<Vec<SourceSlots>>,
    /// The extractor slots of the time's and the id's paths.
    time_slots: Range<usize>,
    id_slots: Range<usize>,
    model: Model,
    /// Field names, and where each component of the observation comes from.
    names: Vec<String>,
    layout: Vec<Slot>,
    view_names: Vec<String>,
    /// Recent results of each field's normalisers (empty for fields without any).
    memo: Vec<Memo>,
    /// Scratch for the duplicate key of an event.
    key_buf: Vec<u8>,
    /// The per-line vectors of [`Engine::extract_line`] and [`Engine::judge_one`], kept empty
    /// between lines (see [`recycle`]).
    slots_buf: Slots<'static>,
    values_buf: Vec<Cow<'static, str>>,
    refs_buf: Vec<&'static str>,
    /// The strings of earlier observations' owned values, emptied, for the next ones' (see
    /// [`Spare`]).
    spare: Spare,
}

/// A field source's extractor slots (see [`crate::config::Source`]).
#[derive(Debug)]
enum SourceSlots {
    Path(usize),
    Compose {
        pieces: Vec<String>,
        from: Range<usize>,
        when: Option<(usize, String)>,
    },
}

impl SourceSlots {
    /// The source's value in `slots`, if present (a path's value is taken out; a composed one
    /// is written into a string from `spare`).
    fn value<'a>(&self, slots: &mut Slots<'a>, spare: &mut Spare) -> Option<Cow<'a, str>> {
        match self {
            SourceSlots::Path(i) => slots[*i].take().filter(|v| !v.is_empty()),
            SourceSlots::Compose { pieces, from, when } => {
                if let Some((at, want)) = when
                    && slots[*at].as_deref() != Some(want.as_str())
                {
                    return None;
                }
                let parts = || from.clone().map(|i| slots[i].as_deref().unwrap_or(""));
                if parts().any(str::is_empty) {
                    return None;
                }
                let mut text = spare.take();
                text.push_str(&pieces[0]);
                for (part, piece) in parts().zip(&pieces[1..]) {
                    text.push_str(part);
                    text.push_str(piece);
                }
                Some(Cow::Owned(text))
            }
        }
    }
}

/// Entries of a [`Memo`]: a power of two.
const MEMO_SLOTS: usize = 1024;

/// Recent results of one field's normalisers, direct-mapped by a hash of the raw value. User
/// agents, ARNs and addresses repeat from event to event, and their normalisers (user-agent
/// parsing above all) cost more than a hash and a compare. A pure function's cache: results are
/// the same with or without it.
#[derive(Debug, Default)]
struct Memo {
    slots: Vec<Option<MemoEntry>>,
}

/// A raw value's hash, the raw value, and what the normalisers made of it (`None`: the value
/// as it is, given back without a copy).
type MemoEntry = (u64, Box<str>, Option<Box<str>>);

impl Memo {
    /// Values longer than this are normalised every time (rare, and not worth keeping).
    const MAX_KEY: usize = 512;

    fn new(wanted: bool) -> Memo {
        Memo {
            slots: if wanted {
                vec![None; MEMO_SLOTS]
            } else {
                Vec::new()
            },
        }
    }

    fn apply<'a>(
        &mut self,
        field: &crate::config::Field,
        raw: Cow<'a, str>,
        spare: &mut Spare,
    ) -> Cow<'a, str> {
        if self.slots.is_empty() || raw.len() > Self::MAX_KEY {
            return field.normalize.iter().fold(raw, |v, n| n.apply(v));
        }
        // FxHash: no 128-bit products, which WebAssembly computes in a library call.
        let mut hasher = rustc_hash::FxHasher::default();
        hasher.write(raw.as_bytes());
        let hash = hasher.finish();
        let slot = &mut self.slots[hash as usize & (MEMO_SLOTS - 1)];
        if let Some((h, key, value)) = slot
            && *h == hash
            && same(key.as_bytes(), raw.as_bytes())
        {
            return match value.as_deref() {
                None => raw,
                Some(v) => Cow::Owned(spare.replace(raw, v)),
            };
        }
        let key: Box<str> = raw.as_ref().into();
        let value = field.normalize.iter().fold(raw, |v, n| n.apply(v));
        let changed = (*value != *key).then(|| value.as_ref().into());
        *slot = Some((hash, key, changed));
        value
    }
}

/// Emptied strings whose allocations the next observations' owned values reuse: a value
/// normalised, composed or defaulted is a string of its own, and most events have several.
#[derive(Debug, Default)]
struct Spare(Vec<String>);

impl Spare {
    /// Strings kept at most.
    const KEEP: usize = 64;

    /// An empty string, with an allocation when one is spare.
    fn take(&mut self) -> String {
        self.0.pop().unwrap_or_default()
    }

    /// `text` in a spare string.
    fn copy(&mut self, text: &str) -> String {
        let mut s = self.take();
        s.push_str(text);
        s
    }

    /// `text` in `raw`'s own string when it is one, else in a spare one.
    fn replace(&mut self, raw: Cow<'_, str>, text: &str) -> String {
        match raw {
            Cow::Owned(mut s) => {
                s.clear();
                s.push_str(text);
                s
            }
            Cow::Borrowed(_) => self.copy(text),
        }
    }

    /// Keeps the strings of `values` (emptied) and gives back the vector, emptied.
    fn reclaim<T>(&mut self, mut values: Vec<Cow<'_, str>>) -> Vec<T> {
        for v in values.drain(..) {
            if let Cow::Owned(mut s) = v
                && self.0.len() < Self::KEEP
            {
                s.clear();
                self.0.push(s);
            }
        }
        recycle(values)
    }
}

/// Byte equality eight bytes at a time: inside WebAssembly `==` on slices is a `memcmp` that
/// compares one byte at a time, and the memo compares whole user agents and ARNs on every hit.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (wa, wb) = (a.chunks_exact(8), b.chunks_exact(8));
    // The tails (equally long) a byte at a time into a word: no call to `memcmp` either.
    let tail = |c: &[u8]| c.iter().fold(0u64, |w, &b| w << 8 | u64::from(b));
    tail(wa.remainder()) == tail(wb.remainder())
        && wa.zip(wb).all(|(x, y)| {
            let word = |c: &[u8]| {
                let mut w = [0u8; 8];
                w.copy_from_slice(c);
                u64::from_ne_bytes(w)
            };
            word(x) == word(y)
        })
}

/// `v` emptied, as a vector of another item type of the same layout (another lifetime): the
/// allocation is kept, since collecting a vector's own items into a vector of a type of the
/// same size reuses its buffer. The per-line buffers live on from line to line this way.
fn recycle<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.into_iter().map(|_| unreachable!("emptied")).collect()
}

/// One line's observation, extracted and normalised, borrowing from the line (or from the
/// staged fast path's bytes).
pub(crate) struct Extracted<'a> {
    pub(crate) values: Vec<Cow<'a, str>>,
    pub(crate) time: Option<Cow<'a, str>>,
    pub(crate) id: Option<Cow<'a, str>>,
}

/// The engine's verdict on one line, in brief (the whole record is in the line's note).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    pub score: f64,
    pub novelty: f64,
    pub risk: f64,
    pub severity: Severity,
    /// The risk of the campaign the event belongs to, when it belongs to one.
    pub campaign_risk: Option<f64>,
    pub cold: bool,
}

/// What [`Engine::judge`] gives for a batch: one `\n`-terminated note per line (empty for a
/// line that is not an object) and one verdict per line, in order.
#[derive(Debug, Clone, Default)]
pub struct Judged {
    pub notes: Vec<u8>,
    pub verdicts: Vec<Result<Verdict, ScoreError>>,
}

/// A batch for [`Engine::judge`].
#[derive(Debug, Clone, Copy)]
pub enum Batch<'a> {
    /// `\n`-terminated lines (a `\r` before the `\n` is ignored; a last line without one
    /// counts).
    Lines(&'a [u8]),
    /// What [`Engine::extract`] of an engine with the same configuration read from a batch.
    Observations(&'a [u8]),
}

/// Why a batch of observations (or shared population knowledge) was refused; nothing was
/// learned from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// Written by an engine with another configuration.
    Foreign(String),
    /// Not what [`Engine::extract`] (or [`Engine::share_population`]) writes.
    Corrupt(String),
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchError::Foreign(m) => write!(f, "written with another configuration: {m}"),
            BatchError::Corrupt(m) => write!(f, "corrupt: {m}"),
        }
    }
}

impl std::error::Error for BatchError {}

/// Seconds between the Unix epoch and 2000-01-01, the engine's time origin.
const EPOCH_2000: i64 = 946_684_800;

/// Event time in seconds since 2000-01-01: RFC 3339 text, or epoch seconds or milliseconds.
pub fn parse_time(text: &str) -> Option<u32> {
    let unix = if let Some(t) = utc_seconds(text) {
        t
    } else if let Ok(x) = text.trim().parse::<f64>() {
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

/// Unix seconds of `YYYY-MM-DDTHH:MM:SSZ` (CloudTrail's form of RFC 3339) read directly, with
/// none of a general parser's cost; `None` for any other text, an invalid date or a leap second.
fn utc_seconds(text: &str) -> Option<i64> {
    let b: &[u8; 20] = text.as_bytes().try_into().ok()?;
    if [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'Z'),
    ]
    .iter()
    .any(|&(at, c)| b[at] != c)
    {
        return None;
    }
    let num = |r: Range<usize>| {
        b[r].iter().try_fold(0i64, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return None,
    };
    if d < 1 || d > month_days || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400 + hh * 3_600 + mm * 60 + ss)
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
            let mut sources = Vec::with_capacity(f.paths.len());
            for source in &f.paths {
                sources.push(match source {
                    Source::Path(p) => {
                        paths.push(p.clone());
                        SourceSlots::Path(paths.len() - 1)
                    }
                    Source::Compose { pieces, from, when } => {
                        let start = paths.len();
                        paths.extend(from.iter().cloned());
                        let from = start..paths.len();
                        let when = when.as_ref().map(|(p, want)| {
                            paths.push(p.clone());
                            (paths.len() - 1, want.clone())
                        });
                        SourceSlots::Compose {
                            pieces: pieces.clone(),
                            from,
                            when,
                        }
                    }
                });
            }
            field_slots.push(sources);
        }
        let mut extra = |p: &[Vec<String>]| {
            let start = paths.len();
            paths.extend(p.iter().cloned());
            start..paths.len()
        };
        let time_slots = extra(&profile.time);
        let id_slots = extra(&profile.id);
        let extractor = Extractor::new(&paths);
        let fingerprint = settings.fingerprint();
        let names = profile.fields.iter().map(|f| f.name.clone()).collect();
        let mut layout: Vec<Slot> = profile
            .entity
            .iter()
            .map(|&field| Slot {
                field,
                view: "entity".into(),
            })
            .collect();
        for view in &profile.views {
            layout.extend(view.components.iter().map(|&field| Slot {
                field,
                view: view.name.clone(),
            }));
        }
        let view_names = profile.views.iter().map(|v| v.name.clone()).collect();
        let memo = profile
            .fields
            .iter()
            .map(|f| Memo::new(!f.normalize.is_empty()))
            .collect();
        Engine {
            settings,
            fingerprint,
            extractor,
            field_slots,
            time_slots,
            id_slots,
            model,
            names,
            layout,
            view_names,
            memo,
            key_buf: Vec::new(),
            slots_buf: Vec::new(),
            values_buf: Vec::new(),
            refs_buf: Vec::new(),
            spare: Spare::default(),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The configuration fingerprint stored in snapshots.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Reads one line's observation.
    fn extract_line<'a>(&mut self, line: &'a [u8]) -> Result<Extracted<'a>, ScoreError> {
        let mut slots: Slots<'a> = recycle(std::mem::take(&mut self.slots_buf));
        let extracted = self
            .extractor
            .extract(line, &mut slots)
            .map_err(|e| match e {
                ExtractError::NotUtf8 => ScoreError::NotUtf8,
                ExtractError::NotJson(m) => ScoreError::NotJson(m),
                ExtractError::NotObject => ScoreError::NotObject,
            })
            .and_then(|()| self.observation(&mut slots));
        self.slots_buf = recycle(slots);
        extracted
    }

    /// The observation in the values the extractor found.
    fn observation<'a>(&mut self, slots: &mut Slots<'a>) -> Result<Extracted<'a>, ScoreError> {
        let profile = &self.settings.profile;
        let mut values = recycle(std::mem::take(&mut self.values_buf));
        values.reserve(profile.fields.len());
        for ((field, sources), memo) in profile
            .fields
            .iter()
            .zip(&self.field_slots)
            .zip(&mut self.memo)
        {
            let spare = &mut self.spare;
            let found = sources.iter().find_map(|source| source.value(slots, spare));
            // A default is already a category: it is used as it is, not normalised.
            let value = match (found, &field.default) {
                (Some(v), _) => memo.apply(field, v, spare),
                (None, Some(d)) => Cow::Owned(spare.copy(d)),
                (None, None) => {
                    let paths: Vec<String> = field.paths.iter().map(Source::describe).collect();
                    return Err(ScoreError::FieldMissing(format!(
                        "{} (path {})",
                        field.name,
                        paths.join(", ")
                    )));
                }
            };
            values.push(truncate(value, field.max_len));
        }
        let time = self.time_slots.clone().find_map(|i| slots[i].take());
        let id = self.id_slots.clone().find_map(|i| slots[i].take());
        Ok(Extracted { values, time, id })
    }

    /// Refuses an event seen within the duplicate window (the same id, time and observation),
    /// and remembers one that is not; gives its time (see [`parse_time`]), read once.
    fn admit(&mut self, e: &Extracted<'_>) -> Result<Option<u32>, ScoreError> {
        let time = e.time.as_deref().and_then(parse_time);
        let (Some(window), Some(id)) = (self.settings.engine.duplicate_window, e.id.as_deref())
        else {
            return Ok(time);
        };
        let at = time.unwrap_or(self.model.now);
        let window = u32::try_from(window).unwrap_or(u32::MAX);
        let capacity = self.settings.engine.duplicate_capacity as usize;
        let values = e.values.iter().map(AsRef::as_ref);
        let key = crate::duplicates::key(&mut self.key_buf, id, e.time.as_deref(), values);
        match self.model.seen.check(key, at, window, capacity) {
            None => Ok(time),
            Some(first) => Err(ScoreError::Duplicate(format!(
                "event id {} seen {} before, not learned again",
                truncate(Cow::Borrowed(id), 128),
                if first == at {
                    "at the same time".to_owned()
                } else {
                    format!("{} s apart", first.abs_diff(at))
                }
            ))),
        }
    }

    /// Scores, then learns, an extracted observation whose time is `time`.
    fn judge_one(&mut self, e: &Extracted<'_>, time: Option<u32>) -> Judgement {
        let mut values: Vec<&str> = recycle(std::mem::take(&mut self.refs_buf));
        values.extend(e.values.iter().map(AsRef::as_ref));
        let judgement = self.model.observe(
            &self.settings,
            &values,
            time,
            e.time.as_deref().unwrap_or(""),
        );
        self.refs_buf = recycle(values);
        judgement
    }

    /// Scores one line (without its newline), then learns it.
    pub fn score_line(&mut self, line: &[u8]) -> Result<ScoreRecord, ScoreError> {
        let e = self.extract_line(line)?;
        let time = self.admit(&e)?;
        let v = self.judge_one(&e, time);
        Ok(self.record(&e, v))
    }

    /// The typed record of a verdict.
    fn record(&self, e: &Extracted<'_>, v: Judgement) -> ScoreRecord {
        let principal = self.principal(e);
        let slot = &self.layout[v.top];
        ScoreRecord {
            score: v.score,
            info_content: v.info_content,
            novelty: v.novelty,
            risk: v.risk,
            severity: v.severity,
            tactics: crate::stakes::tactic_names(v.stakes.tactics).collect(),
            techniques: self
                .settings
                .profile
                .stakes
                .techniques(&v.stakes)
                .map(str::to_owned)
                .collect(),
            probability: crate::fastmath::exp2(-v.info_content),
            uniqueness: v.uniqueness,
            sequence: v.sequence,
            cold: v.cold,
            observation: self
                .layout
                .iter()
                .map(|s| e.values[s.field].to_string())
                .collect(),
            fields: self
                .layout
                .iter()
                .map(|s| self.names[s.field].clone())
                .collect(),
            most_novel: ComponentNovelty {
                index: v.top as u32,
                view: slot.view.clone(),
                field: self.names[slot.field].clone(),
                value: e.values[slot.field].to_string(),
                novelty: v.top_novelty,
                bits: v.top_bits,
            },
            views: self
                .view_names
                .iter()
                .zip(&v.views)
                .map(|(name, &(info_content, excess))| ViewScore {
                    name: name.clone(),
                    info_content,
                    excess,
                })
                .collect(),
            event_id: e.id.as_deref().map(str::to_owned),
            event_time: e.time.as_deref().map(str::to_owned),
            campaign: v.campaign,
            principal,
        }
    }

    /// Scores, then learns, one observation and writes its note to `notes`: the score record,
    /// the field-missing note of an object that could not be scored, or nothing.
    fn judge_note(
        &mut self,
        extracted: Result<Extracted<'_>, ScoreError>,
        notes: &mut Vec<u8>,
    ) -> Result<Verdict, ScoreError> {
        match extracted.and_then(|e| self.admit(&e).map(|time| (e, time))) {
            Ok((e, time)) => {
                let judgement = self.judge_one(&e, time);
                note(
                    notes,
                    &Note {
                        verdict: &judgement,
                        values: &e.values,
                        names: &self.names,
                        layout: &self.layout,
                        entity: &self.settings.profile.entity,
                        stakes: &self.settings.profile.stakes,
                        views: &self.view_names,
                        id: e.id.as_deref(),
                        time: e.time.as_deref(),
                    },
                );
                self.values_buf = self.spare.reclaim(e.values);
                Ok(Verdict {
                    score: judgement.score,
                    novelty: judgement.novelty,
                    risk: judgement.risk,
                    severity: judgement.severity,
                    campaign_risk: judgement.campaign.as_ref().map(|c| c.risk),
                    cold: judgement.cold,
                })
            }
            Err(e) => {
                match &e {
                    ScoreError::FieldMissing(_) => {
                        error_note(notes, "field-missing", &e.to_string())
                    }
                    ScoreError::Duplicate(_) => error_note(notes, "duplicate", &e.to_string()),
                    ScoreError::NotUtf8 | ScoreError::NotJson(_) | ScoreError::NotObject => {}
                }
                Err(e)
            }
        }
    }

    /// Reads the observation of each line of `lines` (framed as [`Batch::Lines`]) and learns
    /// nothing. Another engine with the same configuration judges them
    /// ([`Batch::Observations`]), so reading and judging can run on two cores.
    pub fn extract(&mut self, lines: &[u8]) -> Vec<u8> {
        let mut w = crate::staged::Writer::new(&self.fingerprint, lines.len() / 4 + 64);
        for line in split_lines(lines) {
            w.push(&self.extract_line(line));
        }
        w.finish()
    }

    /// The entity of each line of `lines` (framed as [`Batch::Lines`]), as notes name their
    /// `principal`; `None` for a line that is not an event. Nothing is learned.
    pub fn entities(&mut self, lines: &[u8]) -> Vec<Option<String>> {
        split_lines(lines)
            .map(|line| {
                let e = self.extract_line(line).ok()?;
                Some(self.principal(&e))
            })
            .collect()
    }

    /// The entity of an observation: its entity fields' values, joined by spaces.
    fn principal(&self, e: &Extracted<'_>) -> String {
        self.settings
            .profile
            .entity
            .iter()
            .map(|&f| e.values[f].as_ref())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Scores, then learns, each line of the batch in order: per line, the note to add to it
    /// as its last member (see [`crate::render::splice`]) and the verdict. Observations are
    /// refused, before anything is learned, when they do not fit this engine.
    pub fn judge(&mut self, batch: Batch<'_>) -> Result<Judged, BatchError> {
        let mut judged = Judged::default();
        match batch {
            Batch::Lines(lines) => {
                // A note is about the size of a trimmed CloudTrail record: growing the buffer
                // would copy every note written so far.
                judged.notes.reserve(lines.len() + 64);
                for line in split_lines(lines) {
                    let extracted = self.extract_line(line);
                    let verdict = self.judge_note(extracted, &mut judged.notes);
                    judged.verdicts.push(verdict);
                    judged.notes.push(b'\n');
                }
            }
            Batch::Observations(bytes) => {
                let fields = self.settings.profile.fields.len();
                let observations = crate::staged::decode(bytes, &self.fingerprint, fields)?;
                judged.notes.reserve(observations.len() * 640);
                for observation in observations {
                    let verdict = self.judge_note(observation, &mut judged.notes);
                    judged.verdicts.push(verdict);
                    judged.notes.push(b'\n');
                }
            }
        }
        Ok(judged)
    }

    /// Scores, then learns, each line of a batch framed as [`Batch::Lines`]: the typed records
    /// (the evaluation harness and native tools; a host uses [`Engine::judge`]).
    pub fn score_lines(&mut self, lines: &[u8]) -> Vec<Result<ScoreRecord, ScoreError>> {
        split_lines(lines)
            .map(|line| self.score_line(line))
            .collect()
    }

    /// What this engine learned into the population (the peer groups' and the whole
    /// population's contexts, and the calibration of `score`) since the last call, as bytes
    /// for [`Engine::merge_population`] of the engines judging the stream's other partitions.
    /// The first call starts recording (and gives an empty delta); a snapshot keeps what is
    /// recorded and not yet shared.
    pub fn share_population(&mut self) -> Vec<u8> {
        self.model.share(&self.fingerprint)
    }

    /// Adds what another partition's engine shared ([`Engine::share_population`]) to this
    /// engine's population knowledge, never to a principal's own, and never shares it on.
    /// Refused, with nothing merged, when the bytes are not a delta of this configuration.
    pub fn merge_population(&mut self, delta: &[u8]) -> Result<(), BatchError> {
        let delta = crate::share::Delta::decode(delta, &self.fingerprint).map_err(|e| match e {
            DecodeError::Mismatch(m) => BatchError::Foreign(m),
            other => BatchError::Corrupt(other.to_string()),
        })?;
        self.model.merge(&delta, self.settings.engine.max_nodes);
        Ok(())
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

/// The lines of a batch: split on `\n`, a trailing `\r` dropped; a last line without `\n`
/// counts.
fn split_lines(batch: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = batch.strip_suffix(b"\n").unwrap_or(batch);
    // memchr finds the newlines a word (or a SIMD vector) at a time.
    let mut ends = memchr::memchr_iter(b'\n', body).chain(std::iter::once(body.len()));
    let mut start = 0;
    std::iter::from_fn(move || {
        if batch.is_empty() {
            return None;
        }
        let end = ends.next()?;
        let line = &body[start..end];
        start = end + 1;
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event with an id of its own (ids seen before are duplicates, not learned again).
    fn event(user: &str, action: &str, ip: &str) -> String {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!(
            r#"{{"eventTime":"2024-03-04T09:15:02Z","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::1:user/{user}"}},"eventSource":"ec2.amazonaws.com","eventName":"{action}","sourceIPAddress":"{ip}","userAgent":"aws-cli/2.15.1 Python/3.11 Linux/6.1","eventID":"id-{user}-{action}-{n}"}}"#
        )
    }

    #[test]
    fn utc_seconds_agree_with_the_rfc_3339_parser() {
        use time::format_description::well_known::Rfc3339;
        let parsed = |t: &str| {
            time::OffsetDateTime::parse(t, &Rfc3339)
                .ok()
                .map(|t| t.unix_timestamp())
        };
        for y in [
            0, 1, 1899, 1900, 1970, 1999, 2000, 2023, 2024, 2100, 2400, 9999,
        ] {
            for m in 0..=13 {
                for d in [0, 1, 15, 28, 29, 30, 31, 32] {
                    for (hh, mm, ss) in [
                        (0, 0, 0),
                        (23, 59, 59),
                        (24, 0, 0),
                        (12, 60, 0),
                        (9, 15, 60),
                    ] {
                        let t = format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z");
                        if let Some(s) = utc_seconds(&t) {
                            assert_eq!(Some(s), parsed(&t), "{t}");
                        } else if ss < 60 {
                            assert_eq!(parsed(&t), None, "{t}");
                        }
                    }
                }
            }
        }
        for t in [
            "2024-03-04 09:15:02Z",
            "2024-03-04T09:15:02z",
            "2024-03-04T09:15:02+00:00",
            "2024-3-04T09:15:02Z",
        ] {
            assert_eq!(utc_seconds(t), None, "{t}");
        }
        assert_eq!(
            parse_time("2024-03-04T09:15:02Z"),
            parse_time("2024-03-04T09:15:02.000Z")
        );
    }

    #[test]
    fn same_is_byte_equality() {
        let text = b"Mozilla/5.0 (X11; Linux x86_64) aws-cli/2.15.1";
        for len in 0..text.len() {
            let a = &text[..len];
            assert!(same(a, a));
            assert!(!same(a, &text[..len + 1]));
            for at in 0..len {
                let mut b = a.to_vec();
                b[at] ^= 1;
                assert!(!same(a, &b), "differs at {at} of {len}");
            }
        }
    }

    #[test]
    fn a_batch_splits_into_one_line_per_newline_plus_an_unterminated_tail() {
        let split = |b: &str| -> Vec<String> {
            split_lines(b.as_bytes())
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect()
        };
        assert!(split("").is_empty());
        assert_eq!(split("\n"), [""]);
        assert_eq!(split("a"), ["a"]);
        assert_eq!(split("a\n"), ["a"]);
        assert_eq!(split("a\r\nb"), ["a", "b"]);
        assert_eq!(split("a\n\n"), ["a", ""]);
        assert_eq!(split("\r\n\nc\r"), ["", "", "c"]);
    }

    #[test]
    fn the_staged_path_with_its_notes_spliced_writes_what_the_one_call_path_writes() {
        let mut batch = String::new();
        for i in 0..300 {
            let user = ["raul", "ana", "ops-bot"][i % 3];
            let action = [
                "DescribeInstances",
                "CreateSnapshot",
                "GetObject",
                "PutObject",
            ][i % 4];
            let ip = ["198.51.100.7", "203.0.113.9"][(i / 50) % 2];
            batch.push_str(&event(user, action, ip));
            batch.push('\n');
        }
        // Every kind of line the engine does not score, an escaped value, CRLF and a last line
        // without its newline.
        batch.push_str("not json\n[1,2]\n\n");
        batch.push_str(r#"{"eventSource":"s3.amazonaws.com"}"#);
        batch.push('\n');
        batch.push_str(&event("ra\\\"ul\\u00e9", "GetObject", "10.1.2.3"));
        batch.push_str("\r\n");
        let mut bytes = batch.into_bytes();
        bytes.extend_from_slice(b"{\"a\":\xff}\n");
        bytes.extend_from_slice(event("ana", "DeleteSnapshot", "192.0.2.1").as_bytes());

        let mut one = Engine::new("").expect("config");
        let mut reader = Engine::new("").expect("config");
        let mut judge = Engine::new("").expect("config");
        for chunk in [&bytes[..bytes.len() / 2], &bytes[bytes.len() / 2..]] {
            let expected = one.judge(Batch::Lines(chunk)).expect("lines");
            let observations = reader.extract(chunk);
            let staged = judge
                .judge(Batch::Observations(&observations))
                .expect("observations of this batch");
            assert_eq!(expected.verdicts.len(), split_lines(chunk).count());
            let newlines = expected.notes.iter().filter(|&&b| b == b'\n').count();
            assert_eq!(newlines, expected.verdicts.len(), "one note per line");
            assert_eq!(
                String::from_utf8_lossy(&staged.notes),
                String::from_utf8_lossy(&expected.notes)
            );
            assert_eq!(staged.verdicts, expected.verdicts);
        }
        assert_eq!(
            reader.stats().events,
            0,
            "the reading engine learns nothing"
        );
        assert_eq!(judge.snapshot(), one.snapshot());
    }

    #[test]
    fn the_staged_path_refuses_observations_that_do_not_fit_before_learning() {
        let batch = (event("raul", "GetObject", "198.51.100.7") + "\n").repeat(3);
        let extracted = Engine::new("").expect("config").extract(batch.as_bytes());
        let mut judge = Engine::new("").expect("config");
        let other = "[engine]\nwarm-up = 3\n";
        let foreign = Engine::new(other)
            .expect("config")
            .extract(batch.as_bytes());
        let err = judge
            .judge(Batch::Observations(&foreign))
            .expect_err("another configuration");
        assert!(matches!(err, BatchError::Foreign(_)), "{err}");
        // Every truncation and every single-byte change is refused or read as some observation,
        // never a panic.
        for cut in 0..extracted.len() {
            let err = judge.judge(Batch::Observations(&extracted[..cut]));
            assert!(err.is_err());
        }
        assert_eq!(
            judge.stats().events,
            0,
            "nothing learned from refused input"
        );
        for i in 0..extracted.len() {
            let mut bad = extracted.clone();
            bad[i] ^= 0x5a;
            let _ = judge.judge(Batch::Observations(&bad));
        }
        let judged = judge.judge(Batch::Observations(&extracted)).expect("fits");
        let lines = judged.notes.iter().filter(|&&b| b == b'\n').count();
        assert_eq!((judged.verdicts.len(), lines), (3, 3));
    }

    /// The value `field` takes in the observation of `line`, scored (and learned) by `e`.
    fn observed(e: &mut Engine, line: &str, field: &str) -> String {
        let r = e.score_line(line.as_bytes()).expect("scored");
        let at = r.fields.iter().position(|f| f == field).expect("field");
        r.observation[at].clone()
    }

    #[test]
    fn cloudtrail_outcomes_are_classes_and_a_failed_console_sign_in_is_denied() {
        let mut e = Engine::new("").expect("config");
        let outcome = |e: &mut Engine, extra: &str| {
            let line = format!(
                r#"{{"eventTime":"2024-03-04T09:15:02Z","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::1:user/raul"}},"eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin"{extra}}}"#
            );
            observed(e, &line, "outcome")
        };
        for (extra, want) in [
            ("", "ok"),
            (r#","responseElements":{"ConsoleLogin":"Success"}"#, "ok"),
            (
                r#","responseElements":{"ConsoleLogin":"Failure"},"errorMessage":"Failed authentication""#,
                "denied",
            ),
            (r#","errorCode":"AccessDenied""#, "denied"),
            (r#","errorCode":"Client.UnauthorizedOperation""#, "denied"),
            (r#","errorCode":"ThrottlingException""#, "throttled"),
            (r#","errorCode":"NoSuchEntity""#, "error"),
            // Credentials refused (a deleted or forged key, a bad signature) are denials, not
            // everyday failures, which are neutral.
            (r#","errorCode":"InvalidAccessKeyId""#, "denied"),
            (r#","errorCode":"UnrecognizedClientException""#, "denied"),
            (r#","errorCode":"InvalidSignatureException""#, "denied"),
            (r#","errorCode":"IncompleteSignature""#, "denied"),
            (
                r#","errorCode":"MissingAuthenticationTokenException""#,
                "denied",
            ),
            (r#","errorCode":"AuthorizationError""#, "denied"),
            (r#","errorCode":"InvalidIdentityToken""#, "denied"),
            (r#","errorCode":"IDPRejectedClaim""#, "denied"),
            (r#","errorCode":"AuthorizationHeaderMalformed""#, "error"),
            // The call would have been allowed: how tools map what stolen keys may do.
            (r#","errorCode":"Client.DryRunOperation""#, "dry-run"),
            // IAM Identity Center's password check (AWS's documented failed sign-in).
            (
                r#","serviceEventDetails":{"CredentialVerification":"Failure"}"#,
                "denied",
            ),
            (
                r#","serviceEventDetails":{"CredentialVerification":"Success"}"#,
                "ok",
            ),
        ] {
            assert_eq!(outcome(&mut e, extra), want, "{extra}");
        }
    }

    #[test]
    fn cloudtrail_resources_named_in_lists() {
        let mut e = Engine::new("").expect("config");
        let resource = |e: &mut Engine, rest: &str| {
            let line = format!(
                r#"{{"eventTime":"2024-03-04T09:15:02Z","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::1:user/raul"}},{rest}}}"#
            );
            observed(e, &line, "resource")
        };
        assert_eq!(
            resource(
                &mut e,
                r#""eventSource":"ssm.amazonaws.com","eventName":"GetParameters","requestParameters":{"names":["/prod/db/password","/prod/api/key"],"withDecryption":true}"#
            ),
            "/prod/db/password"
        );
        // The document a command runs: a shell, not the patch baseline the fleet runs nightly.
        assert_eq!(
            resource(
                &mut e,
                r#""eventSource":"ssm.amazonaws.com","eventName":"SendCommand","requestParameters":{"documentName":"AWS-RunShellScript","instanceIds":["i-0abc"],"interactive":false,"parameters":"HIDDEN_DUE_TO_SECURITY_REASONS"}"#
            ),
            "AWS-RunShellScript"
        );
        // The model a Bedrock call uses (LLMjacking: someone else's bill, someone else's model).
        assert_eq!(
            resource(
                &mut e,
                r#""eventSource":"bedrock.amazonaws.com","eventName":"InvokeModel","requestParameters":{"modelId":"anthropic.claude-3-sonnet-20240229-v1:0"}"#
            ),
            "anthropic.claude-3-sonnet-20240229-v1:0"
        );
        let id = "1234abcd-12ab-34cd-56ef-1234567890ab";
        let key = format!("arn:aws:kms:us-east-1:1:key/{id}");
        assert_eq!(
            resource(
                &mut e,
                &format!(
                    r#""eventSource":"kms.amazonaws.com","eventName":"Decrypt","requestParameters":{{"encryptionAlgorithm":"SYMMETRIC_DEFAULT"}},"resources":[{{"accountId":"1","type":"AWS::KMS::Key","ARN":"{key}"}}]"#
                )
            ),
            id
        );
        // One key, one function, however the call names it.
        for (rest, want) in [
            (format!(r#""keyId":"{key}""#), id),
            (format!(r#""keyId":"{id}""#), id),
            (
                r#""keyId":"arn:aws-cn:kms:cn-north-1:1:alias/backups""#.to_owned(),
                "alias/backups",
            ),
            (r#""keyId":"alias/backups""#.to_owned(), "alias/backups"),
            (
                r#""functionName":"arn:aws:lambda:us-east-1:1:function:thumbnailer:prod""#
                    .to_owned(),
                "thumbnailer",
            ),
            (
                r#""functionName":"arn:aws:lambda:us-east-1:1:function:thumbnailer""#.to_owned(),
                "thumbnailer",
            ),
            (r#""functionName":"thumbnailer""#.to_owned(), "thumbnailer"),
        ] {
            assert_eq!(
                resource(
                    &mut e,
                    &format!(
                        r#""eventSource":"x.amazonaws.com","eventName":"Call","requestParameters":{{{rest}}}"#
                    )
                ),
                want,
                "{rest}"
            );
        }
        // Other services' `resources` are not read (an AssumeRole lists its role there).
        assert_eq!(
            resource(
                &mut e,
                r#""eventSource":"sts.amazonaws.com","eventName":"AssumeRole","resources":[{"ARN":"arn:aws:iam::1:role/Admin"}]"#
            ),
            "-"
        );
    }

    #[test]
    fn a_principal_without_an_arn_is_the_person_or_the_role_not_the_session() {
        let mut e = Engine::new("").expect("config");
        let principal = |e: &mut Engine, identity: &str| {
            let line = format!(
                r#"{{"eventTime":"2024-03-04T09:15:02Z","userIdentity":{{{identity}}},"eventSource":"glue.amazonaws.com","eventName":"GetTable"}}"#
            );
            e.score_line(line.as_bytes()).expect("scored").principal
        };
        // Lake Formation's documented cross-account caller: a role's id and its session name.
        for session in ["GlueJobRunnerSession", "other-session"] {
            assert_eq!(
                principal(
                    &mut e,
                    &format!(
                        r#""type":"AWSAccount","principalId":"AROAQGFTBBBGOBWV2EMZA:{session}","accountId":"111122223333""#
                    )
                ),
                "AWSAccount AROAQGFTBBBGOBWV2EMZA"
            );
        }
        // IAM Identity Center users (AWS's documented access-portal calls): by their user id,
        // not the account they all share.
        for user in [
            "544894e8-80c1-707f-60e3-3ba6510dfac1",
            "94d00cd8-e9e6-4810-b177-b08e84775435",
        ] {
            assert_eq!(
                principal(
                    &mut e,
                    &format!(
                        r#""type":"IdentityCenterUser","accountId":"111122223333","onBehalfOf":{{"userId":"{user}","identityStoreArn":"arn:aws:identitystore::111122223333:identitystore/d-9067642ac7"}},"credentialId":"EXAMPLE""#
                    )
                ),
                format!("IdentityCenterUser {user}")
            );
        }
        // A failed console sign-in names an IAM user by account and name only (AWS's documented
        // record): the same principal as the user's other calls, whose ARN may carry a path.
        let user = "IAMUser arn:aws:iam::111122223333:user/anaya";
        for identity in [
            r#""type":"IAMUser","principalId":"AIDACKCEVSQ6C2EXAMPLE","accountId":"111122223333","accessKeyId":"","userName":"anaya""#,
            r#""type":"IAMUser","arn":"arn:aws:iam::111122223333:user/anaya","principalId":"AIDACKCEVSQ6C2EXAMPLE","accountId":"111122223333","userName":"anaya""#,
            r#""type":"IAMUser","arn":"arn:aws:iam::111122223333:user/engineering/anaya","accountId":"111122223333","userName":"anaya""#,
        ] {
            assert_eq!(principal(&mut e, identity), user, "{identity}");
        }
        // Only an IAM user's name is composed so: a SAML user's is its own, with its identity
        // provider (AWS's documented AssumeRoleWithSAML record).
        assert_eq!(
            principal(
                &mut e,
                r#""type":"SAMLUser","principalId":"SampleUkh1i4+ExamplexL/jEvs=:anaya","userName":"anaya","identityProvider":"bdGOnTesti4+ExamplexL/jEvs=""#
            ),
            "SAMLUser bdGOnTesti4+ExamplexL/jEvs=:anaya"
        );
        assert_eq!(
            principal(
                &mut e,
                r#""type":"SAMLUser","principalId":"SAMLExample:anaya","accountId":"111122223333","userName":"anaya""#
            ),
            "SAMLUser anaya"
        );
        // One Kubernetes service account in two EKS clusters: two principals.
        for cluster in ["A1B2C3", "D4E5F6"] {
            let provider = format!(
                "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/{cluster}"
            );
            assert_eq!(
                principal(
                    &mut e,
                    &format!(
                        r#""type":"WebIdentityUser","principalId":"{provider}:sts.amazonaws.com:system:serviceaccount:ops:backup","userName":"system:serviceaccount:ops:backup","identityProvider":"{provider}""#
                    )
                ),
                format!("WebIdentityUser {provider}:system:serviceaccount:ops:backup")
            );
        }
        // An AWS service naming only itself is an AWS service.
        assert_eq!(
            principal(
                &mut e,
                r#""accountId":"111122223333","invokedBy":"secretsmanager.amazonaws.com""#
            ),
            "AWSService secretsmanager.amazonaws.com"
        );
        // An IAM user's id has no session: kept whole.
        assert_eq!(
            principal(
                &mut e,
                r#""type":"AWSAccount","principalId":"AIDACKCEVSQ6C2EXAMPLE","accountId":"111122223333""#
            ),
            "AWSAccount AIDACKCEVSQ6C2EXAMPLE"
        );
    }

    #[test]
    fn cloudtrail_mfa_is_read_from_sign_ins_and_sessions() {
        let mut e = Engine::new("").expect("config");
        for (identity, extra, want) in [
            (
                r#""type":"IAMUser","arn":"arn:aws:iam::1:user/raul""#,
                r#","additionalEventData":{"MFAUsed":"No"}"#,
                "no-mfa",
            ),
            (
                r#""type":"IAMUser","arn":"arn:aws:iam::1:user/raul""#,
                r#","additionalEventData":{"MFAUsed":"Yes"}"#,
                "mfa",
            ),
            (
                r#""type":"IAMUser","arn":"arn:aws:iam::1:user/raul","sessionContext":{"attributes":{"mfaAuthenticated":"true"}}"#,
                "",
                "mfa",
            ),
            (
                r#""type":"IAMUser","arn":"arn:aws:iam::1:user/raul","sessionContext":{"attributes":{"mfaAuthenticated":"false"}}"#,
                "",
                "no-mfa",
            ),
            (
                r#""type":"IAMUser","arn":"arn:aws:iam::1:user/raul","accessKeyId":"AKIAEXAMPLE""#,
                "",
                "-",
            ),
            // A switch-role console sign-in: the session was MFA'd, the sign-in step says no.
            (
                r#""type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/Admin/raul","sessionContext":{"attributes":{"mfaAuthenticated":"true"}}"#,
                r#","additionalEventData":{"MFAUsed":"No"}"#,
                "mfa",
            ),
        ] {
            let line = format!(
                r#"{{"eventTime":"2024-03-04T09:15:02Z","userIdentity":{{{identity}}},"eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin"{extra}}}"#
            );
            assert_eq!(observed(&mut e, &line, "mfa"), want, "{line}");
        }
    }

    #[test]
    fn the_notes_say_what_the_typed_record_says() {
        let lines: Vec<String> = (0..60)
            .map(|i| {
                event(
                    ["raul", "ana"][i % 2],
                    ["DescribeInstances", "DescribeVolumes", "CreateSnapshot"][i % 3],
                    "198.51.100.7",
                )
            })
            .chain([
                "not json".to_owned(),
                r#"{"eventSource":"s3.amazonaws.com"}"#.to_owned(),
            ])
            .collect();
        let batch = lines.join("\n") + "\n";
        let mut typed = Engine::new("").expect("config");
        let mut fast = Engine::new("").expect("config");
        let records = typed.score_lines(batch.as_bytes());
        let judged = fast.judge(Batch::Lines(batch.as_bytes())).expect("lines");
        let notes: Vec<&[u8]> = judged
            .notes
            .strip_suffix(b"\n")
            .expect("newline")
            .split(|&b| b == b'\n')
            .collect();
        assert_eq!(notes.len(), lines.len());
        assert_eq!(judged.verdicts.len(), lines.len());
        for (record, (note, verdict)) in records.iter().zip(notes.iter().zip(&judged.verdicts)) {
            match (record, verdict) {
                (Ok(r), Ok(v)) => {
                    assert_eq!((v.score, v.risk, v.severity), (r.score, r.risk, r.severity));
                    let campaign_risk = r.campaign.as_ref().map(|c| c.risk);
                    assert_eq!((v.campaign_risk, v.cold), (campaign_risk, r.cold));
                    let n: serde_json::Value = serde_json::from_slice(note).expect("json");
                    // (The JSON form rounds: scores to 6 decimals, bits to 3.)
                    let close =
                        |a: Option<f64>, b: f64, tol: f64| a.is_some_and(|a| (a - b).abs() <= tol);
                    assert!(close(n["score"].as_f64(), r.score, 5e-7));
                    assert!(close(n["novelty"].as_f64(), r.novelty, 5e-4));
                    assert!(close(n["risk"].as_f64(), r.risk, 5e-4));
                    assert_eq!(n["severity"].as_str(), Some(r.severity.name()));
                    assert_eq!(n["sequence"].as_u64(), Some(r.sequence));
                    assert_eq!(n["principal"].as_str(), Some(r.principal.as_str()));
                    assert_eq!(
                        n["mostNovelComponent"]["field"].as_str(),
                        Some(r.most_novel.field.as_str())
                    );
                    assert_eq!(
                        n["mostNovelComponent"]["index"].as_u64(),
                        Some(u64::from(r.most_novel.index))
                    );
                    for (field, value) in r.fields.iter().zip(&r.observation) {
                        assert_eq!(n["observation"][field].as_str(), Some(value.as_str()));
                    }
                    assert_eq!(n["id"].as_str(), r.event_id.as_deref());
                }
                (Err(ScoreError::FieldMissing(_)), Err(ScoreError::FieldMissing(_))) => {
                    let n: serde_json::Value = serde_json::from_slice(note).expect("json");
                    assert_eq!(n["error"], "field-missing");
                }
                (Err(e), Err(f)) => {
                    assert_eq!(e, f);
                    assert!(note.is_empty(), "a line that is not an object has no note");
                }
                other => panic!("typed and fast paths disagree: {other:?}"),
            }
        }
        assert_eq!(
            typed.snapshot(),
            fast.snapshot(),
            "both paths learn the same"
        );
    }

    fn novelty(engine: &mut Engine, line: &str) -> f64 {
        engine.score_line(line.as_bytes()).expect("scored").novelty
    }

    /// `AWS Internal` as source and client (AWS calling on the caller's behalf) is neutral in the
    /// CloudTrail profile: a known user's first such call is not novel for it, where the same
    /// profile without `neutral` finds a new network and a new client.
    #[test]
    fn a_neutral_value_is_learned_but_never_novel() {
        let builtin = crate::config::BUILTIN_PROFILES[0].1;
        let without = builtin.replace("neutral = [\"AWS Internal\"]", "");
        assert_ne!(builtin, without);
        let run = |config: &str| {
            let mut e = Engine::new(config).expect("config");
            for i in 0..60 {
                let action = ["DescribeInstances", "DescribeVolumes"][i % 2];
                e.score_line(event("raul", action, "198.51.100.7").as_bytes())
                    .expect("scored");
            }
            let internal = event("raul", "DescribeInstances", "AWS Internal")
                .replace("aws-cli/2.15.1 Python/3.11 Linux/6.1", "AWS Internal");
            e.score_line(internal.as_bytes()).expect("scored")
        };
        let neutral = run(builtin);
        assert!(neutral.novelty < 0.5, "{} bits", neutral.novelty);
        assert!(
            !["network", "agent"].contains(&neutral.most_novel.field.as_str()),
            "{}",
            neutral.most_novel.field
        );
        let plain = run(&without);
        assert!(plain.novelty > 5.0, "{} bits", plain.novelty);
        assert!(["network", "agent"].contains(&plain.most_novel.field.as_str()));
    }

    /// In the CloudTrail profile, being throttled or failing for an everyday reason (a missing
    /// object, a bad parameter) is neutral: a known user's first such outcome for a call he
    /// makes every day is not novel, while his first denial of it is; the same profile without
    /// `neutral` finds the throttling novel too.
    #[test]
    fn everyday_failures_are_neutral_and_a_denial_is_not() {
        let builtin = crate::config::BUILTIN_PROFILES[0].1;
        let without = builtin.replace("neutral = [\"throttled\", \"error\"]\n", "");
        assert_ne!(builtin, without);
        let run = |config: &str, code: &str| {
            let mut e = Engine::new(config).expect("config");
            for i in 0..200 {
                let action = ["DescribeInstances", "DescribeVolumes"][i % 2];
                e.score_line(event("raul", action, "198.51.100.7").as_bytes())
                    .expect("scored");
            }
            let failed = event("raul", "DescribeInstances", "198.51.100.7").replace(
                "\"eventID\"",
                &format!("\"errorCode\":\"{code}\",\"eventID\""),
            );
            e.score_line(failed.as_bytes()).expect("scored")
        };
        for code in [
            "ThrottlingException",
            "RequestLimitExceeded",
            "InvalidVolume.NotFound",
        ] {
            let r = run(builtin, code);
            assert!(r.novelty < 0.5, "{code}: {} bits", r.novelty);
            assert_ne!(r.most_novel.field, "outcome", "{code}");
        }
        let denied = run(builtin, "Client.UnauthorizedOperation");
        assert!(denied.novelty > 5.0, "{} bits", denied.novelty);
        assert_eq!(denied.most_novel.field, "outcome");
        let plain = run(&without, "ThrottlingException");
        assert!(plain.novelty > 5.0, "{} bits", plain.novelty);
        assert_eq!(plain.most_novel.field, "outcome");
    }

    /// The CloudTrail profile judges a resource given its service: a developer who touches a
    /// new Lambda function every hour is not thereby used to new buckets. The same profile
    /// judging resources alone finds her first read of a bucket she never used unremarkable.
    #[test]
    fn a_resource_is_judged_among_the_resources_of_its_service() {
        let builtin = crate::config::BUILTIN_PROFILES[0].1;
        let alone = builtin.replace("given = [\"service\"]\n", "");
        assert_ne!(builtin, alone);
        let call = |minute: usize, service: &str, action: &str, key: &str, name: &str| {
            format!(
                r#"{{"eventTime":"2024-03-04T{:02}:{:02}:00Z","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::1:user/dana"}},"eventSource":"{service}.amazonaws.com","eventName":"{action}","requestParameters":{{"{key}":"{name}"}},"sourceIPAddress":"198.51.100.7","userAgent":"aws-cli/2.15.1 Python/3.11 Linux/6.1"}}"#,
                minute / 60,
                minute % 60
            )
        };
        let run = |config: &str| {
            let mut e = Engine::new(config).expect("config");
            for i in 0..400 {
                let line = if i % 2 == 0 {
                    call(
                        i,
                        "lambda",
                        "GetFunction20150331v2",
                        "functionName",
                        &format!("fn-{i}"),
                    )
                } else {
                    let bucket = ["assets", "builds"][i / 2 % 2];
                    call(i, "s3", "GetObject", "bucketName", bucket)
                };
                e.score_line(line.as_bytes()).expect("scored");
            }
            let first = call(400, "s3", "GetObject", "bucketName", "payroll-exports");
            let r = e.score_line(first.as_bytes()).expect("scored");
            // The given service is judged once, by the action view.
            let mut fields = r.fields.clone();
            fields.sort();
            fields.dedup();
            assert_eq!(fields.len(), r.fields.len(), "{:?}", r.fields);
            assert_eq!(r.observation.len(), r.fields.len());
            r
        };
        let given = run(builtin);
        let plain = run(&alone);
        assert_eq!(given.most_novel.field, "resource");
        assert!(
            given.novelty > plain.novelty + 5.0,
            "a new bucket: {} bits given the service, {} judged alone",
            given.novelty,
            plain.novelty
        );
    }

    /// A value seen often is familiar however rare it is among the context's values: a CI
    /// role's first call of every run comes from another SDK (one call in forty, a hundred runs
    /// so far). With the discount off, that call is as novel as a rare value can be.
    #[test]
    fn a_value_seen_often_is_familiar_however_rare() {
        let call = |i: usize, agent: &str| {
            format!(
                r#"{{"eventTime":"2024-03-{:02}T{:02}:{:02}:00Z","userIdentity":{{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/ci-deploy/run-{}"}},"eventSource":"lambda.amazonaws.com","eventName":"UpdateFunctionCode20150331v2","sourceIPAddress":"198.51.100.7","userAgent":"{agent}"}}"#,
                1 + i / 1440,
                i / 60 % 24,
                i % 60,
                i / 40
            )
        };
        let run = |config: &str| {
            let mut e = Engine::new(config).expect("config");
            for i in 0..4000 {
                let agent = if i % 40 == 0 {
                    "aws-sdk-js/3.1 linux"
                } else {
                    "aws-cli/2.15.1 Python/3.11 Linux/6.1"
                };
                e.score_line(call(i, agent).as_bytes()).expect("scored");
            }
            e.score_line(call(4000, "aws-sdk-js/3.1 linux").as_bytes())
                .expect("scored")
                .novelty
        };
        let familiar = run("");
        let plain = run("[engine]\nfamiliar-count = 0\n");
        // Measured: 1.3 bits against 4.9.
        assert!(
            familiar < plain / 3.0,
            "{familiar} bits for the hundredth run's first call, {plain} without the discount"
        );
        assert!(plain > 3.0, "{plain} bits without the discount");
    }

    /// A CloudTrail call at minute `i` by `who`: an IAM user (a person) or, with `role`, an
    /// assumed role (a workload).
    fn peer_call(i: usize, who: &str, role: bool, action: &str) -> String {
        let identity = if role {
            format!(r#""type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/{who}/i-0abc""#)
        } else {
            format!(r#""type":"IAMUser","arn":"arn:aws:iam::1:user/{who}""#)
        };
        format!(
            r#"{{"eventTime":"2024-03-{:02}T{:02}:{:02}:00Z","userIdentity":{{{identity}}},"eventSource":"ec2.amazonaws.com","eventName":"{action}","sourceIPAddress":"198.51.100.7","userAgent":"aws-cli/2.15.1"}}"#,
            4 + i / 1440,
            i / 60 % 24,
            i % 60,
        )
    }

    #[test]
    fn a_person_is_judged_among_people_before_everybody() {
        // A backup role snapshots volumes all day; people describe instances, and one person
        // (bo) also snapshots now and then. ana's first CreateSnapshot is rare among people,
        // whatever the role does; with no peer groups the role's habit makes it cheap.
        let run = |config: &str| {
            let mut e = Engine::new(config).expect("config");
            for i in 0..3000 {
                let line = match i % 5 {
                    0 | 1 => peer_call(i, "backup", true, "CreateSnapshot"),
                    2 => peer_call(i, "ana", false, "DescribeInstances"),
                    3 => peer_call(i, "cy", false, "DescribeInstances"),
                    _ if i % 50 == 4 => peer_call(i, "bo", false, "CreateSnapshot"),
                    _ => peer_call(i, "bo", false, "DescribeInstances"),
                };
                e.score_line(line.as_bytes()).expect("scored");
            }
            let ana = e.score_line(peer_call(3000, "ana", false, "CreateSnapshot").as_bytes());
            let cy = e.score_line(peer_call(3001, "cy", false, "DescribeVolumes").as_bytes());
            (ana.expect("scored"), cy.expect("scored"))
        };
        let builtin = crate::config::BUILTIN_PROFILES[0].1;
        let (peers, _) = run("");
        let (everybody, _) = run(&builtin.replace("peer = \"peer\"\n", ""));
        assert_eq!(peers.most_novel.field, "action");
        // Measured: 8.9 bits among people, 7.8 among everybody.
        assert!(
            peers.novelty > everybody.novelty + 1.0,
            "{} bits among people, {} among everybody",
            peers.novelty,
            everybody.novelty
        );
        assert_eq!(
            peers.tactics,
            ["defense-evasion"],
            "a snapshot, in the table"
        );
        assert!(
            peers.risk > peers.novelty,
            "a high-stakes call weighs more than it is new"
        );
    }

    #[test]
    fn without_peers_a_new_principal_is_judged_against_the_population_at_every_component() {
        // Everybody starts `ls` from `bash`; a host never seen starts `nc` from `bash`. The
        // parent is common in the population; the process after it is not, and that is the
        // evidence (a profile without `peer` backs off from the principal to the population).
        let profile = include_str!("../../examples/process-launch/profile.toml");
        let launch = |i: usize, host: &str, process: &str| {
            format!(
                r#"{{"timestamp":{},"host":{{"name":"{host}"}},"user":{{"name":"www"}},"process":{{"name":"{process}","parent":{{"name":"bash"}}}}}}"#,
                1_700_000_000 + i * 60
            )
        };
        let mut e = Engine::new(profile).expect("config");
        for i in 0..500 {
            e.score_line(launch(i, ["web-1", "web-2"][i % 2], "ls").as_bytes())
                .expect("scored");
        }
        let usual = e.score_line(launch(500, "web-3", "ls").as_bytes());
        let odd = e.score_line(launch(501, "web-4", "nc").as_bytes());
        let (usual, odd) = (usual.expect("scored"), odd.expect("scored"));
        assert_eq!(odd.most_novel.value, "nc");
        assert!(
            odd.novelty > usual.novelty + 4.0,
            "{} bits for nc, {} for ls",
            odd.novelty,
            usual.novelty
        );
    }

    #[test]
    fn an_action_outside_the_stakes_table_is_neutral() {
        let mut e = Engine::new("").expect("config");
        for i in 0..100 {
            let r = e
                .score_line(peer_call(i, "ana", false, "AllocateAddress").as_bytes())
                .expect("scored");
            assert_eq!((r.risk, r.tactics.len()), (r.novelty, 0));
        }
        let r = e
            .score_line(peer_call(100, "ana", false, "ImportKeyPair").as_bytes())
            .expect("scored");
        assert_eq!(r.tactics, ["persistence"]);
        assert_eq!(r.techniques, ["T1098.001"]);
        assert!(r.risk >= 2.0 * r.novelty - 1e-9);
    }

    /// `line` (an [`event`]) with these `requestParameters` members.
    fn with_parameters(line: String, members: &str) -> String {
        line.replace(
            r#","eventID""#,
            &format!(r#","requestParameters":{{{members}}},"eventID""#),
        )
    }

    #[test]
    fn swapping_an_instances_user_data_escalates_privileges() {
        let mut e = Engine::new("").expect("config");
        let call = |params: &str| {
            with_parameters(
                event("raul", "ModifyInstanceAttribute", "198.51.100.7"),
                &format!(r#""instanceId":"i-1",{params}"#),
            )
        };
        for (params, tactics) in [
            (r#""instanceType":{"value":"t3.nano"}"#, vec!["execution"]),
            (
                r#""userData":"<sensitiveDataRemoved>""#,
                vec!["execution", "privilege-escalation"],
            ),
            (
                r#""attribute":"userData","value":"IyEvYmluL3No""#,
                vec!["execution", "privilege-escalation"],
            ),
            (r#""attribute":"disableApiTermination""#, vec!["execution"]),
        ] {
            let r = e.score_line(call(params).as_bytes()).expect("scored");
            assert_eq!(r.tactics, tactics, "{params}");
        }
    }

    #[test]
    fn a_security_group_opened_to_the_internet_impairs_defenses() {
        let mut e = Engine::new("").expect("config");
        let ingress = |params: &str| {
            with_parameters(
                event("raul", "AuthorizeSecurityGroupIngress", "198.51.100.7"),
                &format!(r#""groupId":"sg-1",{params}"#),
            )
        };
        let ranges = |cidr: &str| {
            format!(
                r#""ipPermissions":{{"items":[{{"ipProtocol":"tcp","fromPort":22,"toPort":22,"ipRanges":{{"items":[{{"cidrIp":"{cidr}"}}]}}}}]}}"#
            )
        };
        let v6 = r#""ipPermissions":{"items":[{"ipv6Ranges":{"items":[{"cidrIpv6":"::/0"}]}}]}"#;
        for (params, grantee) in [
            (ranges("0.0.0.0/0"), "public"),
            (ranges("203.0.113.5/32"), "public"),
            (ranges("10.0.0.0/16"), "private"),
            (ranges("172.20.0.0/16"), "private"),
            (ranges("192.168.1.0/24"), "private"),
            (
                r#""cidrIp":"208.236.235.254/0","fromPort":22"#.to_owned(),
                "public",
            ),
            (v6.to_owned(), "public"),
            (r#""sourceSecurityGroupName":"web""#.to_owned(), "-"),
        ] {
            let r = e.score_line(ingress(&params).as_bytes()).expect("scored");
            let at = r.fields.iter().position(|f| f == "grantee").expect("grant");
            assert_eq!(r.observation[at], grantee, "{params}");
            let want: &[&str] = if grantee == "public" {
                &["defense-evasion"]
            } else {
                &[]
            };
            assert_eq!(r.tactics, want, "{params}");
        }
    }

    #[test]
    fn only_a_short_log_retention_evades_defenses() {
        let mut e = Engine::new("").expect("config");
        for (days, tactics) in [
            ("1", vec!["defense-evasion"]),
            ("7", vec!["defense-evasion"]),
            ("30", vec![]),
            ("3653", vec![]),
        ] {
            let line = with_parameters(
                event("raul", "PutRetentionPolicy", "198.51.100.7")
                    .replace("ec2.amazonaws.com", "logs.amazonaws.com"),
                &format!(r#""logGroupName":"/app","retentionInDays":{days}"#),
            );
            let r = e.score_line(line.as_bytes()).expect("scored");
            assert_eq!(r.tactics, tactics, "{days} days");
        }
    }

    #[test]
    fn a_console_sign_in_without_mfa_by_an_iam_user_evades_defenses() {
        let mut e = Engine::new("").expect("config");
        let login = |kind: &str, mfa: &str, outcome: &str| {
            format!(
                r#"{{"eventVersion":"1.08","eventTime":"2024-03-01T10:00:00Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","sourceIPAddress":"198.51.100.7","userAgent":"Mozilla/5.0","userIdentity":{{"type":"{kind}","arn":"arn:aws:iam::111122223333:user/raul","accountId":"111122223333"}},"responseElements":{{"ConsoleLogin":"{outcome}"}},"additionalEventData":{{"MFAUsed":"{mfa}"}},"eventID":"e-{kind}-{mfa}-{outcome}"}}"#
            )
        };
        for (kind, mfa, outcome, tactics) in [
            ("IAMUser", "Yes", "Success", vec!["initial-access"]),
            (
                "IAMUser",
                "No",
                "Success",
                vec!["initial-access", "defense-evasion"],
            ),
            (
                "Root",
                "No",
                "Success",
                vec!["initial-access", "defense-evasion"],
            ),
            ("IAMUser", "No", "Failure", vec!["initial-access"]),
            ("SAMLUser", "No", "Success", vec!["initial-access"]),
        ] {
            let r = e
                .score_line(login(kind, mfa, outcome).as_bytes())
                .expect("scored");
            assert_eq!(r.tactics, tactics, "{kind} {mfa} {outcome}");
        }
    }

    #[test]
    fn a_command_sent_to_an_instance_reaches_its_role_credentials() {
        let mut e = Engine::new("").expect("config");
        let ssm = |action: &str| {
            event("raul", action, "198.51.100.7").replace("ec2.amazonaws.com", "ssm.amazonaws.com")
        };
        let r = e.score_line(ssm("SendCommand").as_bytes()).expect("scored");
        assert_eq!(r.tactics, ["execution", "credential-access"]);
        assert_eq!(r.techniques, ["T1651", "T1552.005"]);
        let r = e
            .score_line(ssm("StartSession").as_bytes())
            .expect("scored");
        assert_eq!(
            r.tactics,
            ["lateral-movement"],
            "a session is not a command"
        );
    }

    #[test]
    fn a_saved_state_restores_under_other_judging_settings_only() {
        let mut e = Engine::new("").expect("config");
        e.score_line(event("raul", "CreateSnapshot", "198.51.100.7").as_bytes())
            .expect("scored");
        let bytes = e.snapshot();
        let judging =
            "[risk]\nmedium = 45\n[campaign]\nwindow = \"2h\"\n[stakes.tactics]\nimpact = 3.0";
        let restored = Engine::restore(judging, &bytes).expect("restore");
        assert_eq!(restored.stats().events, 1);
        assert!(matches!(
            Engine::restore("[engine]\nhalf-life = \"7d\"", &bytes),
            Err(SnapshotError::Decode(DecodeError::Mismatch(_)))
        ));
    }

    #[test]
    fn a_principals_young_context_borrows_the_populations_rate_of_new_values() {
        // Roles read two buckets all day; ana, who never used S3, reads one of them, then the
        // other, new to her. Her S3 context has seen one value, new: alone it says half of
        // what comes there is new, so the second new bucket is no surprise; the population
        // says new buckets are rare.
        let call = |i: usize, who: &str, service: &str, action: &str, bucket: &str| {
            format!(
                r#"{{"eventTime":"2024-03-04T{:02}:{:02}:00Z","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::1:user/{who}"}},"eventSource":"{service}.amazonaws.com","eventName":"{action}","sourceIPAddress":"198.51.100.7","userAgent":"aws-cli/2.15.1","requestParameters":{{"bucketName":"{bucket}"}}}}"#,
                i / 60 % 24,
                i % 60,
            )
        };
        let run = |config: &str| {
            let mut e = Engine::new(config).expect("config");
            for i in 0..1200 {
                let line = match i % 4 {
                    0 => call(i, "etl", "s3", "GetObject", "lake"),
                    1 => call(i, "etl", "s3", "GetObject", "staging"),
                    2 => call(i, "report", "s3", "GetObject", "lake"),
                    _ => call(i, "ana", "ec2", "DescribeInstances", "-"),
                };
                e.score_line(line.as_bytes()).expect("scored");
            }
            e.score_line(call(1200, "ana", "s3", "GetObject", "lake").as_bytes())
                .expect("scored");
            e.score_line(call(1201, "ana", "s3", "GetObject", "staging").as_bytes())
                .expect("scored")
                .novelty
        };
        let with = run("");
        let without = run("[engine]\npopulation-prior = 0\n");
        // Measured: 8.6 bits against 7.9 (her context's rate of new values is 1/3 instead of
        // 1/2: the second new bucket weighs 0.66 bits more).
        assert!(
            with > without + 0.5,
            "{with} bits with the population's prior, {without} without"
        );
    }

    #[test]
    fn a_principals_learning_does_not_escalate_its_first_warm_events() {
        // All events at the same time: nothing decays, as in a capture without event times.
        // The principal's first events are all first sightings (its learning); its ordinary
        // events once warm must not carry them.
        let mut e = Engine::new("").expect("config");
        for i in 0..100 {
            let action = ["DescribeInstances", "DescribeVolumes"][i % 2];
            novelty(&mut e, &event(["ana", "bo"][i % 2], action, "198.51.100.7"));
        }
        let actions = [
            "DescribeInstances",
            "DescribeTags",
            "DescribeVpcs",
            "ListBuckets",
        ];
        for i in 0..60 {
            let n = novelty(&mut e, &event("pedro", actions[i % 4], "203.0.113.5"));
            if i >= 40 {
                assert!(n < 2.0, "event {i}: {n} bits for an ordinary event");
            }
        }
    }

    #[test]
    fn a_new_principal_doing_several_new_things_escalates_while_cold() {
        let run = |config: &str| {
            let mut e = Engine::new(config).expect("config");
            for i in 0..200 {
                let user = ["ana", "bo", "cy", "di", "ed"][i % 5];
                let action = ["DescribeInstances", "DescribeVolumes"][i % 2];
                novelty(&mut e, &event(user, action, "198.51.100.7"));
            }
            // A new principal, from a new network, doing what nobody does, then again.
            let mallory = |action: &str| event("mallory", action, "203.0.113.9");
            novelty(&mut e, &mallory("CreateSnapshot"));
            novelty(&mut e, &mallory("ModifySnapshotAttribute"));
            novelty(&mut e, &mallory("DeleteSnapshot"))
        };
        let escalated = run("");
        let plain = run("[engine]\nescalation = 0.0\n");
        assert!(
            escalated > plain + 3.0,
            "several kinds of new behaviour of a cold principal: {escalated} vs {plain} bits"
        );
    }

    /// `event` at `secs` seconds after 2024-03-04T00:00:00Z (`None`: no eventTime at all).
    fn event_at(user: &str, action: &str, ip: &str, secs: Option<u32>) -> String {
        let line = event(user, action, ip);
        match secs {
            Some(t) => line.replace(
                "2024-03-04T09:15:02Z",
                &format!(
                    "2024-03-04T{:02}:{:02}:{:02}Z",
                    t / 3600,
                    t / 60 % 60,
                    t % 60
                ),
            ),
            None => line.replace(r#""eventTime":"2024-03-04T09:15:02Z","#, ""),
        }
    }

    #[test]
    fn a_new_value_in_a_burst_settles_slowly_and_only_in_a_burst() {
        // An established user (one call a minute for four hours from one network), then
        // forty calls from a new network: `spacing` seconds apart. Returns the last one's
        // novelty.
        let run = |config: &str, spacing: u32, timed: bool| {
            let mut e = Engine::new(config).expect("config");
            let at = |t: u32| timed.then_some(t);
            for i in 0..240 {
                let action = ["DescribeInstances", "DescribeVolumes"][i as usize % 2];
                novelty(&mut e, &event_at("ana", action, "198.51.100.7", at(i * 60)));
            }
            if spacing == 0 {
                // Out of order: the stream has already shown an event an hour later.
                let later = at(300 * 60);
                novelty(
                    &mut e,
                    &event_at("bo", "ListBuckets", "198.51.100.7", later),
                );
            }
            let mut last = 0.0;
            for i in 0..40 {
                let t = 240 * 60 + i * spacing;
                last = novelty(
                    &mut e,
                    &event_at("ana", "DescribeInstances", "203.0.113.9", at(t)),
                );
            }
            last
        };
        let off = "[engine]\nsettle-count = 0\n";
        let (settling, plain) = (run("", 5, true), run(off, 5, true));
        assert!(
            settling > plain + 1.0,
            "a polling loop from a new network, 40th call: {settling} vs {plain} bits without settling"
        );
        // Calls spaced by the settle time, or a stream without event times: no difference.
        let spaced = (run("", 300, true), run(off, 300, true));
        assert!((spaced.0 - spaced.1).abs() < 1e-9, "{spaced:?}");
        let untimed = (run("", 5, false), run(off, 5, false));
        assert!((untimed.0 - untimed.1).abs() < 1e-9, "{untimed:?}");
        // Events from before the latest one seen (by more than the settle time): the order
        // says nothing about bursts, so no difference either.
        let late = (run("", 0, true), run(off, 0, true));
        assert!((late.0 - late.1).abs() < 1e-9, "{late:?}");
    }

    #[test]
    fn the_explanation_names_the_action_for_a_new_call_and_the_origin_for_stolen_keys() {
        // Two weeks of routine, a call every half hour each: three people describing
        // instances and volumes, each from their own network with their own client, and a
        // backup role that also creates snapshots.
        let mut e = Engine::new("").expect("config");
        let at = |user: &str, action: &str, ip: &str, agent: &str, secs: u32| {
            let (day, t) = (secs / 86_400, secs % 86_400);
            event(user, action, ip)
                .replace(
                    "2024-03-04T09:15:02Z",
                    &format!(
                        "2024-03-{:02}T{:02}:{:02}:{:02}Z",
                        4 + day,
                        t / 3600,
                        t / 60 % 60,
                        t % 60
                    ),
                )
                .replace("aws-cli/2.15.1 Python/3.11 Linux/6.1", agent)
        };
        let people = [
            (
                "ana",
                "198.51.100.7",
                "aws-cli/2.15.1 Python/3.11 Linux/6.1",
            ),
            ("bo", "192.0.2.33", "Boto3/1.34.2 Python/3.12 Darwin/23.1"),
            ("cy", "100.20.30.40", "aws-sdk-go-v2/1.24.0 os/linux"),
        ];
        let mut t = 0;
        for i in 0..600u32 {
            t = i * 1_800;
            let action = ["DescribeInstances", "DescribeVolumes"][i as usize % 2];
            for (k, (user, ip, agent)) in people.iter().enumerate() {
                let line = at(user, action, ip, agent, t + k as u32 * 10);
                e.score_line(line.as_bytes()).expect("scored");
            }
            let backup = ["CreateSnapshot", "DescribeSnapshots"][i as usize % 2];
            let line = at("backup", backup, "192.0.2.10", people[0].2, t + 60);
            e.score_line(line.as_bytes()).expect("scored");
        }
        let mut judge = |user: &str, action: &str, ip: &str, agent: &str, dt: u32| {
            let r = e
                .score_line(at(user, action, ip, agent, t + dt).as_bytes())
                .expect("scored");
            assert!(!r.cold);
            (r.most_novel.view, r.most_novel.field)
        };
        let view = |v: &str, f: &str| (v.to_owned(), f.to_owned());
        // A known user's never-seen call (the backup role's), from her usual place and client:
        // the action.
        assert_eq!(
            judge("ana", "CreateSnapshot", people[0].1, people[0].2, 600),
            view("action", "action")
        );
        // Her usual call with her key from elsewhere, her client's next version: the origin.
        assert_eq!(
            judge(
                "bo",
                "DescribeInstances",
                "203.0.113.50",
                "Boto3/1.34.9 Python/3.12 Darwin/23.1",
                1_200
            ),
            view("origin", "network")
        );
        // From elsewhere and with a client nobody uses: the origin or the client, not the
        // (usual) call.
        let both = judge(
            "cy",
            "DescribeVolumes",
            "203.0.113.77",
            "python-requests/2.31.0",
            1_800,
        );
        assert!(
            both == view("origin", "network") || both == view("client", "agent"),
            "{both:?}"
        );
    }

    #[test]
    fn one_event_stamped_far_ahead_does_not_move_the_clock() {
        // A user's routine for twenty hours, with one event in the middle stamped a century
        // ahead (forged, or a source with a broken clock). The novelty of every event after
        // it is the same, to the bit, as when that event has no time at all.
        let run = |config: &str, stamp: Option<&str>| -> Vec<f64> {
            let mut e = Engine::new(config).expect("config");
            let mut after = Vec::new();
            for i in 0..400u32 {
                let action =
                    ["DescribeInstances", "DescribeVolumes", "ListBuckets"][i as usize % 3];
                let ip = if i % 7 == 0 {
                    "203.0.113.9"
                } else {
                    "198.51.100.7"
                };
                if i == 200 {
                    let line = match stamp {
                        Some(s) => event("ana", action, ip).replace("2024-03-04T09:15:02Z", s),
                        None => event_at("ana", action, ip, None),
                    };
                    novelty(&mut e, &line);
                    continue;
                }
                let n = novelty(&mut e, &event_at("ana", action, ip, Some(i * 180)));
                if i > 200 {
                    after.push(n);
                }
            }
            after
        };
        let forged = "2124-03-04T09:15:02Z";
        assert_eq!(run("", Some(forged)), run("", None));
        // Believing it (the guard off) changes what follows: the test can tell.
        let off = "[engine]\nmax-time-jump = \"off\"\n";
        assert_ne!(run(off, Some(forged)), run(off, None));
    }

    #[test]
    fn a_stream_that_resumes_after_a_gap_is_believed_from_its_second_event() {
        let mut e = Engine::new("").expect("config");
        let at = |day: u32, secs: u32| {
            event("ana", "DescribeInstances", "198.51.100.7").replace(
                "2024-03-04T09:15:02Z",
                &format!(
                    "2024-03-{:02}T09:{:02}:{:02}Z",
                    4 + day,
                    secs / 60,
                    secs % 60
                ),
            )
        };
        let time = |day: u32, secs: u32| {
            parse_time(&format!(
                "2024-03-{:02}T09:{:02}:{:02}Z",
                4 + day,
                secs / 60,
                secs % 60
            ))
        };
        novelty(&mut e, &at(0, 0));
        novelty(&mut e, &at(0, 60));
        assert_eq!(Some(e.model.now), time(0, 60));
        // Three days later (a long weekend): the first event alone is not believed...
        novelty(&mut e, &at(3, 0));
        assert_eq!(Some(e.model.now), time(0, 60));
        // ...the next one confirms it, and the snapshot carries the state in between.
        let mut e = Engine::restore("", &e.snapshot()).expect("restore");
        novelty(&mut e, &at(3, 30));
        assert_eq!(Some(e.model.now), time(3, 30));
        // Going back in time is always believed (a stream replayed out of order).
        novelty(&mut e, &at(1, 0));
        assert_eq!(Some(e.model.now), time(3, 30));
    }

    #[test]
    fn an_event_delivered_twice_is_noted_and_not_learned_again() {
        let mut e = Engine::new("").expect("config");
        let first = event("raul", "CreateSnapshot", "198.51.100.7");
        let other = event("raul", "DescribeInstances", "198.51.100.7");
        let batch = format!("{first}\n{other}\n{first}\n");
        let judged = e.judge(Batch::Lines(batch.as_bytes())).expect("lines");
        assert!(judged.verdicts[0].is_ok() && judged.verdicts[1].is_ok());
        assert!(
            matches!(&judged.verdicts[2], Err(ScoreError::Duplicate(m)) if m.contains("id-raul-CreateSnapshot")),
            "{:?}",
            judged.verdicts[2]
        );
        let notes: Vec<&str> = std::str::from_utf8(&judged.notes)
            .expect("utf-8")
            .lines()
            .collect();
        let dup: serde_json::Value = serde_json::from_str(notes[2]).expect("json");
        assert_eq!(dup["error"], "duplicate");
        assert_eq!(e.stats().events, 2, "learned once");
        // A snapshot remembers the ids; a day later the same id is an event again.
        let mut e = Engine::restore("", &e.snapshot()).expect("restore");
        assert!(matches!(
            e.score_line(first.as_bytes()),
            Err(ScoreError::Duplicate(_))
        ));
        let later = first.replace("2024-03-04T09:15:02Z", "2024-03-05T10:15:02Z");
        assert!(e.score_line(later.as_bytes()).is_ok());
        // Off: every line is learned.
        let mut off = Engine::new("[engine]\nduplicate-window = \"off\"").expect("config");
        let judged = off.judge(Batch::Lines(batch.as_bytes())).expect("lines");
        assert!(judged.verdicts.iter().all(Result::is_ok));
    }

    #[test]
    fn cloudtrail_records_delivered_by_eventbridge_read_as_the_records_themselves() {
        // EventBridge's "AWS API Call via CloudTrail" carries the record under `detail`, with
        // an envelope of its own (its own id and time, which are not the event's).
        let plain = event("raul", "CreateSnapshot", "198.51.100.7");
        let wrapped = format!(
            r#"{{"version":"0","id":"6a7e8feb-b491-4cf7-a9f1-bf3703467718","detail-type":"AWS API Call via CloudTrail","source":"aws.ec2","account":"1","time":"2024-03-04T09:15:09Z","region":"eu-west-1","resources":[],"detail":{plain}}}"#
        );
        let a = Engine::new("")
            .expect("config")
            .score_line(plain.as_bytes())
            .expect("scored");
        let b = Engine::new("")
            .expect("config")
            .score_line(wrapped.as_bytes())
            .expect("scored");
        assert_eq!(a.observation, b.observation);
        assert_eq!(b.event_id, a.event_id);
        assert!(
            b.event_id
                .as_deref()
                .is_some_and(|id| id.starts_with("id-raul-CreateSnapshot"))
        );
        assert_eq!(b.event_time.as_deref(), Some("2024-03-04T09:15:02Z"));
        assert_eq!((a.score, a.novelty), (b.score, b.novelty));
    }

    #[test]
    fn a_recycled_vector_keeps_its_allocation() {
        let line = String::from("x");
        let mut v: Vec<Cow<'_, str>> = Vec::with_capacity(64);
        v.push(Cow::Borrowed(line.as_str()));
        let w: Vec<Cow<'static, str>> = recycle(v);
        assert!(w.is_empty());
        assert!(w.capacity() >= 64, "{}", w.capacity());
    }

    #[test]
    fn the_normaliser_memo_gives_what_the_normalisers_give() {
        let settings = Settings::parse("").expect("config");
        let field = settings
            .profile
            .fields
            .iter()
            .find(|f| !f.normalize.is_empty())
            .expect("a normalised field");
        let mut memo = Memo::new(true);
        let mut spare = Spare::default();
        // More distinct values than slots, twice over, so that slots are hit, missed and
        // overwritten.
        for round in 0..2 {
            for i in 0..3 * MEMO_SLOTS {
                let raw = format!(
                    "aws-cli/2.{}.{round} Python/3.11 Linux/6.1 arn:aws:iam::1:role/r{i}",
                    i % 7
                );
                let direct = field
                    .normalize
                    .iter()
                    .fold(Cow::Borrowed(raw.as_str()), |v, n| n.apply(v));
                let borrowed = memo.apply(field, Cow::Borrowed(raw.as_str()), &mut spare);
                assert_eq!(borrowed, direct);
                let owned = memo.apply(field, Cow::Owned(raw.clone()), &mut spare);
                assert_eq!(owned, direct);
                let _: Vec<()> = spare.reclaim(vec![borrowed, owned]);
            }
        }
    }

    #[test]
    fn scores_rank_events_even_when_every_principal_is_cold() {
        let mut e = Engine::new("").expect("config");
        let mut scores = Vec::new();
        for i in 0..90 {
            let user = format!("short-lived-{}", i / 3);
            let line = event(&user, "DescribeInstances", "198.51.100.7");
            let r = e.score_line(line.as_bytes()).expect("scored");
            assert!(r.cold);
            scores.push(r.score);
        }
        let odd = e
            .score_line(event("short-lived-99", "DeleteTrail", "203.0.113.9").as_bytes())
            .expect("scored");
        let usual = e
            .score_line(event("short-lived-98", "DescribeInstances", "198.51.100.7").as_bytes())
            .expect("scored");
        assert!(
            odd.score > 0.9 && odd.score > usual.score,
            "{} vs {}",
            odd.score,
            usual.score
        );
        assert!(
            scores.iter().any(|&s| s != 0.5),
            "scores are ranks, not all 0.5"
        );
    }
}
