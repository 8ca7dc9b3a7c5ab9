//! Snapshot bytes: the whole [`Model`], versioned, checksummed and tied to its configuration.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! magic        8 bytes  "ODDITYSN"
//! format       u32      FORMAT_VERSION
//! fingerprint  16 bytes hex of the configuration fingerprint
//! length       u64      payload length
//! checksum     u64      xxh3-64 of the payload
//! payload      model counters, tree arena, free list, principals, calibration, event ids,
//!              the outbox of population knowledge not yet shared (format 7; 6 has none);
//!              a campaign keeps its strongest step from format 8, its sessions from 9
//! ```
//!
//! Decoding checks each of these in order and names the first that fails; it never trusts a
//! length before checking it against the bytes that remain, so hostile input cannot make it
//! allocate more than the input's own size.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use crate::calibrate::Calibration;
use crate::campaign::{Campaign, EntityState, MAX_YOUNG, Weighed};
use crate::config::EngineSettings;
use crate::duplicates::Seen;
use crate::model::Model;
use crate::share::Outbox;
use crate::stakes::TacticSet;
use crate::tree::{Node, Tree};

pub const MAGIC: &[u8; 8] = b"ODDITYSN";
pub const FORMAT_VERSION: u32 = 9;
/// The format before the outbox of shared population knowledge; still read.
const FORMAT_WITHOUT_OUTBOX: u32 = 6;
/// The first format keeping a campaign's strongest step; 6 and 7 are still read.
const FORMAT_WITH_PEAK: u32 = 8;
/// The first format keeping a campaign's sessions (the current one's steps, its high-stakes
/// steps and the earlier sessions' apart); 6 to 8 are still read.
const FORMAT_WITH_SESSIONS: u32 = 9;
pub(crate) const HEADER: usize = 8 + 4 + 16 + 8 + 8;
const NODE_BYTES: usize = 4 + 8 + 8 * 4 + 4;

/// Why snapshot bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    NotASnapshot(String),
    Version(String),
    Checksum(String),
    Mismatch(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::NotASnapshot(m) => write!(f, "not an oddity snapshot: {m}"),
            DecodeError::Version(m) => write!(f, "unsupported snapshot format: {m}"),
            DecodeError::Checksum(m) => write!(f, "snapshot checksum failed: {m}"),
            DecodeError::Mismatch(m) => write!(f, "snapshot learned with other settings: {m}"),
        }
    }
}

impl std::error::Error for DecodeError {}

pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
    }
}

pub(crate) struct Reader<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) at: usize,
}

pub(crate) type R<T> = Result<T, DecodeError>;

fn truncated(what: &str) -> DecodeError {
    DecodeError::NotASnapshot(format!("truncated while reading {what}"))
}

impl Reader<'_> {
    pub(crate) fn take(&mut self, n: usize, what: &str) -> R<&[u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| truncated(what))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    pub(crate) fn u32(&mut self, what: &str) -> R<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn u64(&mut self, what: &str) -> R<u64> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    pub(crate) fn f64(&mut self, what: &str) -> R<f64> {
        Ok(f64::from_bits(self.u64(what)?))
    }
    /// A count of items each at least `min_size` bytes, checked against what remains.
    pub(crate) fn count(&mut self, min_size: usize, what: &str) -> R<usize> {
        let n = self.u32(what)? as usize;
        if n.saturating_mul(min_size.max(1)) > self.bytes.len() - self.at {
            return Err(truncated(what));
        }
        Ok(n)
    }
    fn str(&mut self, what: &str) -> R<String> {
        let n = self.count(1, what)?;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec())
            .map_err(|_| DecodeError::NotASnapshot(format!("{what} is not UTF-8")))
    }
}

fn tactic_set(r: &mut Reader) -> R<TacticSet> {
    TacticSet::try_from(r.u32("a campaign")?)
        .map_err(|_| DecodeError::NotASnapshot("a campaign's tactics are out of range".to_owned()))
}

fn weighed(r: &mut Reader) -> R<Weighed> {
    Ok(Weighed {
        norm: r.f64("a campaign")?,
        peak: r.f64("a campaign")?,
        tactics: tactic_set(r)?,
    })
}

/// A campaign's steps as formats 6 to 8 kept them (after its risk): one session, whose steps
/// all count as high-stakes if it had one (so a sequence under way still links).
fn older_campaign(
    r: &mut Reader,
    version: u32,
    risk: f64,
) -> R<(Weighed, Weighed, Weighed, TacticSet, u32)> {
    let norm = r.f64("a campaign")?;
    // Before format 8 the strongest step was not kept: the campaign's risk so far stands.
    let peak = if version >= FORMAT_WITH_PEAK {
        r.f64("a campaign")?
    } else {
        risk
    };
    let tactics = tactic_set(r)?;
    let high_t = r.u32("a campaign")?;
    let session = Weighed {
        norm,
        peak,
        tactics,
    };
    let high = if high_t == 0 {
        Weighed::default()
    } else {
        session
    };
    Ok((session, high, Weighed::default(), tactics, high_t))
}

/// Encodes the model with the configuration fingerprint (16 hex digits).
pub fn encode(model: &Model, fingerprint: &str) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(
        64 + model.tree.raw_parts().0.len() * NODE_BYTES,
    ));
    w.u64(model.events);
    w.u64(model.prunes);
    w.u32(model.now);
    w.u32(model.ahead);
    let (nodes, free) = model.tree.raw_parts();
    w.u32(nodes.len() as u32);
    for n in nodes {
        w.u32(n.parent);
        w.u64(n.key);
        w.f64(n.n);
        w.f64(n.d);
        w.f64(n.s);
        w.f64(n.b);
        w.u32(n.t);
    }
    w.u32(free.len() as u32);
    for &f in free {
        w.u32(f);
    }
    let mut ids: Vec<_> = model.entities.keys().copied().collect();
    ids.sort_unstable();
    w.u32(ids.len() as u32);
    for id in ids {
        let e = &model.entities[&id];
        w.u32(id);
        w.u64(e.seq);
        w.f64(e.baseline);
        w.u32(e.recent.len() as u32);
        for &r in &e.recent {
            w.f64(r);
        }
        w.u32(e.recent_t);
        w.f64(e.usual);
        w.f64(e.burst);
        w.u32(e.young.len() as u32);
        for &(field, key) in &e.young {
            w.u32(field);
            w.u64(key);
        }
        w.u32(e.opened);
        match &e.campaign {
            None => w.u32(0),
            Some(c) => {
                w.u32(1);
                w.u64(c.id);
                w.u32(c.events);
                w.str(&c.first);
                w.str(&c.last);
                w.u32(c.first_t);
                w.u32(c.last_t);
                w.f64(c.score);
                w.f64(c.risk);
                for weighed in [&c.session, &c.session_high, &c.linked] {
                    w.f64(weighed.norm);
                    w.f64(weighed.peak);
                    w.u32(u32::from(weighed.tactics));
                }
                w.u32(u32::from(c.tactics));
                w.u32(c.high_t);
                w.u32(c.actions.len() as u32);
                for a in &c.actions {
                    w.str(a);
                }
            }
        }
    }
    w.u32(model.calibration.epoch);
    w.f64(model.calibration.total);
    w.u32(model.calibration.bins.len() as u32);
    for &b in &model.calibration.bins {
        w.f64(b);
    }
    let ids: Vec<(u64, u32)> = model.seen.entries().collect();
    w.u32(ids.len() as u32);
    for (key, time) in ids {
        w.u64(key);
        w.u32(time);
    }
    match &model.outbox {
        None => w.u32(0),
        Some(out) => {
            w.u32(1);
            out.encode(&mut w);
        }
    }
    frame(MAGIC, FORMAT_VERSION, fingerprint, &w.0)
}

/// `payload` behind the header every oddity byte format shares: magic, format, configuration
/// fingerprint (16 hex digits), payload length, xxh3-64 of the payload.
pub(crate) fn frame(magic: &[u8; 8], format: u32, fingerprint: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&format.to_le_bytes());
    let mut fp = [b'0'; 16];
    let fb = fingerprint.as_bytes();
    fp[..fb.len().min(16)].copy_from_slice(&fb[..fb.len().min(16)]);
    out.extend_from_slice(&fp);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Decodes a snapshot for a model with `engine` settings and configuration `fingerprint`.
pub fn decode(bytes: &[u8], fingerprint: &str, engine: &EngineSettings) -> R<Model> {
    let half_life = engine.half_life.map(|d| d.as_secs());
    if bytes.len() < 8 || &bytes[..8] != MAGIC {
        return Err(DecodeError::NotASnapshot(
            "the bytes do not start with the oddity snapshot magic".into(),
        ));
    }
    let mut r = Reader { bytes, at: 8 };
    let version = r.u32("the format version")?;
    if !(FORMAT_WITHOUT_OUTBOX..=FORMAT_VERSION).contains(&version) {
        return Err(DecodeError::Version(format!(
            "the snapshot is format {version}, this engine reads format {FORMAT_VERSION}"
        )));
    }
    let fp = String::from_utf8_lossy(r.take(16, "the fingerprint")?).into_owned();
    let len = r.u64("the payload length")?;
    let sum = r.u64("the checksum")?;
    let payload = &bytes[HEADER.min(bytes.len())..];
    if payload.len() as u64 != len {
        let why = if (payload.len() as u64) < len {
            "truncated"
        } else {
            "bytes after its end: not written by oddity as it is"
        };
        return Err(DecodeError::NotASnapshot(format!(
            "the payload is {} bytes, the header says {len} ({why})",
            payload.len()
        )));
    }
    let actual = xxhash_rust::xxh3::xxh3_64(payload);
    if actual != sum {
        return Err(DecodeError::Checksum(format!(
            "stored {sum:016x}, computed {actual:016x}: the file is corrupted"
        )));
    }
    if fp != fingerprint {
        return Err(DecodeError::Mismatch(format!(
            "the snapshot's configuration fingerprint is {fp}, the current configuration's is {fingerprint}"
        )));
    }
    let mut r = Reader {
        bytes: payload,
        at: 0,
    };
    let events = r.u64("the event count")?;
    let prunes = r.u64("the prune count")?;
    let now = r.u32("the clock")?;
    let ahead = r.u32("the clock")?;
    let n_nodes = r.count(NODE_BYTES, "the nodes")?;
    let mut nodes = Vec::with_capacity(n_nodes);
    for _ in 0..n_nodes {
        nodes.push(Node {
            parent: r.u32("a node")?,
            key: r.u64("a node")?,
            n: r.f64("a node")?,
            d: r.f64("a node")?,
            s: r.f64("a node")?,
            b: r.f64("a node")?,
            t: r.u32("a node")?,
        });
    }
    let n_free = r.count(4, "the free list")?;
    let free = (0..n_free)
        .map(|_| r.u32("the free list"))
        .collect::<R<Vec<_>>>()?;
    let tree = Tree::from_raw_parts(half_life, nodes, free)
        .map_err(|m| DecodeError::NotASnapshot(format!("invalid tree: {m}")))?;
    let n_entities = r.count(24, "the principals")?;
    let mut entities = FxHashMap::default();
    for _ in 0..n_entities {
        let id = r.u32("a principal")?;
        let seq = r.u64("a principal")?;
        let baseline = r.f64("a principal")?;
        let n_recent = r.count(8, "a principal's recent sightings")?;
        let recent = (0..n_recent)
            .map(|_| r.f64("a principal"))
            .collect::<R<Vec<_>>>()?;
        let recent_t = r.u32("a principal")?;
        let usual = r.f64("a principal")?;
        let burst = r.f64("a principal")?;
        let n_young = r.count(12, "a principal's young values")?;
        if n_young > MAX_YOUNG {
            return Err(DecodeError::NotASnapshot(format!(
                "a principal has {n_young} young values, at most {MAX_YOUNG} are kept"
            )));
        }
        let young = (0..n_young)
            .map(|_| Ok((r.u32("a young value")?, r.u64("a young value")?)))
            .collect::<R<Vec<_>>>()?;
        let opened = r.u32("a principal")?;
        let campaign = match r.u32("a campaign flag")? {
            0 => None,
            1 => {
                let id = r.u64("a campaign")?;
                let events = r.u32("a campaign")?;
                let first = r.str("a campaign's first time")?;
                let last = r.str("a campaign's last time")?;
                let first_t = r.u32("a campaign")?;
                let last_t = r.u32("a campaign")?;
                let score = r.f64("a campaign")?;
                let risk = r.f64("a campaign")?;
                let (session, session_high, linked, tactics, high_t) =
                    if version >= FORMAT_WITH_SESSIONS {
                        let session = weighed(&mut r)?;
                        let session_high = weighed(&mut r)?;
                        let linked = weighed(&mut r)?;
                        let tactics = tactic_set(&mut r)?;
                        (session, session_high, linked, tactics, r.u32("a campaign")?)
                    } else {
                        older_campaign(&mut r, version, risk)?
                    };
                let n = r.count(4, "a campaign's actions")?;
                let actions = (0..n)
                    .map(|_| r.str("a campaign action"))
                    .collect::<R<VecDeque<_>>>()?;
                Some(Campaign {
                    id,
                    events,
                    first,
                    last,
                    first_t,
                    last_t,
                    score,
                    risk,
                    session,
                    session_high,
                    linked,
                    tactics,
                    high_t,
                    actions,
                })
            }
            other => {
                return Err(DecodeError::NotASnapshot(format!(
                    "invalid campaign flag {other}"
                )));
            }
        };
        if (id as usize) >= tree.raw_parts().0.len() || Tree::is_free(tree.node(id)) {
            return Err(DecodeError::NotASnapshot(format!(
                "principal state for missing node {id}"
            )));
        }
        entities.insert(
            id,
            EntityState {
                seq,
                baseline,
                recent,
                recent_t,
                usual,
                burst,
                young,
                opened,
                campaign,
            },
        );
    }
    let epoch = r.u32("the calibration")?;
    let total = r.f64("the calibration")?;
    let n_bins = r.count(8, "the calibration")?;
    let bins = (0..n_bins)
        .map(|_| r.f64("the calibration"))
        .collect::<R<Vec<_>>>()?;
    let calibration =
        Calibration::from_parts(Some(engine.calibration_half_life), bins, total, epoch)
            .map_err(DecodeError::NotASnapshot)?;
    let n_ids = r.count(12, "the event ids")?;
    let ids = (0..n_ids)
        .map(|_| Ok((r.u64("the event ids")?, r.u32("the event ids")?)))
        .collect::<R<Vec<_>>>()?;
    let outbox = if version == FORMAT_WITHOUT_OUTBOX {
        None
    } else {
        match r.u32("the outbox flag")? {
            0 => None,
            1 => Some(Outbox::decode(&mut r, &tree)?),
            other => {
                return Err(DecodeError::NotASnapshot(format!(
                    "invalid outbox flag {other}"
                )));
            }
        }
    };
    if r.at != payload.len() {
        return Err(DecodeError::NotASnapshot(format!(
            "{} unexpected bytes after the model",
            payload.len() - r.at
        )));
    }
    let mut model = Model::from_parts(tree, entities, calibration, events, prunes, now, ahead);
    model.seen = Seen::from_entries(ids);
    model.outbox = outbox;
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn campaign_tail(norm: f64, peak: f64, tactics: u32, high_t: u32) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        w.f64(norm);
        w.f64(peak);
        w.u32(tactics);
        w.u32(high_t);
        w.0
    }

    #[test]
    fn a_format_8_campaign_is_one_session_linking_on_if_it_had_a_high_stakes_step() {
        let bytes = campaign_tail(30.0, 20.0, 0b11, 500);
        let mut r = Reader {
            bytes: &bytes,
            at: 0,
        };
        let (session, high, linked, tactics, high_t) =
            older_campaign(&mut r, FORMAT_WITH_PEAK, 45.0).expect("reads");
        let expected = Weighed {
            norm: 30.0,
            peak: 20.0,
            tactics: 0b11,
        };
        assert_eq!(
            (session, high, linked),
            (expected, expected, Weighed::default())
        );
        assert_eq!((tactics, high_t, r.at), (0b11, 500, bytes.len()));
        let bytes = campaign_tail(30.0, 20.0, 0b1, 0);
        let mut r = Reader {
            bytes: &bytes,
            at: 0,
        };
        let (_, high, ..) = older_campaign(&mut r, FORMAT_WITH_PEAK, 45.0).expect("reads");
        assert_eq!(
            high,
            Weighed::default(),
            "no high-stakes step: nothing links"
        );
    }

    #[test]
    fn before_format_8_the_risk_stands_for_the_strongest_step() {
        let mut w = Writer(Vec::new());
        w.f64(30.0);
        w.u32(0);
        w.u32(0);
        let mut r = Reader { bytes: &w.0, at: 0 };
        let (session, ..) = older_campaign(&mut r, FORMAT_WITH_PEAK - 1, 45.0).expect("reads");
        assert_eq!((session.norm, session.peak), (30.0, 45.0));
        let mut r = Reader {
            bytes: &w.0[..10],
            at: 0,
        };
        assert!(
            older_campaign(&mut r, FORMAT_WITH_PEAK - 1, 45.0).is_err(),
            "truncated"
        );
    }
}
