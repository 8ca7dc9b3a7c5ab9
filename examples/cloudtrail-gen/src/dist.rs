//! Small random distributions on top of the seeded RNG (Poisson, normal, geometric, weighted
//! choice), so the crate needs nothing beyond `rand`.

use rand::Rng as _;

use crate::Rng;

/// A Poisson count with mean `lambda` (Knuth for small means, a rounded normal above 30).
pub(crate) fn poisson(rng: &mut Rng, lambda: f64) -> u32 {
    if lambda <= 0.0 {
        return 0;
    }
    if lambda > 30.0 {
        let x = lambda + normal(rng) * lambda.sqrt();
        return x.round().max(0.0) as u32;
    }
    let l = (-lambda).exp();
    let mut k = 0u32;
    let mut p = 1.0;
    loop {
        p *= rng.random::<f64>();
        if p <= l {
            return k;
        }
        k += 1;
    }
}

/// A standard normal variate (Box–Muller).
pub(crate) fn normal(rng: &mut Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Number of failures before the first success, with the given mean.
pub(crate) fn geometric(rng: &mut Rng, mean: f64) -> u32 {
    if mean <= 0.0 {
        return 0;
    }
    let p = 1.0 / (1.0 + mean);
    let u: f64 = rng.random::<f64>().max(1e-12);
    (u.ln() / (1.0 - p).ln()).floor().min(10_000.0) as u32
}

/// An exponential variate with the given mean.
pub(crate) fn exponential(rng: &mut Rng, mean: f64) -> f64 {
    let u: f64 = rng.random::<f64>().max(1e-12);
    -mean * u.ln()
}

/// Index drawn from cumulative weights (`cum` ascending, last = total).
pub(crate) fn pick_cum(rng: &mut Rng, cum: &[f64]) -> usize {
    let total = cum.last().copied().unwrap_or(0.0);
    let x = rng.random::<f64>() * total;
    cum.partition_point(|&c| c <= x)
        .min(cum.len().saturating_sub(1))
}

/// Cumulative sums of weights.
pub(crate) fn cumulative(weights: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut acc = 0.0;
    weights
        .into_iter()
        .map(|w| {
            acc += w;
            acc
        })
        .collect()
}

/// Uniform integer in `[lo, hi]` (inclusive; `hi < lo` yields `lo`).
pub(crate) fn between(rng: &mut Rng, lo: u32, hi: u32) -> u32 {
    if hi <= lo {
        lo
    } else {
        rng.random_range(lo..=hi)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;

    use super::*;

    #[test]
    fn means_are_close() {
        let mut rng = Rng::seed_from_u64(5);
        let n = 20_000;
        let p: u32 = (0..n).map(|_| poisson(&mut rng, 3.0)).sum();
        assert!((f64::from(p) / f64::from(n) - 3.0).abs() < 0.1);
        let g: u32 = (0..n).map(|_| geometric(&mut rng, 4.0)).sum();
        assert!((f64::from(g) / f64::from(n) - 4.0).abs() < 0.2);
        let big: u32 = (0..1000).map(|_| poisson(&mut rng, 100.0)).sum();
        assert!((f64::from(big) / 1000.0 - 100.0).abs() < 2.0);
        let cum = cumulative([1.0, 0.0, 3.0]);
        let mut counts = [0u32; 3];
        for _ in 0..4000 {
            counts[pick_cum(&mut rng, &cum)] += 1;
        }
        assert_eq!(counts[1], 0);
        assert!(counts[2] > counts[0] * 2);
    }
}
