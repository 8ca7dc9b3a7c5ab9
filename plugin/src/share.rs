//! Population knowledge shared between engines that each judge one part of a stream (partitions
//! by principal, see docs/scale-out.md).
//!
//! A principal's own contexts live in the one engine that sees its events; the population's
//! and the peer groups' contexts (the subtree under the population root) and the calibration of
//! `score` are the whole stream's. An engine that shares records what it learns there in an
//! [`Outbox`]; [`Outbox::take`] turns that into a [`Delta`] and empties it. Another engine
//! merges a delta into its own population tree and calibration as if it had learned those
//! events there, never into a principal's contexts, and does not record it: a delta is never
//! passed on, so nothing is counted twice. Merging is counting: a value's count grows by the
//! weight learned elsewhere, and a value new to the receiver is one more distinct value of its
//! context, once.
//!
//! Delta bytes (integers little-endian): magic `ODDITYPD`, format u32, configuration
//! fingerprint (16 bytes), payload length u64, xxh3-64 of the payload, payload: the sender's
//! clock u32, events f64, nodes (u32 count; each: parent u32, the index of an earlier node or
//! `u32::MAX` for the population root, key u64, weight f64, backoff bits f64), calibration
//! (reference time u32, u32 count; each: bin u32, weight f64).

use rustc_hash::FxHashMap;

use crate::calibrate::{BINS, bin_of};
use crate::fastmath::exp2;
use crate::snapshot::{DecodeError, HEADER, R, Reader, Writer, frame};
use crate::tree::{NO_PARENT, NodeId, POPULATION_ROOT, Tree};

const MAGIC: &[u8; 8] = b"ODDITYPD";
const FORMAT: u32 = 1;
/// `parent` of a node that hangs from the population root.
const ROOT: u32 = u32::MAX;
/// The most events one share may carry, and how much more than its events a calibration bin
/// may weigh (bins are scaled to the share's first event; later ones weigh more).
const MAX_EVENTS: f64 = 1e12;
const MAX_BIN_FACTOR: f64 = 1_048_576.0;

/// What one node learned since the outbox was last taken.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sent {
    pub weight: f64,
    /// The value's surprisal in the backoff context when it was first recorded (what its
    /// parent's `b` adds if the value is new to a receiver).
    pub backoff: f64,
}

/// What this engine learned into the population since its knowledge was last shared.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outbox {
    pub nodes: FxHashMap<NodeId, Sent>,
    pub events: f64,
    /// Calibration weight per bin, each scaled to `reference` (see [`Outbox::calibrated`]).
    pub calibration: FxHashMap<u32, f64>,
    pub reference: u32,
}

/// One node of a delta: `parent` is the index of an earlier node, or `None` for the root.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Learned {
    pub parent: Option<usize>,
    pub key: u64,
    pub weight: f64,
    pub backoff: f64,
}

/// What another engine learned into the population, decoded and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    pub now: u32,
    pub events: f64,
    pub nodes: Vec<Learned>,
    pub reference: u32,
    pub calibration: Vec<(usize, f64)>,
}

impl Outbox {
    /// One event passed through the population root.
    pub fn event(&mut self) {
        self.events += 1.0;
    }

    /// Node `id` under the population root learned `weight`.
    #[inline]
    pub fn learned(&mut self, id: NodeId, backoff: f64, weight: f64) {
        self.nodes
            .entry(id)
            .or_insert(Sent {
                weight: 0.0,
                backoff,
            })
            .weight += weight;
    }

    /// The calibration learned raw novelty `x` at `now` with weight `w`; `inv_half_life` is the
    /// calibration's. Weights are kept relative to the first event since the outbox was taken
    /// (its `reference`), so that a receiver rescales them to its own clock.
    pub fn calibrated(&mut self, x: f64, now: u32, w: f64, inv_half_life: f64) {
        if self.calibration.is_empty() {
            self.reference = now;
        }
        let factor = exp2((f64::from(now) - f64::from(self.reference)) * inv_half_life);
        *self.calibration.entry(bin_of(x).0 as u32).or_default() += w * factor;
    }

    /// Nodes pruned from the tree: their ids may be handed out again.
    pub fn forget(&mut self, removed: &[NodeId]) {
        for id in removed {
            self.nodes.remove(id);
        }
    }

    /// Encodes what was recorded (parents before children, in a deterministic order) and
    /// empties the outbox.
    pub fn take(&mut self, tree: &Tree, now: u32, fingerprint: &str) -> Vec<u8> {
        let taken = std::mem::take(self);
        let mut order: Vec<(u32, NodeId)> = taken
            .nodes
            .keys()
            .map(|&id| (depth(tree, id), id))
            .collect();
        order.sort_unstable();
        let index: FxHashMap<NodeId, u32> = order
            .iter()
            .enumerate()
            .map(|(i, &(_, id))| (id, i as u32))
            .collect();
        let mut w = Writer(Vec::with_capacity(32 + order.len() * 28));
        w.u32(now);
        w.f64(taken.events);
        w.u32(order.len() as u32);
        for &(_, id) in &order {
            let node = tree.node(id);
            let sent = taken.nodes[&id];
            w.u32(index.get(&node.parent).copied().unwrap_or(ROOT));
            w.u64(node.key);
            w.f64(sent.weight);
            w.f64(sent.backoff);
        }
        let mut bins: Vec<(u32, f64)> = taken.calibration.into_iter().collect();
        bins.sort_unstable_by_key(|&(bin, _)| bin);
        w.u32(taken.reference);
        w.u32(bins.len() as u32);
        for (bin, weight) in bins {
            w.u32(bin);
            w.f64(weight);
        }
        frame(MAGIC, FORMAT, fingerprint, &w.0)
    }

    /// Writes the outbox into a snapshot.
    pub fn encode(&self, w: &mut Writer) {
        let mut nodes: Vec<(&NodeId, &Sent)> = self.nodes.iter().collect();
        nodes.sort_unstable_by_key(|(id, _)| **id);
        w.f64(self.events);
        w.u32(nodes.len() as u32);
        for (&id, sent) in nodes {
            w.u32(id);
            w.f64(sent.weight);
            w.f64(sent.backoff);
        }
        let mut bins: Vec<(&u32, &f64)> = self.calibration.iter().collect();
        bins.sort_unstable_by_key(|(bin, _)| **bin);
        w.u32(self.reference);
        w.u32(bins.len() as u32);
        for (&bin, &weight) in bins {
            w.u32(bin);
            w.f64(weight);
        }
    }

    /// Reads an outbox written by [`Outbox::encode`]; its nodes must be live in `tree`.
    pub fn decode(r: &mut Reader<'_>, tree: &Tree) -> R<Outbox> {
        let mut out = Outbox {
            events: finite(r.f64("the shared events")?, "the shared events")?,
            ..Outbox::default()
        };
        let n = r.count(20, "the shared nodes")?;
        for _ in 0..n {
            let id = r.u32("a shared node")?;
            let sent = Sent {
                weight: finite(r.f64("a shared node")?, "a shared node's weight")?,
                backoff: finite(r.f64("a shared node")?, "a shared node's backoff")?,
            };
            let (nodes, _) = tree.raw_parts();
            if nodes.get(id as usize).is_none_or(Tree::is_free) {
                return Err(corrupt(format!("a shared node {id} is not in the tree")));
            }
            out.nodes.insert(id, sent);
        }
        out.reference = r.u32("the shared calibration")?;
        let n = r.count(12, "the shared calibration")?;
        for _ in 0..n {
            let bin = r.u32("a shared bin")?;
            let weight = finite(r.f64("a shared bin")?, "a shared bin")?;
            if bin as usize >= BINS {
                return Err(corrupt(format!("shared bin {bin} is out of range")));
            }
            out.calibration.insert(bin, weight);
        }
        Ok(out)
    }
}

/// Steps from `id` up to a root.
fn depth(tree: &Tree, id: NodeId) -> u32 {
    let mut depth = 0;
    let mut at = tree.node(id).parent;
    while at != NO_PARENT && at != POPULATION_ROOT {
        depth += 1;
        at = tree.node(at).parent;
    }
    depth
}

fn corrupt(why: String) -> DecodeError {
    DecodeError::NotASnapshot(why)
}

fn finite(v: f64, what: &str) -> R<f64> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(corrupt(format!("{what} is negative or not finite")))
    }
}

impl Delta {
    /// Decodes and checks delta bytes written by an engine of configuration `fingerprint`.
    pub fn decode(bytes: &[u8], fingerprint: &str) -> R<Delta> {
        if bytes.len() < HEADER || &bytes[..8] != MAGIC {
            return Err(corrupt("not population knowledge shared by oddity".into()));
        }
        let mut r = Reader { bytes, at: 8 };
        let format = r.u32("the format")?;
        if format != FORMAT {
            return Err(DecodeError::Version(format!(
                "shared population format {format}, this engine reads {FORMAT}"
            )));
        }
        let fp = String::from_utf8_lossy(r.take(16, "the fingerprint")?).into_owned();
        if fp != fingerprint {
            return Err(DecodeError::Mismatch(format!(
                "shared by an engine of configuration {fp}, this one is {fingerprint}"
            )));
        }
        let len = r.u64("the length")?;
        let sum = r.u64("the checksum")?;
        let payload = &bytes[HEADER..];
        if payload.len() as u64 != len || xxhash_rust::xxh3::xxh3_64(payload) != sum {
            return Err(DecodeError::Checksum(
                "the shared population's length or checksum does not match".into(),
            ));
        }
        let mut r = Reader {
            bytes: payload,
            at: 0,
        };
        Delta::payload(&mut r)
    }

    fn payload(r: &mut Reader<'_>) -> R<Delta> {
        let now = r.u32("the clock")?;
        let events = finite(r.f64("the events")?, "the events")?;
        if events > MAX_EVENTS {
            return Err(corrupt(format!("{events} events in one share")));
        }
        let n = r.count(28, "the nodes")?;
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let parent = match r.u32("a node")? {
                ROOT => None,
                p if (p as usize) < i => Some(p as usize),
                p => return Err(corrupt(format!("node {i} names a later parent {p}"))),
            };
            let key = r.u64("a node")?;
            let weight = finite(r.f64("a node")?, "a node's weight")?;
            if weight == 0.0 || weight > events {
                return Err(corrupt(format!(
                    "node {i} learned {weight} from {events} events"
                )));
            }
            let backoff = finite(r.f64("a node")?, "a node's backoff")?;
            nodes.push(Learned {
                parent,
                key,
                weight,
                backoff,
            });
        }
        let reference = r.u32("the calibration")?;
        let n = r.count(12, "the calibration")?;
        let mut calibration = Vec::with_capacity(n);
        for _ in 0..n {
            let bin = r.u32("a bin")? as usize;
            let weight = finite(r.f64("a bin")?, "a bin")?;
            if weight > events.max(1.0) * MAX_BIN_FACTOR {
                return Err(corrupt(format!("bin {bin} weighs {weight}")));
            }
            if bin >= BINS {
                return Err(corrupt(format!("bin {bin} is out of range")));
            }
            calibration.push((bin, weight));
        }
        if r.at != r.bytes.len() {
            return Err(corrupt("bytes after the shared population".into()));
        }
        Ok(Delta {
            now,
            events,
            nodes,
            reference,
            calibration,
        })
    }

    /// Adds the delta's nodes to `tree`'s population subtree, stamped at `now`.
    pub fn merge_into(&self, tree: &mut Tree, now: u32) {
        tree.learn_root_weighted(POPULATION_ROOT, now, self.events);
        let mut ids: Vec<NodeId> = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let parent = node.parent.map_or(POPULATION_ROOT, |p| ids[p]);
            ids.push(tree.learn(parent, node.key, None, now, node.backoff, node.weight));
        }
    }
}
