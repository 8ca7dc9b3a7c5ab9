//! Pulls the configured fields out of one raw JSON line without building a document.
//!
//! The paths of all fields form a small trie; the parser descends only into keys on a path and
//! skips everything else with serde_json's iterative skipper, so cost is close to validating the
//! JSON and deep nesting outside the paths cannot exhaust the stack. Values borrow from the line
//! when they contain no escapes. Duplicate keys: the last one wins, as in most JSON readers.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::config::JsonPath;
use crate::engine::same;

/// Why a line could not be read as a JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtractError {
    NotUtf8,
    NotJson(String),
    NotObject,
}

#[derive(Debug, Default)]
struct TrieNode {
    children: Vec<(String, usize)>,
    /// The children whose key is an array index (`0` in `resources.0.ARN`), by index.
    elements: Vec<(usize, usize)>,
    /// The slot filled with this node's scalar value, if a path ends here.
    slot: Option<usize>,
    /// Every slot at or below this node (cleared when a duplicate key revisits it).
    below: Vec<usize>,
}

/// Extracts the values at a fixed set of JSON paths.
#[derive(Debug)]
pub struct Extractor {
    nodes: Vec<TrieNode>,
    slots: usize,
    /// (first slot, later slot) pairs of identical paths.
    aliases: Vec<(usize, usize)>,
}

/// The values found, one per path given to [`Extractor::new`]; `None` when absent or null.
pub type Slots<'a> = Vec<Option<Cow<'a, str>>>;

impl Extractor {
    /// An extractor for `paths`; slot `i` of the result holds the value of `paths[i]`.
    pub fn new(paths: &[JsonPath]) -> Extractor {
        let mut nodes = vec![TrieNode::default()];
        let mut aliases = Vec::new();
        for (slot, path) in paths.iter().enumerate() {
            // Two fields may read the same path: fill the later slot from the first.
            if let Some(first) = paths[..slot].iter().position(|p| p == path) {
                aliases.push((first, slot));
                continue;
            }
            let mut at = 0;
            nodes[0].below.push(slot);
            for key in path {
                at = match nodes[at].children.iter().find(|(k, _)| k == key) {
                    Some(&(_, child)) => child,
                    None => {
                        nodes.push(TrieNode::default());
                        let child = nodes.len() - 1;
                        nodes[at].children.push((key.clone(), child));
                        if let Ok(index) = key.parse::<usize>() {
                            nodes[at].elements.push((index, child));
                        }
                        child
                    }
                };
                nodes[at].below.push(slot);
            }
            nodes[at].slot = Some(slot);
        }
        Extractor {
            nodes,
            slots: paths.len(),
            aliases,
        }
    }

    /// Reads `line` and fills `out` (cleared first) with one value per path.
    ///
    /// Two things strict readers refuse in otherwise well-formed JSON are read anyway: a `\u`
    /// escape of a lone UTF-16 surrogate (`"\ud800"`, which JavaScript writers produce from a
    /// string cut in the middle of a character) as U+FFFD, the replacement character, as
    /// browsers and most JSON readers do; and a number beyond the range of a 64-bit float
    /// (`1e999`) as its text. An attacker who controls one field (a user agent, a port) must
    /// not be able to make the event unscorable with it. A UTF-8 byte-order mark before the
    /// object is skipped: files written on Windows begin with one, and concatenated (`cat`)
    /// it lands at the start of a line in the middle of a stream. The line itself is not
    /// changed.
    pub fn extract<'a>(&self, line: &'a [u8], out: &mut Slots<'a>) -> Result<(), ExtractError> {
        let text = std::str::from_utf8(line).map_err(|_| ExtractError::NotUtf8)?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        match self.extract_str(text, out) {
            Err(ExtractError::NotJson(why)) => {
                let Some(mended) = mend(text) else {
                    return Err(ExtractError::NotJson(why));
                };
                let mut owned = Vec::new();
                // Still not JSON: report the first error, which names the place in the line
                // as it is.
                self.extract_str(&mended, &mut owned)
                    .map_err(|_| ExtractError::NotJson(why))?;
                out.clear();
                out.extend(
                    owned
                        .into_iter()
                        .map(|v| v.map(|v| Cow::Owned(v.into_owned()))),
                );
                Ok(())
            }
            other => other,
        }
    }

    fn extract_str<'a>(&self, text: &'a str, out: &mut Slots<'a>) -> Result<(), ExtractError> {
        out.clear();
        out.resize(self.slots, None);
        let mut de = serde_json::Deserializer::from_str(text);
        let mut not_object = false;
        let mut small = [0u64; 4];
        let mut large = Vec::new();
        let visited = if self.nodes.len() <= 64 * small.len() {
            &mut small[..]
        } else {
            large.resize(self.nodes.len().div_ceil(64), 0);
            &mut large[..]
        };
        let seed = NodeSeed {
            ex: self,
            node: 0,
            out,
            visited,
            top: Some(&mut not_object),
        };
        match seed.deserialize(&mut de).and_then(|()| de.end()) {
            Ok(()) => {}
            Err(_) if not_object => return Err(ExtractError::NotObject),
            Err(e) => return Err(ExtractError::NotJson(e.to_string())),
        }
        for &(from, to) in &self.aliases {
            out[to] = out[from].clone();
        }
        Ok(())
    }
}

/// `text` mended where strict JSON readers refuse what is otherwise well-formed JSON, or `None`
/// when there is nothing to mend:
/// - a `\u` escape of a lone UTF-16 surrogate becomes `\ufffd`;
/// - a number beyond the range of a 64-bit float (`1e999`, a 400-digit integer) becomes a
///   string of its own text, which is how the extractor reads numbers anyway.
///
/// One pass that knows strings from the rest; anything else it leaves for the parser to judge.
fn mend(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let unit = |at: usize| -> Option<u16> {
        let h = b.get(at..at + 6)?;
        if h[0] != b'\\' || h[1] != b'u' {
            return None;
        }
        u16::from_str_radix(std::str::from_utf8(&h[2..]).ok()?, 16).ok()
    };
    let mut out = String::new();
    let mut copied = 0;
    let mut mended = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] != b'\\' {
                        i += 1;
                        continue;
                    }
                    match unit(i) {
                        Some(0xD800..=0xDBFF) if matches!(unit(i + 6), Some(0xDC00..=0xDFFF)) => {
                            i += 12;
                        }
                        Some(0xD800..=0xDFFF) => {
                            out.push_str(&text[copied..i]);
                            out.push_str("\\ufffd");
                            i += 6;
                            copied = i;
                            mended = true;
                        }
                        Some(_) => i += 6,
                        // Any other escape: the backslash and the escaped byte.
                        None => i += 2,
                    }
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < b.len() && matches!(b[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                let token = &text[start..i];
                if token.parse::<f64>().is_ok_and(f64::is_infinite) {
                    out.push_str(&text[copied..start]);
                    out.push('"');
                    out.push_str(token);
                    out.push('"');
                    copied = i;
                    mended = true;
                }
            }
            _ => i += 1,
        }
    }
    if !mended {
        return None;
    }
    out.push_str(&text[copied.min(text.len())..]);
    Some(out)
}

struct NodeSeed<'x, 'o, 'a> {
    ex: &'x Extractor,
    node: usize,
    out: &'o mut Slots<'a>,
    /// One bit per trie node: visited already in this document.
    visited: &'o mut [u64],
    /// Set at the top level only: raised when the document is not an object.
    top: Option<&'o mut bool>,
}

impl<'de: 'a, 'a> DeserializeSeed<'de> for NodeSeed<'_, '_, 'a> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        // A node's slots are filled only below it: a node seen again (a duplicate key) clears
        // what its first value filled, one seen for the first time has nothing to clear.
        let (word, bit) = (self.node / 64, 1u64 << (self.node % 64));
        if self.visited[word] & bit != 0 {
            for &s in &self.ex.nodes[self.node].below {
                self.out[s] = None;
            }
        }
        self.visited[word] |= bit;
        deserializer.deserialize_any(self)
    }
}

impl<'a> NodeSeed<'_, '_, 'a> {
    fn scalar<E: de::Error>(self, value: Cow<'a, str>) -> Result<(), E> {
        if let Some(flag) = self.top {
            *flag = true;
            return Err(E::custom("not an object"));
        }
        if let Some(slot) = self.ex.nodes[self.node].slot {
            self.out[slot] = Some(value);
        }
        Ok(())
    }
}

impl<'de: 'a, 'a> Visitor<'de> for NodeSeed<'_, '_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<(), E> {
        self.scalar(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.scalar(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<(), E> {
        self.scalar(Cow::Owned(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.scalar(Cow::Borrowed(if v { "true" } else { "false" }))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.scalar(Cow::Owned(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.scalar(Cow::Owned(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.scalar(Cow::Owned(v.to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        if let Some(flag) = self.top {
            *flag = true;
            return Err(E::custom("not an object"));
        }
        Ok(())
    }

    /// An array is skipped, except the elements a path names by index (`resources.0.ARN`).
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if let Some(flag) = self.top {
            *flag = true;
            return Err(de::Error::custom("not an object"));
        }
        let elements = &self.ex.nodes[self.node].elements;
        let mut index = 0usize;
        loop {
            let child = elements
                .iter()
                .find(|&&(i, _)| i == index)
                .map(|&(_, child)| child);
            let more = match child {
                Some(child) => seq
                    .next_element_seed(NodeSeed {
                        ex: self.ex,
                        node: child,
                        out: &mut *self.out,
                        visited: &mut *self.visited,
                        top: None,
                    })?
                    .is_some(),
                None => seq.next_element::<IgnoredAny>()?.is_some(),
            };
            if !more {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let node = &self.ex.nodes[self.node];
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let child = node
                .children
                .iter()
                .find(|(k, _)| same(k.as_bytes(), key.as_bytes()));
            match child {
                Some(&(_, child)) => map.next_value_seed(NodeSeed {
                    ex: self.ex,
                    node: child,
                    out: &mut *self.out,
                    visited: &mut *self.visited,
                    top: None,
                })?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Reads an object key, borrowing it when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(p: &[&str]) -> Vec<JsonPath> {
        p.iter()
            .map(|s| s.split('.').map(str::to_owned).collect())
            .collect()
    }

    fn run(ex: &Extractor, line: &str) -> Result<Vec<Option<String>>, ExtractError> {
        let mut out = Vec::new();
        ex.extract(line.as_bytes(), &mut out)?;
        Ok(out.into_iter().map(|v| v.map(Cow::into_owned)).collect())
    }

    #[test]
    fn finds_nested_values_and_skips_the_rest() {
        let ex = Extractor::new(&paths(&["a.b", "a.c", "d", "e"]));
        let got = run(
            &ex,
            r#"{"x":[1,{"a":{"b":"no"}}],"a":{"c":3,"b":"y\"es"},"d":true,"e":null}"#,
        )
        .expect("ok");
        assert_eq!(
            got,
            vec![
                Some("y\"es".into()),
                Some("3".into()),
                Some("true".into()),
                None
            ]
        );
    }

    #[test]
    fn a_path_goes_into_an_array_by_index() {
        let ex = Extractor::new(&paths(&["resources.0.ARN", "names.1", "names.5", "o.0"]));
        let got = run(
            &ex,
            r#"{"resources":[{"ARN":"arn:key","type":"AWS::KMS::Key"},{"ARN":"second"}],"names":["p1",["deep"],"p3"],"o":{"0":"key zero"}}"#,
        )
        .expect("ok");
        // An element that is not a scalar counts as absent, like any object or array; an index
        // past the end is absent; in an object, "0" is an ordinary key.
        assert_eq!(
            got,
            vec![Some("arn:key".into()), None, None, Some("key zero".into())]
        );
        let got = run(&ex, r#"{"resources":"not an array","names":["a","b"]}"#).expect("ok");
        assert_eq!(got, vec![None, Some("b".into()), None, None]);
    }

    #[test]
    fn classifies_bad_lines() {
        let ex = Extractor::new(&paths(&["a"]));
        assert_eq!(run(&ex, "[1,2]"), Err(ExtractError::NotObject));
        assert_eq!(run(&ex, "\"a\""), Err(ExtractError::NotObject));
        assert_eq!(run(&ex, "null"), Err(ExtractError::NotObject));
        assert!(matches!(
            run(&ex, "{\"a\":1"),
            Err(ExtractError::NotJson(_))
        ));
        assert!(matches!(
            run(&ex, "{\"a\":1} x"),
            Err(ExtractError::NotJson(_))
        ));
        assert!(matches!(run(&ex, ""), Err(ExtractError::NotJson(_))));
        // A byte-order mark before the object is not part of it; anywhere else it is.
        assert_eq!(
            run(&ex, "\u{feff}{\"a\":\"x\"}"),
            Ok(vec![Some("x".into())])
        );
        assert!(matches!(
            run(&ex, "{\"a\":1}\u{feff}"),
            Err(ExtractError::NotJson(_))
        ));
        let mut out = Vec::new();
        assert_eq!(
            ex.extract(b"{\"a\":\"\xff\"}", &mut out),
            Err(ExtractError::NotUtf8)
        );
    }

    #[test]
    fn a_lone_surrogate_escape_reads_as_the_replacement_character() {
        let ex = Extractor::new(&paths(&["a", "b"]));
        assert_eq!(
            run(&ex, r#"{"a":"ev\ud800il","b":"x\uDC01"}"#).expect("ok"),
            vec![Some("ev\u{fffd}il".into()), Some("x\u{fffd}".into())]
        );
        // A pair is one character; a pair after a lone one is still a pair.
        assert_eq!(
            run(&ex, r#"{"a":"\ud83d\ude00","b":"\ud800\ud83d\ude00"}"#).expect("ok"),
            vec![Some("\u{1f600}".into()), Some("\u{fffd}\u{1f600}".into())]
        );
        // An escaped backslash before `u` is not an escape; off-path values are mended too.
        assert_eq!(
            run(&ex, r#"{"z":"\udfff","a":"\\ud800"}"#).expect("ok"),
            vec![Some("\\ud800".into()), None]
        );
        // Still broken after mending: the original error, which names the place.
        match run(&ex, r#"{"a":"\ud800",}"#) {
            Err(ExtractError::NotJson(m)) => assert!(m.contains("column"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(mend(r#"{"a":"\u00e9\n","b":1e308}"#), None);
    }

    #[test]
    fn a_number_beyond_a_float_reads_as_its_text() {
        let ex = Extractor::new(&paths(&["a", "b", "c"]));
        assert_eq!(
            run(&ex, r#"{"a":12.5e308,"z":[-1e999],"b":"1e999","c":1.5}"#).expect("ok"),
            vec![
                Some("12.5e308".into()),
                Some("1e999".into()),
                Some("1.5".into())
            ]
        );
        let digits = "9".repeat(400);
        assert_eq!(
            run(&ex, &format!(r#"{{"a":{digits}}}"#)).expect("ok"),
            vec![Some(digits), None, None]
        );
    }

    #[test]
    fn last_duplicate_key_wins_and_clears_the_subtree() {
        let ex = Extractor::new(&paths(&["a.b", "a.c"]));
        assert_eq!(
            run(&ex, r#"{"a":{"b":"1","c":"2"},"a":{"b":"3"}}"#).expect("ok"),
            vec![Some("3".into()), None]
        );
        assert_eq!(
            run(&ex, r#"{"a":{"b":"1"},"a":null}"#).expect("ok"),
            vec![None, None]
        );
    }

    #[test]
    fn same_path_twice_fills_both_slots() {
        let ex = Extractor::new(&paths(&["a", "b", "a"]));
        assert_eq!(
            run(&ex, r#"{"a":"x"}"#).expect("ok"),
            vec![Some("x".into()), None, Some("x".into())]
        );
    }

    #[test]
    fn deep_nesting_off_path_does_not_overflow() {
        let ex = Extractor::new(&paths(&["a"]));
        let deep = format!(
            "{{\"z\":{}{},\"a\":\"ok\"}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert_eq!(run(&ex, &deep).expect("ok"), vec![Some("ok".into())]);
        // A path's value that is itself deeply nested is skipped, not descended into.
        let deep_on_path = format!(
            "{{\"a\":{}1{}}}",
            "{\"a\":".repeat(100_000),
            "}".repeat(100_000)
        );
        assert_eq!(run(&ex, &deep_on_path).expect("ok"), vec![None]);
    }
}
