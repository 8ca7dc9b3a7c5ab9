//! Identifier factories: UUIDs, access keys, unique ids, resource ids and IP addresses.
//!
//! Every function draws from the caller's seeded RNG, so identifiers are reproducible for a seed.

use rand::Rng as _;

use crate::Rng;

const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const HEX: &[u8] = b"0123456789abcdef";
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn push_from(out: &mut String, alphabet: &[u8], n: usize, rng: &mut Rng) {
    for _ in 0..n {
        out.push(alphabet[rng.random_range(0..alphabet.len())] as char);
    }
}

/// A random lowercase UUID version 4, `8-4-4-4-12`.
pub(crate) fn uuid(rng: &mut Rng) -> String {
    uuid_from(rng.random::<u128>())
}

/// Formats 128 random bits as a UUID v4 (version and variant bits forced).
pub(crate) fn uuid_from(bits: u128) -> String {
    let v = (bits & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    let mut s = String::with_capacity(36);
    for i in 0..32 {
        if matches!(i, 8 | 12 | 16 | 20) {
            s.push('-');
        }
        let nibble = (v >> (124 - 4 * i)) & 0xf;
        s.push(HEX[nibble as usize] as char);
    }
    s
}

/// `n` lowercase hex digits.
pub(crate) fn hex(rng: &mut Rng, n: usize) -> String {
    let mut s = String::with_capacity(n);
    push_from(&mut s, HEX, n, rng);
    s
}

/// `n` uppercase alphanumerics (the alphabet of AWS key ids and unique ids).
pub(crate) fn upper(rng: &mut Rng, n: usize) -> String {
    let mut s = String::with_capacity(n);
    push_from(&mut s, UPPER_ALNUM, n, rng);
    s
}

/// `n` base64 characters (used for `x-amz-id-2`, SAML subjects and the like).
pub(crate) fn b64(rng: &mut Rng, n: usize) -> String {
    let mut s = String::with_capacity(n);
    push_from(&mut s, B64, n, rng);
    s
}

/// An access key id: `AKIA…` (long-term) or `ASIA…` (temporary), 20 characters.
pub(crate) fn access_key(rng: &mut Rng, prefix: &str) -> String {
    let mut s = String::with_capacity(20);
    s.push_str(prefix);
    push_from(&mut s, UPPER_ALNUM, 20 - prefix.len(), rng);
    s
}

/// A principal unique id such as `AIDA…` (user) or `AROA…` (role), 21 characters.
pub(crate) fn unique_id(rng: &mut Rng, prefix: &str) -> String {
    let mut s = String::with_capacity(21);
    s.push_str(prefix);
    push_from(&mut s, UPPER_ALNUM, 21 - prefix.len(), rng);
    s
}

/// An EC2-style resource id: `i-0` + 16 hex, `vol-0…`, `snap-0…`, `sg-0…`.
pub(crate) fn ec2_id(rng: &mut Rng, prefix: &str) -> String {
    format!("{prefix}-0{}", hex(rng, 16))
}

/// A 12-digit AWS account id.
pub(crate) fn account_id(rng: &mut Rng) -> String {
    format!(
        "{}{:011}",
        rng.random_range(1..10u8),
        rng.random_range(0..100_000_000_000u64)
    )
}

/// An S3-style request id: 16 uppercase alphanumerics.
pub(crate) fn s3_request_id(rng: &mut Rng) -> String {
    let mut s = String::with_capacity(16);
    push_from(&mut s, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 16, rng);
    s
}

/// A public-looking IPv4 address outside the private, loopback and multicast ranges.
pub(crate) fn public_ip(rng: &mut Rng, first_octets: &[u8]) -> String {
    let a = first_octets[rng.random_range(0..first_octets.len())];
    format!(
        "{a}.{}.{}.{}",
        rng.random_range(0..=255u8),
        rng.random_range(0..=255u8),
        rng.random_range(1..=254u8)
    )
}

/// A private VPC address in `10.x.y.z`.
pub(crate) fn private_ip(rng: &mut Rng, second: u8) -> String {
    format!(
        "10.{second}.{}.{}",
        rng.random_range(0..=63u8),
        rng.random_range(4..=250u8)
    )
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;

    use super::*;

    #[test]
    fn uuid_has_version_and_variant() {
        let mut rng = Rng::seed_from_u64(1);
        for _ in 0..100 {
            let u = uuid(&mut rng);
            assert_eq!(u.len(), 36);
            assert_eq!(&u[14..15], "4");
            assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
        }
    }

    #[test]
    fn ids_have_aws_shapes() {
        let mut rng = Rng::seed_from_u64(2);
        assert_eq!(access_key(&mut rng, "AKIA").len(), 20);
        assert_eq!(unique_id(&mut rng, "AROA").len(), 21);
        assert_eq!(ec2_id(&mut rng, "i").len(), 19);
        let acct = account_id(&mut rng);
        assert_eq!(acct.len(), 12);
        assert!(acct.bytes().all(|b| b.is_ascii_digit()));
    }
}
