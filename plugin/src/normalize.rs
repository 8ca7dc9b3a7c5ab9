//! Normalisers: turn raw high-cardinality values into the categories worth counting.
//!
//! A raw source IP, a full user-agent string or a role-session ARN changes all day for benign
//! reasons; counted raw, those first sightings would fill the top of the ranking. Each field of a
//! profile lists normalisers applied in order (see docs/configuration.md for the list and examples).

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::LazyLock;

use regex::Regex;

/// One normalisation step.
#[derive(Debug, Clone)]
pub enum Normalizer {
    /// Unicode lowercase.
    Lowercase,
    /// User agent to its family: product name without version, plus OS family when stated
    /// (`aws-cli/2.13.0 Python/3.11 Linux/5.15 ...` becomes `aws-cli linux`).
    UaFamily,
    /// IP address to its network prefix (`192.0.2.17` becomes `192.0.2.0/24`); non-IP text is kept.
    /// Private, shared and link-local addresses (RFC 1918, RFC 6598, RFC 4193...) use the
    /// coarser `private` prefix: inside a VPC, subnets come and go with autoscaling, and the
    /// question "is this the usual place" is answered by the VPC, not the subnet.
    IpPrefix { v4: u8, v6: u8, private: u8 },
    /// Assumed-role session ARN to the role ARN (IAM Identity Center roles keep the session name,
    /// which identifies the person); role paths are dropped.
    ArnRole,
    /// UUIDs, long hex runs and digit runs of 4+ become `#`.
    MaskIds,
    /// Regex replace-all (`regex` crate syntax; `$1` in `replace` refers to groups).
    Regex { re: Regex, replace: String },
    /// The label of the first pattern that matches, else `otherwise` (error codes to classes).
    Classify {
        classes: Vec<(String, Regex)>,
        otherwise: String,
    },
}

static MASK_RE: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::unwrap_used)] // a constant pattern, exercised by the tests
    Regex::new(r"(?i)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\b[0-9a-f]*[0-9][0-9a-f]*[a-f][0-9a-f]*\b|[0-9]{4,}")
        .unwrap()
});

impl Normalizer {
    /// Parses one entry of a field's `normalize` list: a name, or a one-key table with options.
    pub fn from_toml(v: &toml::Value) -> Result<Normalizer, String> {
        const KNOWN: &str = "lowercase, ua-family, ip-prefix, arn-role, mask-ids, {regex, replace}, {classify, otherwise}";
        match v {
            toml::Value::String(name) => match name.as_str() {
                "lowercase" => Ok(Normalizer::Lowercase),
                "ua-family" => Ok(Normalizer::UaFamily),
                "ip-prefix" => Ok(Normalizer::IpPrefix {
                    v4: 24,
                    v6: 48,
                    private: 16,
                }),
                "arn-role" => Ok(Normalizer::ArnRole),
                "mask-ids" => Ok(Normalizer::MaskIds),
                other => Err(format!("unknown normaliser \"{other}\" (known: {KNOWN})")),
            },
            toml::Value::Table(t) if t.contains_key("regex") => {
                let pattern = t
                    .get("regex")
                    .and_then(toml::Value::as_str)
                    .ok_or("`regex` must be a string")?;
                let replace = t
                    .get("replace")
                    .and_then(toml::Value::as_str)
                    .ok_or("`replace` (a string) is required with `regex`")?;
                if let Some(k) = t.keys().find(|k| *k != "regex" && *k != "replace") {
                    return Err(format!("unknown key `{k}` beside `regex`"));
                }
                let re = Regex::new(pattern).map_err(|e| format!("bad regex: {e}"))?;
                Ok(Normalizer::Regex {
                    re,
                    replace: replace.to_owned(),
                })
            }
            toml::Value::Table(t) if t.contains_key("classify") => {
                let shape = "`classify` takes a list of [label, regex] pairs";
                let pairs = t
                    .get("classify")
                    .and_then(toml::Value::as_array)
                    .ok_or(shape)?;
                let mut classes = Vec::with_capacity(pairs.len());
                for pair in pairs {
                    let (Some(label), Some(pattern)) = (
                        pair.get(0).and_then(toml::Value::as_str),
                        pair.get(1).and_then(toml::Value::as_str),
                    ) else {
                        return Err(shape.into());
                    };
                    let re = Regex::new(pattern)
                        .map_err(|e| format!("bad regex for class {label}: {e}"))?;
                    classes.push((label.to_owned(), re));
                }
                let otherwise = t
                    .get("otherwise")
                    .and_then(toml::Value::as_str)
                    .ok_or("`otherwise` (a string) is required with `classify`")?;
                if let Some(k) = t.keys().find(|k| *k != "classify" && *k != "otherwise") {
                    return Err(format!("unknown key `{k}` beside `classify`"));
                }
                Ok(Normalizer::Classify {
                    classes,
                    otherwise: otherwise.to_owned(),
                })
            }
            toml::Value::Table(t) if t.contains_key("ip-prefix") => {
                let opts = t
                    .get("ip-prefix")
                    .and_then(toml::Value::as_table)
                    .ok_or("`ip-prefix` takes a table { v4 = 24, v6 = 48 }")?;
                let get = |k: &str, default: u8, max: u8| -> Result<u8, String> {
                    match opts.get(k) {
                        None => Ok(default),
                        Some(toml::Value::Integer(i)) if (0..=i64::from(max)).contains(i) => {
                            Ok(*i as u8)
                        }
                        Some(other) => Err(format!(
                            "ip-prefix.{k} must be an integer 0..={max}, not {other}"
                        )),
                    }
                };
                if let Some(k) = opts
                    .keys()
                    .find(|k| !["v4", "v6", "private"].contains(&k.as_str()))
                {
                    return Err(format!("unknown key `ip-prefix.{k}` (v4, v6, private)"));
                }
                Ok(Normalizer::IpPrefix {
                    v4: get("v4", 24, 32)?,
                    v6: get("v6", 48, 128)?,
                    private: get("private", 16, 32)?,
                })
            }
            other => Err(format!("expected a name or a table ({KNOWN}), not {other}")),
        }
    }

    /// A stable description, for the configuration fingerprint.
    pub fn canonical(&self) -> String {
        match self {
            Normalizer::Lowercase => "lowercase".into(),
            Normalizer::UaFamily => "ua-family".into(),
            Normalizer::IpPrefix { v4, v6, private } => format!("ip-prefix/{v4}/{v6}/{private}"),
            Normalizer::ArnRole => "arn-role".into(),
            Normalizer::MaskIds => "mask-ids".into(),
            Normalizer::Regex { re, replace } => format!("regex/{}/{replace}", re.as_str()),
            Normalizer::Classify { classes, otherwise } => {
                let c: Vec<String> = classes
                    .iter()
                    .map(|(l, r)| format!("{l}={}", r.as_str()))
                    .collect();
                format!("classify/{}/{otherwise}", c.join("/"))
            }
        }
    }

    /// Applies this step.
    pub fn apply<'a>(&self, value: Cow<'a, str>) -> Cow<'a, str> {
        match self {
            Normalizer::Lowercase => {
                if value.chars().any(char::is_uppercase) {
                    Cow::Owned(value.to_lowercase())
                } else {
                    value
                }
            }
            Normalizer::UaFamily => Cow::Owned(ua_family(&value)),
            Normalizer::IpPrefix { v4, v6, private } => match ip_prefix(&value, *v4, *v6, *private)
            {
                Some(p) => Cow::Owned(p),
                None => value,
            },
            Normalizer::ArnRole => match arn_role(&value) {
                Some(r) => Cow::Owned(r),
                None => value,
            },
            Normalizer::MaskIds => match MASK_RE.replace_all(&value, "#") {
                Cow::Borrowed(_) => value,
                Cow::Owned(s) => Cow::Owned(s),
            },
            Normalizer::Regex { re, replace } => match re.replace_all(&value, replace.as_str()) {
                Cow::Borrowed(_) => value,
                Cow::Owned(s) => Cow::Owned(s),
            },
            Normalizer::Classify { classes, otherwise } => {
                let label = classes
                    .iter()
                    .find(|(_, re)| re.is_match(&value))
                    .map_or(otherwise, |(l, _)| l);
                Cow::Owned(label.clone())
            }
        }
    }
}

/// `192.0.2.17` -> `192.0.2.0/24`; `2001:db8:1:2::5` -> `2001:db8:1::/48`; private addresses
/// use the `private` prefix length (`10.1.2.3` -> `10.1.0.0/16`).
pub fn ip_prefix(value: &str, v4: u8, v6: u8, private: u8) -> Option<String> {
    let value = value.trim();
    let ip: IpAddr = value
        .parse()
        .ok()
        .or_else(|| dotted_decimal(value).map(IpAddr::V4))?;
    Some(match ip {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let shared = (bits & 0xffc0_0000) == 0x6440_0000; // 100.64.0.0/10, carrier-grade NAT
            let v4 = if a.is_private() || a.is_link_local() || a.is_loopback() || shared {
                private.min(32)
            } else {
                v4
            };
            let mask = if v4 == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(v4))
            };
            format!("{}/{v4}", std::net::Ipv4Addr::from(bits & mask))
        }
        IpAddr::V6(a) => {
            if let Some(m) = a.to_ipv4_mapped() {
                return ip_prefix(&m.to_string(), v4, v6, private);
            }
            let bits = u128::from(a);
            // Unique-local (fc00::/7) and link-local (fe80::/10) networks are already site-wide
            // at the default /48.
            let mask = if v6 == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(v6))
            };
            format!("{}/{v6}", std::net::Ipv6Addr::from(bits & mask))
        }
    })
}

/// An IPv4 address whose octets carry leading zeros (`203.0.113.07`, as some anonymisers and
/// exports write them), read as decimal; the standard parser refuses them (they could be octal).
fn dotted_decimal(value: &str) -> Option<std::net::Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = value.split('.');
    for o in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *o = part.parse().ok()?;
    }
    parts
        .next()
        .is_none()
        .then(|| std::net::Ipv4Addr::from(octets))
}

/// The role ARN for an assumed-role session ARN or a role ARN with a path; an IAM user's ARN
/// without its path (names are unique within an account, paths are not part of them, and a
/// failed console sign-in names the user without one).
pub fn arn_role(value: &str) -> Option<String> {
    let mut parts = value.splitn(6, ':');
    let (arn, partition, service, _region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if arn != "arn" {
        return None;
    }
    match service {
        "sts" => {
            let rest = resource.strip_prefix("assumed-role/")?;
            let (role, _session) = rest.split_once('/').unwrap_or((rest, ""));
            if role.starts_with("AWSReservedSSO_") {
                return None;
            }
            Some(format!("arn:{partition}:iam::{account}:role/{role}"))
        }
        "iam" => {
            let (kind, rest) = resource
                .strip_prefix("role/")
                .map(|r| ("role", r))
                .or_else(|| resource.strip_prefix("user/").map(|r| ("user", r)))?;
            let name = rest.rsplit('/').next()?;
            (name != rest).then(|| format!("arn:{partition}:iam::{account}:{kind}/{name}"))
        }
        _ => None,
    }
}

/// Product tokens that only wrap the real client (`APN/1.0 HashiCorp/1.0 Terraform/1.5 ...`).
const WRAPPERS: &[&str] = &["apn", "hashicorp", "mozilla", "compatible"];

/// The user agent's family: first product name (wrappers skipped, browsers named by engine), plus
/// the OS family when the string states one.
pub fn ua_family(ua: &str) -> String {
    let ua = ua
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim();
    if ua.is_empty() {
        return String::new();
    }
    if !ua.contains('/') {
        // Not `product/version` syntax: service names such as `AWS Internal` or
        // `console.amazonaws.com`, or a bare tool name with an id in it.
        return MASK_RE.replace_all(ua, "#").into_owned();
    }
    let os = os_family(ua.as_bytes());
    let is_browser = ["mozilla/", "opera/"]
        .iter()
        .any(|p| ua.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p)));
    // A browser by its engine; anything else that starts `Mozilla/` (a crawler, a bare
    // `Mozilla/5.0`) by its first product that is not a wrapper, like other agents.
    let engine = is_browser
        .then(|| {
            let lower = ua.to_ascii_lowercase();
            [
                ("edg/", "edge"),
                ("opr/", "opera"),
                ("firefox/", "firefox"),
                ("chrome/", "chrome"),
                ("safari/", "safari"),
            ]
            .iter()
            .find(|(k, _)| lower.contains(k))
            .map(|(_, name)| *name)
        })
        .flatten();
    let product = if let Some(engine) = engine {
        format!("browser {engine}")
    } else {
        let mut tokens = ua
            .split_whitespace()
            .filter(|t| !t.starts_with('(') && !t.starts_with('+'));
        let first = tokens.clone().next().unwrap_or(ua);
        let pick = tokens
            .find(|t| {
                let name = t.split('/').next().unwrap_or(t);
                !WRAPPERS.iter().any(|w| name.eq_ignore_ascii_case(w))
            })
            .unwrap_or(first);
        let name = pick.split('/').next().unwrap_or(pick);
        let masked = MASK_RE.replace_all(name, "#");
        masked.into_owned()
    };
    match os {
        Some(os) if !product.contains(' ') || product.starts_with("browser") => {
            format!("{product} {os}")
        }
        _ => product,
    }
}

/// The OS family a user agent states: the first, in this order of precedence, of the names it
/// contains (any case). One pass over the bytes, no allocation.
fn os_family(ua: &[u8]) -> Option<&'static str> {
    // iOS agents say "like Mac OS X": the device comes first.
    const NAMES: [(&[u8], &str); 11] = [
        (b"windows", "windows"),
        (b"win64", "windows"),
        (b"win32", "windows"),
        (b"iphone", "ios"),
        (b"ipad", "ios"),
        (b"macintosh", "macos"),
        (b"mac os", "macos"),
        (b"darwin", "macos"),
        (b"macos", "macos"),
        (b"android", "android"),
        (b"linux", "linux"),
    ];
    let mut best = NAMES.len();
    for i in 0..ua.len() {
        let c = ua[i].to_ascii_lowercase();
        if !matches!(c, b'w' | b'm' | b'd' | b'i' | b'a' | b'l') {
            continue;
        }
        for (p, (name, _)) in NAMES.iter().enumerate().take(best) {
            if name[0] == c
                && ua[i..]
                    .get(..name.len())
                    .is_some_and(|h| h.eq_ignore_ascii_case(name))
            {
                best = p;
                break;
            }
        }
        if best == 0 {
            break;
        }
    }
    NAMES.get(best).map(|(_, family)| *family)
}

/// Cuts `value` to at most `max` bytes at a character boundary.
pub fn truncate(value: Cow<'_, str>, max: usize) -> Cow<'_, str> {
    if value.len() <= max {
        return value;
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    match value {
        Cow::Borrowed(s) => Cow::Borrowed(&s[..end]),
        Cow::Owned(mut s) => {
            s.truncate(end);
            Cow::Owned(s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agent_families() {
        let cases = [
            (
                "aws-cli/2.13.0 Python/3.11.4 Linux/5.15.0-1040-aws exe/x86_64.ubuntu.22 prompt/off command/s3.ls",
                "aws-cli linux",
            ),
            (
                "aws-cli/2.15.1 Python/3.11.6 Linux/6.1 exe/x86_64.ubuntu.22 prompt/off command/ec2.describe-instances",
                "aws-cli linux",
            ),
            (
                "[aws-cli/1.18.136 Python/3.8.5 Darwin/19.6.0 botocore/1.17.59]",
                "aws-cli macos",
            ),
            (
                "Boto3/1.26.165 Python/3.9.16 Linux/4.14.255 Botocore/1.29.165",
                "Boto3 linux",
            ),
            (
                "aws-sdk-go/1.44.157 (go1.19.3; linux; amd64)",
                "aws-sdk-go linux",
            ),
            (
                "APN/1.0 HashiCorp/1.0 Terraform/1.1.2 (+https://www.terraform.io) terraform-provider-aws/3.76.1 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go/1.44.157 (go1.19.3; linux; amd64) stratus-red-team_36659dd6-3cf5-4369-ae72-21be4cb11547 HashiCorp-terraform-exec/0.17.3",
                "Terraform linux",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/114.0.0.0 Safari/537.36",
                "browser chrome windows",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.5 Safari/605.1.15",
                "browser safari macos",
            ),
            (
                "stratus-red-team_36659dd6-3cf5-4369-ae72-21be4cb11547",
                "stratus-red-team_#",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
                "browser safari ios",
            ),
            (
                "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/116.0 Mobile/15E148 Safari/604.1",
                "browser safari ios",
            ),
            (
                "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                "Googlebot",
            ),
            ("Mozilla/5.0", "Mozilla"),
            ("console.amazonaws.com", "console.amazonaws.com"),
            ("AWS Internal", "AWS Internal"),
            ("", ""),
        ];
        for (ua, want) in cases {
            assert_eq!(ua_family(ua), want, "{ua}");
        }
    }

    #[test]
    fn ip_prefixes() {
        let p = |ip: &str, v4: u8, v6: u8| ip_prefix(ip, v4, v6, 16);
        assert_eq!(p("192.0.2.17", 24, 48).as_deref(), Some("192.0.2.0/24"));
        assert_eq!(
            p("2001:db8:1:2::5", 24, 48).as_deref(),
            Some("2001:db8:1::/48")
        );
        assert_eq!(
            p("::ffff:198.51.100.3", 24, 48).as_deref(),
            Some("198.51.100.0/24")
        );
        // Leading zeros (anonymised exports) are decimal, not a reason to keep the address.
        assert_eq!(
            p("253.252.51.07", 24, 48).as_deref(),
            Some("253.252.51.0/24")
        );
        assert_eq!(p("010.001.002.003", 24, 48).as_deref(), Some("10.1.0.0/16"));
        for not_ip in [
            "1.2.3",
            "1.2.3.4.5",
            "1.2.3.256",
            "1.2.3.0007",
            "1..2.3",
            "a.b.c.d",
        ] {
            assert_eq!(p(not_ip, 24, 48), None, "{not_ip}");
        }
        assert_eq!(
            p("10.1.2.3", 24, 48).as_deref(),
            Some("10.1.0.0/16"),
            "private: the VPC"
        );
        assert_eq!(
            p("100.72.9.1", 24, 48).as_deref(),
            Some("100.72.0.0/16"),
            "carrier-grade NAT"
        );
        assert_eq!(
            p("fd12:3456:789a:1::7", 24, 48).as_deref(),
            Some("fd12:3456:789a::/48")
        );
        assert_eq!(
            ip_prefix("198.51.100.3", 0, 0, 0).as_deref(),
            Some("0.0.0.0/0")
        );
        assert_eq!(p("ec2.amazonaws.com", 24, 48), None);
    }

    #[test]
    fn role_arns() {
        assert_eq!(
            arn_role("arn:aws:sts::123456789012:assumed-role/Deploy/i-0abc").as_deref(),
            Some("arn:aws:iam::123456789012:role/Deploy")
        );
        assert_eq!(
            arn_role("arn:aws:iam::123456789012:role/service-role/Deploy").as_deref(),
            Some("arn:aws:iam::123456789012:role/Deploy")
        );
        assert_eq!(arn_role("arn:aws:iam::123456789012:role/Deploy"), None);
        assert_eq!(
            arn_role("arn:aws:sts::1:assumed-role/AWSReservedSSO_Admin_0123/alice@example.com"),
            None
        );
        assert_eq!(arn_role("arn:aws:iam::123456789012:user/raul"), None);
        assert_eq!(
            arn_role("arn:aws:iam::123456789012:user/engineering/raul").as_deref(),
            Some("arn:aws:iam::123456789012:user/raul")
        );
        assert_eq!(arn_role("not an arn"), None);
    }

    #[test]
    fn masks_and_regex() {
        let n = Normalizer::MaskIds;
        assert_eq!(n.apply("job-20230710-7f3a9c2e".into()), "job-#-#");
        let v = toml::Value::Table(toml::toml! { regex = "^/home/[^/]+" replace = "/home/*" });
        let r = Normalizer::from_toml(&v).expect("valid");
        assert_eq!(r.apply("/home/raul/bin/x".into()), "/home/*/bin/x");
        assert!(Normalizer::from_toml(&toml::Value::String("upper".into())).is_err());
        let v = toml::Value::Table(
            toml::toml! { classify = [["denied", "(?i)accessdenied|unauthorized"], ["throttled", "(?i)throttl"]] otherwise = "error" },
        );
        let c = Normalizer::from_toml(&v).expect("valid");
        assert_eq!(c.apply("Client.UnauthorizedOperation".into()), "denied");
        assert_eq!(c.apply("ThrottlingException".into()), "throttled");
        assert_eq!(c.apply("NoSuchKey".into()), "error");
        assert_eq!(truncate("héllo".into(), 2), "h");
    }
}
