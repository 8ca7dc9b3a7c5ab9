//! The running distribution of raw novelty, which turns bits into a calibrated `score`.
//!
//! `score` is the (forgetting) fraction of previously scored events (cold ones weighted 1/20)
//! whose raw novelty was lower than this event's, interpolated within a fine log-spaced
//! histogram. It therefore means
//! the same on every stream: 0.999 is "more novel than 99.9% of what this engine has judged".
//! Decay is done by weighting new events more (`2^(t / half-life)`) and renormalising rarely,
//! so each update is O(1) and the result is deterministic.

/// Bins per octave of raw novelty.
const PER_OCTAVE: f64 = 16.0;
/// Novelty below 2^LOW bits counts as none (bin 0).
const LOW: f64 = -6.0;
/// Octaves covered above 2^LOW; the last bin takes everything beyond.
const OCTAVES: f64 = 20.0;
pub const BINS: usize = 1 + (PER_OCTAVE * OCTAVES) as usize + 1;

use crate::fastmath::{exp2, log2};

#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    pub bins: Vec<f64>,
    pub total: f64,
    /// Event time (seconds) at which a weight of 1 was last renormalised.
    pub epoch: u32,
    inv_half_life: f64,
}

pub(crate) fn bin_of(x: f64) -> (usize, f64) {
    if x.is_nan() || x < exp2(LOW) {
        return (0, 0.5);
    }
    let pos = (log2(x) - LOW) * PER_OCTAVE;
    if pos >= PER_OCTAVE * OCTAVES {
        return (BINS - 1, 0.5);
    }
    (1 + pos as usize, pos.fract())
}

impl Calibration {
    pub fn new(half_life_secs: Option<u64>) -> Calibration {
        Calibration {
            bins: vec![0.0; BINS],
            total: 0.0,
            epoch: 0,
            inv_half_life: half_life_secs.map_or(0.0, |h| 1.0 / h as f64),
        }
    }

    /// Rebuilds a calibration from snapshot parts. `total` is stored, not re-summed, so that a
    /// restored engine continues bit for bit.
    pub fn from_parts(
        half_life_secs: Option<u64>,
        bins: Vec<f64>,
        total: f64,
        epoch: u32,
    ) -> Result<Calibration, String> {
        if bins.len() != BINS {
            return Err(format!(
                "calibration has {} bins, expected {BINS}",
                bins.len()
            ));
        }
        if bins.iter().any(|b| !b.is_finite() || *b < 0.0) {
            return Err("calibration has a negative or non-finite bin".into());
        }
        if !total.is_finite() || total < 0.0 {
            return Err("calibration total is negative or not finite".into());
        }
        Ok(Calibration {
            bins,
            total,
            epoch,
            inv_half_life: half_life_secs.map_or(0.0, |h| 1.0 / h as f64),
        })
    }

    /// The calibrated score of raw novelty `x` against the events seen so far: its mid-rank
    /// among them and itself, `(below + 1/2) / (seen + 1)`. With few events seen the score
    /// cannot be extreme: it takes 1,000 events to reach 0.9995.
    pub fn score(&self, x: f64) -> f64 {
        let (bin, frac) = bin_of(x);
        let below: f64 = self.bins[..bin].iter().sum();
        ((below + frac * self.bins[bin] + 0.5) / (self.total + 1.0)).clamp(0.0, 1.0)
    }

    /// Adds raw novelty `x` observed at event time `now`.
    #[cfg(test)]
    pub fn learn(&mut self, x: f64, now: u32) {
        self.learn_weighted(x, now, 1.0);
    }

    /// Adds raw novelty `x` observed at event time `now`, counted `w` times (`0 < w <= 1`).
    pub fn learn_weighted(&mut self, x: f64, now: u32, w: f64) {
        let weight = w * self.factor(now);
        let (bin, _) = bin_of(x);
        self.bins[bin] += weight;
        self.total += weight;
    }

    /// The weight of an event at `now` against one at the epoch, renormalising first when it
    /// would grow too large (or nothing was learned yet).
    fn factor(&mut self, now: u32) -> f64 {
        if self.inv_half_life == 0.0 {
            return 1.0;
        }
        // An event later than the epoch weighs more, an earlier one (out of order) less.
        let factor = exp2((f64::from(now) - f64::from(self.epoch)) * self.inv_half_life);
        if factor > 1e12 || self.total == 0.0 {
            // Renormalise: old mass shrinks by the same factor, new events weigh 1 again.
            // (An empty distribution's epoch may lie far ahead: nothing to shrink.)
            let shrink = 1.0 / factor;
            if shrink.is_finite() {
                self.bins.iter_mut().for_each(|b| *b *= shrink);
            } else {
                self.bins.fill(0.0);
            }
            self.total = self.bins.iter().sum();
            self.epoch = now;
            1.0
        } else {
            factor
        }
    }

    /// Adds weights learned elsewhere, per bin, each relative to an event at `reference`
    /// (see [`crate::share::Outbox::calibrated`]).
    pub fn merge(&mut self, bins: &[(usize, f64)], reference: u32) {
        let factor = self.factor(reference);
        for &(bin, w) in bins {
            self.bins[bin] += w * factor;
            self.total += w * factor;
        }
    }

    /// 1 / half-life in seconds (0: never forgets).
    pub fn inv_half_life(&self) -> f64 {
        self.inv_half_life
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_ranks() {
        let mut c = Calibration::new(None);
        assert_eq!(c.score(3.0), 0.5);
        c.learn(1.0, 0);
        assert_eq!(c.score(1e9), 0.75, "one event seen: at most (1 + 1/2) / 2");
        for i in 1..1000 {
            c.learn(f64::from(i) / 10.0, 0);
        }
        assert!(c.score(0.0) < 0.01);
        let mid = c.score(50.0);
        assert!((mid - 0.5).abs() < 0.02, "{mid}");
        assert!(c.score(1e9) > 0.999 && c.score(1e9) < 1.0);
        assert!(c.score(20.0) < c.score(20.5), "monotone within a bin");
    }

    #[test]
    fn a_weighted_event_counts_its_weight_at_any_time() {
        // With forgetting on, a cold event (weight 1/20) counts 1/20 of a warm one of the same
        // time, however far from the epoch (it counted fully once time had moved on).
        let mut c = Calibration::new(Some(3_600));
        c.learn(1.0, 0);
        for now in [10, 7_200, 86_400] {
            let before = c.total;
            c.learn_weighted(100.0, now, 0.05);
            let cold = c.total - before;
            c.learn(100.0, now);
            let warm = c.total - before - cold;
            assert!(
                (cold / warm - 0.05).abs() < 1e-12,
                "at {now}: {cold} vs {warm}"
            );
        }
        // An event a day older than the latest weighs 2^-24 of one at the latest time, also
        // when it is older than the epoch (renormalised just before it).
        let mut c = Calibration::new(Some(3_600));
        c.learn(1.0, 86_400);
        let epoch = c.total;
        c.learn(1.0, 0);
        assert!(((c.total - epoch) * 2f64.powi(24) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn old_mass_fades() {
        let day = 86_400;
        let mut c = Calibration::new(Some(day as u64));
        for _ in 0..1000 {
            c.learn(10.0, 0);
        }
        assert!(c.score(5.0) < 0.01);
        for _ in 0..1000 {
            c.learn(1.0, 30 * day);
        }
        assert!(
            c.score(5.0) > 0.99,
            "ten-bit events from a month ago no longer count"
        );
    }
}
