//! Stakes: what a call can do, as MITRE ATT&CK tactics and techniques, and how much a novel
//! call of each tactic weighs in risk.
//!
//! A profile's `[stakes]` table maps actions (by name or `*` pattern, optionally for one
//! service, optionally only when a field's value matches a regex) to a tactic and a technique.
//! An event's stakes are the rules it matches: its weight is the highest weight among their
//! tactics, 1 (neutral) when it matches none. Risk is novelty times that weight (see
//! [`crate::model`]), so a routine call stays quiet whatever it could do, and a new call that
//! creates credentials or stops logging outranks a new call that only reads.

use std::collections::BTreeMap;

use regex::Regex;
use rustc_hash::FxHashMap;
use serde::Deserialize;
use xxhash_rust::xxh3::xxh3_64;

use crate::config::ConfigError;

/// ATT&CK's enterprise tactics, by short name, with their ids, in the matrix's order.
pub const TACTICS: [(&str, &str); 14] = [
    ("reconnaissance", "TA0043"),
    ("resource-development", "TA0042"),
    ("initial-access", "TA0001"),
    ("execution", "TA0002"),
    ("persistence", "TA0003"),
    ("privilege-escalation", "TA0004"),
    ("defense-evasion", "TA0005"),
    ("credential-access", "TA0006"),
    ("discovery", "TA0007"),
    ("lateral-movement", "TA0008"),
    ("collection", "TA0009"),
    ("command-and-control", "TA0011"),
    ("exfiltration", "TA0010"),
    ("impact", "TA0040"),
];

/// Most rules a profile may hold (an event's matches are kept as a bit set per rule block).
pub const MAX_RULES: usize = 4096;

/// A set of tactics, one bit per entry of [`TACTICS`].
pub type TacticSet = u16;

/// The names of a set's tactics, in the matrix's order.
pub fn tactic_names(set: TacticSet) -> impl Iterator<Item = &'static str> {
    TACTICS
        .iter()
        .enumerate()
        .filter(move |(i, _)| set & (1 << i) != 0)
        .map(|(_, (name, _))| *name)
}

/// An action name, exactly or as a `*` pattern.
#[derive(Debug, Clone)]
enum Pattern {
    Exact(String),
    Glob(Regex),
}

/// One validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    service: Option<String>,
    actions: Vec<Pattern>,
    pub tactic: usize,
    pub technique: String,
    /// Conditions that must all hold: a profile field's value matches a regex.
    when: Vec<(usize, Regex)>,
}

/// A profile's stakes table, validated and indexed.
#[derive(Debug, Clone, Default)]
pub struct Stakes {
    /// Weight per tactic (index into [`TACTICS`]); 1 for a tactic the table does not weigh.
    weights: [f64; TACTICS.len()],
    rules: Vec<Rule>,
    /// Rules naming an action exactly, by hash of (service or "", action).
    exact: FxHashMap<(u64, u64), Vec<u16>>,
    /// Rules with a pattern among their actions.
    patterned: Vec<u16>,
    /// Profile fields read: the service (when a rule names one) and the action.
    service_field: Option<usize>,
    action_field: Option<usize>,
}

/// What an event's action is at stake for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Matched {
    /// The highest weight among the matched rules' tactics; 1 when none matched.
    pub weight: f64,
    pub tactics: TacticSet,
    /// Indices of the matched rules, in table order.
    pub rules: Vec<u16>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawStakes {
    #[serde(default)]
    tactics: BTreeMap<String, f64>,
    #[serde(default)]
    rules: Vec<RawRule>,
    /// How many of the rules come first from a built-in profile (a configuration's own are
    /// numbered from the first after them, as in its file).
    #[serde(skip)]
    built_in: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRule {
    service: Option<String>,
    actions: Vec<String>,
    tactic: String,
    technique: String,
    /// A name for people reading the table: documentation, read only so the table validates.
    #[serde(default, rename = "name")]
    _name: String,
    /// The references the rule rests on: documentation, read only so the table validates.
    #[serde(default, rename = "sources")]
    _sources: Vec<String>,
    when: Option<RawWhens>,
}

/// One condition, or a list of them that must all hold.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawWhens {
    One(RawWhen),
    All(Vec<RawWhen>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWhen {
    field: String,
    matches: String,
}

impl RawStakes {
    /// Lays `own` over this table: its weights replace these, its rules come after these.
    pub(crate) fn extend(&mut self, own: RawStakes) {
        self.tactics.extend(own.tactics);
        self.built_in = self.rules.len();
        self.rules.extend(own.rules);
    }
}

/// The key of rule `i` as its author wrote it, when the first `built_in` rules come from a
/// built-in profile.
fn rule_key(built_in: usize, i: usize) -> String {
    match i.checked_sub(built_in) {
        Some(own) => format!("stakes.rules[{own}]"),
        None => format!("the built-in profile's stakes.rules[{i}]"),
    }
}

fn invalid(msg: String) -> ConfigError {
    ConfigError::Invalid(msg)
}

/// A `when` condition at `key`: the profile field it reads and its regex.
fn condition(
    key: &str,
    w: RawWhen,
    field_index: &impl Fn(&str, &str) -> Result<usize, ConfigError>,
) -> Result<(usize, Regex), ConfigError> {
    let field = field_index(&format!("{key}.field"), &w.field)?;
    let re = Regex::new(&w.matches).map_err(|e| {
        invalid(format!(
            "{key}.matches: invalid regex \"{}\": {e}",
            w.matches
        ))
    })?;
    Ok((field, re))
}

fn tactic_index(key: &str, name: &str) -> Result<usize, ConfigError> {
    TACTICS.iter().position(|(n, _)| *n == name).ok_or_else(|| {
        let known: Vec<_> = TACTICS.iter().map(|(n, _)| *n).collect();
        invalid(format!(
            "{key}: unknown tactic \"{name}\" (ATT&CK's: {})",
            known.join(", ")
        ))
    })
}

fn technique_ok(t: &str) -> bool {
    let b = t.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    match b.len() {
        5 => b[0] == b'T' && digits(&b[1..]),
        9 => b[0] == b'T' && digits(&b[1..5]) && b[5] == b'.' && digits(&b[6..]),
        _ => false,
    }
}

fn pattern(key: &str, text: &str) -> Result<Pattern, ConfigError> {
    if text.is_empty() {
        return Err(invalid(format!("{key}: an action is empty")));
    }
    if !text.contains('*') {
        return Ok(Pattern::Exact(text.to_owned()));
    }
    let body = text
        .split('*')
        .map(regex::escape)
        .collect::<Vec<_>>()
        .join(".*");
    Regex::new(&format!("^{body}$"))
        .map(Pattern::Glob)
        .map_err(|e| invalid(format!("{key}: invalid pattern \"{text}\": {e}")))
}

fn pair_key(service: &str, action: &str) -> (u64, u64) {
    (xxh3_64(service.as_bytes()), xxh3_64(action.as_bytes()))
}

impl Stakes {
    /// Validates a raw table against the profile's fields; every error names its key.
    pub(crate) fn validate(
        raw: RawStakes,
        field_index: impl Fn(&str, &str) -> Result<usize, ConfigError>,
        action_field: Option<usize>,
    ) -> Result<Stakes, ConfigError> {
        let mut stakes = Stakes {
            weights: [1.0; TACTICS.len()],
            action_field,
            ..Stakes::default()
        };
        for (name, w) in &raw.tactics {
            let key = format!("stakes.tactics.{name}");
            let i = tactic_index(&key, name)?;
            if !(w.is_finite() && (0.0..=100.0).contains(w)) {
                return Err(invalid(format!("{key}: weight {w} is outside [0, 100]")));
            }
            stakes.weights[i] = *w;
        }
        if raw.rules.len() > MAX_RULES {
            return Err(invalid(format!(
                "stakes.rules: {} rules, at most {MAX_RULES}",
                raw.rules.len()
            )));
        }
        if !raw.rules.is_empty() && action_field.is_none() {
            return Err(invalid(
                "stakes.rules: the profile names no `action` field to match".to_owned(),
            ));
        }
        for (i, r) in raw.rules.into_iter().enumerate() {
            let key = rule_key(raw.built_in, i);
            let rule = Stakes::rule(&key, r, &field_index)?;
            if rule.service.is_some() && stakes.service_field.is_none() {
                stakes.service_field = Some(field_index(&format!("{key}.service"), "service")?);
            }
            stakes.index(rule);
        }
        Ok(stakes)
    }

    fn rule(
        key: &str,
        r: RawRule,
        field_index: &impl Fn(&str, &str) -> Result<usize, ConfigError>,
    ) -> Result<Rule, ConfigError> {
        let tactic = tactic_index(&format!("{key}.tactic"), &r.tactic)?;
        if !technique_ok(&r.technique) {
            return Err(invalid(format!(
                "{key}.technique: \"{}\" is not an ATT&CK technique id such as T1098 or T1098.001",
                r.technique
            )));
        }
        if r.actions.is_empty() {
            return Err(invalid(format!("{key}.actions: name at least one action")));
        }
        let actions = r
            .actions
            .iter()
            .map(|a| pattern(&format!("{key}.actions"), a))
            .collect::<Result<Vec<_>, _>>()?;
        let when = match r.when {
            None => Vec::new(),
            Some(RawWhens::One(w)) => vec![condition(&format!("{key}.when"), w, field_index)?],
            Some(RawWhens::All(ws)) => ws
                .into_iter()
                .enumerate()
                .map(|(i, w)| condition(&format!("{key}.when[{i}]"), w, field_index))
                .collect::<Result<_, _>>()?,
        };
        Ok(Rule {
            service: r.service,
            actions,
            tactic,
            technique: r.technique,
            when,
        })
    }

    fn index(&mut self, rule: Rule) {
        let id = self.rules.len() as u16;
        let service = rule.service.as_deref().unwrap_or("");
        for a in &rule.actions {
            match a {
                Pattern::Exact(name) => self
                    .exact
                    .entry(pair_key(service, name))
                    .or_default()
                    .push(id),
                Pattern::Glob(_) => {
                    if self.patterned.last() != Some(&id) {
                        self.patterned.push(id);
                    }
                }
            }
        }
        self.rules.push(rule);
    }

    /// The ids of the techniques an event matched, each once, in table order.
    pub fn techniques<'a>(&'a self, m: &'a Matched) -> impl Iterator<Item = &'a str> {
        m.rules.iter().enumerate().filter_map(move |(i, &r)| {
            let id = self.rules[usize::from(r)].technique.as_str();
            let seen = m.rules[..i]
                .iter()
                .any(|&p| self.rules[usize::from(p)].technique == id);
            (!seen).then_some(id)
        })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Weight of one tactic.
    pub fn weight(&self, tactic: usize) -> f64 {
        self.weights[tactic]
    }

    /// The rules an event with these field values matches, and their weight.
    pub fn judge(&self, values: &[&str]) -> Matched {
        let mut m = Matched {
            weight: 1.0,
            ..Matched::default()
        };
        let Some(action_field) = self.action_field else {
            return m;
        };
        if self.rules.is_empty() {
            return m;
        }
        let action = values[action_field];
        let service = self.service_field.map_or("", |f| values[f]);
        let hit = |id: u16, m: &mut Matched| {
            let rule = &self.rules[usize::from(id)];
            if !rule.when.iter().all(|(f, re)| re.is_match(values[*f])) {
                return;
            }
            if !m.rules.contains(&id) {
                m.rules.push(id);
                let w = self.weights[rule.tactic];
                m.weight = if m.tactics == 0 { w } else { m.weight.max(w) };
                m.tactics |= 1 << rule.tactic;
            }
        };
        // The action's own rules and its rules for any service (the action hashed once).
        let any = pair_key("", action);
        let own = (pair_key(service, "").0, any.1);
        for key in [own, any] {
            if let Some(ids) = self.exact.get(&key) {
                ids.iter().for_each(|&id| hit(id, &mut m));
            }
        }
        for &id in &self.patterned {
            let rule = &self.rules[usize::from(id)];
            // The service first: a pattern is matched only for its own service's calls.
            let matches = rule.service.as_deref().is_none_or(|s| s == service)
                && rule.actions.iter().any(|p| match p {
                    Pattern::Glob(re) => re.is_match(action),
                    Pattern::Exact(_) => false,
                });
            if matches {
                hit(id, &mut m);
            }
        }
        m.rules.sort_unstable();
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stakes(text: &str) -> Result<Stakes, ConfigError> {
        let raw: RawStakes = toml::from_str(text).expect("toml");
        let fields = ["action", "grantee", "service"];
        Stakes::validate(
            raw,
            |key, n| {
                fields
                    .iter()
                    .position(|f| *f == n)
                    .ok_or_else(|| invalid(format!("{key}: no field named \"{n}\"")))
            },
            Some(0),
        )
    }

    const TABLE: &str = r#"
        [tactics]
        defense-evasion = 2.5
        discovery = 1.1
        exfiltration = 3.0
        [[rules]]
        service = "cloudtrail.amazonaws.com"
        actions = ["StopLogging", "DeleteTrail"]
        tactic = "defense-evasion"
        technique = "T1562.008"
        [[rules]]
        service = "guardduty.amazonaws.com"
        actions = ["Delete*"]
        tactic = "defense-evasion"
        technique = "T1562.001"
        [[rules]]
        actions = ["List*"]
        tactic = "discovery"
        technique = "T1580"
        [[rules]]
        service = "ec2.amazonaws.com"
        actions = ["ModifySnapshotAttribute"]
        tactic = "exfiltration"
        technique = "T1537"
        when = { field = "grantee", matches = "^(public|[0-9]{12})$" }
    "#;

    #[test]
    fn an_action_matches_by_name_pattern_service_and_condition() {
        let s = stakes(TABLE).expect("valid");
        let m = s.judge(&["StopLogging", "-", "cloudtrail.amazonaws.com"]);
        assert_eq!((m.weight, m.rules.as_slice()), (2.5, &[0u16][..]));
        assert_eq!(
            tactic_names(m.tactics).collect::<Vec<_>>(),
            ["defense-evasion"]
        );
        let m = s.judge(&["StopLogging", "-", "s3.amazonaws.com"]);
        assert_eq!(
            (m.weight, m.tactics),
            (1.0, 0),
            "another service's StopLogging is neutral"
        );
        assert_eq!(
            s.judge(&["DeleteDetector", "-", "guardduty.amazonaws.com"])
                .rules,
            [1]
        );
        assert_eq!(
            s.judge(&["ListUsers", "-", "iam.amazonaws.com"]).weight,
            1.1
        );
        let share = [
            "ModifySnapshotAttribute",
            "123456789012",
            "ec2.amazonaws.com",
        ];
        assert_eq!(s.judge(&share).weight, 3.0);
        let no_grant = ["ModifySnapshotAttribute", "-", "ec2.amazonaws.com"];
        assert_eq!(s.judge(&no_grant).weight, 1.0, "the condition decides");
        assert_eq!(
            s.judge(&["PutObject", "-", "s3.amazonaws.com"]),
            Matched {
                weight: 1.0,
                ..Matched::default()
            }
        );
    }

    #[test]
    fn a_bad_table_is_refused_naming_the_key() {
        let err = |t: &str| stakes(t).expect_err("refused").to_string();
        assert!(err("[tactics]\nlooting = 2.0").contains("stakes.tactics.looting: unknown tactic"));
        let rule = |extra: &str| format!("[[rules]]\nactions = [\"A\"]\n{extra}");
        assert!(
            err(&rule("tactic = \"plunder\"\ntechnique = \"T1000\""))
                .contains("stakes.rules[0].tactic: unknown tactic \"plunder\"")
        );
        assert!(
            err(&rule("tactic = \"impact\"\ntechnique = \"1485\""))
                .contains("stakes.rules[0].technique")
        );
        assert!(
            err(&rule(
                "tactic = \"impact\"\ntechnique = \"T1485\"\nwhen = { field = \"grantee\", matches = \"(\" }"
            ))
            .contains("stakes.rules[0].when.matches: invalid regex")
        );
        assert!(
            err(&rule(
                "tactic = \"impact\"\ntechnique = \"T1485\"\nwhen = { field = \"nope\", matches = \"x\" }"
            ))
            .contains("stakes.rules[0].when.field")
        );
        assert!(
            err(&rule(
                "tactic = \"impact\"\ntechnique = \"T1485\"\nwhen = [{ field = \"grantee\", matches = \"x\" }, { field = \"nope\", matches = \"x\" }]"
            ))
            .contains("stakes.rules[0].when[1].field")
        );
        assert!(err("[tactics]\nimpact = -1.0").contains("stakes.tactics.impact: weight -1"));
    }

    #[test]
    fn every_condition_of_a_list_must_hold() {
        let s = stakes(
            r#"
            [tactics]
            defense-evasion = 2.5
            [[rules]]
            actions = ["ConsoleLogin"]
            tactic = "defense-evasion"
            technique = "T1078.004"
            when = [{ field = "grantee", matches = "^no-mfa$" }, { field = "service", matches = "^IAMUser$" }]
            "#,
        )
        .expect("valid");
        let weight = |grantee, service| s.judge(&["ConsoleLogin", grantee, service]).weight;
        assert_eq!(weight("no-mfa", "IAMUser"), 2.5);
        assert_eq!(weight("no-mfa", "SAMLUser"), 1.0, "the second fails");
        assert_eq!(weight("mfa", "IAMUser"), 1.0, "the first fails");
    }
}
