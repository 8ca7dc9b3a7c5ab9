//! The baselines oddity is measured against, each online (score, then learn) on the same
//! normalised attributes ([`crate::fields`]), in the same pass and order as oddity.
//!
//! - [`Avf`]: attribute value frequency (Koufakou, Ortiz, Georgiopoulos, Anagnostopoulos and
//!   Reynolds, "Scalable and efficient outlier detection in large distributed data sets with
//!   mixed-type attributes", 2007), the model behind Splunk's `anomalydetection` command, in its
//!   log form: `−(1/m) Σ_i ln(f(x_i) / N)` over the m = 6 attributes principal, eventSource,
//!   eventName, errorCode, source network and user-agent family, where `f(x_i)` is how often
//!   the value was seen in that attribute among the `N` events learned so far. An unseen value
//!   counts as `f = 0.5` (half an observation), so it is rarer than anything seen once. Global
//!   counts, no forgetting, no conditioning on the principal. Higher is more anomalous.
//! - [`FirstSeen`]: the classic "first time user X did Y": the number of the event's
//!   (principal, attribute = value) pairs never seen before, over eventName, eventSource,
//!   source network and user-agent family (0–4). A principal's very first event counts all four.
//!   Ties are broken by global rarity: `+ ½ · mean_i 1/(1 + global count of value_i)` (< 1, so it
//!   never outweighs one more new pair).
//! - [`RareByUser`]: an emulation of Elastic's anomaly-detection job "rare eventName by user"
//!   (`function: rare, by_field_name: event.action, partition_field_name: user.name`, as in
//!   Elastic's prebuilt `rare_method_for_a_username` CloudTrail job). Elastic's `rare` models
//!   whether a value occurs in a *bucket* at least once (bucket span: minutes), judges a value
//!   rare relative to the partition's history, and is less alarmed by a partition that has many
//!   distinct rare values. Here: per principal, `c` = the number of earlier 15-minute buckets in
//!   which the principal called this eventName (all calls in the same bucket share the verdict,
//!   as Elastic scores per bucket); score `= 1/(1 + c) · (1 − R/(D + 1))`, where `D` is the
//!   number of distinct eventNames the principal has called and `R` how many of them are rare
//!   (seen in at most 2 buckets). Learning period: a principal is judged only once it has 50
//!   events (counted in events, not hours: real captures are short); before that its score is 0.

use rustc_hash::{FxHashMap, FxHashSet};

use crate::fields::{ACTION, AGENT, NETWORK, PRINCIPAL, SERVICE};

/// An online detector over interned attributes: scores one event, then learns it.
pub trait Baseline {
    fn name(&self) -> &'static str;
    /// `ids`: the interned attributes ([`crate::fields::ATTRS`] order); `time`: seconds since
    /// 2000-01-01 when the event has one.
    fn score_and_learn(&mut self, ids: &[u32; 6], time: Option<u32>) -> f64;
}

/// The baselines, in report order.
pub fn all() -> Vec<Box<dyn Baseline>> {
    vec![
        Box::new(Avf::default()),
        Box::new(FirstSeen::default()),
        Box::new(RareByUser::default()),
    ]
}

fn bump(counts: &mut Vec<u64>, id: u32) {
    let i = id as usize;
    if counts.len() <= i {
        counts.resize(i + 1, 0);
    }
    counts[i] += 1;
}

fn count(counts: &[u64], id: u32) -> u64 {
    counts.get(id as usize).copied().unwrap_or(0)
}

/// Attribute value frequency, log form.
#[derive(Debug, Default, Clone)]
pub struct Avf {
    counts: [Vec<u64>; 6],
    n: u64,
}

/// Frequency assumed for a value never seen.
pub const AVF_UNSEEN: f64 = 0.5;

impl Baseline for Avf {
    fn name(&self) -> &'static str {
        "avf"
    }

    fn score_and_learn(&mut self, ids: &[u32; 6], _time: Option<u32>) -> f64 {
        let score = if self.n == 0 {
            0.0
        } else {
            let n = self.n as f64;
            let sum: f64 = ids
                .iter()
                .zip(&self.counts)
                .map(|(&id, c)| {
                    let f = count(c, id);
                    let f = if f == 0 { AVF_UNSEEN } else { f as f64 };
                    (f / n).ln()
                })
                .sum();
            -sum / ids.len() as f64
        };
        for (&id, c) in ids.iter().zip(&mut self.counts) {
            bump(c, id);
        }
        self.n += 1;
        score
    }
}

/// Per-principal first sightings.
#[derive(Debug, Default, Clone)]
pub struct FirstSeen {
    seen: FxHashSet<(u32, u8, u32)>,
    global: [Vec<u64>; 4],
}

const FIRST_SEEN_ATTRS: [usize; 4] = [ACTION, SERVICE, NETWORK, AGENT];

impl Baseline for FirstSeen {
    fn name(&self) -> &'static str {
        "first-seen"
    }

    fn score_and_learn(&mut self, ids: &[u32; 6], _time: Option<u32>) -> f64 {
        let p = ids[PRINCIPAL];
        let mut new = 0.0;
        let mut rarity = 0.0;
        for (k, &a) in FIRST_SEEN_ATTRS.iter().enumerate() {
            if self.seen.insert((p, a as u8, ids[a])) {
                new += 1.0;
            }
            rarity += 1.0 / (1.0 + count(&self.global[k], ids[a]) as f64);
            bump(&mut self.global[k], ids[a]);
        }
        new + 0.5 * rarity / FIRST_SEEN_ATTRS.len() as f64
    }
}

/// Elastic `rare` eventName by user, emulated.
#[derive(Debug, Clone)]
pub struct RareByUser {
    pub bucket_secs: u32,
    /// Events a principal needs before it is judged.
    pub maturity: u64,
    /// A name seen in at most this many buckets is rare.
    pub rare_buckets: u32,
    users: FxHashMap<u32, User>,
    pairs: FxHashMap<(u32, u32), Pair>,
    now: u32,
}

#[derive(Debug, Default, Clone, Copy)]
struct User {
    events: u64,
    distinct: u32,
    rare: u32,
}

#[derive(Debug, Clone, Copy)]
struct Pair {
    buckets: u32,
    last: u32,
}

impl Default for RareByUser {
    fn default() -> Self {
        RareByUser {
            bucket_secs: 15 * 60,
            maturity: 50,
            rare_buckets: 2,
            users: FxHashMap::default(),
            pairs: FxHashMap::default(),
            now: 0,
        }
    }
}

impl Baseline for RareByUser {
    fn name(&self) -> &'static str {
        "rare-by-user"
    }

    fn score_and_learn(&mut self, ids: &[u32; 6], time: Option<u32>) -> f64 {
        self.now = time.unwrap_or(self.now).max(self.now);
        let bucket = self.now / self.bucket_secs.max(1);
        let (u, a) = (ids[PRINCIPAL], ids[ACTION]);
        let user = self.users.entry(u).or_default();
        let pair = self.pairs.get(&(u, a)).copied();
        let earlier = match pair {
            None => 0,
            Some(p) if p.last == bucket => p.buckets - 1,
            Some(p) => p.buckets,
        };
        let score = if user.events < self.maturity {
            0.0
        } else {
            let weight = 1.0 - f64::from(user.rare) / (f64::from(user.distinct) + 1.0);
            weight / (1.0 + f64::from(earlier))
        };
        user.events += 1;
        match pair {
            None => {
                user.distinct += 1;
                user.rare += 1;
                self.pairs.insert(
                    (u, a),
                    Pair {
                        buckets: 1,
                        last: bucket,
                    },
                );
            }
            Some(p) if p.last != bucket => {
                let buckets = p.buckets + 1;
                if buckets == self.rare_buckets + 1 {
                    user.rare -= 1;
                }
                self.pairs.insert(
                    (u, a),
                    Pair {
                        buckets,
                        last: bucket,
                    },
                );
            }
            Some(_) => {}
        }
        score
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(p: u32, action: u32, net: u32) -> [u32; 6] {
        [p, 0, action, 0, net, 0]
    }

    #[test]
    fn avf_ranks_rare_values_higher() {
        let mut d = Avf::default();
        assert_eq!(d.score_and_learn(&ev(0, 0, 0), None), 0.0);
        for _ in 0..9 {
            d.score_and_learn(&ev(0, 0, 0), None);
        }
        let common = d.score_and_learn(&ev(0, 0, 0), None);
        let mut e = d.clone();
        let rare_action = d.score_and_learn(&ev(0, 1, 0), None);
        assert!(common.abs() < 1e-12, "all values seen every time");
        // One of six attributes unseen: −(1/6)·ln(0.5/11).
        assert!((rare_action - (-(0.5f64 / 11.0).ln() / 6.0)).abs() < 1e-12);
        assert!(e.score_and_learn(&ev(1, 1, 1), None) > rare_action);
    }

    #[test]
    fn first_seen_counts_new_pairs_per_principal() {
        let mut d = FirstSeen::default();
        let first = d.score_and_learn(&ev(0, 0, 0), None);
        assert!((4.0..5.0).contains(&first));
        let again = d.score_and_learn(&ev(0, 0, 0), None);
        assert!(again < 1.0);
        let new_action = d.score_and_learn(&ev(0, 1, 0), None);
        assert!((1.0..2.0).contains(&new_action));
        // Another principal doing the same is new for it.
        assert!(d.score_and_learn(&ev(1, 1, 0), None) >= 4.0);
    }

    #[test]
    fn rare_by_user_waits_for_maturity_and_counts_buckets() {
        let mut d = RareByUser {
            maturity: 3,
            ..RareByUser::default()
        };
        for t in 0..3 {
            assert_eq!(d.score_and_learn(&ev(0, 0, 0), Some(t * 900)), 0.0);
        }
        // Mature; action 0 seen in 3 buckets (not rare); action 1 never.
        let new = d.score_and_learn(&ev(0, 1, 0), Some(3 * 900));
        assert!((new - 1.0).abs() < 1e-12, "weight 1 − 0/2, c = 0: {new}");
        // Same bucket: still no earlier bucket, so the same c; the weight now counts 1 rare of 2.
        let same_bucket = d.score_and_learn(&ev(0, 1, 0), Some(3 * 900 + 10));
        assert!((same_bucket - (1.0 - 1.0 / 3.0)).abs() < 1e-12);
        let next_bucket = d.score_and_learn(&ev(0, 1, 0), Some(4 * 900));
        assert!((next_bucket - (1.0 - 1.0 / 3.0) / 2.0).abs() < 1e-12);
        let common = d.score_and_learn(&ev(0, 0, 0), Some(4 * 900));
        assert!(common < next_bucket);
    }
}
