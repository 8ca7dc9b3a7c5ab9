//! Metrics of a scored stream, and their rendering as plain-text or Markdown tables.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::fields::{ACTION, PRINCIPAL};
use crate::harness::{FIRST_BASELINE, Scored};
use crate::metrics::{Ranking, average_precision, lexicographic_key, roc_auc, top_k};
use oddity_engine::Severity;

/// Share of each stream's first events that is scored and learned but not measured.
pub const WARM_UP: f64 = 0.10;
/// The "top" fractions reported.
pub const TOP_SMALL: f64 = 0.001;
pub const TOP_LARGE: f64 = 0.01;

#[derive(Debug, Clone, Serialize)]
pub struct StreamReport {
    pub name: String,
    /// `generated`, `stratus`, `invictus` or `otrf`: streams of one family are summarised
    /// together.
    pub family: String,
    pub about: Vec<String>,
    pub events: usize,
    pub warm_up: usize,
    pub evaluated: usize,
    pub positives: usize,
    pub positives_in_warm_up: usize,
    pub k_top_small: usize,
    pub k_top_large: usize,
    pub seconds: f64,
    pub engine_events_per_second: f64,
    pub oddity_errors: BTreeMap<String, usize>,
    pub baseline_unreadable: usize,
    pub detectors: Vec<DetectorMetrics>,
    /// The baseline with the highest average precision (then ROC-AUC).
    pub best_baseline: Option<String>,
    pub groups: Vec<GroupReport>,
    pub steps: Vec<StepReport>,
    pub classes: Vec<ClassReport>,
    pub campaigns: CampaignReport,
    pub alerts: AlertReport,
    pub oddity_top: TopComposition,
}

/// What the alert stream would hold at the default settings: an event alerts when its
/// severity (of its risk, or its campaign's) reaches [`ALERT_SEVERITY`]; the alerts of one
/// campaign are one group, an alert outside a campaign of two events or more is a group alone.
#[derive(Debug, Clone, Serialize)]
pub struct AlertReport {
    /// Scenarios (groups) with at least one alerting event, of all scenarios.
    pub scenarios_alerted: usize,
    pub scenarios: usize,
    /// Alert groups holding no attack event, and per day of the evaluated stream.
    pub benign_groups: usize,
    pub days: f64,
    pub benign_per_day: Option<f64>,
    /// Alerting events, and of those attack events.
    pub alert_events: usize,
    pub attack_alert_events: usize,
    /// The same at other risk thresholds (bits): (threshold, scenarios alerted, benign groups).
    pub sweep: Vec<(f64, usize, usize)>,
    /// Techniques named for their ATT&CK tactic (Stratus Red Team's `tactic.technique`).
    pub tactics: TacticReport,
}

/// Whether oddity names a technique's own ATT&CK tactic: among the groups named
/// `tactic.technique`, those with an event whose action oddity gives that tactic, and those
/// with such an event among their alerting ones.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TacticReport {
    pub techniques: usize,
    pub named: usize,
    pub named_alerting: usize,
    /// Techniques none of whose events carries their tactic, with the tactics their events
    /// carry instead.
    pub not_named: Vec<(String, Vec<&'static str>)>,
}

/// Risk thresholds (bits) the alert sweep tries.
pub const SWEEP: [f64; 9] = [12.0, 16.0, 20.0, 25.0, 30.0, 35.0, 40.0, 50.0, 60.0];

/// Alert groups and alerted scenarios when events alert at `alerts(row)`.
fn alert_groups(
    rows: &[crate::harness::Row],
    group_of: &[Option<usize>],
    scenarios: usize,
    alerts: impl Fn(&crate::harness::Row) -> bool,
) -> (usize, usize, usize, usize) {
    let mut groups: BTreeMap<(bool, u64), bool> = BTreeMap::new();
    let mut alerted = vec![false; scenarios];
    let (mut alert_events, mut attack_alert_events) = (0, 0);
    for (i, r) in rows.iter().enumerate() {
        if !alerts(r) {
            continue;
        }
        alert_events += 1;
        let key = match r.campaign {
            Some(c) => (true, c.id),
            None => (false, i as u64),
        };
        *groups.entry(key).or_insert(false) |= r.truth.positive;
        if r.truth.positive {
            attack_alert_events += 1;
        }
        if let Some(g) = group_of[i] {
            alerted[g] = true;
        }
    }
    (
        alerted.iter().filter(|&&a| a).count(),
        groups.values().filter(|&&attack| !attack).count(),
        alert_events,
        attack_alert_events,
    )
}

/// The severity from which the host alerts by default (`alerts.min-severity`).
pub const ALERT_SEVERITY: Severity = Severity::Medium;

#[derive(Debug, Clone, Serialize)]
pub struct DetectorMetrics {
    pub detector: String,
    pub roc_auc: Option<f64>,
    pub average_precision: Option<f64>,
    pub precision_at_10: f64,
    pub precision_at_100: f64,
    pub recall_top_small: Option<f64>,
    pub recall_top_large: Option<f64>,
    /// Groups (scenarios, techniques) with at least one event in the top 0.1 % / 1 % (best
    /// mid-rank within `k`).
    pub groups_detected_small: usize,
    pub groups_detected_large: usize,
    /// Groups whose best event would be in the top 0.1 % among the non-attack events alone
    /// (each attack as if it were the stream's only one).
    pub groups_detected_alone: usize,
    pub groups: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupReport {
    pub name: String,
    /// Evaluated events of the group (after warm-up).
    pub events: usize,
    /// Of those, events whose principal oddity still judged cold.
    pub oddity_cold: usize,
    /// oddity's explanation of the group's events: how many name each profile field as the
    /// most novel component, most named first.
    pub explained_by: Vec<(String, usize)>,
    pub detectors: Vec<GroupDetector>,
    pub campaign: GroupCampaign,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupDetector {
    pub detector: String,
    /// Best (smallest) mid-rank among the group's events, 1-based.
    pub best_rank: f64,
    pub best_step: u32,
    pub best_action: String,
    /// Expected number of the group's events in the top 0.1 % / 1 %.
    pub in_top_small: f64,
    pub in_top_large: f64,
    pub detected: bool,
    /// The best event's mid-rank among it and the stream's non-attack events only: where it
    /// would rank were it the stream's only attack (streams with many injected attacks crowd
    /// each other out of the top).
    pub best_rank_alone: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupCampaign {
    pub events_with_campaign: usize,
    /// Distinct campaign ids among the group's events.
    pub campaign_ids: usize,
    /// Events of the largest campaign that holds group events, and its final score.
    pub largest_events: u32,
    pub largest_score: f64,
    /// Best rank among all campaigns of the stream (by final score) of a campaign holding
    /// group events.
    pub best_campaign_rank: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub group: String,
    pub step: u32,
    pub events: usize,
    pub detectors: Vec<StepDetector>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepDetector {
    pub detector: String,
    /// The step's best-ranked event: its eventName, mid-rank, score (oddity: also bits).
    pub action: String,
    pub rank: f64,
    pub score: f64,
    pub bits: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClassReport {
    pub class: String,
    pub events: usize,
    pub detectors: Vec<ClassDetector>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClassDetector {
    pub detector: String,
    pub in_top_small: f64,
    pub in_top_large: f64,
    /// ROC-AUC of this class against ordinary events (no class, not attacks): how much more
    /// novel the detector finds it.
    pub auc_vs_ordinary: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CampaignReport {
    pub campaigns: usize,
    pub campaigns_with_attack: usize,
    pub attack_events: usize,
    pub attack_events_with_campaign: usize,
    pub other_events_with_campaign: usize,
    /// Average precision of the campaigns of two events or more ranked by final score, the
    /// positives being those that hold attack events (how well the campaign list puts attacks
    /// first).
    pub ap: Option<f64>,
    /// The same, the campaigns ranked by risk.
    pub risk_ap: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TopComposition {
    pub k: usize,
    pub attacks: usize,
    /// Negatives by class (`ordinary` for none), most first.
    pub classes: Vec<(String, usize)>,
    /// Principals, most first (at most 8).
    pub principals: Vec<(String, usize)>,
    /// oddity's most novel component's field, most first.
    pub fields: Vec<(String, usize)>,
}

/// Events of warm-up in a stream of `n`.
pub fn warm_up_of(n: usize) -> usize {
    (n as f64 * WARM_UP) as usize
}

/// The name of the profile field oddity named most novel for an event (its index in
/// `novel_fields`), or `(error)` for an event it could not score.
fn novel_field(s: &Scored, index: u16) -> &str {
    s.novel_fields
        .get(index as usize)
        .map_or("(error)", String::as_str)
}

fn family_of(name: &str) -> &'static str {
    if name.starts_with("generated") {
        "generated"
    } else if name.starts_with("stratus-own-client") {
        "stratus own-ua"
    } else if name.starts_with("stratus-own-origin") {
        "stratus own-origin"
    } else if name.starts_with("stratus") {
        "stratus"
    } else if name.starts_with("invictus") {
        "invictus"
    } else {
        "otrf"
    }
}

fn counted(map: BTreeMap<String, usize>, limit: usize) -> Vec<(String, usize)> {
    let mut v: Vec<(String, usize)> = map.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(limit);
    v
}

/// Computes every metric of a scored stream.
pub fn evaluate(s: &Scored) -> StreamReport {
    let n_all = s.rows.len();
    let warm = warm_up_of(n_all);
    let rows = &s.rows[warm..];
    let n = rows.len();
    let labels: Vec<bool> = rows.iter().map(|r| r.truth.positive).collect();
    let positives = labels.iter().filter(|&&l| l).count();
    let (k_small, k_large) = (top_k(n, TOP_SMALL), top_k(n, TOP_LARGE));

    // Ranking keys: oddity by score, then novelty; baselines by their score.
    let keys: Vec<Vec<f64>> = s
        .scores
        .iter()
        .enumerate()
        .map(|(d, sc)| {
            if d == 0 {
                lexicographic_key(&sc[warm..], &s.novelty[warm..])
            } else {
                sc[warm..].to_vec()
            }
        })
        .collect();
    let rankings: Vec<Ranking> = keys.iter().map(|k| Ranking::new(k)).collect();

    // Groups in order of first appearance.
    let mut group_names: Vec<String> = Vec::new();
    let mut group_of: Vec<Option<usize>> = Vec::with_capacity(n);
    for r in rows {
        group_of.push(r.truth.group.as_deref().map(|g| {
            group_names.iter().position(|x| x == g).unwrap_or_else(|| {
                group_names.push(g.to_owned());
                group_names.len() - 1
            })
        }));
    }
    let action = |i: usize| -> String {
        let a = rows[i].action;
        if a == u32::MAX {
            "?".into()
        } else {
            s.interner.name(ACTION, a).to_owned()
        }
    };

    // Campaign ranks by final score.
    let mut campaign_final: BTreeMap<u64, (f64, u32, bool)> = BTreeMap::new();
    let mut campaign_risk: BTreeMap<u64, f64> = BTreeMap::new();
    for r in rows {
        if let Some(c) = r.campaign {
            let e = campaign_final.entry(c.id).or_insert((0.0, 0, false));
            if c.score >= e.0 {
                e.0 = c.score;
            }
            e.1 = e.1.max(c.events);
            e.2 |= r.truth.positive;
            let risk = campaign_risk.entry(c.id).or_insert(0.0);
            *risk = risk.max(c.risk);
        }
    }
    let mut by_score: Vec<(u64, f64)> = campaign_final.iter().map(|(&id, v)| (id, v.0)).collect();
    by_score.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let campaign_rank: BTreeMap<u64, usize> = by_score
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, i + 1))
        .collect();

    let mut groups = Vec::new();
    for (g, name) in group_names.iter().enumerate() {
        let members: Vec<usize> = (0..n).filter(|&i| group_of[i] == Some(g)).collect();
        let detectors = s
            .detectors
            .iter()
            .zip(&rankings)
            .enumerate()
            .map(|(di, (d, r))| {
                let best = members
                    .iter()
                    .copied()
                    .min_by(|&a, &b| r.mid_rank(a).total_cmp(&r.mid_rank(b)).then(a.cmp(&b)));
                let best_rank = best.map_or(f64::NAN, |i| r.mid_rank(i));
                let best_rank_alone = best.map_or(f64::NAN, |i| {
                    let key = keys[di][i];
                    let (above, ties) = (0..n).filter(|&j| !labels[j]).fold(
                        (0usize, 0usize),
                        |(a, t), j| match keys[di][j].total_cmp(&key) {
                            std::cmp::Ordering::Greater => (a + 1, t),
                            std::cmp::Ordering::Equal => (a, t + 1),
                            std::cmp::Ordering::Less => (a, t),
                        },
                    );
                    1.0 + above as f64 + ties as f64 / 2.0
                });
                GroupDetector {
                    detector: (*d).to_owned(),
                    best_rank,
                    best_step: best.map_or(0, |i| rows[i].truth.step),
                    best_action: best.map_or_else(String::new, action),
                    in_top_small: members.iter().map(|&i| r.p_in_top(i, k_small)).sum(),
                    in_top_large: members.iter().map(|&i| r.p_in_top(i, k_large)).sum(),
                    detected: best_rank <= k_small as f64,
                    best_rank_alone,
                }
            })
            .collect();
        let ids: BTreeMap<u64, ()> = members
            .iter()
            .filter_map(|&i| rows[i].campaign.map(|c| (c.id, ())))
            .collect();
        let largest = ids
            .keys()
            .filter_map(|id| campaign_final.get(id).map(|v| (v.1, v.0)))
            .max_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let mut explained: BTreeMap<String, usize> = BTreeMap::new();
        for i in members.iter().copied() {
            *explained
                .entry(novel_field(s, rows[i].novel_field).to_owned())
                .or_insert(0) += 1;
        }
        groups.push(GroupReport {
            name: name.clone(),
            events: members.len(),
            oddity_cold: members.iter().filter(|&&i| rows[i].cold).count(),
            explained_by: counted(explained, usize::MAX),
            detectors,
            campaign: GroupCampaign {
                events_with_campaign: members
                    .iter()
                    .filter(|&&i| rows[i].campaign.is_some())
                    .count(),
                campaign_ids: ids.len(),
                largest_events: largest.map_or(0, |l| l.0),
                largest_score: largest.map_or(0.0, |l| l.1),
                best_campaign_rank: ids
                    .keys()
                    .filter_map(|id| campaign_rank.get(id))
                    .min()
                    .copied(),
            },
        });
    }

    let mut detectors: Vec<DetectorMetrics> = s
        .detectors
        .iter()
        .enumerate()
        .map(|(d, name)| {
            let r = &rankings[d];
            let in_top = |k: usize| r.expected_in_top(k, |i| labels[i]);
            DetectorMetrics {
                detector: (*name).to_owned(),
                roc_auc: roc_auc(&keys[d], &labels),
                average_precision: average_precision(&keys[d], &labels),
                precision_at_10: in_top(10.min(n)) / 10.min(n).max(1) as f64,
                precision_at_100: in_top(100.min(n)) / 100.min(n).max(1) as f64,
                recall_top_small: (positives > 0).then(|| in_top(k_small) / positives as f64),
                recall_top_large: (positives > 0).then(|| in_top(k_large) / positives as f64),
                groups_detected_small: groups.iter().filter(|g| g.detectors[d].detected).count(),
                groups_detected_large: groups
                    .iter()
                    .filter(|g| g.detectors[d].best_rank <= k_large as f64)
                    .count(),
                groups_detected_alone: groups
                    .iter()
                    .filter(|g| g.detectors[d].best_rank_alone <= k_small as f64)
                    .count(),
                groups: groups.len(),
            }
        })
        .collect();
    // Guard against NaN-free but empty streams.
    for m in &mut detectors {
        if n == 0 {
            m.precision_at_10 = 0.0;
            m.precision_at_100 = 0.0;
        }
    }
    let best_baseline = detectors
        .iter()
        .enumerate()
        .skip(FIRST_BASELINE)
        .max_by(|(ia, a), (ib, b)| {
            let key = |m: &DetectorMetrics| {
                (
                    m.average_precision.unwrap_or(-1.0),
                    m.roc_auc.unwrap_or(-1.0),
                )
            };
            let (ka, kb) = (key(a), key(b));
            ka.0.total_cmp(&kb.0)
                .then(ka.1.total_cmp(&kb.1))
                .then(ib.cmp(ia))
        })
        .map(|(i, _)| i);

    // Steps: oddity and the best baseline.
    let shown: Vec<usize> = std::iter::once(0).chain(best_baseline).collect();
    let mut step_keys: Vec<(usize, u32)> = (0..n)
        .filter_map(|i| group_of[i].map(|g| (g, rows[i].truth.step)))
        .collect();
    step_keys.sort_unstable();
    step_keys.dedup();
    let steps = step_keys
        .iter()
        .map(|&(g, step)| {
            let members: Vec<usize> = (0..n)
                .filter(|&i| group_of[i] == Some(g) && rows[i].truth.step == step)
                .collect();
            StepReport {
                group: group_names[g].clone(),
                step,
                events: members.len(),
                detectors: shown
                    .iter()
                    .map(|&d| {
                        let r = &rankings[d];
                        let best = members
                            .iter()
                            .copied()
                            .min_by(|&a, &b| {
                                r.mid_rank(a).total_cmp(&r.mid_rank(b)).then(a.cmp(&b))
                            })
                            .unwrap_or(0);
                        StepDetector {
                            detector: s.detectors[d].to_owned(),
                            action: action(best),
                            rank: r.mid_rank(best),
                            score: s.scores[d][warm + best],
                            bits: (d == 0).then(|| s.novelty[warm + best]),
                        }
                    })
                    .collect(),
            }
        })
        .collect();

    // Classes of negatives.
    let mut class_names: Vec<String> = rows
        .iter()
        .filter(|r| !r.truth.positive)
        .filter_map(|r| r.truth.class.as_deref().map(str::to_owned))
        .collect();
    class_names.sort();
    class_names.dedup();
    let ordinary: Vec<bool> = rows
        .iter()
        .map(|r| !r.truth.positive && r.truth.class.is_none())
        .collect();
    let classes = class_names
        .iter()
        .map(|c| {
            let member: Vec<bool> = rows
                .iter()
                .map(|r| !r.truth.positive && r.truth.class.as_deref() == Some(c.as_str()))
                .collect();
            let pick: Vec<usize> = (0..n).filter(|&i| member[i] || ordinary[i]).collect();
            ClassReport {
                class: c.clone(),
                events: member.iter().filter(|&&m| m).count(),
                detectors: s
                    .detectors
                    .iter()
                    .enumerate()
                    .map(|(d, name)| {
                        let r = &rankings[d];
                        let sub_scores: Vec<f64> = pick.iter().map(|&i| keys[d][i]).collect();
                        let sub_labels: Vec<bool> = pick.iter().map(|&i| member[i]).collect();
                        ClassDetector {
                            detector: (*name).to_owned(),
                            in_top_small: r.expected_in_top(k_small, |i| member[i]),
                            in_top_large: r.expected_in_top(k_large, |i| member[i]),
                            auc_vs_ordinary: roc_auc(&sub_scores, &sub_labels),
                        }
                    })
                    .collect(),
            }
        })
        .collect();

    // As the report's "at a glance" and the campaign alerts see them: campaigns of two events
    // or more (a campaign of one event is that event, which the event ranking already judges).
    let (campaign_scores, holds_attack): (Vec<f64>, Vec<bool>) = campaign_final
        .values()
        .filter(|v| v.1 >= 2)
        .map(|v| (v.0, v.2))
        .unzip();
    let campaign_ap = average_precision(&campaign_scores, &holds_attack);
    let (risks, risk_attack): (Vec<f64>, Vec<bool>) = campaign_final
        .iter()
        .filter(|(_, v)| v.1 >= 2)
        .map(|(id, v)| (campaign_risk[id], v.2))
        .unzip();
    let campaigns = CampaignReport {
        ap: campaign_ap,
        risk_ap: average_precision(&risks, &risk_attack),
        campaigns: campaign_final.len(),
        campaigns_with_attack: campaign_final.values().filter(|v| v.2).count(),
        attack_events: positives,
        attack_events_with_campaign: rows
            .iter()
            .filter(|r| r.truth.positive && r.campaign.is_some())
            .count(),
        other_events_with_campaign: rows
            .iter()
            .filter(|r| !r.truth.positive && r.campaign.is_some())
            .count(),
    };

    let mut alerts = alert_report(rows, &group_of, group_names.len());
    alerts.tactics = tactic_report(s, rows, &group_of, &group_names);

    // What fills oddity's top 0.1 %.
    let top: Vec<usize> = rankings[0].order().take(k_small).collect();
    let mut classes_top = BTreeMap::new();
    let mut principals_top = BTreeMap::new();
    let mut fields_top = BTreeMap::new();
    for &i in &top {
        let r = &rows[i];
        if !r.truth.positive {
            *classes_top
                .entry(r.truth.class.as_deref().unwrap_or("ordinary").to_owned())
                .or_insert(0) += 1;
        }
        let p = if r.principal == u32::MAX {
            "?".to_owned()
        } else {
            s.interner.name(PRINCIPAL, r.principal).to_owned()
        };
        *principals_top.entry(p).or_insert(0) += 1;
        *fields_top
            .entry(novel_field(s, r.novel_field).to_owned())
            .or_insert(0) += 1;
    }
    let oddity_top = TopComposition {
        k: top.len(),
        attacks: top.iter().filter(|&&i| rows[i].truth.positive).count(),
        classes: counted(classes_top, usize::MAX),
        principals: counted(principals_top, 8),
        fields: counted(fields_top, usize::MAX),
    };

    let secs = s.engine_time.as_secs_f64();
    StreamReport {
        name: s.name.clone(),
        family: family_of(&s.name).to_owned(),
        about: s.about.clone(),
        events: n_all,
        warm_up: warm,
        evaluated: n,
        positives,
        positives_in_warm_up: s.rows[..warm].iter().filter(|r| r.truth.positive).count(),
        k_top_small: k_small,
        k_top_large: k_large,
        seconds: s.elapsed.as_secs_f64(),
        engine_events_per_second: if secs > 0.0 { n_all as f64 / secs } else { 0.0 },
        oddity_errors: s.errors.clone(),
        baseline_unreadable: s.unreadable,
        best_baseline: best_baseline.map(|d| s.detectors[d].to_owned()),
        detectors,
        groups,
        steps,
        classes,
        campaigns,
        alerts,
        oddity_top,
    }
}

/// How many `tactic.technique` groups oddity names for their tactic ([`TacticReport`]).
fn tactic_report(
    s: &Scored,
    rows: &[crate::harness::Row],
    group_of: &[Option<usize>],
    group_names: &[String],
) -> TacticReport {
    // Per group: the bit of its tactic (None: not a `tactic.technique` group, or a tactic
    // oddity never gave in this stream), then (named, named while alerting).
    let expected: Vec<Option<Option<u16>>> = group_names
        .iter()
        .map(|g| {
            let (tactic, _) = g.split_once('.')?;
            Some(
                s.tactics
                    .iter()
                    .position(|&t| t == tactic)
                    .map(|i| 1u16 << i),
            )
        })
        .collect();
    let mut found = vec![(false, false); group_names.len()];
    let mut given = vec![0u16; group_names.len()];
    for (r, g) in rows.iter().zip(group_of) {
        let Some(g) = *g else { continue };
        given[g] |= r.tactics;
        if let Some(Some(bit)) = expected[g]
            && r.tactics & bit != 0
        {
            found[g].0 = true;
            found[g].1 |= r.severity >= ALERT_SEVERITY;
        }
    }
    let techniques = expected.iter().filter(|e| e.is_some()).count();
    TacticReport {
        techniques,
        named: found.iter().filter(|f| f.0).count(),
        named_alerting: found.iter().filter(|f| f.1).count(),
        not_named: (0..group_names.len())
            .filter(|&g| expected[g].is_some() && !found[g].0)
            .map(|g| {
                let names = s.tactics.iter().enumerate();
                let gave = names
                    .filter(|(i, _)| given[g] & 1 << i != 0)
                    .map(|(_, &t)| t);
                (group_names[g].clone(), gave.collect())
            })
            .collect(),
    }
}

/// The alerts the default settings would raise on the evaluated rows.
fn alert_report(
    rows: &[crate::harness::Row],
    group_of: &[Option<usize>],
    scenarios: usize,
) -> AlertReport {
    let (scenarios_alerted, benign_groups, alert_events, attack_alert_events) =
        alert_groups(rows, group_of, scenarios, |r| r.severity >= ALERT_SEVERITY);
    let sweep = SWEEP
        .iter()
        .map(|&t| {
            let (s, b, _, _) = alert_groups(rows, group_of, scenarios, |r| r.alert_risk >= t);
            (t, s, b)
        })
        .collect();
    let times = rows.iter().filter_map(|r| r.time);
    let (lo, hi) = times.fold((u32::MAX, 0), |(lo, hi), t| (lo.min(t), hi.max(t)));
    let days = if hi > lo {
        f64::from(hi - lo) / 86_400.0
    } else {
        0.0
    };
    AlertReport {
        scenarios_alerted,
        scenarios,
        benign_groups,
        days,
        benign_per_day: (days >= 1.0).then(|| benign_groups as f64 / days),
        alert_events,
        attack_alert_events,
        sweep,
        tactics: TacticReport::default(),
    }
}

// ---------------------------------------------------------------------------------------------
// Summary

#[derive(Debug, Clone, Serialize)]
pub struct SummaryRow {
    pub family: String,
    pub streams: usize,
    /// Means over the family's streams (of the streams where defined); detected groups summed.
    #[serde(flatten)]
    pub metrics: DetectorMetrics,
}

fn mean(v: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let xs: Vec<f64> = v.flatten().collect();
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// One row per (stream family, detector), families in first-appearance order.
pub fn summarize(reports: &[StreamReport]) -> Vec<SummaryRow> {
    let mut families: Vec<&str> = Vec::new();
    for r in reports {
        if !families.contains(&r.family.as_str()) {
            families.push(&r.family);
        }
    }
    let mut out = Vec::new();
    for fam in families {
        let of: Vec<&StreamReport> = reports.iter().filter(|r| r.family == fam).collect();
        let Some(first) = of.first() else { continue };
        for (d, det) in first.detectors.iter().enumerate() {
            let m = |f: &dyn Fn(&DetectorMetrics) -> Option<f64>| {
                mean(of.iter().map(|r| f(&r.detectors[d])))
            };
            let sum =
                |f: &dyn Fn(&DetectorMetrics) -> usize| of.iter().map(|r| f(&r.detectors[d])).sum();
            out.push(SummaryRow {
                family: fam.to_owned(),
                streams: of.len(),
                metrics: DetectorMetrics {
                    detector: det.detector.clone(),
                    roc_auc: m(&|x| x.roc_auc),
                    average_precision: m(&|x| x.average_precision),
                    precision_at_10: m(&|x| Some(x.precision_at_10)).unwrap_or(0.0),
                    precision_at_100: m(&|x| Some(x.precision_at_100)).unwrap_or(0.0),
                    recall_top_small: m(&|x| x.recall_top_small),
                    recall_top_large: m(&|x| x.recall_top_large),
                    groups_detected_small: sum(&|x| x.groups_detected_small),
                    groups_detected_large: sum(&|x| x.groups_detected_large),
                    groups_detected_alone: sum(&|x| x.groups_detected_alone),
                    groups: sum(&|x| x.groups),
                },
            });
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Rendering

/// A table to print.
#[derive(Debug, Clone)]
pub struct Table {
    pub title: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Right-aligned columns (numbers).
    pub right: Vec<bool>,
}

impl Table {
    fn new(title: impl Into<String>, header: &[&str], right: &[bool]) -> Table {
        Table {
            title: title.into(),
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
            right: right.to_vec(),
        }
    }

    pub fn render(&self, markdown: bool) -> String {
        let cols = self.header.len();
        let right = |c: usize| self.right.get(c).copied().unwrap_or(false);
        // Markdown: `*` and `|` in cells are literal.
        let escape = |text: &str| {
            if markdown {
                text.replace('*', "\\*").replace('|', "\\|")
            } else {
                text.to_owned()
            }
        };
        let escaped: Vec<Vec<String>> = std::iter::once(&self.header)
            .chain(&self.rows)
            .map(|row| row.iter().map(|c| escape(c)).collect())
            .collect();
        let mut width = vec![0; cols];
        for row in &escaped {
            for (c, cell) in row.iter().enumerate().take(cols) {
                width[c] = width[c].max(cell.chars().count());
            }
        }
        let line = |row: &Vec<String>| {
            let cells: Vec<String> = (0..cols)
                .map(|c| {
                    let cell = row.get(c).map_or("", String::as_str);
                    if right(c) {
                        format!("{cell:>w$}", w = width[c])
                    } else {
                        format!("{cell:<w$}", w = width[c])
                    }
                })
                .collect();
            if markdown {
                format!("| {} |", cells.join(" | "))
            } else {
                cells.join("  ").trim_end().to_owned()
            }
        };
        let mut out = String::new();
        if markdown {
            let _ = writeln!(out, "**{}**\n", escape(&self.title));
            let _ = writeln!(out, "{}", line(&escaped[0]));
            let sep: Vec<String> = (0..cols)
                .map(|c| {
                    let dashes = "-".repeat(width[c].max(3));
                    if right(c) {
                        format!("{}:", &dashes[1..])
                    } else {
                        dashes
                    }
                })
                .collect();
            let _ = writeln!(out, "| {} |", sep.join(" | "));
        } else {
            let _ = writeln!(out, "{}", self.title);
            let _ = writeln!(out, "{}", line(&escaped[0]));
            let total: usize = width.iter().sum::<usize>() + 2 * cols.saturating_sub(1);
            let _ = writeln!(out, "{}", "-".repeat(total));
        }
        for row in &escaped[1..] {
            let _ = writeln!(out, "{}", line(row));
        }
        out
    }
}

fn f3(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{x:.3}"))
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{:.1}%", 100.0 * x))
}

/// A count that may be an expectation over tie orders: whole numbers without decimals.
fn num(x: f64) -> String {
    if x.is_nan() {
        "-".into()
    } else if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round() as i64)
    } else {
        format!("{x:.1}")
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The columns of [`metric_cells`].
const METRICS: [&str; 10] = [
    "detector",
    "ROC-AUC",
    "AP",
    "P@10",
    "P@100",
    "R@0.1%",
    "R@1%",
    "det@0.1%",
    "det@1%",
    "alone@0.1%",
];

/// Right-aligned: every column but the first `text` ones.
fn numeric(columns: usize, text: usize) -> Vec<bool> {
    (0..columns).map(|i| i >= text).collect()
}

fn detection_table(title: &str, rows: &[DetectorMetrics]) -> Table {
    let mut t = Table::new(title, &METRICS, &numeric(METRICS.len(), 1));
    t.rows.extend(rows.iter().map(metric_cells));
    t
}

/// A detector's cells of a detection table: its name, then each metric.
fn metric_cells(m: &DetectorMetrics) -> Vec<String> {
    vec![
        m.detector.clone(),
        f3(m.roc_auc),
        f3(m.average_precision),
        format!("{:.2}", m.precision_at_10),
        format!("{:.2}", m.precision_at_100),
        pct(m.recall_top_small),
        pct(m.recall_top_large),
        format!("{}/{}", m.groups_detected_small, m.groups),
        format!("{}/{}", m.groups_detected_large, m.groups),
        format!("{}/{}", m.groups_detected_alone, m.groups),
    ]
}

/// Which step tables to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steps {
    /// Generated streams only.
    Generated,
    All,
    None,
}

/// Renders one stream's report.
pub fn render_stream(r: &StreamReport, markdown: bool, steps: Steps) -> String {
    let mut out = String::new();
    let h = if markdown { "### " } else { "== " };
    let tail = if markdown { "" } else { " ==" };
    let _ = writeln!(out, "{h}{}{tail}", r.name);
    let bullet = if markdown { "- " } else { "  " };
    for a in &r.about {
        let _ = writeln!(out, "{bullet}{a}");
    }
    let _ = writeln!(
        out,
        "{bullet}{} events; warm-up {} (first {:.0} %, scored and learned, not measured); evaluated {}; positives {} (+{} in warm-up); top 0.1 % = {} events, top 1 % = {}",
        thousands(r.events),
        thousands(r.warm_up),
        WARM_UP * 100.0,
        thousands(r.evaluated),
        r.positives,
        r.positives_in_warm_up,
        r.k_top_small,
        r.k_top_large
    );
    let _ = writeln!(
        out,
        "{bullet}{:.1} s for the pass; oddity alone {:.0} events/s{}{}",
        r.seconds,
        r.engine_events_per_second,
        if r.oddity_errors.is_empty() {
            String::new()
        } else {
            format!(
                "; oddity refused {}",
                r.oddity_errors
                    .iter()
                    .map(|(k, v)| format!("{v} ({k})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        if r.baseline_unreadable > 0 {
            format!("; {} unreadable for the baselines", r.baseline_unreadable)
        } else {
            String::new()
        }
    );
    let a = &r.alerts;
    let _ = writeln!(
        out,
        "{bullet}alerts at defaults (severity >= {}): {}/{} scenarios alerted; {} benign alert groups in {:.1} days ({}/day); {} alerting events, {} of them attack events",
        ALERT_SEVERITY.name(),
        a.scenarios_alerted,
        a.scenarios,
        a.benign_groups,
        a.days,
        a.benign_per_day
            .map_or_else(|| "-".into(), |d| format!("{d:.2}")),
        a.alert_events,
        a.attack_alert_events
    );
    let _ = writeln!(
        out,
        "{bullet}alerts at other risk thresholds (bits: scenarios alerted, benign groups): {}",
        a.sweep
            .iter()
            .map(|(t, s, b)| format!("{t:.0}: {s}/{}, {b}", a.scenarios))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let t = &a.tactics;
    if t.techniques > 0 {
        let _ = writeln!(
            out,
            "{bullet}tactics: {}/{} techniques have an event oddity gives their own ATT&CK tactic (the first word of the technique's name), {} of them an alerting one{}",
            t.named,
            t.techniques,
            t.named_alerting,
            if t.not_named.is_empty() {
                String::new()
            } else {
                let gave = t
                    .not_named
                    .iter()
                    .map(|(g, gave)| format!("{g} ({})", gave.join(", ")));
                format!(
                    "; not named (oddity's tactics): {}",
                    gave.collect::<Vec<_>>().join(", ")
                )
            }
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{}",
        detection_table(&format!("Detection, {}", r.name), &r.detectors).render(markdown)
    );

    if !r.groups.is_empty() {
        let mut header = vec!["attack".to_owned(), "events".to_owned()];
        let mut right = vec![false, true];
        for d in &r.detectors {
            header.push(format!("{} best", d.detector));
            header.push("top0.1/1%".to_owned());
            right.extend([true, true]);
        }
        let hdr: Vec<&str> = header.iter().map(String::as_str).collect();
        let mut t = Table::new(
            format!(
                "Attacks, {}: best rank (1 = most novel of {}; in parentheses, among the non-attack events only, as if it were the only attack), events in the top 0.1 % / 1 % ('*' = detected: best rank <= {})",
                r.name,
                thousands(r.evaluated),
                r.k_top_small
            ),
            &hdr,
            &right,
        );
        for g in &r.groups {
            let mut row = vec![g.name.clone(), g.events.to_string()];
            for d in &g.detectors {
                row.push(format!(
                    "{}{} ({})",
                    num(d.best_rank),
                    if d.detected { "*" } else { "" },
                    num(d.best_rank_alone)
                ));
                row.push(format!("{}/{}", num(d.in_top_small), num(d.in_top_large)));
            }
            t.rows.push(row);
        }
        let _ = writeln!(out, "{}", t.render(markdown));

        // Long lists (invictus: one group per eventName) keep only the groups with campaigns.
        let long = r.groups.len() > 12;
        let without = r
            .groups
            .iter()
            .filter(|g| g.campaign.events_with_campaign == 0)
            .count();
        let mut t = Table::new(
            format!(
                "oddity campaigns, {}: {} attack events of {} carry a campaign; {} campaigns in the stream, {} holding attack events (campaign AP {}, by risk {}); {} other events carry one{}",
                r.name,
                r.campaigns.attack_events_with_campaign,
                r.campaigns.attack_events,
                r.campaigns.campaigns,
                r.campaigns.campaigns_with_attack,
                f3(r.campaigns.ap),
                f3(r.campaigns.risk_ap),
                r.campaigns.other_events_with_campaign,
                if long && without > 0 {
                    format!(" ({without} attacks without a campaign not listed)")
                } else {
                    String::new()
                }
            ),
            &[
                "attack",
                "events",
                "cold",
                "in campaign",
                "campaign ids",
                "one id",
                "largest: events",
                "score",
                "campaign rank",
                "most novel component (events)",
            ],
            &[
                false, true, true, true, true, false, true, true, true, false,
            ],
        );
        for g in r
            .groups
            .iter()
            .filter(|g| !long || g.campaign.events_with_campaign > 0)
        {
            let c = &g.campaign;
            t.rows.push(vec![
                g.name.clone(),
                g.events.to_string(),
                g.oddity_cold.to_string(),
                c.events_with_campaign.to_string(),
                c.campaign_ids.to_string(),
                match c.campaign_ids {
                    0 => "-".into(),
                    1 => "yes".into(),
                    _ => "no".into(),
                },
                c.largest_events.to_string(),
                format!("{:.1}", c.largest_score),
                c.best_campaign_rank
                    .map_or_else(|| "-".into(), |k| format!("{k}/{}", r.campaigns.campaigns)),
                g.explained_by
                    .iter()
                    .take(3)
                    .map(|(f, n)| format!("{f} {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ]);
        }
        let _ = writeln!(out, "{}", t.render(markdown));
    }

    let show_steps = match steps {
        Steps::All => true,
        Steps::Generated => r.family == "generated",
        Steps::None => false,
    };
    if show_steps && !r.steps.is_empty() {
        let base = r.best_baseline.clone().unwrap_or_default();
        let mut t = Table::new(
            format!(
                "Attack steps, {}: the best-ranked event of each step, oddity and the best baseline ({base})",
                r.name
            ),
            &[
                "attack",
                "step",
                "n",
                "oddity: action",
                "rank",
                "score",
                "bits",
                "baseline: action",
                "rank",
                "score",
            ],
            &[
                false, true, true, false, true, true, true, false, true, true,
            ],
        );
        for s in &r.steps {
            let o = &s.detectors[0];
            let mut row = vec![
                s.group.clone(),
                s.step.to_string(),
                s.events.to_string(),
                o.action.clone(),
                num(o.rank),
                format!("{:.4}", o.score),
                o.bits.map_or_else(String::new, |b| format!("{b:.1}")),
            ];
            if let Some(b) = s.detectors.get(1) {
                row.extend([b.action.clone(), num(b.rank), format!("{:.3}", b.score)]);
            }
            t.rows.push(row);
        }
        let _ = writeln!(out, "{}", t.render(markdown));
    }

    if !r.classes.is_empty() {
        let mut header = vec!["class (negatives)".to_owned(), "events".to_owned()];
        let mut right = vec![false, true];
        for d in &r.detectors {
            header.push(format!("{} top0.1/1%", d.detector));
            right.push(true);
        }
        header.push("oddity AUC vs ordinary".into());
        right.push(true);
        let hdr: Vec<&str> = header.iter().map(String::as_str).collect();
        let mut t = Table::new(
            format!(
                "Benign novelty and other classes, {}: events in the top 0.1 % ({}) / 1 % ({})",
                r.name, r.k_top_small, r.k_top_large
            ),
            &hdr,
            &right,
        );
        for c in &r.classes {
            let mut row = vec![c.class.clone(), c.events.to_string()];
            for d in &c.detectors {
                row.push(format!("{}/{}", num(d.in_top_small), num(d.in_top_large)));
            }
            row.push(f3(c.detectors[0].auc_vs_ordinary));
            t.rows.push(row);
        }
        let _ = writeln!(out, "{}", t.render(markdown));
    }

    let top = &r.oddity_top;
    let list = |v: &[(String, usize)]| {
        v.iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        out,
        "{bullet}oddity's top 0.1 % ({} events): attacks {}; {}",
        top.k,
        top.attacks,
        list(&top.classes)
    );
    let _ = writeln!(out, "{bullet}  by most novel field: {}", list(&top.fields));
    let _ = writeln!(out, "{bullet}  by principal: {}", list(&top.principals));
    let _ = writeln!(out);
    out
}

/// Renders the summary table.
pub fn render_summary(rows: &[SummaryRow], markdown: bool) -> String {
    let header: Vec<&str> = std::iter::once("stream").chain(METRICS).collect();
    let mut t = Table::new(
        "Summary (generated: mean over seeds, detected summed)",
        &header,
        &numeric(header.len(), 2),
    );
    let mut last = String::new();
    for r in rows {
        let fam = if r.family == last {
            String::new()
        } else {
            last = r.family.clone();
            if r.streams > 1 {
                format!("{} (x{})", r.family, r.streams)
            } else {
                r.family.clone()
            }
        };
        let mut row = vec![fam];
        row.extend(metric_cells(&r.metrics));
        t.rows.push(row);
    }
    t.render(markdown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let mut t = Table::new("T", &["a", "bb"], &[false, true]);
        t.rows.push(vec!["xyz".into(), "1".into()]);
        assert_eq!(t.render(false), "T\na    bb\n-------\nxyz   1\n");
        assert!(t.render(true).contains("| xyz |  1 |"));
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(num(2.0), "2");
        assert_eq!(num(2.5), "2.5");
    }
}
