//! The annotation as JSON, written straight into the output line: the fast path of a log filter
//! (`annotate-batch` in the WIT contract), which needs no per-field strings at all.
//!
//! The shape is the one documented in the README ("The score record") and read back by the
//! host's `annotation` module; a test in `engine.rs` checks the two agree with the typed record.

use std::borrow::Cow;
use std::fmt;

use serde::ser::{Serialize, SerializeMap, SerializeStruct, Serializer};

use crate::campaign::Campaign;
use crate::model::Verdict;

/// A number rounded to a fixed count of decimals for display: shorter lines, and cheaper to
/// write (the typed record keeps full precision).
struct Round(f64, i32);

impl Serialize for Round {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let scale = 10f64.powi(self.1);
        let r = (self.0 * scale).round() / scale;
        if r.is_finite() {
            s.serialize_f64(if r == 0.0 { 0.0 } else { r })
        } else {
            s.serialize_f64(self.0)
        }
    }
}

/// Decimals of scores (0..1) and of bits.
const SCORE: i32 = 6;
const BITS: i32 = 3;

/// Where component `i` of the layout comes from.
#[derive(Debug, Clone)]
pub struct Slot {
    /// Index of the profile field.
    pub field: usize,
    /// The view's name, or "entity".
    pub view: String,
}

/// Everything needed to render one annotation, borrowed.
#[derive(Debug)]
pub struct Note<'a> {
    pub verdict: &'a Verdict,
    pub values: &'a [Cow<'a, str>],
    pub names: &'a [String],
    pub layout: &'a [Slot],
    pub entity: &'a [usize],
    pub views: &'a [String],
    pub id: Option<&'a str>,
    pub time: Option<&'a str>,
}

/// The principal: entity values joined by a space, written without allocating.
struct Principal<'a>(&'a [usize], &'a [Cow<'a, str>]);

impl fmt::Display for Principal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &field) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(&self.1[field])?;
        }
        Ok(())
    }
}

impl Serialize for Principal<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

struct Observation<'a>(&'a Note<'a>);

impl Serialize for Observation<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = self.0;
        let mut m = s.serialize_map(Some(n.layout.len()))?;
        for slot in n.layout {
            m.serialize_entry(&n.names[slot.field], &n.values[slot.field])?;
        }
        m.end()
    }
}

struct MostNovel<'a>(&'a Note<'a>);

impl Serialize for MostNovel<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = self.0;
        let v = n.verdict;
        let slot = &n.layout[v.top];
        let mut m = s.serialize_struct("ComponentNovelty", 6)?;
        m.serialize_field("index", &v.top)?;
        m.serialize_field("view", &slot.view)?;
        m.serialize_field("field", &n.names[slot.field])?;
        m.serialize_field("value", &n.values[slot.field])?;
        m.serialize_field("novelty", &Round(v.top_novelty, SCORE))?;
        m.serialize_field("bits", &Round(v.top_bits, BITS))?;
        m.end()
    }
}

struct ViewScore(f64, f64);

impl Serialize for ViewScore {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_struct("ViewScore", 2)?;
        m.serialize_field("infoContent", &Round(self.0, BITS))?;
        m.serialize_field("excess", &Round(self.1, BITS))?;
        m.end()
    }
}

struct Views<'a>(&'a Note<'a>);

impl Serialize for Views<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = self.0;
        let mut m = s.serialize_map(Some(n.views.len()))?;
        for (name, &(info, excess)) in n.views.iter().zip(&n.verdict.views) {
            m.serialize_entry(name, &ViewScore(info, excess))?;
        }
        m.end()
    }
}

struct CampaignNote<'a>(&'a Campaign, Principal<'a>);

impl Serialize for CampaignNote<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let mut m = s.serialize_struct("Campaign", 7)?;
        m.serialize_field("id", &format!("{:016x}", c.id))?;
        m.serialize_field("principal", &self.1)?;
        m.serialize_field("events", &c.events)?;
        m.serialize_field("first", &c.first)?;
        m.serialize_field("last", &c.last)?;
        m.serialize_field("score", &Round(c.score, BITS))?;
        m.serialize_field("actions", &c.actions)?;
        m.end()
    }
}

impl Serialize for Note<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.verdict;
        let mut m = s.serialize_struct("Annotation", 15)?;
        m.serialize_field("score", &Round(v.score, SCORE))?;
        m.serialize_field("infoContent", &Round(v.info_content, BITS))?;
        m.serialize_field("novelty", &Round(v.novelty, BITS))?;
        m.serialize_field("probability", &crate::fastmath::exp2(-v.info_content))?;
        m.serialize_field("uniqueness", &Round(v.uniqueness, SCORE))?;
        m.serialize_field("sequence", &v.sequence)?;
        m.serialize_field("cold", &v.cold)?;
        m.serialize_field("principal", &Principal(self.entity, self.values))?;
        m.serialize_field("observation", &Observation(self))?;
        m.serialize_field("mostNovelComponent", &MostNovel(self))?;
        m.serialize_field("views", &Views(self))?;
        if let Some(id) = self.id {
            m.serialize_field("id", id)?;
        }
        if let Some(time) = self.time {
            m.serialize_field("time", time)?;
        }
        if let Some(c) = &v.campaign {
            m.serialize_field(
                "campaign",
                &CampaignNote(c, Principal(self.entity, self.values)),
            )?;
        }
        m.end()
    }
}

/// Why an object was not scored, as noted in the output.
#[derive(Debug, serde::Serialize)]
pub struct ErrorNote<'a> {
    pub error: &'a str,
    pub reason: &'a str,
}

/// Writes `line` to `out` with `"key": value` added as the object's last member. Returns false,
/// writing nothing, when the line is not an object ending in `}`.
pub fn splice(line: &[u8], key: &str, value: &impl Serialize, out: &mut Vec<u8>) -> bool {
    let start = line.iter().position(|b| !b.is_ascii_whitespace());
    let end = line.iter().rposition(|b| !b.is_ascii_whitespace());
    let (Some(start), Some(end)) = (start, end) else {
        return false;
    };
    if line[start] != b'{' || line[end] != b'}' {
        return false;
    }
    let before = out.len();
    out.extend_from_slice(&line[..end]);
    if !line[start + 1..end].iter().all(u8::is_ascii_whitespace) {
        out.push(b',');
    }
    let written = serde_json::to_writer(&mut *out, key)
        .and_then(|()| {
            out.push(b':');
            serde_json::to_writer(&mut *out, value)
        })
        .is_ok();
    if !written {
        out.truncate(before);
        return false;
    }
    out.extend_from_slice(&line[end..]);
    true
}
