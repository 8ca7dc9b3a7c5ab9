//! The model: scores one observation against what was learned, then learns it.
//!
//! Every event walks two kinds of path per view in the [`Tree`]:
//! - the *entity* path `type -> principal -> view -> c1 -> c2 ...`, what this principal does;
//! - the *population* path `view -> c1 -> c2 ...`, what everybody does.
//!
//! A component's probability is Witten–Bell interpolated: within the principal's context, a value
//! seen `n_v` times of `n` (with `d` distinct values ever new) has probability
//! `(n_v + d · P_pop(v)) / (n + d)`, where `P_pop` is the same estimate in the population context,
//! backing off in turn to "one more value among those known". A context that keeps seeing new
//! values (session names, ephemeral hosts) has a large `d`, so one more new value is cheap; a
//! value new for this principal but common elsewhere costs less than a value nobody ever used.
//!
//! Novelty is surprisal beyond expectation (see [`crate::tree::Node::excess`]), so a principal
//! with varied habits is not novel merely for being varied. The event's raw novelty is the sum of
//! each component's (capped) excess plus the principal's escalation; [`Calibration`] turns it
//! into `score`. Scoring produces a [`Judgement`] of numbers and indices only; the strings of a
//! [`ScoreRecord`] or of a rendered annotation are made from it by the caller.

use crate::duplicates::Seen;
use rustc_hash::FxHashMap;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

use crate::calibrate::Calibration;
use crate::campaign::{Campaign, EntityState, Step};
use crate::config::{EngineSettings, Settings, Severity, View};
use crate::fastmath::{exp2, log2, max, min};
use crate::share::{Delta, Outbox};
use crate::stakes::Matched;
use crate::tree::{ENTITY_ROOT, NodeId, POPULATION_ROOT, Tree};

/// Seed of the hash that keys view nodes, distinct from value hashes.
const VIEW_SEED: u64 = 0x0dd1_7956_1e57_0001;
/// Seed of the hash that keys peer groups under the population root.
const PEER_SEED: u64 = 0x0dd1_7956_1e57_0002;

/// How novel one component was.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentNovelty {
    pub index: u32,
    pub view: String,
    pub field: String,
    pub value: String,
    pub novelty: f64,
    pub bits: f64,
}

/// One view's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewScore {
    pub name: String,
    pub info_content: f64,
    pub excess: f64,
}

/// The verdict on one event (see the WIT contract for the meaning of each field).
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRecord {
    pub score: f64,
    pub info_content: f64,
    pub novelty: f64,
    /// Novelty weighted by the action's stakes, in bits.
    pub risk: f64,
    /// Of the event's risk, or of its campaign's when that is higher.
    pub severity: Severity,
    /// ATT&CK tactics the action serves (names), and the matched techniques (ids).
    pub tactics: Vec<&'static str>,
    pub techniques: Vec<String>,
    pub probability: f64,
    pub uniqueness: f64,
    pub sequence: u64,
    pub cold: bool,
    pub principal: String,
    pub observation: Vec<String>,
    pub fields: Vec<String>,
    pub most_novel: ComponentNovelty,
    pub views: Vec<ViewScore>,
    pub event_id: Option<String>,
    pub event_time: Option<String>,
    pub campaign: Option<Campaign>,
}

/// The verdict on one event, as numbers and indices (no strings).
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub score: f64,
    pub info_content: f64,
    pub novelty: f64,
    pub risk: f64,
    pub severity: Severity,
    /// What the action is at stake for.
    pub stakes: Matched,
    pub uniqueness: f64,
    pub sequence: u64,
    pub cold: bool,
    /// Index, in the component layout (entity fields, then each view's), of the most novel.
    pub top: usize,
    /// Its novelty in [0, 1] and its surprisal in bits.
    pub top_novelty: f64,
    pub top_bits: f64,
    /// Per view: (information content, excess) in bits.
    pub views: Vec<(f64, f64)>,
    pub campaign: Option<Campaign>,
}

/// Weight of a cold event in the score distribution, against 1 for a warm one.
const COLD_CALIBRATION_WEIGHT: f64 = 0.05;

/// Reused buffers, so that scoring an event allocates nothing in the steady state.
#[derive(Debug, Clone, Default)]
struct Scratch {
    judged: Vec<Judged>,
    sightings: Vec<(usize, u64, f64)>,
    /// The key of each view's node, in profile order (hashed once, not twice per event).
    view_keys: Vec<u64>,
    /// Each view's node under the principal, its peer group and the population, when they
    /// exist already (found while scoring, so learning needs no second lookup).
    view_nodes: Vec<[Option<NodeId>; 3]>,
}

/// Everything learned; what a snapshot holds.
#[derive(Debug, Clone)]
pub struct Model {
    pub tree: Tree,
    pub entities: FxHashMap<NodeId, EntityState>,
    pub calibration: Calibration,
    /// Events learned.
    pub events: u64,
    /// Times pruning ran.
    pub prunes: u64,
    /// Latest event time seen (believed).
    pub now: u32,
    /// The time of the last event, if it was more than `max-time-jump` ahead of `now` and so
    /// not believed yet; 0 when the last event was not such.
    pub ahead: u32,
    /// The ids of recent events (duplicates are not learned again).
    pub seen: Seen,
    /// What was learned into the population since it was last shared, when sharing.
    pub outbox: Option<Outbox>,
    scratch: Scratch,
}

/// Scratch for one component during scoring.
#[derive(Debug, Clone, Copy)]
struct Judged {
    key: u64,
    bits: f64,
    excess: f64,
    /// The value's node under the principal and in the population, when they exist already
    /// (learning then needs no second lookup).
    child: Option<NodeId>,
    peer_child: Option<NodeId>,
    pop_child: Option<NodeId>,
    /// Surprisal of the value in the peer group's and the population's backoff contexts
    /// (learnt there if it is new).
    peer_backoff_bits: f64,
    pop_backoff_bits: f64,
    /// Count of the value under the principal before this event.
    n_v: f64,
    /// Surprisal of the value in the backoff context (what `b` accumulates if it is new).
    backoff_bits: f64,
    /// The value was never seen in this context (a first sighting; a neutral value, see
    /// `Field::neutral`, is never one).
    first: bool,
    /// A view's given field (see `View::given`): it routes the view's counts and is not
    /// judged (no bits, no excess, no first sighting).
    given: bool,
    /// What learning this sighting adds to the value's count, under the principal and in the
    /// population (see [`sighting_weight`]).
    weight: f64,
    peer_weight: f64,
    pop_weight: f64,
    /// The excess as evidence (see `component-cap`), once it is summarised.
    evidence: f64,
}

/// The least a settling value's sighting counts for (see [`EngineSettings::settle_time`]).
pub const MIN_SETTLING_WEIGHT: f64 = 0.05;

/// How much one sighting of a value adds to its count in a context: 1, unless the value is
/// still settling (seen fewer than `settle-count` times, in a context that has seen at least as
/// many events) and was last seen less than `settle-time` ago, when it adds the fraction of
/// `settle-time` that passed. A first sighting always counts 1.
///
/// A context's count still grows by 1 per event, so its settling values are under-counted
/// (their probabilities sum to less than one) only while they settle: a principal whose key is
/// used from a new network by a polling loop keeps finding that network new for the loop's
/// minutes, instead of its 50th call looking routine. Contexts of their own youth (a new
/// principal, a new view) learn every event fully, so a new workload learns its habits at once.
/// `age`: seconds since the value was last seen in the context, whose count is `ctx_n`.
fn sighting_weight(e: &EngineSettings, first: bool, n_v: f64, age: u32, ctx_n: f64) -> f64 {
    let k = e.settle_count as f64;
    if first || n_v >= k || ctx_n < k {
        1.0
    } else {
        (f64::from(age) / e.settle_time as f64).clamp(MIN_SETTLING_WEIGHT, 1.0)
    }
}

fn bits(p: f64) -> f64 {
    if p >= 1.0 {
        0.0
    } else if p > 0.0 {
        -log2(p)
    } else {
        1024.0
    }
}

pub fn value_key(value: &str) -> u64 {
    xxh3_64(value.as_bytes())
}

fn view_key(name: &str) -> u64 {
    xxh3_64_with_seed(name.as_bytes(), VIEW_SEED)
}

fn peer_key(group: &str) -> u64 {
    xxh3_64_with_seed(group.as_bytes(), PEER_SEED)
}

impl Model {
    pub fn new(settings: &Settings) -> Model {
        let half_life = settings.engine.half_life.map(|d| d.as_secs());
        Model {
            tree: Tree::new(half_life),
            entities: FxHashMap::default(),
            calibration: Calibration::new(Some(settings.engine.calibration_half_life)),
            events: 0,
            prunes: 0,
            now: 0,
            ahead: 0,
            seen: Seen::default(),
            outbox: None,
            scratch: Scratch::default(),
        }
    }

    /// A model from snapshot parts.
    pub fn from_parts(
        tree: Tree,
        entities: FxHashMap<NodeId, EntityState>,
        calibration: Calibration,
        events: u64,
        prunes: u64,
        now: u32,
        ahead: u32,
    ) -> Model {
        Model {
            tree,
            entities,
            calibration,
            events,
            prunes,
            now,
            ahead,
            seen: Seen::default(),
            outbox: None,
            scratch: Scratch::default(),
        }
    }

    /// Judges a component in context `ctx` (if it exists), given its probability in the
    /// backoff context and its excess there (computed only when `excess` is wanted);
    /// `settling`: this event's sightings may be settling (else they count fully); `prior`: a
    /// rate of new values the context is judged with beside its own, with the weight
    /// `population-prior` (see [`crate::tree::Node::excess`]).
    #[allow(clippy::too_many_arguments)] // one call site per kind of context, all in `observe`
    fn judge(
        &mut self,
        ctx: Option<NodeId>,
        key: u64,
        now: u32,
        backoff: f64,
        backoff_excess: f64,
        excess: bool,
        e: &EngineSettings,
        settling: bool,
        prior: Option<f64>,
    ) -> Judged {
        let backoff_bits = bits(backoff);
        let mut judged = Judged {
            key,
            bits: backoff_bits,
            excess: backoff_excess,
            child: None,
            peer_child: None,
            pop_child: None,
            peer_backoff_bits: 0.0,
            pop_backoff_bits: 0.0,
            n_v: 0.0,
            backoff_bits,
            first: true,
            given: false,
            weight: 1.0,
            peer_weight: 1.0,
            pop_weight: 1.0,
            evidence: 0.0,
        };
        let Some(c) = ctx else { return judged };
        self.tree.decay(c, now);
        let child = self.tree.child(c, key);
        // The child is learned in this same event, so bringing it forward now costs nothing
        // extra (learning finds it current) and spares computing its decay twice.
        let mut age = 0;
        let n_v = child.map_or(0.0, |id| {
            age = now.saturating_sub(self.tree.node(id).t);
            self.tree.decay(id, now);
            self.tree.node(id).n
        });
        let node = self.tree.node(c);
        if settling {
            judged.weight = sighting_weight(e, child.is_none(), n_v, age, node.n);
        }
        judged.bits = bits(node.probability(n_v, backoff));
        if excess {
            judged.excess = node
                .excess(
                    n_v,
                    backoff_bits,
                    e.familiar_count,
                    prior.map(|p| (p, e.population_prior)),
                )
                .unwrap_or(backoff_excess);
        }
        judged.child = child;
        judged.n_v = n_v;
        judged.first = child.is_none();
        judged
    }

    /// The event's time, if it is believable: not more than `max-time-jump` ahead of the
    /// latest time seen, or confirmed by the event before it (also that far ahead, and not
    /// later than this one by more than the jump). One event stamped years ahead (a forged
    /// or corrupt time, a source with a broken clock) would otherwise move the model's clock:
    /// the nodes it touches would stay stamped in the future, neither forgetting nor settling
    /// while the real events catch up, and every later event would look out of order. A
    /// stream that really resumes after a gap (a weekend) is believed from its second event;
    /// an event not believed is judged as one without a time (at the latest time seen).
    fn believe(&mut self, time: Option<u32>, jump: Option<u64>) -> Option<u32> {
        // Only the event right before can confirm: any other event clears what was pending.
        let ahead = std::mem::take(&mut self.ahead);
        let t = time?;
        let Some(jump) = jump else { return Some(t) };
        let far = |from: u32| u64::from(t) > u64::from(from) + jump;
        if self.now == 0
            || !far(self.now)
            || (ahead != 0 && u64::from(t) + jump >= u64::from(ahead))
        {
            Some(t)
        } else {
            self.ahead = t;
            None
        }
    }

    /// Scores the observation, then learns it. `values` holds one value per profile field;
    /// `time` is the event's time, if it has one (see [`Model::believe`]), and `time_text` its
    /// own text (for campaigns).
    pub fn observe(
        &mut self,
        settings: &Settings,
        values: &[&str],
        time: Option<u32>,
        time_text: &str,
    ) -> Judgement {
        let profile = &settings.profile;
        let time = self.believe(time, settings.engine.max_time_jump);
        let now = time.unwrap_or(self.now);
        let latest = self.now;
        self.now = self.now.max(now);
        let mut scratch = std::mem::take(&mut self.scratch);
        let judged = &mut scratch.judged;
        judged.clear();
        if scratch.view_keys.len() != profile.views.len() {
            scratch.view_keys = profile.views.iter().map(|v| view_key(&v.name)).collect();
        }
        let view_keys = &scratch.view_keys;
        // View values may be settling (see `sighting_weight`), except without an event time
        // (no telling a burst from a habit) and in an event more than `settle-time` older than
        // the latest seen (a stream replayed out of order, such as a directory of delivery files
        // sorted by region, then time): then every sighting counts fully.
        let e = &settings.engine;
        let settling = e.settle_count > 0
            && time.is_some_and(|t| u64::from(t) + e.settle_time >= u64::from(latest));

        // Score: entity components, then each view against the principal and the population.
        let mut ctx = Some(ENTITY_ROOT);
        for &f in &profile.entity {
            let key = value_key(values[f]);
            let base = ctx.map_or(1.0, |c| self.tree.node(c).base_probability());
            let mut j = self.judge(ctx, key, now, base, 0.0, false, e, false, None);
            // Who the principal is carries no novelty once it is known: only a first sighting
            // (a new principal, a new identity type) does. Otherwise the mix of identity types
            // (fewer people than roles) would add a constant to every event of some types.
            if j.first {
                j.excess = ctx
                    .and_then(|c| {
                        let node = self.tree.node(c);
                        node.excess(0.0, j.backoff_bits, e.familiar_count, None)
                    })
                    .unwrap_or(0.0);
            }
            ctx = j.child;
            judged.push(j);
        }
        let principal_node = ctx;
        let peer = profile.peer.map(|f| peer_key(values[f]));
        let peer_root = peer.and_then(|k| self.tree.child(POPULATION_ROOT, k));
        let mut min_leaf = f64::INFINITY;
        let view_nodes = &mut scratch.view_nodes;
        view_nodes.clear();
        for (view, &vkey) in profile.views.iter().zip(view_keys) {
            let mut ent = principal_node.and_then(|p| self.tree.child(p, vkey));
            let mut grp = peer_root.and_then(|p| self.tree.child(p, vkey));
            let mut pop = self.tree.child(POPULATION_ROOT, vkey);
            view_nodes.push([ent, grp, pop]);
            let mut leaf = 0.0;
            for (f, given) in view.path() {
                let key = value_key(values[f]);
                let base = pop.map_or(1.0, |c| self.tree.node(c).base_probability());
                // A value that says the event does not know is no evidence (see
                // `Field::neutral`), and a given field is the context of the view's questions,
                // judged by another view: neither has an excess.
                let neutral = profile.fields[f].neutral.iter().any(|n| n == values[f]);
                let judged_excess = !neutral && !given;
                // A backoff context's excess only matters where the contexts before it are
                // missing.
                let pj = self.judge(
                    pop,
                    key,
                    now,
                    base,
                    0.0,
                    judged_excess && ent.is_none() && grp.is_none(),
                    e,
                    settling,
                    None,
                );
                // The population's rate of new values here is the peers' prior, and the peers'
                // the principal's (see `EngineSettings::population_prior`).
                let pop_prior = pop.and_then(|c| self.tree.node(c).new_rate());
                // Peers back off to the population; the principal to its peers (people are
                // judged among people before everybody, so a call some role makes all day is
                // still rare for a person).
                let qj = match peer {
                    Some(_) => self.judge(
                        grp,
                        key,
                        now,
                        exp2(-pj.bits),
                        pj.excess,
                        judged_excess && ent.is_none(),
                        e,
                        settling,
                        pop_prior,
                    ),
                    None => pj,
                };
                let prior = match peer {
                    Some(_) => grp.and_then(|c| self.tree.node(c).new_rate()).or(pop_prior),
                    None => pop_prior,
                };
                let mut j = self.judge(
                    ent,
                    key,
                    now,
                    exp2(-qj.bits),
                    qj.excess,
                    judged_excess,
                    e,
                    settling,
                    prior,
                );
                if neutral {
                    j.excess = 0.0;
                    j.first = false;
                }
                if given {
                    j.bits = 0.0;
                    j.excess = 0.0;
                    j.first = false;
                    j.given = true;
                }
                j.pop_child = pj.child;
                j.pop_backoff_bits = pj.backoff_bits;
                j.pop_weight = pj.weight;
                j.peer_child = qj.child;
                j.peer_backoff_bits = qj.backoff_bits;
                j.peer_weight = qj.weight;
                leaf = j.n_v;
                ent = j.child;
                grp = peer.and(qj.child);
                pop = pj.child;
                judged.push(j);
            }
            min_leaf = min(min_leaf, leaf);
        }

        // Learn the same paths.
        self.tree.learn_root(ENTITY_ROOT, now);
        let mut at = ENTITY_ROOT;
        for j in &judged[..profile.entity.len()] {
            at = self
                .tree
                .learn(at, j.key, j.child, now, j.backoff_bits, 1.0);
        }
        let principal = at;
        self.tree.learn_root(POPULATION_ROOT, now);
        if let Some(out) = &mut self.outbox {
            out.event();
        }
        let peer_at = peer.map(|k| {
            let id = self
                .tree
                .learn(POPULATION_ROOT, k, peer_root, now, 0.0, 1.0);
            self.shared(id, 0.0, 1.0)
        });
        let mut k = profile.entity.len();
        for ((view, &vkey), &[ent_view, peer_view, pop_view]) in
            profile.views.iter().zip(view_keys).zip(view_nodes.iter())
        {
            let mut ent = self.tree.learn(principal, vkey, ent_view, now, 0.0, 1.0);
            let mut grp = peer_at.map(|p| {
                let id = self.tree.learn(p, vkey, peer_view, now, 0.0, 1.0);
                self.shared(id, 0.0, 1.0)
            });
            let pop = self
                .tree
                .learn(POPULATION_ROOT, vkey, pop_view, now, 0.0, 1.0);
            let mut pop = self.shared(pop, 0.0, 1.0);
            // A node below a settling one learns no more than it (a context never counts fewer
            // events than its children).
            let (mut w, mut qw, mut pw) = (1.0f64, 1.0f64, 1.0f64);
            for _ in 0..view.path_len() {
                let j = judged[k];
                w = min(w, j.weight);
                qw = min(qw, j.peer_weight);
                pw = min(pw, j.pop_weight);
                ent = self.tree.learn(ent, j.key, j.child, now, j.backoff_bits, w);
                grp = grp.map(|g| {
                    let id = self
                        .tree
                        .learn(g, j.key, j.peer_child, now, j.peer_backoff_bits, qw);
                    self.shared(id, j.peer_backoff_bits, qw)
                });
                pop = self
                    .tree
                    .learn(pop, j.key, j.pop_child, now, j.pop_backoff_bits, pw);
                pop = self.shared(pop, j.pop_backoff_bits, pw);
                k += 1;
            }
        }
        self.events += 1;

        // Summarise. One component's evidence saturates at `component-cap` bits: the tails of
        // a single component's estimate are the least reliable part of the model (a busy
        // principal's first new network costs log2(n) bits), and an attack shows up as several
        // novel components at once.
        let cap = settings.engine.component_cap;
        let evidence = |e: f64| cap * crate::fastmath::tanh(e / cap);
        for j in judged.iter_mut() {
            j.evidence = evidence(j.excess);
        }
        let mut views = Vec::with_capacity(profile.views.len());
        let mut k = profile.entity.len();
        for view in &profile.views {
            let part = &judged[k..k + view.path_len()];
            views.push((
                part.iter().map(|j| j.bits).sum(),
                part.iter().map(|j| j.evidence).sum(),
            ));
            k += view.path_len();
        }
        let info_content: f64 = judged.iter().map(|j| j.bits).sum();
        let novelty: f64 = judged.iter().map(|j| j.evidence).sum();
        // The most novel component, as an index into the observation (given fields are not in
        // it).
        let (top, top_judged) =
            judged
                .iter()
                .filter(|j| !j.given)
                .enumerate()
                .fold((0, &judged[0]), |best, (i, j)| {
                    if j.excess > best.1.excess {
                        (i, j)
                    } else {
                        best
                    }
                });
        let (top_excess, top_bits) = (top_judged.excess, top_judged.bits);

        let state = self.entities.entry(principal).or_default();
        let cold = state.seq < settings.engine.warm_up;
        state.seq += 1;
        let sequence = state.seq;
        // Escalation: a campaign is a burst of *different* new behaviours of one principal
        // (discovery, then persistence, then exfiltration), where a traveller shows one new
        // network and then ordinary calls. How many kinds of new behaviour the principal showed
        // recently, beyond the first (see `EntityState::escalation`), lifts each of its events
        // that repeats a value new in the burst (`EntityState::shares_burst`), so the later,
        // individually ordinary steps of a campaign rank near its first.
        // The view components with the profile field each one reads.
        let components = || {
            judged[profile.entity.len()..]
                .iter()
                .zip(profile.views.iter().flat_map(View::path))
                .filter(|(j, _)| !j.given)
                .map(|(j, (field, _))| (j, field))
        };
        let sightings = &mut scratch.sightings;
        sightings.clear();
        sightings.extend(
            components()
                .filter(|(j, _)| j.first)
                .map(|(j, field)| (field, j.key, j.evidence)),
        );
        let kinds = state.escalation(now, settings.engine.escalation_half_life, cap);
        let shares = state.shares_burst(components().map(|(j, field)| (field, j.key)));
        let escalation = if shares {
            settings.engine.escalation * kinds
        } else {
            0.0
        };
        let step = state.absorb(novelty, sightings);
        // While the principal is cold everything it does is a first sighting: that is its
        // learning, not a burst of new behaviour, and must not escalate its first warm events
        // (measured on the OTRF capture, which has no event time and so no decay: every warm
        // event of its console user carried the 14.7 bits of its first twenty). Its last cold
        // event clears it.
        if state.seq == settings.engine.warm_up {
            state.clear_burst();
        }
        let novelty = novelty + escalation;
        let score = self.calibration.score(novelty);
        // Cold events count for little in the distribution `score` ranks against: a new
        // principal's first events are all new to it, and a stream's first day would otherwise
        // set the bar. But they count: in a stream of short-lived principals (most events cold)
        // scores still rank events instead of all being 0.5.
        let weight = if cold { COLD_CALIBRATION_WEIGHT } else { 1.0 };
        self.calibration.learn_weighted(novelty, now, weight);
        if let Some(out) = &mut self.outbox {
            out.calibrated(novelty, now, weight, self.calibration.inv_half_life());
        }
        let action = profile.action.map_or("", |f| values[f]);
        let entity_values = profile.entity.iter().map(|&f| values[f]);
        let stakes = profile.stakes.judge(values);
        let campaign = state.observe(
            &settings.campaign,
            &settings.risk,
            entity_values,
            Step {
                score,
                step,
                now,
                time_text,
                action,
                stakes: &stakes,
            },
        );
        let risk = novelty * stakes.weight;
        let severity = settings
            .risk
            .severity(campaign.as_ref().map_or(risk, |c| max(c.risk, risk)));

        self.cap(settings.engine.max_nodes);

        let verdict = Judgement {
            score,
            info_content,
            novelty,
            risk,
            severity,
            stakes,
            uniqueness: 1.0 / (1.0 + if min_leaf.is_finite() { min_leaf } else { 0.0 }),
            sequence,
            cold,
            top,
            top_novelty: 1.0 - exp2(-top_excess),
            top_bits,
            views,
            campaign,
        };
        self.scratch = scratch;
        verdict
    }

    /// Prunes the tree down to 90 % of `max_nodes` once it holds more.
    fn cap(&mut self, max_nodes: u64) {
        if self.tree.len() as u64 <= max_nodes {
            return;
        }
        let target = (max_nodes as f64 * 0.9) as usize;
        let removed = self.tree.prune(target, self.now);
        for id in &removed {
            self.entities.remove(id);
        }
        if let Some(out) = &mut self.outbox {
            out.forget(&removed);
        }
        self.prunes += 1;
    }

    /// Records that population node `id` learned `weight`, when sharing; returns `id`.
    #[inline]
    fn shared(&mut self, id: NodeId, backoff: f64, weight: f64) -> NodeId {
        if let Some(out) = &mut self.outbox {
            out.learned(id, backoff, weight);
        }
        id
    }

    /// What was learned into the population since the last call, as delta bytes (see
    /// [`crate::share`]); the first call starts recording.
    pub fn share(&mut self, fingerprint: &str) -> Vec<u8> {
        let mut out = self.outbox.take().unwrap_or_default();
        let bytes = out.take(&self.tree, self.now, fingerprint);
        self.outbox = Some(out);
        bytes
    }

    /// Adds what another engine learned into the population (never recorded for sharing),
    /// stamped at the sender's clock, or at this model's when that is earlier (a share from
    /// the future must neither stop these contexts forgetting nor outweigh the calibration).
    pub fn merge(&mut self, delta: &Delta, max_nodes: u64) {
        let mine = self.now;
        let capped = |t: u32| if mine == 0 { t } else { t.min(mine) };
        delta.merge_into(&mut self.tree, capped(delta.now));
        self.calibration
            .merge(&delta.calibration, capped(delta.reference));
        self.cap(max_nodes);
    }
}
