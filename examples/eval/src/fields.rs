//! The categorical attributes the baselines judge, read from each CloudTrail record with
//! serde_json (independently of oddity's extractor).
//!
//! For a fair comparison the baselines see the same *normalised* values oddity counts: the
//! principal is oddity's entity (the harness replaces the one read here with the one oddity's
//! engine read, whenever it read the event: the profile composes some principals, such as a
//! failed console sign-in's IAM user, which this simpler reading does not; read here: identity
//! type, then the first present of `userIdentity.arn`, `sessionContext.sessionIssuer.arn`,
//! `invokedBy`, `userName`, `principalId`, `accountId`, `type`, with assumed-role sessions
//! mapped to their role), the source address is cut to its
//! network prefix (/24 for public IPv4) and the user agent to its family. The normalisers are
//! taken from oddity's built-in `cloudtrail` profile (`oddity_engine::config`), i.e. the same
//! `arn_role`, `ip_prefix` and `ua_family` functions of `oddity_engine::normalize`.

use std::borrow::Cow;
use std::fmt;

use oddity_engine::Settings;
use oddity_engine::normalize::Normalizer;
use rustc_hash::FxHashMap;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Attribute names, in the order of [`Fields::values`].
pub const ATTRS: [&str; 6] = [
    "principal",
    "service",
    "action",
    "outcome",
    "network",
    "agent",
];
pub const PRINCIPAL: usize = 0;
pub const SERVICE: usize = 1;
pub const ACTION: usize = 2;
pub const OUTCOME: usize = 3;
pub const NETWORK: usize = 4;
pub const AGENT: usize = 5;

/// One record's attributes, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    pub values: [String; 6],
    /// Event time in seconds since 2000-01-01 (`eventTime`, else Logstash's `@timestamp`).
    pub time: Option<u32>,
}

/// A JSON value read leniently as text: strings as they are, numbers and booleans printed,
/// null, objects and arrays as absent.
#[derive(Debug, Default)]
struct Text<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v))))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Text(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Text(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                Text::deserialize(d)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl<'a> Text<'a> {
    /// The value when present and non-empty (oddity skips empty values too).
    fn get(&self) -> Option<&str> {
        self.0.as_deref().filter(|s| !s.is_empty())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Record<'a> {
    #[serde(borrow, rename = "userIdentity")]
    user_identity: Option<Identity<'a>>,
    #[serde(borrow, rename = "eventSource")]
    event_source: Text<'a>,
    #[serde(borrow, rename = "eventName")]
    event_name: Text<'a>,
    #[serde(borrow, rename = "errorCode")]
    error_code: Text<'a>,
    #[serde(borrow, rename = "sourceIPAddress")]
    source_ip: Text<'a>,
    #[serde(borrow, rename = "userAgent")]
    user_agent: Text<'a>,
    #[serde(borrow, rename = "eventTime")]
    event_time: Text<'a>,
    #[serde(borrow, rename = "@timestamp")]
    timestamp: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Identity<'a> {
    #[serde(borrow, rename = "type")]
    kind: Text<'a>,
    #[serde(borrow)]
    arn: Text<'a>,
    #[serde(borrow, rename = "sessionContext")]
    session_context: Option<SessionContext<'a>>,
    #[serde(borrow, rename = "invokedBy")]
    invoked_by: Text<'a>,
    #[serde(borrow, rename = "userName")]
    user_name: Text<'a>,
    #[serde(borrow, rename = "principalId")]
    principal_id: Text<'a>,
    #[serde(borrow, rename = "accountId")]
    account_id: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SessionContext<'a> {
    #[serde(borrow, rename = "sessionIssuer")]
    session_issuer: Option<Issuer<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Issuer<'a> {
    #[serde(borrow)]
    arn: Text<'a>,
}

/// The normalisers of oddity's built-in CloudTrail profile, per attribute.
#[derive(Debug, Clone)]
pub struct Normalizers {
    principal: Vec<Normalizer>,
    network: Vec<Normalizer>,
    agent: Vec<Normalizer>,
}

impl Normalizers {
    /// Those of the built-in `cloudtrail` profile (fields `principal`, `network`, `agent`).
    pub fn builtin() -> Normalizers {
        let settings = Settings::parse("").ok();
        let of = |name: &str| {
            settings
                .as_ref()
                .and_then(|s| s.profile.fields.iter().find(|f| f.name == name))
                .map(|f| f.normalize.clone())
                .unwrap_or_default()
        };
        Normalizers {
            principal: of("principal"),
            network: of("network"),
            agent: of("agent"),
        }
    }

    fn apply(list: &[Normalizer], value: &str) -> String {
        list.iter()
            .fold(Cow::Borrowed(value), |v, n| n.apply(v))
            .into_owned()
    }
}

impl Fields {
    /// Reads one record; `None` if the line is not a JSON object.
    pub fn extract(line: &str, norm: &Normalizers) -> Option<Fields> {
        let r: Record<'_> = serde_json::from_str(line).ok()?;
        let id = r.user_identity.unwrap_or_default();
        let kind = id.kind.get().unwrap_or("Unknown");
        let issuer = id
            .session_context
            .as_ref()
            .and_then(|c| c.session_issuer.as_ref())
            .and_then(|i| i.arn.get());
        let principal = id
            .arn
            .get()
            .or(issuer)
            .or(id.invoked_by.get())
            .or(id.user_name.get())
            .or(id.principal_id.get())
            .or(id.account_id.get())
            .or(id.kind.get())
            .unwrap_or("unknown");
        let principal = Normalizers::apply(&norm.principal, principal);
        let time = r
            .event_time
            .get()
            .or(r.timestamp.get())
            .and_then(oddity_engine::parse_time);
        Some(Fields {
            values: [
                format!("{kind} {principal}"),
                r.event_source.get().unwrap_or("unknown").to_owned(),
                r.event_name.get().unwrap_or("unknown").to_owned(),
                r.error_code.get().unwrap_or("ok").to_owned(),
                Normalizers::apply(&norm.network, r.source_ip.get().unwrap_or("none")),
                Normalizers::apply(&norm.agent, r.user_agent.get().unwrap_or("none")),
            ],
            time,
        })
    }
}

/// Dense ids for strings, one namespace per attribute.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    maps: [FxHashMap<String, u32>; 6],
    names: [Vec<String>; 6],
}

impl Interner {
    pub fn id(&mut self, attr: usize, value: &str) -> u32 {
        if let Some(&id) = self.maps[attr].get(value) {
            return id;
        }
        let id = self.names[attr].len() as u32;
        self.maps[attr].insert(value.to_owned(), id);
        self.names[attr].push(value.to_owned());
        id
    }

    pub fn ids(&mut self, f: &Fields) -> [u32; 6] {
        std::array::from_fn(|a| self.id(a, &f.values[a]))
    }

    pub fn name(&self, attr: usize, id: u32) -> &str {
        &self.names[attr][id as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_and_normalisation_follow_oddity() {
        let n = Normalizers::builtin();
        let line = r#"{"userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/web/i-0abc","sessionContext":{"sessionIssuer":{"arn":"arn:aws:iam::111122223333:role/web"}}},"eventSource":"s3.amazonaws.com","eventName":"GetObject","sourceIPAddress":"203.0.113.9","userAgent":"aws-cli/2.13.0 Python/3.11 Linux/5.15 exe/x86_64","eventTime":"2024-03-04T10:00:00Z","errorCode":null}"#;
        let f = Fields::extract(line, &n).expect("a record");
        assert_eq!(
            f.values[PRINCIPAL],
            "AssumedRole arn:aws:iam::111122223333:role/web"
        );
        assert_eq!(f.values[SERVICE], "s3.amazonaws.com");
        assert_eq!(f.values[ACTION], "GetObject");
        assert_eq!(f.values[OUTCOME], "ok");
        assert_eq!(f.values[NETWORK], "203.0.113.0/24");
        assert_eq!(f.values[AGENT], "aws-cli linux");
        assert!(f.time.is_some());
        // Service principals by `invokedBy`; missing fields take oddity's defaults.
        let f = Fields::extract(
            r#"{"userIdentity":{"type":"AWSService","invokedBy":"config.amazonaws.com"},"eventName":"Describe","eventSource":7}"#,
            &n,
        )
        .expect("a record");
        assert_eq!(f.values[PRINCIPAL], "AWSService config.amazonaws.com");
        assert_eq!(f.values[SERVICE], "7");
        assert_eq!(f.values[NETWORK], "none");
        assert!(Fields::extract("[1]", &n).is_none());
    }
}
