//! Suppression: an analyst's rules that keep alerts matching them out of the alert stream, each
//! with a reason and an expiry, counted in the summary and the metrics.
//!
//! A rules file (`alerts.suppress`, `--suppress FILE`) is TOML:
//!
//! ```toml
//! [[rule]]
//! principal = "AssumedRole arn:aws:iam::111122223333:role/github-actions-*"
//! action = "PutRetentionPolicy"
//! reason = "CI deploys set log retention (ticket SEC-1234)"
//! expires = "2027-01-31"
//! by = "ana"
//! ```
//!
//! A rule matches an alert when every field it names matches (`principal`, `action`, `network`,
//! `tactic`, `kind`; a value may hold `*` for any run of characters). A rule without `reason`
//! or `expires`, or with a field that is not one of these, is refused at start, naming it.

use std::path::Path;

use serde::Deserialize;

/// One rule, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    principal: Option<String>,
    action: Option<String>,
    network: Option<String>,
    tactic: Option<String>,
    kind: Option<String>,
    /// Seconds since the epoch after which the rule no longer applies.
    expires: f64,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    principal: Option<String>,
    action: Option<String>,
    network: Option<String>,
    tactic: Option<String>,
    kind: Option<String>,
    reason: Option<String>,
    expires: Option<String>,
    by: Option<String>,
}

/// What an alert is matched on.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub principal: &'a str,
    pub action: &'a str,
    pub network: &'a str,
    pub tactics: &'a [String],
    pub kind: &'a str,
}

/// The rules in force.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules(Vec<Rule>);

impl Rules {
    /// Reads and validates a rules file; each error names the rule (1-based) and the key.
    pub fn load(path: &Path) -> Result<Rules, String> {
        let text = fs_err::read_to_string(path).map_err(|e| e.to_string())?;
        Rules::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Rules, String> {
        let raw: RawFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut rules = Vec::with_capacity(raw.rule.len());
        for (i, r) in raw.rule.into_iter().enumerate() {
            let n = i + 1;
            let reason = r
                .reason
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| format!("rule {n}: a reason is required"))?;
            let expires = r.expires.as_deref().ok_or_else(|| {
                format!("rule {n}: an expiry is required (expires = \"2027-01-31\")")
            })?;
            let expires = crate::scored::parse_since(expires)
                .map_err(|_| format!("rule {n}: expires \"{expires}\" is not a date or time"))?;
            let _ = r.by;
            if r.principal.is_none()
                && r.action.is_none()
                && r.network.is_none()
                && r.tactic.is_none()
            {
                return Err(format!(
                    "rule {n}: name at least one of principal, action, network, tactic"
                ));
            }
            rules.push(Rule {
                principal: r.principal,
                action: r.action,
                network: r.network,
                tactic: r.tactic,
                kind: r.kind,
                expires,
                reason,
            });
        }
        Ok(Rules(rules))
    }

    /// The rules still in force at `now` (seconds since the epoch); says which expired.
    pub fn in_force(self, now: f64) -> Rules {
        let (live, expired): (Vec<Rule>, Vec<Rule>) =
            self.0.into_iter().partition(|r| r.expires > now);
        for r in &expired {
            tracing::warn!(
                "a suppression rule has expired and no longer applies: {}",
                r.reason
            );
        }
        Rules(live)
    }

    /// The rule that suppresses an alert on `s`, if one does.
    pub fn matching(&self, s: &Subject<'_>) -> Option<&Rule> {
        self.0.iter().find(|r| {
            matches(r.principal.as_deref(), s.principal)
                && matches(r.action.as_deref(), s.action)
                && matches(r.network.as_deref(), s.network)
                && matches(r.kind.as_deref(), s.kind)
                && r.tactic
                    .as_deref()
                    .is_none_or(|t| s.tactics.iter().any(|have| glob(t, have)))
        })
    }
}

fn matches(pattern: Option<&str>, value: &str) -> bool {
    pattern.is_none_or(|p| glob(p, value))
}

/// Whether `value` matches `pattern`, where `*` stands for any run of characters.
fn glob(pattern: &str, value: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = value.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_runs_of_characters() {
        assert!(glob("abc", "abc") && !glob("abc", "abcd"));
        assert!(glob("role/ci-*", "role/ci-deploy") && !glob("role/ci-*", "role/cd-deploy"));
        assert!(glob("*Snapshot*", "CreateSnapshotCopy") && glob("*", ""));
        assert!(glob("a*b*c", "aXbYc") && !glob("a*b*c", "aXcYb"));
        assert!(!glob("ab*ba", "aba"), "the ends may not overlap");
    }

    #[test]
    fn rules_need_a_reason_an_expiry_and_a_subject() {
        let ok = "[[rule]]\naction = \"PutRetentionPolicy\"\nreason = \"CI\"\nexpires = \"2027-01-31\"\n";
        let rules = Rules::parse(ok).expect("valid");
        let s = Subject {
            principal: "p",
            action: "PutRetentionPolicy",
            network: "n",
            tactics: &[],
            kind: "event",
        };
        assert!(rules.matching(&s).is_some());
        assert!(
            rules.clone().in_force(2.0e9).matching(&s).is_none(),
            "expired in 2033"
        );
        for (text, want) in [
            (
                "[[rule]]\naction = \"X\"\nexpires = \"2027-01-31\"\n",
                "reason",
            ),
            ("[[rule]]\naction = \"X\"\nreason = \"r\"\n", "expiry"),
            (
                "[[rule]]\nreason = \"r\"\nexpires = \"2027-01-31\"\n",
                "at least one",
            ),
            (
                "[[rule]]\nactoin = \"X\"\nreason = \"r\"\nexpires = \"2027-01-31\"\n",
                "actoin",
            ),
            (
                "[[rule]]\naction = \"X\"\nreason = \"r\"\nexpires = \"soon\"\n",
                "not a date",
            ),
        ] {
            let e = Rules::parse(text).expect_err(text);
            assert!(e.contains(want), "{e}");
        }
    }
}
