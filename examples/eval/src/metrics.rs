//! Ranking metrics with ties handled explicitly.
//!
//! Every metric here looks at a ranking of events by a detector's score, highest first. Events
//! with equal scores form a *tie group*; nothing about their order is known, so every metric is
//! the expectation over a uniformly random order within each tie group (ties "count half"):
//!
//! - [`roc_auc`]: the Mann–Whitney statistic with mid-ranks, `P(s+ > s-) + ½ P(s+ = s-)`.
//! - [`average_precision`]: the step-wise area under the precision–recall curve with one
//!   threshold per *distinct* score (a whole tie group enters at once), as scikit-learn's
//!   `average_precision_score` computes it: `Σ (R_t − R_{t−1}) · P_t`. Deterministic, and
//!   between the pessimistic and optimistic orders of a tie group.
//! - [`Ranking::expected_in_top`], [`precision_at_k`], [`recall_at_k`]: the expected number
//!   of events of a set among the first `k`: a tie group straddling position `k` contributes
//!   each of its events with probability `(slots left) / (group size)`.
//! - [`Ranking::mid_rank`]: the expected 1-based rank of an event, `1 + above + (ties − 1)/2`.

/// A descending ranking of scores, with tie groups.
#[derive(Debug, Clone)]
pub struct Ranking {
    /// For each event, the number of events strictly above it.
    above: Vec<u32>,
    /// For each event, the size of its tie group (itself included).
    group: Vec<u32>,
    /// Event indices, highest score first (ties in index order).
    order: Vec<u32>,
}

/// Orders scores descending; NaN ranks lowest.
fn desc(a: f64, b: f64) -> std::cmp::Ordering {
    let key = |x: f64| if x.is_nan() { f64::NEG_INFINITY } else { x };
    key(b).total_cmp(&key(a))
}

impl Ranking {
    pub fn new(scores: &[f64]) -> Ranking {
        let mut order: Vec<u32> = (0..scores.len() as u32).collect();
        order.sort_by(|&a, &b| desc(scores[a as usize], scores[b as usize]).then(a.cmp(&b)));
        let mut above = vec![0; scores.len()];
        let mut group = vec![0; scores.len()];
        let mut start = 0;
        while start < order.len() {
            let s = scores[order[start] as usize];
            let mut end = start + 1;
            while end < order.len() && desc(s, scores[order[end] as usize]).is_eq() {
                end += 1;
            }
            for &i in &order[start..end] {
                above[i as usize] = start as u32;
                group[i as usize] = (end - start) as u32;
            }
            start = end;
        }
        Ranking {
            above,
            group,
            order,
        }
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Event indices, best first (ties in index order).
    pub fn order(&self) -> impl Iterator<Item = usize> + '_ {
        self.order.iter().map(|&i| i as usize)
    }

    /// Expected 1-based rank of event `i` under a random order within its tie group.
    pub fn mid_rank(&self, i: usize) -> f64 {
        1.0 + f64::from(self.above[i]) + f64::from(self.group[i] - 1) / 2.0
    }

    /// Probability that event `i` is among the first `k` under a random order within ties.
    pub fn p_in_top(&self, i: usize, k: usize) -> f64 {
        let above = self.above[i] as usize;
        let group = self.group[i] as usize;
        if above + group <= k {
            1.0
        } else if above >= k {
            0.0
        } else {
            (k - above) as f64 / group as f64
        }
    }

    /// Expected number of the events selected by `member` among the first `k`.
    pub fn expected_in_top(&self, k: usize, member: impl Fn(usize) -> bool) -> f64 {
        (0..self.len())
            .filter(|&i| member(i))
            .map(|i| self.p_in_top(i, k))
            .sum()
    }
}

/// `k` for "the top `fraction` of `n` events": `ceil(fraction · n)`, at least 1.
pub fn top_k(n: usize, fraction: f64) -> usize {
    ((fraction * n as f64).ceil() as usize).clamp(1, n.max(1))
}

/// ROC-AUC by the Mann–Whitney statistic with mid-ranks for ties; `None` without both classes.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    assert_eq!(scores.len(), labels.len());
    let r = Ranking::new(scores);
    let n = scores.len() as f64;
    let pos = labels.iter().filter(|&&l| l).count() as f64;
    let neg = n - pos;
    if pos == 0.0 || neg == 0.0 {
        return None;
    }
    // Ascending mid-rank = n + 1 − descending mid-rank.
    let rank_sum: f64 = (0..scores.len())
        .filter(|&i| labels[i])
        .map(|i| n + 1.0 - r.mid_rank(i))
        .sum();
    Some((rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg))
}

/// Average precision with one threshold per distinct score (see the module docs); `None`
/// without positives.
pub fn average_precision(scores: &[f64], labels: &[bool]) -> Option<f64> {
    assert_eq!(scores.len(), labels.len());
    let r = Ranking::new(scores);
    let pos = labels.iter().filter(|&&l| l).count();
    if pos == 0 {
        return None;
    }
    let (mut tp, mut seen, mut ap) = (0usize, 0usize, 0.0);
    let order: Vec<usize> = r.order().collect();
    let mut start = 0;
    while start < order.len() {
        let size = r.group[order[start]] as usize;
        let new_tp = order[start..start + size]
            .iter()
            .filter(|&&i| labels[i])
            .count();
        seen += size;
        if new_tp > 0 {
            tp += new_tp;
            ap += (new_tp as f64 / pos as f64) * (tp as f64 / seen as f64);
        }
        start += size;
    }
    Some(ap)
}

/// Expected precision among the first `k` events.
pub fn precision_at_k(scores: &[f64], labels: &[bool], k: usize) -> f64 {
    let r = Ranking::new(scores);
    let k = k.min(scores.len());
    if k == 0 {
        return 0.0;
    }
    r.expected_in_top(k, |i| labels[i]) / k as f64
}

/// Expected share of the positives among the first `k` events; `None` without positives.
pub fn recall_at_k(scores: &[f64], labels: &[bool], k: usize) -> Option<f64> {
    let r = Ranking::new(scores);
    let pos = labels.iter().filter(|&&l| l).count();
    (pos > 0).then(|| r.expected_in_top(k, |i| labels[i]) / pos as f64)
}

/// Dense ranks of `(primary, secondary)` pairs, higher is better: a single score that orders
/// events by `primary`, ties broken by `secondary` (oddity: `score`, then `novelty`).
pub fn lexicographic_key(primary: &[f64], secondary: &[f64]) -> Vec<f64> {
    assert_eq!(primary.len(), secondary.len());
    let mut order: Vec<usize> = (0..primary.len()).collect();
    let cmp =
        |a: usize, b: usize| desc(primary[b], primary[a]).then(desc(secondary[b], secondary[a]));
    order.sort_by(|&a, &b| cmp(a, b));
    let mut key = vec![0.0; primary.len()];
    let mut dense = 0.0;
    for (j, &i) in order.iter().enumerate() {
        if j > 0 && cmp(order[j - 1], i).is_ne() {
            dense += 1.0;
        }
        key[i] = dense;
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn auc_counts_ties_half() {
        // Positives 0.9 and 0.8; negatives 0.8 and 0.1. Pairs: 0.9>0.8, 0.9>0.1, 0.8=0.8 (½),
        // 0.8>0.1: 3.5 of 4.
        let s = [0.9, 0.8, 0.8, 0.1];
        let l = [true, false, true, false];
        assert!(close(roc_auc(&s, &l).expect("both classes"), 0.875));
        // All tied: 0.5 whatever the labels.
        assert!(close(
            roc_auc(&[1.0; 5], &[true, false, false, true, false]).expect("both"),
            0.5
        ));
        // Perfect and reversed.
        assert!(close(
            roc_auc(&[3.0, 2.0, 1.0], &[true, false, false]).expect("both"),
            1.0
        ));
        assert!(close(
            roc_auc(&[1.0, 2.0, 3.0], &[true, false, false]).expect("both"),
            0.0
        ));
        assert!(roc_auc(&[1.0, 2.0], &[false, false]).is_none());
    }

    #[test]
    fn average_precision_by_distinct_threshold() {
        // Threshold 0.9: P=1, ΔR=½. Threshold 0.8 (a tie of one positive and one negative):
        // P=2/3, ΔR=½. AP = ½ + ⅓.
        let s = [0.9, 0.8, 0.8, 0.1];
        let l = [true, false, true, false];
        assert!(close(
            average_precision(&s, &l).expect("positives"),
            0.5 + 1.0 / 3.0
        ));
        // Without ties: positives at ranks 1 and 3: (1 + 2/3) / 2.
        let s = [4.0, 3.0, 2.0, 1.0];
        let l = [true, false, true, false];
        assert!(close(
            average_precision(&s, &l).expect("positives"),
            (1.0 + 2.0 / 3.0) / 2.0
        ));
        // All tied: the base rate.
        assert!(close(
            average_precision(&[0.0; 4], &[true, false, false, false]).expect("positives"),
            0.25
        ));
        assert!(average_precision(&[1.0], &[false]).is_none());
    }

    #[test]
    fn top_k_expectations_split_tie_groups() {
        let s = [0.9, 0.8, 0.8, 0.1];
        let l = [true, false, true, false];
        // Top 2: the 0.9 positive, plus one of the tied pair (a positive with probability ½).
        assert!(close(precision_at_k(&s, &l, 2), 0.75));
        assert!(close(recall_at_k(&s, &l, 2).expect("positives"), 0.75));
        assert!(close(recall_at_k(&s, &l, 1).expect("positives"), 0.5));
        assert!(close(recall_at_k(&s, &l, 3).expect("positives"), 1.0));
        assert!(close(precision_at_k(&s, &l, 10), 0.5), "k is capped at n");
        let r = Ranking::new(&s);
        assert!(close(r.mid_rank(0), 1.0));
        assert!(close(r.mid_rank(1), 2.5));
        assert!(close(r.mid_rank(2), 2.5));
        assert!(close(r.mid_rank(3), 4.0));
        assert!(close(r.p_in_top(2, 2), 0.5));
        assert_eq!(top_k(2000, 0.001), 2);
        assert_eq!(top_k(2001, 0.001), 3);
        assert_eq!(top_k(10, 0.001), 1);
    }

    #[test]
    fn lexicographic_key_breaks_ties_by_the_second_score() {
        let key = lexicographic_key(&[0.5, 0.9, 0.5, 0.5], &[1.0, 0.0, 3.0, 1.0]);
        assert_eq!(key, vec![0.0, 2.0, 1.0, 0.0]);
    }
}
