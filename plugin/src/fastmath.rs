//! `log2`, `exp2` and `tanh` in plain arithmetic: several times cheaper than the platform's `libm`
//! inside WebAssembly, and bit-for-bit the same natively and in the component (the platform
//! functions differ in their last bits between glibc and Rust's `libm`), so a snapshot learned
//! by one continues identically in the other.
//!
//! Accuracy: relative error below 1e-12 for `log2` on positive normal numbers and for `exp2` on
//! [-1022, 1023], absolute error below 1e-12 for `tanh`; the model's statistics need far less.

const LN2_INV_2: f64 = 2.0 * std::f64::consts::LOG2_E;

/// log2(x) for x > 0 (NaN or -inf otherwise, like `f64::log2`).
pub fn log2(x: f64) -> f64 {
    if x.is_nan() || x < f64::MIN_POSITIVE || !x.is_finite() {
        return x.log2();
    }
    let bits = x.to_bits();
    let mut e = ((bits >> 52) & 0x7ff) as i64 - 1023;
    // Mantissa in [1, 2), then moved to [sqrt(1/2), sqrt(2)) so that |z| <= 0.1716 below.
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    // log2(m) = 2/ln2 * atanh(z), z = (m - 1) / (m + 1); atanh(z) = z + z^3/3 + z^5/5 + ...
    let z = (m - 1.0) / (m + 1.0);
    let z2 = z * z;
    let series = 1.0
        + z2 * (1.0 / 3.0
            + z2 * (1.0 / 5.0
                + z2 * (1.0 / 7.0
                    + z2 * (1.0 / 9.0
                        + z2 * (1.0 / 11.0 + z2 * (1.0 / 13.0 + z2 * (1.0 / 15.0)))))));
    e as f64 + LN2_INV_2 * z * series
}

/// 1 / k!, for k = 0..=13: the Taylor coefficients of e^t.
const INV_FACTORIAL: [f64; 14] = {
    let mut c = [1.0; 14];
    let mut k = 1;
    while k < 14 {
        c[k] = c[k - 1] / k as f64;
        k += 1;
    }
    c
};

/// 2^x.
pub fn exp2(x: f64) -> f64 {
    if !(-1022.0..=1023.0).contains(&x) {
        return x.exp2();
    }
    // Ties to even is one instruction (WebAssembly's `f64.nearest`); `round` is a library call.
    let n = x.round_ties_even();
    // 2^f for f in [-1/2, 1/2]: e^(f ln2) by its Taylor series to the 13th power, in Horner
    // form with constant coefficients (multiplications only: a chain of thirteen divisions
    // was most of the model's time).
    let t = (x - n) * std::f64::consts::LN_2;
    let mut sum = INV_FACTORIAL[13];
    for &c in INV_FACTORIAL[..13].iter().rev() {
        sum = sum * t + c;
    }
    sum * f64::from_bits(((n as i64 + 1023) as u64) << 52)
}

/// tanh(x), from [`exp2`]: the same bits natively and in the component (the platform's `tanh`
/// is a library call whose last bits differ between glibc and Rust's `libm`).
pub fn tanh(x: f64) -> f64 {
    let a = x.abs();
    let t = if a < 1e-4 {
        // 1 - e^(-2a) loses digits here; the series does not (error below a^5).
        a - a * a * a / 3.0
    } else if a > 20.0 {
        1.0
    } else {
        let e = exp2(-2.0 * std::f64::consts::LOG2_E * a);
        (1.0 - e) / (1.0 + e)
    };
    if x.is_nan() { x } else { t.copysign(x) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_to_the_platform() {
        let mut x = 1e-300;
        while x < 1e300 {
            let (got, want) = (log2(x), x.log2());
            assert!(
                (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                "log2({x}) = {got}, not {want}"
            );
            x *= 1.37;
        }
        for i in -99_000..=99_000 {
            let x = f64::from(i) / 97.3;
            let (got, want) = (exp2(x), x.exp2());
            assert!(
                (got - want).abs() <= 1e-12 * want,
                "exp2({x}) = {got}, not {want}"
            );
        }
        for i in -40_000..=40_000 {
            let x = f64::from(i) / 1_000.0;
            let (got, want) = (tanh(x), x.tanh());
            assert!((got - want).abs() <= 1e-12, "tanh({x}) = {got}, not {want}");
        }
        assert_eq!(tanh(0.0), 0.0);
        assert_eq!(tanh(1e-300), 1e-300);
        assert!(tanh(f64::NAN).is_nan());
        assert_eq!(log2(1.0), 0.0);
        assert_eq!(exp2(0.0), 1.0);
        assert!(log2(0.0).is_infinite() && log2(-1.0).is_nan());
    }
}
