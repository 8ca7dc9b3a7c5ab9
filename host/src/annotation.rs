//! What the host adds to each event: the score record as JSON, spliced into the original line.
//!
//! The original bytes are kept exactly: the annotation is inserted before the object's closing
//! brace, so key order, number formatting and unknown fields survive. If the event already has a
//! key of the same name (a re-scored stream), the new one comes last, which is the one JSON
//! readers keep.

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

/// The engine's verdict on one event, in host terms. It reads back from a scored line too
/// (`oddity top` and `oddity report` do), keeping the observation's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Annotation {
    pub score: f64,
    pub info_content: f64,
    pub novelty: f64,
    /// Novelty weighted by the action's stakes (bits); absent from files scored before it.
    #[serde(default)]
    pub risk: f64,
    #[serde(default)]
    pub severity: Severity,
    #[serde(default)]
    pub tactics: Vec<String>,
    #[serde(default)]
    pub techniques: Vec<String>,
    pub probability: f64,
    pub uniqueness: f64,
    pub sequence: u64,
    pub cold: bool,
    pub principal: String,
    #[serde(serialize_with = "ordered_map", deserialize_with = "ordered_pairs")]
    pub observation: Vec<(String, String)>,
    #[serde(rename = "mostNovelComponent")]
    pub most_novel: ComponentNovelty,
    #[serde(serialize_with = "views_by_name", deserialize_with = "named_views")]
    pub views: Vec<ViewScore>,
    /// Event id and time as found in the event (the profile's `id` and `time`), repeated here
    /// so that tools reading the annotation need not know the log's layout.
    #[serde(rename = "id", default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(rename = "time", default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<Campaign>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentNovelty {
    pub index: u32,
    pub view: String,
    pub field: String,
    pub value: String,
    pub novelty: f64,
    pub bits: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewScore {
    #[serde(skip)]
    pub name: String,
    pub info_content: f64,
    pub excess: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Campaign {
    pub id: String,
    pub principal: String,
    pub events: u32,
    pub first: String,
    pub last: String,
    pub score: f64,
    #[serde(default)]
    pub risk: f64,
    #[serde(default)]
    pub tactics: Vec<String>,
    pub actions: Vec<String>,
}

/// How much an event is worth an analyst's attention (from its risk), lowest first.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// The severity of this name, if it is one.
    pub fn from_name(name: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// What became of a line the plugin saw (its output line comes from the plugin).
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Scored: its score, its severity, and its campaign's risk in bits when it belongs to
    /// one.
    Scored {
        score: f64,
        severity: Severity,
        campaign_risk: Option<f64>,
    },
    /// Not scored, and why.
    Failed(LineError),
}

/// Why a line was not scored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineError {
    /// Empty, or only whitespace; never sent to the plugin.
    Empty,
    NotUtf8,
    NotJson(String),
    NotObject,
    FieldMissing(String),
    /// Its event id was seen within the duplicate window: not learned again.
    Duplicate(String),
    /// Longer than the maximum line length; never sent to the plugin.
    TooLong(usize),
    /// The plugin failed on the batch holding this line.
    Plugin(String),
}

impl LineError {
    /// A short machine-readable kind.
    pub fn kind(&self) -> &'static str {
        match self {
            LineError::Empty => "empty",
            LineError::NotUtf8 => "not-utf8",
            LineError::NotJson(_) => "not-json",
            LineError::NotObject => "not-object",
            LineError::FieldMissing(_) => "field-missing",
            LineError::Duplicate(_) => "duplicate",
            LineError::TooLong(_) => "too-long",
            LineError::Plugin(_) => "plugin-failed",
        }
    }
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LineError::Empty => f.write_str("empty line"),
            LineError::NotUtf8 => f.write_str("not UTF-8"),
            LineError::NotJson(m) => write!(f, "not JSON: {m}"),
            LineError::NotObject => f.write_str("not a JSON object"),
            LineError::FieldMissing(m) => write!(f, "field missing: {m}"),
            LineError::Duplicate(m) => write!(f, "duplicate: {m}"),
            LineError::TooLong(n) => write!(f, "line of {n} bytes is longer than the maximum"),
            LineError::Plugin(m) => write!(f, "not scored, the plugin failed: {m}"),
        }
    }
}

fn ordered_map<S: Serializer>(pairs: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(pairs.len()))?;
    for (k, v) in pairs {
        m.serialize_entry(k, v)?;
    }
    m.end()
}

fn views_by_name<S: Serializer>(views: &[ViewScore], s: S) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(views.len()))?;
    for v in views {
        m.serialize_entry(&v.name, v)?;
    }
    m.end()
}

/// A map read in document order, as (key, value) pairs.
struct InOrder<V>(Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for InOrder<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Pairs<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Pairs<V> {
            type Value = InOrder<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<InOrder<V>, A::Error> {
                let mut out = Vec::new();
                while let Some(kv) = m.next_entry()? {
                    out.push(kv);
                }
                Ok(InOrder(out))
            }
        }
        d.deserialize_map(Pairs(std::marker::PhantomData))
    }
}

fn ordered_pairs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    Ok(InOrder::<String>::deserialize(d)?.0)
}

fn named_views<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ViewScore>, D::Error> {
    Ok(InOrder::<ViewScore>::deserialize(d)?
        .0
        .into_iter()
        .map(|(name, v)| ViewScore { name, ..v })
        .collect())
}

/// Reads the annotation under `key` from a scored line; `None` when the line has none (not
/// JSON, not scored, or an error note). With several members of that name, the last counts.
pub fn read(line: &[u8], key: &str) -> Option<Annotation> {
    let raw = serde_json::Deserializer::from_slice(line)
        .deserialize_map(LastMember(key))
        .ok()??;
    serde_json::from_str(raw.get()).ok()
}

/// Finds the last member named `.0` of an object, skipping the others without keeping them.
struct LastMember<'k>(&'k str);

impl<'de> Visitor<'de> for LastMember<'_> {
    type Value = Option<&'de serde_json::value::RawValue>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(is_key) = m.next_key_seed(KeyIs(self.0))? {
            if is_key {
                found = Some(m.next_value()?);
            } else {
                m.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Whether a member's name is `.0`, compared without allocating when it has no escapes.
struct KeyIs<'k>(&'k str);

impl<'de> serde::de::DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

#[derive(Serialize)]
struct ErrorNote<'a> {
    error: &'a str,
    reason: String,
}

/// Writes `line` with `"key": value` added as the object's last member. Returns false (and writes
/// nothing) when the line is not an object that ends in `}`.
pub fn splice(line: &[u8], key: &str, value: &impl Serialize, out: &mut Vec<u8>) -> bool {
    match serde_json::to_vec(value) {
        Ok(json) => splice_raw(line, key, &json, out),
        Err(_) => false,
    }
}

/// [`splice`] for a value that is JSON text already (a plugin's note), written as it is: before
/// the closing brace, after a comma unless the object is empty. The one splice of the host.
pub fn splice_raw(line: &[u8], key: &str, json: &[u8], out: &mut Vec<u8>) -> bool {
    let end = line.iter().rposition(|b| !b.is_ascii_whitespace());
    let start = line.iter().position(|b| !b.is_ascii_whitespace());
    let (Some(start), Some(end)) = (start, end) else {
        return false;
    };
    if line[start] != b'{' || line[end] != b'}' {
        return false;
    }
    let before = out.len();
    out.extend_from_slice(&line[..end]);
    let empty = line[start + 1..end].iter().all(u8::is_ascii_whitespace);
    if !empty {
        out.push(b',');
    }
    if serde_json::to_writer(&mut *out, key).is_err() {
        out.truncate(before);
        return false;
    }
    out.push(b':');
    out.extend_from_slice(json);
    out.extend_from_slice(&line[end..]);
    true
}

/// Writes the output line for one event (without the newline): the original with the annotation,
/// or with an error note when it is an object that could not be scored, or unchanged.
pub fn render(line: &[u8], key: &str, result: &Result<Annotation, LineError>, out: &mut Vec<u8>) {
    let written = match result {
        Ok(a) => splice(line, key, a, out),
        Err(e @ (LineError::FieldMissing(_) | LineError::Duplicate(_) | LineError::Plugin(_))) => {
            splice(
                line,
                key,
                &ErrorNote {
                    error: e.kind(),
                    reason: e.to_string(),
                },
                out,
            )
        }
        Err(_) => false,
    };
    if !written {
        out.extend_from_slice(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splices_before_the_last_brace() {
        let mut out = Vec::new();
        assert!(splice(br#"{"a":1, "b":[{"c":2}]}  "#, "n", &5, &mut out));
        assert_eq!(out, br#"{"a":1, "b":[{"c":2}],"n":5}  "#);
        out.clear();
        assert!(splice(b"{ }", "n", &"x", &mut out));
        assert_eq!(out, br#"{ "n":"x"}"#);
        out.clear();
        assert!(!splice(b"[1]", "n", &5, &mut out));
        assert!(!splice(b"", "n", &5, &mut out));
        assert!(out.is_empty());
    }

    #[test]
    fn annotations_read_back_in_order() {
        let a = Annotation {
            score: 0.5,
            info_content: 3.0,
            novelty: 1.0,
            risk: 1.0,
            severity: Severity::Info,
            tactics: Vec::new(),
            techniques: Vec::new(),
            probability: 0.125,
            uniqueness: 1.0,
            sequence: 4,
            cold: false,
            principal: "p".into(),
            observation: vec![("z".into(), "1".into()), ("a".into(), "2".into())],
            most_novel: ComponentNovelty {
                index: 1,
                view: "v".into(),
                field: "a".into(),
                value: "2".into(),
                novelty: 0.5,
                bits: 1.0,
            },
            views: vec![ViewScore {
                name: "v".into(),
                info_content: 3.0,
                excess: 1.0,
            }],
            event_id: Some("id-1".into()),
            event_time: None,
            campaign: None,
        };
        let mut line = Vec::new();
        assert!(splice(br#"{"x":{"y":1}}"#, "novelty", &a, &mut line));
        assert_eq!(read(&line, "novelty"), Some(a.clone()));
        assert_eq!(read(br#"{"x":1}"#, "novelty"), None);
        assert_eq!(read(b"not json", "novelty"), None);
        assert_eq!(
            read(br#"{"novelty":{"error":"field-missing"}}"#, "novelty"),
            None
        );
        let mut twice = br#"{"novelty":{"old":true},"x":[1,{"novelty":2}]"#.to_vec();
        twice.push(b',');
        twice.extend_from_slice(&line[1..]);
        assert_eq!(
            read(&twice, "novelty"),
            Some(a.clone()),
            "the last member counts"
        );
        let escaped = String::from_utf8(line.clone())
            .expect("utf-8")
            .replace("\"novelty\":{\"score\"", "\"nov\\u0065lty\":{\"score\"");
        assert_eq!(
            read(escaped.as_bytes(), "novelty"),
            Some(a),
            "escaped names"
        );
    }

    #[test]
    fn errors_on_objects_are_noted_and_others_pass_through() {
        let mut out = Vec::new();
        render(
            br#"{"a":1}"#,
            "novelty",
            &Err(LineError::FieldMissing("action".into())),
            &mut out,
        );
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(v["novelty"]["error"], "field-missing");
        out.clear();
        render(
            b"not json",
            "novelty",
            &Err(LineError::NotJson("x".into())),
            &mut out,
        );
        assert_eq!(out, b"not json");
    }
}
