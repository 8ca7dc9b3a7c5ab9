//! The counting prefix tree: decayed counts per context, with lazy forgetting and a node cap.
//!
//! A node is a context (the values of the components before it); its children are the values seen
//! next. Each node keeps, decayed to its own timestamp `t`:
//! - `n`: events that passed through it,
//! - `d`: events that brought a value it had never seen (the escape count of Witten–Bell),
//! - `s`: the sum over children of `n_c · log2 n_c` (entropy bookkeeping, updated in O(1)),
//! - `b`: the backoff surprisal, in bits, of those never-seen values.
//!
//! Decay is exact and lazy: scaling all children by `f` turns `s` into `f·(s + n·log2 f)`, so a
//! node is brought forward in time only when it is touched. Values are keyed by a 64-bit hash
//! (xxh3), so no strings are stored and snapshots are small; children live in one hash map keyed
//! by (parent, value hash). Node ids are stable (freed ids are reused in order), which keeps
//! everything, pruning included, deterministic across snapshot and restore.

use rustc_hash::FxHashMap;

use crate::fastmath::{exp2, log2, max};

/// Id of a node in the arena.
pub type NodeId = u32;

/// `parent` of a root.
pub const NO_PARENT: NodeId = u32::MAX;
/// `parent` of a free arena slot.
const FREE: NodeId = u32::MAX - 1;

/// The root of the per-entity tree (children: first entity component).
pub const ENTITY_ROOT: NodeId = 0;
/// The root of the population tree (children: one node per view).
pub const POPULATION_ROOT: NodeId = 1;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Node {
    pub parent: NodeId,
    pub key: u64,
    pub n: f64,
    pub d: f64,
    pub s: f64,
    pub b: f64,
    pub t: u32,
}

impl Node {
    fn new(parent: NodeId, key: u64, t: u32) -> Node {
        Node {
            parent,
            key,
            n: 0.0,
            d: 0.0,
            s: 0.0,
            b: 0.0,
            t,
        }
    }

    /// Expected surprisal, in bits, of the next value in this context, given the mean backoff
    /// surprisal of never-seen values. `None` for a context with no history.
    #[cfg(test)]
    pub fn entropy(&self) -> Option<f64> {
        let total = self.n + self.d;
        if total <= 0.0 {
            return None;
        }
        let seen = if self.n > 0.0 {
            (self.n * log2(total) - self.s).max(0.0)
        } else {
            0.0
        };
        let new = if self.d > 0.0 {
            self.d * log2(total / self.d) + self.b
        } else {
            0.0
        };
        Some((seen + new) / total)
    }

    /// Surprisal beyond expectation, in bits, of a value seen `n_v` times here (0: never) whose
    /// surprisal in the backoff context is `backoff_bits`; `None` for a context with no history.
    ///
    /// A value is drawn in two stages: *whether* it is one seen before or a new one (new with
    /// probability `d / (n + d)`), then *which* one (among the seen, by count; among new ones,
    /// by the backoff). Each stage's surprisal is compared with that stage's expectation: the
    /// binary entropy for the first, the entropy of the seen values or the mean backoff
    /// surprisal of this context's past new values (`b / d`) for the second. So a context that
    /// keeps seeing new, globally unheard-of values (session names, a function's ever-changing
    /// egress IPs) finds one more unremarkable, while a settled context finds any new value
    /// remarkable, and a new value is more remarkable the rarer it is compared with the new
    /// values this context usually shows.
    ///
    /// `prior`: a rate of new values and a weight in events, `(p, a)`, that the first stage
    /// counts as if this context had also seen `a` events at that rate (a principal's context
    /// borrows its population's; see `EngineSettings::population_prior`).
    pub fn excess(
        &self,
        n_v: f64,
        backoff_bits: f64,
        familiar_count: f64,
        prior: Option<(f64, f64)>,
    ) -> Option<f64> {
        let own = self.new_rate()?;
        let p_new = match prior {
            Some((p, a)) if a > 0.0 => (self.d + a * p) / (self.n + self.d + a),
            _ => own,
        };
        let p_new = p_new.clamp(1e-12, 1.0 - 1e-12);
        let binary = |p: f64| -(p * log2(p) + (1.0 - p) * log2(1.0 - p));
        if n_v > 0.0 && self.n > 0.0 {
            let which = -log2(n_v / self.n);
            let seen_entropy = max(log2(self.n) - self.s / self.n, 0.0);
            // "Seen before" is no surprise while new values are the minority:
            // -log2(1 - p) <= H(p) for p <= 1/2.
            let whether = if p_new <= 0.5 {
                0.0
            } else {
                max(-log2(1.0 - p_new) - binary(p_new), 0.0)
            };
            // A value seen before is familiar in proportion to how often (see
            // `EngineSettings::familiar_count`).
            let familiar = if familiar_count > 0.0 {
                1.0 / (1.0 + n_v / familiar_count)
            } else {
                1.0
            };
            Some(whether + familiar * max(which - seen_entropy, 0.0))
        } else {
            let binary = binary(p_new);
            let usual = if self.d > 0.0 { self.b / self.d } else { 0.0 };
            Some(max(-log2(p_new) - binary, 0.0) + max(backoff_bits - usual, 0.0))
        }
    }

    /// The rate of new values here, `d / (n + d)`; `None` for a context with no history.
    pub fn new_rate(&self) -> Option<f64> {
        let total = self.n + self.d;
        (total > 0.0).then(|| self.d / total)
    }

    /// Witten–Bell interpolated probability of a value seen `n_v` times here, backing off to
    /// `backoff` (the value's probability in the coarser context).
    pub fn probability(&self, n_v: f64, backoff: f64) -> f64 {
        let total = self.n + self.d;
        if total <= 0.0 {
            backoff
        } else {
            (n_v + self.d * backoff) / total
        }
    }

    /// Probability of a value never seen anywhere, for the coarsest contexts: one more value
    /// among the `d` distinct ones seen.
    pub fn base_probability(&self) -> f64 {
        1.0 / (self.d + 1.0)
    }
}

/// Slots of [`Tree::factors`].
const FACTOR_SLOTS: usize = 64;
/// No factor yet: nothing decays by 0 seconds.
const NO_FACTORS: [(u32, f64); FACTOR_SLOTS] = [(0, 1.0); FACTOR_SLOTS];

/// The arena of nodes and the (parent, key) -> child map.
#[derive(Debug, Clone)]
pub struct Tree {
    nodes: Vec<Node>,
    edges: FxHashMap<(NodeId, u64), NodeId>,
    free: Vec<NodeId>,
    live: usize,
    /// 1 / half-life in seconds; 0 never forgets.
    inv_half_life: f64,
    /// Decay factors computed, by elapsed seconds (direct-mapped): within one event the roots
    /// and the busiest contexts all decay by the time since the event before, and the gaps
    /// between a context's events recur.
    factors: [(u32, f64); FACTOR_SLOTS],
}

impl Tree {
    pub fn new(half_life_secs: Option<u64>) -> Tree {
        let mut tree = Tree {
            nodes: Vec::new(),
            edges: FxHashMap::default(),
            free: Vec::new(),
            live: 0,
            inv_half_life: half_life_secs.map_or(0.0, |h| 1.0 / h as f64),
            factors: NO_FACTORS,
        };
        tree.nodes.push(Node::new(NO_PARENT, 0, 0));
        tree.nodes.push(Node::new(NO_PARENT, 1, 0));
        tree.live = 2;
        tree
    }

    /// Live nodes, roots included.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }

    pub fn child(&self, parent: NodeId, key: u64) -> Option<NodeId> {
        self.edges.get(&(parent, key)).copied()
    }

    fn factor(&self, from: u32, to: u32) -> f64 {
        if to <= from || self.inv_half_life == 0.0 {
            1.0
        } else {
            exp2(-(f64::from(to - from)) * self.inv_half_life)
        }
    }

    /// Brings a node's counts forward to `now` (never backwards).
    #[inline]
    pub fn decay(&mut self, id: NodeId, now: u32) {
        // Most calls find the node current already (learning after judging): that check is
        // inlined, the work is not.
        if now > self.nodes[id as usize].t {
            self.bring_forward(id, now);
        }
    }

    fn bring_forward(&mut self, id: NodeId, now: u32) {
        let node = &mut self.nodes[id as usize];
        let elapsed = now - node.t;
        node.t = now;
        if self.inv_half_life == 0.0 {
            return;
        }
        let log2_f = -f64::from(elapsed) * self.inv_half_life;
        let slot = &mut self.factors[elapsed as usize % FACTOR_SLOTS];
        let f = if slot.0 == elapsed {
            slot.1
        } else {
            let f = exp2(log2_f);
            *slot = (elapsed, f);
            f
        };
        if node.n > 0.0 {
            node.s = f * (node.s + node.n * log2_f);
        }
        node.n *= f;
        node.d *= f;
        node.b *= f;
    }

    /// `n` of a node as it would be at `now`, without changing it.
    pub fn count_at(&self, id: NodeId, now: u32) -> f64 {
        let node = &self.nodes[id as usize];
        node.n * self.factor(node.t, now)
    }

    /// Records one event passing from `parent` to its child `key` (`known`: the child's id when
    /// the caller already looked it up); `backoff_bits` is the value's surprisal in the backoff
    /// context, counted if it is new here. Returns the child.
    pub fn learn(
        &mut self,
        parent: NodeId,
        key: u64,
        known: Option<NodeId>,
        now: u32,
        backoff_bits: f64,
        weight: f64,
    ) -> NodeId {
        self.decay(parent, now);
        let child = match known.or_else(|| self.child(parent, key)) {
            Some(c) => {
                self.decay(c, now);
                c
            }
            None => {
                let c = self.alloc(Node::new(parent, key, now));
                self.edges.insert((parent, key), c);
                let p = &mut self.nodes[parent as usize];
                p.d += 1.0;
                p.b += backoff_bits;
                c
            }
        };
        let old = self.nodes[child as usize].n;
        let new = old + weight;
        self.nodes[child as usize].n = new;
        let delta = new * log2(new) - if old > 0.0 { old * log2(old) } else { 0.0 };
        self.nodes[parent as usize].s += delta;
        child
    }

    /// Counts one event at a root.
    pub fn learn_root(&mut self, root: NodeId, now: u32) {
        self.learn_root_weighted(root, now, 1.0);
    }

    /// Counts `weight` events at a root.
    pub fn learn_root_weighted(&mut self, root: NodeId, now: u32, weight: f64) {
        self.decay(root, now);
        self.nodes[root as usize].n += weight;
    }

    fn alloc(&mut self, node: Node) -> NodeId {
        self.live += 1;
        match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = node;
                id
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as NodeId
            }
        }
    }

    /// Removes the least valuable nodes (lowest decayed count at `now`) with their subtrees until
    /// at most `target` remain. Returns the removed ids, so that side tables can drop them.
    ///
    /// A removed value becomes unseen again in its parent: its mass leaves the entropy sum but
    /// stays in the parent's totals, so it is judged as new (novel), never as common.
    pub fn prune(&mut self, target: usize, now: u32) -> Vec<NodeId> {
        if self.live <= target {
            return Vec::new();
        }
        let mut candidates: Vec<(f64, NodeId)> = (2..self.nodes.len() as NodeId)
            .filter(|&id| self.nodes[id as usize].parent != FREE)
            .map(|id| (self.count_at(id, now), id))
            .collect();
        let excess = (self.live - target).min(candidates.len());
        if excess == 0 {
            return Vec::new();
        }
        // Lowest value first; among equals, the newest id (the latest arrival) goes first.
        let order = |a: &(f64, NodeId), b: &(f64, NodeId)| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1));
        candidates.select_nth_unstable_by(excess - 1, order);
        let mut doomed = vec![false; self.nodes.len()];
        for &(_, id) in &candidates[..excess] {
            doomed[id as usize] = true;
        }
        // Close the set under descendants: a child never outlives its parent.
        for id in 2..self.nodes.len() {
            if doomed[id] || self.nodes[id].parent == FREE {
                continue;
            }
            let mut at = self.nodes[id].parent;
            while at != NO_PARENT {
                if doomed[at as usize] {
                    doomed[id] = true;
                    break;
                }
                at = self.nodes[at as usize].parent;
            }
        }
        let mut removed = Vec::new();
        for id in 2..self.nodes.len() as NodeId {
            if !doomed[id as usize] {
                continue;
            }
            let Node { parent, key, .. } = self.nodes[id as usize];
            if !doomed[parent as usize] {
                let n = self.count_at(id, now);
                self.decay(parent, now);
                if n > 0.0 {
                    self.nodes[parent as usize].s -= n * log2(n);
                }
            }
            self.edges.remove(&(parent, key));
            removed.push(id);
        }
        for &id in &removed {
            self.nodes[id as usize] = Node::new(FREE, 0, 0);
        }
        self.live -= removed.len();
        // Reuse low ids first: pop() takes from the end.
        self.free.extend(removed.iter().rev());
        self.free.sort_unstable_by(|a, b| b.cmp(a));
        removed
    }

    /// Every arena slot (free ones have parent [`Tree::is_free`]) and the free list, for snapshots.
    pub fn raw_parts(&self) -> (&[Node], &[NodeId]) {
        (&self.nodes, &self.free)
    }

    pub fn is_free(node: &Node) -> bool {
        node.parent == FREE
    }

    /// Rebuilds a tree from [`Tree::raw_parts`]; checks that every live node's parent is live.
    pub fn from_raw_parts(
        half_life_secs: Option<u64>,
        nodes: Vec<Node>,
        free: Vec<NodeId>,
    ) -> Result<Tree, String> {
        if nodes.len() < 2 || nodes[0].parent != NO_PARENT || nodes[1].parent != NO_PARENT {
            return Err("the tree has no roots".into());
        }
        let mut edges = FxHashMap::default();
        edges.reserve(nodes.len());
        let mut live = 0;
        for (id, node) in nodes.iter().enumerate() {
            if node.parent == FREE {
                continue;
            }
            live += 1;
            if id < 2 {
                continue;
            }
            let p = node.parent as usize;
            if p >= nodes.len() || nodes[p].parent == FREE || p == id {
                return Err(format!("node {id} has an invalid parent {p}"));
            }
            if edges
                .insert((node.parent, node.key), id as NodeId)
                .is_some()
            {
                return Err(format!("node {id} duplicates a sibling"));
            }
        }
        let free_count = nodes.len() - live;
        // Each free node exactly once: a node listed twice would be handed out twice.
        let mut listed = vec![false; nodes.len()];
        if free.len() != free_count
            || free.iter().any(|&f| {
                nodes.get(f as usize).is_none_or(|n| n.parent != FREE)
                    || std::mem::replace(&mut listed[f as usize], true)
            })
        {
            return Err("the free list does not match the free nodes".into());
        }
        // Every live node hangs from a root: no cycles of parents.
        let mut rooted = listed;
        rooted[..2].fill(true);
        let mut path = Vec::new();
        for id in 2..nodes.len() {
            let mut at = id;
            while !rooted[at] {
                if path.len() > nodes.len() {
                    return Err(format!("node {id} is in a cycle of parents"));
                }
                path.push(at);
                at = nodes[at].parent as usize;
            }
            for &p in &path {
                rooted[p] = true;
            }
            path.clear();
        }
        Ok(Tree {
            nodes,
            edges,
            free,
            live,
            inv_half_life: half_life_secs.map_or(0.0, |h| 1.0 / h as f64),
            factors: NO_FACTORS,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_entropy() {
        let mut t = Tree::new(None);
        let root = ENTITY_ROOT;
        for k in [1u64, 1, 1, 2] {
            t.learn_root(root, 0);
            t.learn(root, k, None, 0, 3.0, 1.0);
        }
        let r = t.node(root);
        assert_eq!((r.n, r.d, r.b), (4.0, 2.0, 6.0));
        // s = 3·log2 3 + 1·log2 1
        assert!((r.s - 3.0 * 3f64.log2()).abs() < 1e-12);
        let h = r.entropy().expect("has history");
        // seen part: (4·log2 6 − 3·log2 3)/6, new part: (2·log2 3 + 6)/6
        let want = (4.0 * 6f64.log2() - 3.0 * 3f64.log2() + 2.0 * 3f64.log2() + 6.0) / 6.0;
        assert!((h - want).abs() < 1e-12, "{h} vs {want}");
        assert!((r.probability(3.0, 0.5) - 4.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn lazy_decay_matches_eager_decay() {
        let day = 86_400;
        let mut t = Tree::new(Some(day));
        for (k, when) in [(1u64, 0u32), (2, 10), (1, 3 * 86_400), (3, 5 * 86_400)] {
            t.decay(ENTITY_ROOT, when);
            t.learn_root(ENTITY_ROOT, when);
            t.learn(ENTITY_ROOT, k, None, when, 1.0, 1.0);
        }
        let now = 9 * 86_400;
        t.decay(ENTITY_ROOT, now);
        let s: f64 = [1u64, 2, 3]
            .iter()
            .map(|&k| {
                let n = t.count_at(t.child(ENTITY_ROOT, k).expect("child"), now);
                n * n.log2()
            })
            .sum();
        let r = t.node(ENTITY_ROOT);
        assert!((r.s - s).abs() < 1e-9, "{} vs {s}", r.s);
        let n: f64 = [1u64, 2, 3]
            .iter()
            .map(|&k| t.count_at(t.child(ENTITY_ROOT, k).expect("child"), now))
            .sum();
        assert!((r.n - n).abs() < 1e-9);
    }

    #[test]
    fn prune_removes_rare_subtrees_and_keeps_ids_stable() {
        let mut t = Tree::new(None);
        let a = t.learn(ENTITY_ROOT, 10, None, 0, 0.0, 1.0);
        for _ in 0..5 {
            t.learn(ENTITY_ROOT, 10, None, 0, 0.0, 1.0);
        }
        let b = t.learn(ENTITY_ROOT, 20, None, 0, 0.0, 1.0);
        let b1 = t.learn(b, 21, None, 0, 0.0, 1.0);
        assert_eq!(t.len(), 5);
        let removed = t.prune(3, 0);
        assert_eq!(removed, vec![b, b1]);
        assert_eq!(t.len(), 3);
        assert!(t.child(ENTITY_ROOT, 20).is_none());
        assert_eq!(t.child(ENTITY_ROOT, 10), Some(a));
        // The pruned value is unseen again, while the parent keeps its totals.
        assert_eq!(t.node(ENTITY_ROOT).d, 2.0);
        let c = t.learn(ENTITY_ROOT, 30, None, 0, 0.0, 1.0);
        assert_eq!(c, b, "lowest free id is reused first");
        let (nodes, free) = t.raw_parts();
        let back = Tree::from_raw_parts(None, nodes.to_vec(), free.to_vec()).expect("valid");
        assert_eq!(back.child(ENTITY_ROOT, 30), Some(c));
        assert_eq!(back.len(), t.len());
    }
}
