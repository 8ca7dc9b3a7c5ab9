//! The note: the score record as JSON, written straight from the verdict (no per-field strings)
//! for the host to add to its line.
//!
//! The shape is `wit/note.schema.json`, read back by the host's `annotation` module; a test in
//! `engine.rs` checks the notes agree with the typed record.

use std::borrow::Cow;

use crate::model::Judgement;
use crate::stakes::{Stakes, tactic_names};

/// Decimals of scores (0..1) and of bits: shorter lines, and cheaper to write (the typed record
/// keeps full precision).
const SCORE: u32 = 6;
const BITS: u32 = 3;

/// Where component `i` of the layout comes from.
#[derive(Debug, Clone)]
pub struct Slot {
    /// Index of the profile field.
    pub field: usize,
    /// The view's name, or "entity".
    pub view: String,
}

/// Everything needed to render one annotation, borrowed.
#[derive(Debug)]
pub struct Note<'a> {
    pub verdict: &'a Judgement,
    pub values: &'a [Cow<'a, str>],
    pub names: &'a [String],
    pub layout: &'a [Slot],
    pub entity: &'a [usize],
    pub stakes: &'a Stakes,
    pub views: &'a [String],
    pub id: Option<&'a str>,
    pub time: Option<&'a str>,
}

/// Bytes that JSON strings must escape: control characters, `"` and `\\`.
static ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Writes `s` as a JSON string. Most values need no escape: they are copied as they are.
fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    contents(out, s);
    out.push(b'"');
}

/// Whether `s` has a byte JSON strings must escape, sixteen (with WebAssembly SIMD) or eight
/// bytes at a time (a byte loop was 5 % of the component's time: every value of every
/// annotation passes here).
fn needs_escape(s: &[u8]) -> bool {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    let s = {
        let mut s = s;
        while let Some((chunk, rest)) = s.split_first_chunk::<16>() {
            if crate::extract::stops16(chunk, false) != 0 {
                return true;
            }
            s = rest;
        }
        s
    };
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Exact as a yes/no: a byte of `w` is below `n` (n <= 128), or zero.
    let below = |w: u64, n: u64| w.wrapping_sub(ONES * n) & !w & HIGH != 0;
    let has = |w: u64, b: u64| below(w ^ (ONES * b), 1);
    let mut words = s.chunks_exact(8);
    for chunk in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        let w = u64::from_le_bytes(b);
        if below(w, 0x20) || has(w, u64::from(b'"')) || has(w, u64::from(b'\\')) {
            return true;
        }
    }
    words.remainder().iter().any(|&b| ESCAPE[b as usize])
}

/// Writes `s` escaped for use inside a JSON string, without the quotes.
fn contents(out: &mut Vec<u8>, s: &str) {
    if !needs_escape(s.as_bytes()) {
        out.extend_from_slice(s.as_bytes());
    } else {
        // Rare; serde_json's escaping is the reference (infallible for a Vec).
        let start = out.len();
        let _ = serde_json::to_writer(&mut *out, s);
        out.pop();
        out.remove(start);
    }
}

/// Writes `"key":`.
fn key(out: &mut Vec<u8>, k: &str) {
    string(out, k);
    out.push(b':');
}

/// Writes an unsigned integer.
fn uint(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Writes any float as serde_json does (shortest round trip; `null` when not finite).
fn float(out: &mut Vec<u8>, x: f64) {
    let _ = serde_json::to_writer(&mut *out, &x);
}

/// Writes `x` rounded to `DECIMALS` decimals (at most 9), without trailing zeros (`0.25`, `3.0`):
/// the same number serde_json would write for the rounded value, for a fraction of the cost.
fn fixed<const DECIMALS: u32>(out: &mut Vec<u8>, x: f64) {
    let scale = 10u32.pow(DECIMALS);
    // Ties to even: one instruction in WebAssembly (`round` is a library call there); either
    // way the text is the value correctly rounded to `DECIMALS`.
    let scaled = (x * f64::from(scale)).round_ties_even();
    // Beyond 2^53 the digits are not exact any more; such values are not expected here.
    if !scaled.is_finite() || scaled.abs() >= 9.0e15 {
        float(out, x);
        return;
    }
    // Converted as a signed integer (exact here): the shorter sequence in WebAssembly.
    let n = scaled.abs() as i64 as u64;
    // The text right to left in one buffer, then one copy into `out`. Digits come from 32-bit
    // divisions where the number fits: dividing a 64-bit number by ten takes a 128-bit product,
    // a library call in WebAssembly.
    let mut buf = [0u8; 40];
    let mut at = buf.len();
    let mut put = |b: u8| {
        at -= 1;
        buf[at] = b;
    };
    let (int, mut frac) = match u32::try_from(n) {
        Ok(n) => (u64::from(n / scale), n % scale),
        Err(_) => (n / u64::from(scale), (n % u64::from(scale)) as u32),
    };
    if frac == 0 {
        put(b'0');
    } else {
        let mut digits = DECIMALS;
        while frac.is_multiple_of(10) {
            frac /= 10;
            digits -= 1;
        }
        for _ in 0..digits {
            put(b'0' + (frac % 10) as u8);
            frac /= 10;
        }
    }
    put(b'.');
    match u32::try_from(int) {
        Ok(mut int) => loop {
            put(b'0' + (int % 10) as u8);
            int /= 10;
            if int == 0 {
                break;
            }
        },
        Err(_) => {
            let mut int = int;
            loop {
                put(b'0' + (int % 10) as u8);
                int /= 10;
                if int == 0 {
                    break;
                }
            }
        }
    }
    if scaled < 0.0 && n != 0 {
        put(b'-');
    }
    out.extend_from_slice(&buf[at..]);
}

/// Writes the principal: entity values joined by a space.
fn principal(out: &mut Vec<u8>, n: &Note<'_>) {
    out.push(b'"');
    for (i, &field) in n.entity.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        contents(out, &n.values[field]);
    }
    out.push(b'"');
}

/// Writes strings as a JSON array.
fn strings<'s>(out: &mut Vec<u8>, items: impl Iterator<Item = &'s str>) {
    out.push(b'[');
    for (i, s) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, s);
    }
    out.push(b']');
}

/// Writes the annotation of a scored event as one JSON object (the shape documented in the
/// README, "The score record").
pub fn note(out: &mut Vec<u8>, n: &Note<'_>) {
    let v = n.verdict;
    out.extend_from_slice(b"{\"score\":");
    fixed::<SCORE>(out, v.score);
    out.extend_from_slice(b",\"infoContent\":");
    fixed::<BITS>(out, v.info_content);
    out.extend_from_slice(b",\"novelty\":");
    fixed::<BITS>(out, v.novelty);
    out.extend_from_slice(b",\"risk\":");
    fixed::<BITS>(out, v.risk);
    out.extend_from_slice(b",\"severity\":\"");
    out.extend_from_slice(v.severity.name().as_bytes());
    out.extend_from_slice(b"\",\"tactics\":");
    strings(out, tactic_names(v.stakes.tactics));
    out.extend_from_slice(b",\"techniques\":");
    strings(out, n.stakes.techniques(&v.stakes));
    out.extend_from_slice(b",\"probability\":");
    float(out, crate::fastmath::exp2(-v.info_content));
    out.extend_from_slice(b",\"uniqueness\":");
    fixed::<SCORE>(out, v.uniqueness);
    out.extend_from_slice(b",\"sequence\":");
    uint(out, v.sequence);
    out.extend_from_slice(if v.cold {
        b",\"cold\":true,\"principal\":"
    } else {
        b",\"cold\":false,\"principal\":"
    });
    principal(out, n);
    out.extend_from_slice(b",\"observation\":{");
    for (i, slot) in n.layout.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        key(out, &n.names[slot.field]);
        string(out, &n.values[slot.field]);
    }
    let top = &n.layout[v.top];
    out.extend_from_slice(b"},\"mostNovelComponent\":{\"index\":");
    uint(out, v.top as u64);
    out.extend_from_slice(b",\"view\":");
    string(out, &top.view);
    out.extend_from_slice(b",\"field\":");
    string(out, &n.names[top.field]);
    out.extend_from_slice(b",\"value\":");
    string(out, &n.values[top.field]);
    out.extend_from_slice(b",\"novelty\":");
    fixed::<SCORE>(out, v.top_novelty);
    out.extend_from_slice(b",\"bits\":");
    fixed::<BITS>(out, v.top_bits);
    out.extend_from_slice(b"},\"views\":{");
    for (i, (name, &(info, excess))) in n.views.iter().zip(&v.views).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        key(out, name);
        out.extend_from_slice(b"{\"infoContent\":");
        fixed::<BITS>(out, info);
        out.extend_from_slice(b",\"excess\":");
        fixed::<BITS>(out, excess);
        out.push(b'}');
    }
    out.push(b'}');
    if let Some(id) = n.id {
        out.extend_from_slice(b",\"id\":");
        string(out, id);
    }
    if let Some(time) = n.time {
        out.extend_from_slice(b",\"time\":");
        string(out, time);
    }
    if let Some(c) = &v.campaign {
        out.extend_from_slice(b",\"campaign\":{\"id\":\"");
        out.extend_from_slice(format!("{:016x}", c.id).as_bytes());
        out.extend_from_slice(b"\",\"principal\":");
        principal(out, n);
        out.extend_from_slice(b",\"events\":");
        uint(out, u64::from(c.events));
        out.extend_from_slice(b",\"first\":");
        string(out, &c.first);
        out.extend_from_slice(b",\"last\":");
        string(out, &c.last);
        out.extend_from_slice(b",\"score\":");
        fixed::<BITS>(out, c.score);
        out.extend_from_slice(b",\"risk\":");
        fixed::<BITS>(out, c.risk);
        out.extend_from_slice(b",\"tactics\":");
        strings(out, tactic_names(c.tactics));
        out.extend_from_slice(b",\"actions\":[");
        for (i, a) in c.actions.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            string(out, a);
        }
        out.extend_from_slice(b"]}");
    }
    out.push(b'}');
}

/// Writes why an object was not scored, as noted in the output:
/// `{"error": <kind>, "reason": <text>}`.
pub fn error_note(out: &mut Vec<u8>, error: &str, reason: &str) {
    out.extend_from_slice(b"{\"error\":");
    string(out, error);
    out.extend_from_slice(b",\"reason\":");
    string(out, reason);
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed_text(x: f64, d: u32) -> String {
        let mut out = Vec::new();
        match d {
            3 => fixed::<3>(&mut out, x),
            6 => fixed::<6>(&mut out, x),
            _ => panic!("no test of {d} decimals"),
        }
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn needs_escape_finds_every_byte_json_escapes_at_every_position() {
        for len in 0..20 {
            for at in 0..len {
                for b in 0u8..=255 {
                    let mut v = vec![b'a'; len];
                    v[at] = b;
                    assert_eq!(
                        needs_escape(&v),
                        ESCAPE[b as usize],
                        "byte {b:#x} at {at} of {len}"
                    );
                }
            }
        }
        assert!(!needs_escape("arn:aws:iam::1:user/ra\u{e9}l".as_bytes()));
    }

    #[test]
    fn fixed_writes_what_serde_json_writes_for_the_rounded_number() {
        let mut x = -3.0;
        while x < 400.0 {
            for d in [3, 6] {
                let scale = 10f64.powi(d as i32);
                let r = (x * scale).round_ties_even() / scale;
                let ours: f64 = fixed_text(x, d).parse().expect("a number");
                assert_eq!(ours, if r == 0.0 { 0.0 } else { r }, "{x} to {d}");
            }
            x += 0.000_137_3;
        }
        assert_eq!(fixed_text(1.0, 6), "1.0");
        assert_eq!(fixed_text(0.0, 3), "0.0");
        assert_eq!(fixed_text(-0.0001, 3), "0.0");
        assert_eq!(fixed_text(0.000_001, 6), "0.000001");
        assert_eq!(fixed_text(12.5, 3), "12.5");
        assert_eq!(fixed_text(-2.25, 3), "-2.25");
        assert_eq!(fixed_text(f64::NAN, 3), "null");
        assert_eq!(fixed_text(1e300, 3).parse::<f64>().ok(), Some(1e300));
    }

    #[test]
    fn strings_are_escaped_only_when_needed() {
        for s in [
            "plain",
            "quote \" here",
            "back\\slash",
            "tab\t",
            "\u{1}",
            "ünï",
        ] {
            let mut out = Vec::new();
            string(&mut out, s);
            let back: String = serde_json::from_slice(&out).expect("valid JSON string");
            assert_eq!(back, s);
        }
    }
}
