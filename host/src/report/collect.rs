//! One pass over a scored stream, in bounded memory, keeping what the report shows.
//!
//! - **Every event** goes into two density histograms ([`Density`]): score and raw novelty over
//!   event time, and the same over position in the stream (the fallback axis when events have no
//!   time). Columns widen by doubling as the stream's span grows, so there are never more than
//!   [`COLUMNS`] of them, whatever the length of the stream: the background of a million events
//!   costs the same as that of a thousand, and no event is left out of it.
//! - **The learning curve**: every event again, by its principal's event number (`sequence`)
//!   in buckets of geometric width ([`Learning`]), eight per doubling.
//! - **The most novel events** are kept whole: a heap of the [`FOREGROUND`] highest by score
//!   (ties: raw novelty, then the earlier event), drawn as points over the density and listed in
//!   the table. They are never sampled.
//! - **Every campaign event** is kept (up to [`MAX_STAGES`] per campaign, for up to
//!   [`MAX_CAMPAIGNS`] campaigns; beyond, the lowest-scored campaigns are dropped).
//! - **Per principal**: counts, the highest scores and the first and last time seen (up to
//!   [`MAX_PRINCIPALS`] principals).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use serde::Deserialize;

use crate::annotation::{Annotation, Campaign};
use crate::scored::by_risk;
pub use crate::scored::{parse_since, parse_time};

/// Most novel events kept whole, at least (more when `--top` asks for more).
pub const FOREGROUND: usize = 2_000;
/// Most columns of a density histogram.
pub const COLUMNS: usize = 240;
/// Rows of the score histogram: `-log10(1 - score)` in `[0, SCORE_TOP)`.
pub const SCORE_ROWS: usize = 140;
pub const SCORE_TOP: f64 = 7.0;
/// Rows of the novelty histogram: bits in `[0, BITS_TOP)`, the last row holding everything above.
pub const BITS_ROWS: usize = 160;
pub const BITS_TOP: f64 = 80.0;
/// Campaign events kept per campaign (the engine lists as many actions).
pub const MAX_STAGES: usize = 200;
pub const MAX_CAMPAIGNS: usize = 20_000;
pub const MAX_PRINCIPALS: usize = 200_000;
/// The score from which an event counts as novel in the principal summaries (the engine's
/// default campaign threshold).
pub const NOVEL: f64 = 0.99;

/// The score as plotted: `-log10(1 - score)`, so 0.9, 0.99, 0.999 are 1, 2, 3.
pub fn score_y(score: f64) -> f64 {
    -(1.0 - score).clamp(1e-7, 1.0).log10()
}

/// One event kept whole.
#[derive(Debug, Clone)]
pub struct Kept {
    /// 1-based position in the input (all lines of all inputs).
    pub position: u64,
    pub time: Option<f64>,
    pub note: Annotation,
    /// A CloudTrail console link, when the event is CloudTrail's.
    pub link: Option<String>,
}

impl Kept {
    fn rank(&self) -> (f64, f64, u64) {
        (self.note.risk, self.note.score, self.position)
    }
}

/// Heap order: greater is riskier; earlier events win ties.
#[derive(Debug)]
struct ByRisk(Kept);

impl PartialEq for ByRisk {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for ByRisk {}
impl PartialOrd for ByRisk {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ByRisk {
    fn cmp(&self, other: &Self) -> Ordering {
        by_risk(self.0.rank(), other.0.rank())
    }
}

/// One column of a density histogram.
#[derive(Debug, Clone)]
pub struct Column {
    pub events: u32,
    pub score: [u32; SCORE_ROWS],
    pub bits: [u32; BITS_ROWS],
}

impl Column {
    fn empty() -> Box<Column> {
        Box::new(Column {
            events: 0,
            score: [0; SCORE_ROWS],
            bits: [0; BITS_ROWS],
        })
    }

    fn add(&mut self, score: f64, bits: f64) {
        self.events += 1;
        let row = ((score_y(score) / SCORE_TOP * SCORE_ROWS as f64) as usize).min(SCORE_ROWS - 1);
        self.score[row] += 1;
        let row = ((bits.max(0.0) / BITS_TOP * BITS_ROWS as f64) as usize).min(BITS_ROWS - 1);
        self.bits[row] += 1;
    }

    fn merge(&mut self, other: &Column) {
        self.events += other.events;
        for (a, b) in self.score.iter_mut().zip(&other.score) {
            *a += b;
        }
        for (a, b) in self.bits.iter_mut().zip(&other.bits) {
            *a += b;
        }
    }
}

/// Counts of events over (x, score) and (x, bits), with at most [`COLUMNS`] columns of a width
/// that doubles as the span grows.
///
/// An event far outside the span of the rest (more than [`FAR`] times its width away, once
/// [`SETTLED`] events are in) is held apart instead of widening the columns: one event stamped
/// a century ahead (a forged time, a broken clock) would otherwise squeeze the whole stream
/// into one column. Held events join the plot when they turn out not to be outliers (they reach
/// 1 % of the events, or the span grows to reach them); the rest are counted and named.
#[derive(Debug, Clone)]
pub struct Density {
    pub width: f64,
    origin: Option<f64>,
    pub columns: BTreeMap<i64, Box<Column>>,
    /// Events held apart: (x, score, bits).
    held: Vec<(f64, f64, f64)>,
    /// Events in the columns.
    counted: u64,
}

/// How far, in widths of the span drawn so far, an event must lie to be held apart.
pub const FAR: f64 = 16.0;
/// Events drawn before any is held apart (a young stream's span grows fast).
pub const SETTLED: u64 = 1_000;

impl Density {
    pub fn new(width: f64) -> Density {
        Density {
            width,
            origin: None,
            columns: BTreeMap::new(),
            held: Vec::new(),
            counted: 0,
        }
    }

    /// The x range the columns cover.
    fn range(&self) -> Option<(f64, f64)> {
        let lo = *self.columns.keys().next()?;
        let hi = *self.columns.keys().next_back()?;
        Some((self.span(lo).0, self.span(hi).1))
    }

    fn is_far(&self, x: f64) -> bool {
        self.counted >= SETTLED
            && self.range().is_some_and(|(a, b)| {
                let reach = FAR * (b - a);
                x < a - reach || x > b + reach
            })
    }

    pub fn add(&mut self, x: f64, score: f64, bits: f64) {
        if self.is_far(x) {
            self.held.push((x, score, bits));
            if self.held.len() as u64 * 100 > self.counted {
                // Too many to be outliers: a stream that really moved on.
                for (x, score, bits) in std::mem::take(&mut self.held) {
                    self.draw(x, score, bits);
                }
            }
            return;
        }
        self.draw(x, score, bits);
    }

    /// Draws the held events the span has grown to reach; returns the x of those still held
    /// apart (in the order they came).
    pub fn finish(&mut self) -> Vec<f64> {
        for (x, score, bits) in std::mem::take(&mut self.held) {
            if self.is_far(x) {
                self.held.push((x, score, bits));
            } else {
                self.draw(x, score, bits);
            }
        }
        self.held.iter().map(|h| h.0).collect()
    }

    /// Whether `x` is within the span drawn (the columns' range).
    pub fn covers(&self, x: f64) -> bool {
        self.range().is_some_and(|(a, b)| x >= a && x <= b)
    }

    fn draw(&mut self, x: f64, score: f64, bits: f64) {
        self.counted += 1;
        let origin = *self.origin.get_or_insert(x.floor());
        let key = loop {
            let key = ((x - origin) / self.width).floor() as i64;
            let lo = self.columns.keys().next().map_or(key, |&k| k.min(key));
            let hi = self.columns.keys().next_back().map_or(key, |&k| k.max(key));
            if hi - lo < COLUMNS as i64 {
                break key;
            }
            self.coarsen();
        };
        self.columns
            .entry(key)
            .or_insert_with(Column::empty)
            .add(score, bits);
    }

    fn coarsen(&mut self) {
        self.width *= 2.0;
        let old = std::mem::take(&mut self.columns);
        for (k, c) in old {
            match self.columns.entry(k.div_euclid(2)) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(c);
                }
                std::collections::btree_map::Entry::Occupied(mut o) => o.get_mut().merge(&c),
            }
        }
    }

    /// The x range a column covers.
    pub fn span(&self, key: i64) -> (f64, f64) {
        let origin = self.origin.unwrap_or(0.0);
        let start = origin + key as f64 * self.width;
        (start, start + self.width)
    }

    /// Events drawn in the columns (not those held apart).
    pub fn events(&self) -> u64 {
        self.counted
    }
}

/// Counts of events by their principal's event number, in buckets `[2^(k/8), 2^((k+1)/8))`.
#[derive(Debug, Clone, Default)]
pub struct Learning {
    pub buckets: BTreeMap<u32, Box<Column>>,
}

impl Learning {
    pub const PER_DOUBLING: f64 = 8.0;

    pub fn add(&mut self, sequence: u64, score: f64, bits: f64) {
        let k = ((sequence.max(1) as f64).log2() * Self::PER_DOUBLING).floor() as u32;
        let c = self.buckets.entry(k).or_insert_with(Column::empty);
        c.add(score, bits);
    }

    /// The event numbers a bucket covers.
    pub fn span(key: u32) -> (f64, f64) {
        let at = |k: u32| 2f64.powf(f64::from(k) / Self::PER_DOUBLING);
        (at(key), at(key + 1))
    }
}

/// A campaign as followed through the stream.
#[derive(Debug, Clone)]
pub struct Track {
    /// The record as of its latest event.
    pub record: Campaign,
    /// Its events in stream order (the last [`MAX_STAGES`]).
    pub stages: Vec<Kept>,
    /// Events of the campaign not kept (before the first kept, or dropped for space).
    pub dropped: u32,
}

/// What is known of one principal.
#[derive(Debug, Clone, Default)]
pub struct Principal {
    pub events: u64,
    /// Events with score at least [`NOVEL`].
    pub novel: u64,
    pub highest_score: f64,
    pub campaigns: u32,
    /// The highest risk (bits) of its campaigns.
    pub best_campaign: f64,
    pub first: Option<String>,
    pub last: Option<String>,
}

/// Everything gathered in one pass.
#[derive(Debug)]
pub struct Collected {
    /// Lines read, and of them those with a score record.
    pub lines: u64,
    pub scored: u64,
    pub cold: u64,
    /// Lines longer than the reader's limit, skipped.
    pub too_long: u64,
    /// Scored events before `--since` (or without a readable time when it is given), left out.
    pub before_since: u64,
    pub timed: u64,
    pub first_time: Option<(f64, String)>,
    pub last_time: Option<(f64, String)>,
    pub by_time: Density,
    /// Event times (seconds) of the events held apart from the time plots, being far from
    /// the rest (see [`Density`]).
    pub far_times: Vec<f64>,
    pub by_position: Density,
    pub learning: Learning,
    /// Most novel first.
    pub top: Vec<Kept>,
    pub campaigns: HashMap<String, Track>,
    pub campaigns_dropped: u64,
    pub principals: HashMap<String, Principal>,
    pub principals_untracked: u64,
}

/// The one-pass collector.
#[derive(Debug)]
pub struct Collector {
    keep: usize,
    /// Events before this time (seconds since the epoch) are left out.
    since: Option<f64>,
    heap: BinaryHeap<std::cmp::Reverse<ByRisk>>,
    out: Collected,
}

/// The two CloudTrail fields that make a console link (of the record itself, or of the record
/// under `detail` when EventBridge delivered it).
#[derive(Deserialize)]
struct CloudTrailKeys {
    #[serde(rename = "awsRegion")]
    region: Option<String>,
    #[serde(rename = "eventSource")]
    source: Option<serde::de::IgnoredAny>,
    detail: Option<Box<CloudTrailKeys>>,
}

/// The CloudTrail console's page for an event, when `line` is a CloudTrail event with an id.
fn console_link(line: &[u8], id: Option<&str>) -> Option<String> {
    let id = id?;
    let keys: CloudTrailKeys = serde_json::from_slice(line).ok()?;
    let keys = match keys.source {
        Some(_) => keys,
        None => *keys.detail?,
    };
    keys.source?;
    let safe = |s: &str| {
        !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if !safe(id) {
        return None;
    }
    Some(match keys.region.filter(|r| safe(r)) {
        Some(r) => {
            format!("https://console.aws.amazon.com/cloudtrail/home?region={r}#/events/{id}")
        }
        None => format!("https://console.aws.amazon.com/cloudtrail/home#/events/{id}"),
    })
}

impl Collector {
    /// A collector keeping at least `top` events whole, of the events at or after `since`.
    pub fn new(top: usize, since: Option<f64>) -> Collector {
        let keep = top.max(FOREGROUND);
        Collector {
            keep,
            since,
            heap: BinaryHeap::with_capacity(keep + 1),
            out: Collected {
                lines: 0,
                scored: 0,
                cold: 0,
                too_long: 0,
                before_since: 0,
                timed: 0,
                first_time: None,
                last_time: None,
                by_time: Density::new(1.0),
                far_times: Vec::new(),
                by_position: Density::new(1.0),
                learning: Learning::default(),
                top: Vec::new(),
                campaigns: HashMap::new(),
                campaigns_dropped: 0,
                principals: HashMap::new(),
                principals_untracked: 0,
            },
        }
    }

    /// Counts a line that has no score record (or could not be read).
    pub fn unscored(&mut self) {
        self.out.lines += 1;
    }

    pub fn too_long(&mut self) {
        self.out.lines += 1;
        self.out.too_long += 1;
    }

    /// Takes one scored line (`line` is its text, for the console link).
    pub fn add(&mut self, line: &[u8], note: Annotation) {
        let out = &mut self.out;
        let time = note.event_time.as_deref().and_then(parse_time);
        if let Some(since) = self.since
            && time.is_none_or(|t| t < since)
        {
            out.before_since += 1;
            return;
        }
        out.lines += 1;
        out.scored += 1;
        let position = out.lines;
        if note.cold {
            out.cold += 1;
        }
        if let (Some(t), Some(text)) = (time, &note.event_time) {
            out.timed += 1;
            out.by_time.add(t, note.score, note.novelty);
            if out.first_time.as_ref().is_none_or(|(f, _)| t < *f) {
                out.first_time = Some((t, text.clone()));
            }
            if out.last_time.as_ref().is_none_or(|(l, _)| t > *l) {
                out.last_time = Some((t, text.clone()));
            }
        }
        out.by_position
            .add(position as f64, note.score, note.novelty);
        out.learning.add(note.sequence, note.score, note.novelty);
        self.principal(&note);
        let kept = Kept {
            position,
            time,
            note,
            link: None,
        };
        let wanted = self.heap.len() < self.keep
            || self
                .heap
                .peek()
                .is_some_and(|min| by_risk(kept.rank(), min.0.0.rank()).is_gt());
        let in_campaign = kept.note.campaign.is_some();
        if !wanted && !in_campaign {
            return;
        }
        let link = console_link(line, kept.note.event_id.as_deref());
        let kept = Kept { link, ..kept };
        if in_campaign {
            self.campaign(kept.clone());
        }
        if wanted {
            self.heap.push(std::cmp::Reverse(ByRisk(kept)));
            if self.heap.len() > self.keep {
                self.heap.pop();
            }
        }
    }

    fn principal(&mut self, note: &Annotation) {
        let out = &mut self.out;
        if out.principals.len() >= MAX_PRINCIPALS && !out.principals.contains_key(&note.principal) {
            out.principals_untracked += 1;
            return;
        }
        let p = match out.principals.get_mut(&note.principal) {
            Some(p) => p,
            None => out.principals.entry(note.principal.clone()).or_default(),
        };
        p.events += 1;
        if note.score >= NOVEL {
            p.novel += 1;
        }
        p.highest_score = p.highest_score.max(note.score);
        if let Some(c) = &note.campaign {
            if c.events == 1 {
                p.campaigns += 1;
            }
            p.best_campaign = p.best_campaign.max(c.risk);
        }
        if let Some(t) = &note.event_time {
            if p.first.is_none() {
                p.first = Some(t.clone());
            }
            p.last = Some(t.clone());
        }
    }

    fn campaign(&mut self, kept: Kept) {
        let Some(record) = kept.note.campaign.clone() else {
            return;
        };
        let campaigns = &mut self.out.campaigns;
        let track = campaigns.entry(record.id.clone()).or_insert_with(|| Track {
            dropped: record.events.saturating_sub(1),
            record: record.clone(),
            stages: Vec::new(),
        });
        track.record = record;
        if track.stages.len() == MAX_STAGES {
            track.stages.remove(0);
            track.dropped += 1;
        }
        track.stages.push(kept);
        if campaigns.len() > MAX_CAMPAIGNS {
            // Keep the riskier half; a dropped campaign that goes on is followed afresh.
            let mut scores: Vec<f64> = campaigns.values().map(|t| t.record.risk).collect();
            let mid = scores.len() / 2;
            let (_, cut, _) = scores.select_nth_unstable_by(mid, f64::total_cmp);
            let cut = *cut;
            let before = campaigns.len();
            campaigns.retain(|_, t| t.record.risk > cut);
            self.out.campaigns_dropped += (before - campaigns.len()) as u64;
        }
    }

    /// The collected data, the most novel events first.
    pub fn finish(mut self) -> Collected {
        let mut top: Vec<Kept> = self.heap.into_iter().map(|r| r.0.0).collect();
        top.sort_by(|a, b| by_risk(b.rank(), a.rank()));
        self.out.top = top;
        self.out.far_times = self.out.by_time.finish();
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_far_from_the_rest_does_not_squeeze_the_time_axis() {
        // Ten days of events, one a minute, and one stamped a century ahead in the middle.
        let mut d = Density::new(1.0);
        let day = 86_400.0;
        for i in 0..14_400 {
            d.add(1.7e9 + f64::from(i) * 60.0, 0.5, 1.0);
            if i == 7_000 {
                d.add(1.7e9 + 36_500.0 * day, 0.999, 40.0);
            }
        }
        assert_eq!(d.finish(), vec![1.7e9 + 36_500.0 * day]);
        assert_eq!(d.events(), 14_400);
        assert!(d.width * COLUMNS as f64 <= 20.0 * day, "width {}", d.width);
        assert!(d.covers(1.7e9) && !d.covers(1.7e9 + 36_500.0 * day));
        // A stream that really moves on (2 % of its events a year later) is drawn whole.
        let mut d = Density::new(1.0);
        for i in 0..10_000 {
            d.add(1.7e9 + f64::from(i) * 60.0, 0.5, 1.0);
        }
        for i in 0..200 {
            d.add(1.7e9 + 365.0 * day + f64::from(i) * 60.0, 0.5, 1.0);
        }
        assert!(d.finish().is_empty());
        assert_eq!(d.events(), 10_200);
        // A young stream's span may grow fast: nothing is held before it has settled.
        let mut d = Density::new(1.0);
        for i in 0..100 {
            d.add(f64::from(i), 0.5, 1.0);
        }
        d.add(1e6, 0.5, 1.0);
        assert!(d.finish().is_empty());
    }

    #[test]
    fn console_links_for_records_and_eventbridge_deliveries_only() {
        let record =
            br#"{"eventSource":"ec2.amazonaws.com","awsRegion":"eu-west-1","eventID":"a-1"}"#;
        let wrapped = br#"{"source":"aws.ec2","region":"eu-west-1","detail":{"eventSource":"ec2.amazonaws.com","awsRegion":"eu-west-1","eventID":"a-1"}}"#;
        let want = "https://console.aws.amazon.com/cloudtrail/home?region=eu-west-1#/events/a-1";
        assert_eq!(console_link(record, Some("a-1")).as_deref(), Some(want));
        assert_eq!(console_link(wrapped, Some("a-1")).as_deref(), Some(want));
        let other = br#"{"host":"web-1","detail":{"x":1}}"#;
        assert_eq!(console_link(other, Some("a-1")), None);
        assert_eq!(console_link(record, Some("../../x")), None);
    }
}
