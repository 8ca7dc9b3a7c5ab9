//! `log2`, `exp2` and `tanh` in plain arithmetic: several times cheaper than the platform's `libm`
//! inside WebAssembly, and bit-for-bit the same natively and in the component (the platform
//! functions differ in their last bits between glibc and Rust's `libm`), so a snapshot learned
//! by one continues identically in the other.
//!
//! Accuracy: relative error below 1e-15 for `log2` on positive normal numbers and for `exp2` on
//! [-1022, 1023] (measured: 4.6e-16 and 3.7e-16, a few units in the last place), absolute error
//! below 1e-12 for `tanh`; the model's statistics need far less.

// Both functions reduce their argument to a tiny interval around a table point, so that a short
// polynomial finishes the job: a Horner chain's length is what these cost (each step waits for
// the one before), and the series these replaced took 8 (`log2`, plus a division) and 13 (`exp2`)
// steps. The tables are computed at compile time, in plain `f64` arithmetic, by series long
// enough to be exact to the last bit or so.

/// log2(k / 128) for k = 88..=181 (the mantissa range [sqrt(1/2), sqrt(2)) in steps of 1/128).
const LOG2_TABLE: [f64; 94] = {
    let mut t = [0.0; 94];
    let mut i = 0;
    while i < 94 {
        // log2(c) = 2/ln2 * atanh(z), z = (c - 1) / (c + 1), |z| < 0.172: 40 terms of the series
        // leave an error below 1e-30.
        let c = (88 + i) as f64 / 128.0;
        let z = (c - 1.0) / (c + 1.0);
        let z2 = z * z;
        let mut sum = 0.0;
        let mut k = 79;
        while k >= 1 {
            sum = sum * z2 + 1.0 / k as f64;
            k -= 2;
        }
        t[i] = 2.0 * std::f64::consts::LOG2_E * z * sum;
        i += 1;
    }
    t
};

/// 128 / k for k = 88..=181.
const INV_TABLE: [f64; 94] = {
    let mut t = [0.0; 94];
    let mut i = 0;
    while i < 94 {
        t[i] = 128.0 / (88 + i) as f64;
        i += 1;
    }
    t
};

/// The bits of the smallest positive normal number and of infinity: `x` is a positive normal
/// number when its bits minus the first are below their difference (one unsigned comparison).
const MIN_NORMAL_BITS: u64 = 0x0010_0000_0000_0000;
const INFINITY_BITS: u64 = 0x7ff0_0000_0000_0000;
/// The mantissa bits of a double, and those of sqrt(2) (above which the mantissa is halved).
const MANTISSA: u64 = 0x000f_ffff_ffff_ffff;
const SQRT_2_MANTISSA: u64 = 0x0006_a09e_667f_3bcd;

/// log2(x) for x > 0 (NaN or -inf otherwise, like `f64::log2`).
#[inline]
pub fn log2(x: f64) -> f64 {
    let bits = x.to_bits();
    if bits.wrapping_sub(MIN_NORMAL_BITS) >= INFINITY_BITS - MIN_NORMAL_BITS {
        return x.log2();
    }
    // Mantissa in [1, 2), or halved into [sqrt(1/2), 1) when above sqrt(2), so that x just
    // below a power of two does not lose its digits in e + log2(m) ~ (e + 1) - tiny.
    let mantissa = bits & MANTISSA;
    let halved = mantissa > SQRT_2_MANTISSA;
    let e = ((bits >> 52) as i64) - 1023 + i64::from(halved);
    let m = f64::from_bits(mantissa | if halved { 0x3fe0 << 48 } else { 0x3ff0 << 48 });
    // The table point c = k/128 nearest m, k = floor(128 m + 1/2), from the mantissa bits:
    // 128 m is 64 + mantissa / 2^46 when halved, else 128 + mantissa / 2^45. m - c is exact
    // (Sterbenz), and |r| = |m - c| / c is below 1/176. c = 1 is a table point, so near 1 the
    // result is r's series alone and keeps its relative accuracy.
    let k = if halved {
        64 + ((mantissa + (1 << 45)) >> 46)
    } else {
        128 + ((mantissa + (1 << 44)) >> 45)
    };
    let i = (k as usize).saturating_sub(88).min(93);
    let c = (88 + i) as f64 / 128.0;
    let r = (m - c) * INV_TABLE[i];
    // ln(1 + r) = r - r^2/2 + r^3/3 - ...: eight terms leave an error below r^9/9 < 1e-21.
    let ln1p = r
        * (1.0
            + r * (-1.0 / 2.0
                + r * (1.0 / 3.0
                    + r * (-1.0 / 4.0
                        + r * (1.0 / 5.0
                            + r * (-1.0 / 6.0 + r * (1.0 / 7.0 + r * (-1.0 / 8.0))))))));
    e as f64 + (LOG2_TABLE[i] + ln1p * std::f64::consts::LOG2_E)
}

/// 2^(j / 64) for j = 0..64.
const EXP2_TABLE: [f64; 64] = {
    let mut t = [0.0; 64];
    let mut j = 0;
    while j < 64 {
        // e^(j/64 ln2) by its Taylor series: 30 terms at t < 0.7 leave an error below 1e-40.
        let x = j as f64 / 64.0 * std::f64::consts::LN_2;
        let mut sum = 1.0;
        let mut k = 30;
        while k >= 1 {
            sum = 1.0 + sum * x / k as f64;
            k -= 1;
        }
        t[j] = sum;
        j += 1;
    }
    t
};

/// 1.5 * 2^52: a double in [2^52, 2^53) has integers for its ulp.
const ROUNDER: f64 = 6_755_399_441_055_744.0;

/// 2^x.
#[inline]
pub fn exp2(x: f64) -> f64 {
    if !(-1022.0..=1023.0).contains(&x) {
        return x.exp2();
    }
    // x = k/64 + f with |f| <= 1/128. Adding 1.5 * 2^52 rounds x*64 to an integer (ties to
    // even: the ulp there is 1), which the low bits of the sum then hold as k + 2^51; k*64 is
    // exact (a power of two). No float-to-integer conversion: a checked, saturating sequence in
    // WebAssembly.
    let shifted = x * 64.0 + ROUNDER;
    let k = (shifted.to_bits() as i64) - (ROUNDER.to_bits() as i64);
    let f = x - (shifted - ROUNDER) / 64.0;
    let (q, j) = (k.div_euclid(64), k.rem_euclid(64) as usize);
    // 2^f = e^t, t = f ln2, |t| < 0.0055: six Taylor terms leave an error below t^7/7! < 3e-20.
    let t = f * std::f64::consts::LN_2;
    let p = 1.0
        + t * (1.0
            + t * (1.0 / 2.0
                + t * (1.0 / 6.0 + t * (1.0 / 24.0 + t * (1.0 / 120.0 + t * (1.0 / 720.0))))));
    EXP2_TABLE[j] * p * f64::from_bits(((q + 1023) as u64) << 52)
}

/// `x.max(y)` without a call: inside WebAssembly `f64::max` is a call to the C library's `fmax`
/// (the `f64.max` instruction treats NaN otherwise). The same result as `fmax`: a NaN argument
/// gives the other, and +0 is above -0.
#[inline]
pub fn max(x: f64, y: f64) -> f64 {
    if x.is_nan() || (!y.is_nan() && (y > x || (y == x && x.is_sign_negative()))) {
        y
    } else {
        x
    }
}

/// `x.min(y)` without a call, as [`max`]: the same result as the C library's `fmin` (a NaN
/// argument gives the other, and -0 is below +0).
#[inline]
pub fn min(x: f64, y: f64) -> f64 {
    if x.is_nan() || (!y.is_nan() && (y < x || (y == x && y.is_sign_negative()))) {
        y
    } else {
        x
    }
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
        let close = |got: f64, want: f64| (got - want).abs() <= 1e-15 * want.abs();
        let mut x = 1e-300;
        while x < 1e300 {
            assert!(close(log2(x), x.log2()), "log2({x}) = {}", log2(x));
            x *= 1.0137;
        }
        // Around 1 and a power of two, where e + log2(m) could cancel, and every table interval.
        for i in 1..2_000_000 {
            let x = 0.5 + f64::from(i) * 1e-6;
            assert!(close(log2(x), x.log2()), "log2({x}) = {}", log2(x));
        }
        for i in -990_000..=990_000 {
            let x = f64::from(i) / 967.3;
            assert!(close(exp2(x), x.exp2()), "exp2({x}) = {}", exp2(x));
        }
        assert_eq!(exp2(-1022.0), f64::MIN_POSITIVE);
        assert_eq!(exp2(1023.0), 2f64.powi(1023));
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
