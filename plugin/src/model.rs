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
//! Novelty is surprisal beyond expectation: a component's `excess` is its surprisal minus the
//! entropy of its context (the surprisal the context usually produces), floored at zero, so a
//! principal with varied habits is not novel merely for being varied. The event's raw novelty is
//! the sum of excess over components; [`Calibration`] turns it into `score`.

use rustc_hash::FxHashMap;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

use crate::calibrate::Calibration;
use crate::campaign::{Campaign, EntityState};
use crate::config::Settings;
use crate::tree::{ENTITY_ROOT, NodeId, POPULATION_ROOT, Tree};

/// Seed of the hash that keys view nodes, distinct from value hashes.
const VIEW_SEED: u64 = 0x0dd1_7956_1e57_0001;

/// One event's observation, after extraction and normalisation.
#[derive(Debug, Clone)]
pub struct Observation<'a> {
    /// One value per profile field.
    pub values: Vec<std::borrow::Cow<'a, str>>,
    /// Event time in seconds since 2000-01-01, when the event has a readable one.
    pub time: Option<u32>,
    pub time_text: Option<String>,
    pub id_text: Option<String>,
}

/// How novel one component was.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentNovelty {
    pub index: u32,
    pub view: String,
    pub field: String,
    pub value: String,
    pub novelty: f64,
    pub bits: f64,
    pub excess: f64,
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
    /// Latest event time seen.
    pub now: u32,
}

/// Scratch for one component during scoring.
#[derive(Debug, Clone, Copy)]
struct Judged {
    key: u64,
    bits: f64,
    excess: f64,
    /// Surprisal of the value in the backoff context (what `b` accumulates if it is new).
    backoff_bits: f64,
    /// The value was never seen in this context (a first sighting).
    first: bool,
}

fn bits(p: f64) -> f64 {
    if p >= 1.0 {
        0.0
    } else if p > 0.0 {
        -p.log2()
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
        }
    }

    /// Judges a component in context `ctx` (if it exists), given its probability in the
    /// backoff context and its excess there; returns the judgement and the child context, if
    /// it exists.
    fn judge(
        &mut self,
        ctx: Option<NodeId>,
        key: u64,
        now: u32,
        backoff: f64,
        backoff_excess: f64,
    ) -> (Judged, Option<NodeId>) {
        let backoff_bits = bits(backoff);
        let Some(c) = ctx else {
            let judged = Judged {
                key,
                bits: backoff_bits,
                excess: backoff_excess,
                backoff_bits,
                first: true,
            };
            return (judged, None);
        };
        self.tree.decay(c, now);
        let child = self.tree.child(c, key);
        let n_v = child.map_or(0.0, |id| self.tree.count_at(id, now));
        let node = self.tree.node(c);
        let judged = Judged {
            key,
            bits: bits(node.probability(n_v, backoff)),
            excess: node.excess(n_v, backoff_bits).unwrap_or(backoff_excess),
            backoff_bits,
            first: child.is_none(),
        };
        (judged, child)
    }

    /// Scores the observation, then learns it.
    pub fn observe(&mut self, settings: &Settings, obs: &Observation<'_>) -> ScoreRecord {
        let profile = &settings.profile;
        let now = obs.time.unwrap_or(self.now);
        self.now = self.now.max(now);

        // Score: entity components, then each view against the principal and the population.
        let mut judged: Vec<Judged> = Vec::with_capacity(profile.fields.len() + 2);
        let mut ctx = Some(ENTITY_ROOT);
        for &f in &profile.entity {
            let key = value_key(&obs.values[f]);
            let base = ctx.map_or(1.0, |c| self.tree.node(c).base_probability());
            let (mut j, child) = self.judge(ctx, key, now, base, 0.0);
            // Who the principal is carries no novelty once it is known: only a first sighting
            // (a new principal, a new identity type) does. Otherwise the mix of identity types
            // (fewer people than roles) would add a constant to every event of some types.
            if !j.first {
                j.excess = 0.0;
            }
            judged.push(j);
            ctx = child;
        }
        let principal_node = ctx;
        let mut leaf_counts = Vec::with_capacity(profile.views.len());
        let mut pop_judged: Vec<f64> = Vec::with_capacity(profile.fields.len());
        for view in &profile.views {
            let vkey = view_key(&view.name);
            let mut ent = principal_node.and_then(|p| self.tree.child(p, vkey));
            let mut pop = self.tree.child(POPULATION_ROOT, vkey);
            let mut leaf = 0.0;
            for &f in &view.components {
                let key = value_key(&obs.values[f]);
                let base = pop.map_or(1.0, |c| self.tree.node(c).base_probability());
                let (pj, pop_child) = self.judge(pop, key, now, base, 0.0);
                let pop_p = (-pj.bits).exp2();
                let (j, ent_child) = self.judge(ent, key, now, pop_p, pj.excess);
                leaf = ent_child.map_or(0.0, |c| self.tree.count_at(c, now));
                judged.push(j);
                pop_judged.push(pj.backoff_bits);
                ent = ent_child;
                pop = pop_child;
            }
            leaf_counts.push(leaf);
        }

        // Learn the same paths.
        self.tree.learn_root(ENTITY_ROOT, now);
        let mut at = ENTITY_ROOT;
        for j in &judged[..profile.entity.len()] {
            self.tree.decay(at, now);
            at = self.tree.learn(at, j.key, now, j.backoff_bits);
        }
        let principal = at;
        self.tree.learn_root(POPULATION_ROOT, now);
        let mut k = profile.entity.len();
        let mut p = 0;
        for view in &profile.views {
            let vkey = view_key(&view.name);
            self.tree.decay(principal, now);
            let mut ent = self.tree.learn(principal, vkey, now, 0.0);
            self.tree.decay(POPULATION_ROOT, now);
            let mut pop = self.tree.learn(POPULATION_ROOT, vkey, now, 0.0);
            for _ in &view.components {
                let j = judged[k];
                self.tree.decay(ent, now);
                ent = self.tree.learn(ent, j.key, now, j.backoff_bits);
                self.tree.decay(pop, now);
                pop = self.tree.learn(pop, j.key, now, pop_judged[p]);
                k += 1;
                p += 1;
            }
        }
        self.events += 1;

        // Summarise. One component's evidence saturates at `component-cap` bits: the tails of
        // a single component's estimate are the least reliable part of the model (a busy
        // principal's first new network costs log2(n) bits), and an attack shows up as several
        // novel components at once.
        let cap = settings.engine.component_cap;
        let evidence = |e: f64| cap * (e / cap).tanh();
        let mut fields = Vec::with_capacity(judged.len());
        let mut observation = Vec::with_capacity(judged.len());
        let mut view_of = Vec::with_capacity(judged.len());
        for &f in &profile.entity {
            fields.push(profile.fields[f].name.clone());
            observation.push(obs.values[f].to_string());
            view_of.push("entity");
        }
        let mut views = Vec::with_capacity(profile.views.len());
        let mut k = profile.entity.len();
        for view in &profile.views {
            let part = &judged[k..k + view.components.len()];
            views.push(ViewScore {
                name: view.name.clone(),
                info_content: part.iter().map(|j| j.bits).sum(),
                excess: part.iter().map(|j| evidence(j.excess)).sum(),
            });
            for &f in &view.components {
                fields.push(profile.fields[f].name.clone());
                observation.push(obs.values[f].to_string());
                view_of.push(view.name.as_str());
            }
            k += view.components.len();
        }
        let info_content: f64 = judged.iter().map(|j| j.bits).sum();
        let novelty: f64 = judged.iter().map(|j| evidence(j.excess)).sum();
        let top = judged.iter().enumerate().fold(0, |best, (i, j)| {
            if j.excess > judged[best].excess {
                i
            } else {
                best
            }
        });
        let most_novel = ComponentNovelty {
            index: top as u32,
            view: view_of[top].to_owned(),
            field: fields[top].clone(),
            value: observation[top].clone(),
            novelty: 1.0 - (-judged[top].excess).exp2(),
            bits: judged[top].bits,
            excess: judged[top].excess,
        };
        let principal_text = profile
            .entity
            .iter()
            .map(|&f| obs.values[f].as_ref())
            .collect::<Vec<_>>()
            .join(" ");

        let state = self.entities.entry(principal).or_default();
        let cold = state.seq < settings.engine.warm_up;
        state.seq += 1;
        let sequence = state.seq;
        // Escalation: a campaign is a burst of *different* new behaviours of one principal
        // (discovery, then persistence, then exfiltration), where a traveller shows one new
        // network and then ordinary calls. How many kinds of new behaviour the principal showed
        // recently, beyond the first (see `EntityState::escalation`), lifts each of its events,
        // so the later, individually ordinary steps of a campaign rank near its first.
        let sightings: Vec<(usize, f64)> = judged[profile.entity.len()..]
            .iter()
            .zip(profile.views.iter().flat_map(|v| v.components.iter()))
            .filter(|(j, _)| j.first)
            .map(|(j, &field)| (field, evidence(j.excess)))
            .collect();
        let kinds = state.escalation(now, settings.engine.escalation_half_life, cap);
        let escalation = if cold {
            0.0
        } else {
            settings.engine.escalation * kinds
        };
        let step = state.absorb(novelty, &sightings);
        let novelty = novelty + escalation;
        let score = self.calibration.score(novelty);
        if !cold {
            self.calibration.learn(novelty, now);
        }
        let action = profile.action.map_or("", |f| obs.values[f].as_ref());
        let campaign = state.observe(
            &settings.campaign,
            &principal_text,
            score,
            step,
            now,
            obs.time_text.as_deref().unwrap_or(""),
            action,
        );

        if self.tree.len() as u64 > settings.engine.max_nodes {
            let target = (settings.engine.max_nodes as f64 * 0.9) as usize;
            for id in self.tree.prune(target, self.now) {
                self.entities.remove(&id);
            }
            self.prunes += 1;
        }

        let min_leaf = leaf_counts.iter().copied().fold(f64::INFINITY, f64::min);
        ScoreRecord {
            score,
            info_content,
            novelty,
            probability: (-info_content).exp2(),
            // (2^-0 is 1: an event the model fully expects.)
            uniqueness: 1.0 / (1.0 + if min_leaf.is_finite() { min_leaf } else { 0.0 }),
            sequence,
            cold,
            principal: principal_text,
            observation,
            fields,
            most_novel,
            views,
            event_id: obs.id_text.clone(),
            event_time: obs.time_text.clone(),
            campaign,
        }
    }
}
