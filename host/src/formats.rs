//! Alert formats for SIEMs: oddity's own JSON (`native`), the Elastic Common Schema 8.x (`ecs`),
//! and Splunk's HTTP Event Collector envelope (`splunk-hec`). Each takes the native alert, as
//! [`crate::alerts`] renders it, and gives the line to write.

use serde_json::{Map, Value, json};

/// An alert format (`alerts.format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Native,
    Ecs,
    SplunkHec,
}

impl Format {
    pub fn from_name(name: &str) -> Option<Format> {
        match name {
            "native" => Some(Format::Native),
            "ecs" => Some(Format::Ecs),
            "splunk-hec" => Some(Format::SplunkHec),
            _ => None,
        }
    }

    /// The alert `native` in this format.
    pub fn render(self, native: Value) -> Value {
        match self {
            Format::Native => native,
            Format::Ecs => ecs(&native),
            Format::SplunkHec => hec(native),
        }
    }
}

/// The ECS version the `ecs` format follows.
pub const ECS_VERSION: &str = "8.17.0";

/// ECS's `event.severity` (a number) for oddity's severity names.
fn severity_number(name: &str) -> u64 {
    match name {
        "info" => 1,
        "low" => 2,
        "medium" => 3,
        "high" => 4,
        _ => 5,
    }
}

/// Inserts `value` at the dotted `path` of `doc`, making the objects on the way.
fn put(doc: &mut Map<String, Value>, path: &str, value: Value) {
    if value.is_null() {
        return;
    }
    let mut parts = path.split('.').peekable();
    let mut at = doc;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            at.insert(part.to_owned(), value);
            return;
        }
        let next = at
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(inner) = next else { return };
        at = inner;
    }
}

/// The alert as an ECS document: `event.kind: alert`, who and where in `user`, `source`,
/// `user_agent` and `cloud`, ATT&CK in `threat`, the detection in `rule` and `observer`, and
/// the whole native alert under the custom field `oddity`.
fn ecs(a: &Value) -> Value {
    let raw = &a["raw"];
    let mut d = Map::new();
    let when = a["eventTime"].as_str().or(a["detectedAt"].as_str());
    put(&mut d, "@timestamp", json!(when));
    put(&mut d, "ecs.version", json!(ECS_VERSION));
    put(&mut d, "event.kind", json!("alert"));
    put(&mut d, "event.category", json!(["api"]));
    put(&mut d, "event.type", json!(["info"]));
    put(&mut d, "event.id", a["alertId"].clone());
    put(&mut d, "event.created", a["detectedAt"].clone());
    put(&mut d, "event.start", a["eventTime"].clone());
    let severity = a["severity"].as_str().unwrap_or("info");
    put(&mut d, "event.severity", json!(severity_number(severity)));
    put(&mut d, "event.risk_score", a["risk"].clone());
    put(&mut d, "event.action", raw["eventName"].clone());
    put(&mut d, "event.provider", raw["eventSource"].clone());
    put(&mut d, "event.module", json!("oddity"));
    put(&mut d, "event.dataset", json!("oddity.alert"));
    let outcome = if raw["errorCode"].is_string() {
        "failure"
    } else {
        "success"
    };
    put(&mut d, "event.outcome", json!(outcome));
    let explanation = &a["explanation"];
    let reason = format!(
        "{} {}: new {} = {} ({} view)",
        a["principal"].as_str().unwrap_or("?"),
        raw["eventName"]
            .as_str()
            .or(a["observation"]["action"].as_str())
            .unwrap_or("?"),
        explanation["field"].as_str().unwrap_or("?"),
        explanation["value"].as_str().unwrap_or("?"),
        explanation["view"].as_str().unwrap_or("?"),
    );
    put(
        &mut d,
        "message",
        json!(format!("oddity {severity} alert: {reason}")),
    );
    put(&mut d, "event.reason", json!(reason));
    if let Some(ip) = raw["sourceIp"].as_str() {
        put(&mut d, "source.address", json!(ip));
        if ip.parse::<std::net::IpAddr>().is_ok() {
            put(&mut d, "source.ip", json!(ip));
            put(&mut d, "related.ip", json!([ip]));
        }
    }
    put(&mut d, "user_agent.original", raw["userAgent"].clone());
    put(&mut d, "user.id", raw["identityArn"].clone());
    put(&mut d, "user.name", a["principal"].clone());
    if let Some(p) = a["principal"].as_str() {
        put(&mut d, "related.user", json!([p]));
    }
    if raw["eventSource"]
        .as_str()
        .is_some_and(|s| s.ends_with(".amazonaws.com"))
    {
        put(&mut d, "cloud.provider", json!("aws"));
    }
    put(&mut d, "cloud.account.id", raw["account"].clone());
    put(&mut d, "cloud.region", raw["region"].clone());
    put(&mut d, "error.code", raw["errorCode"].clone());
    let tactics = a["tactics"].as_array().filter(|t| !t.is_empty());
    let techniques = a["techniques"].as_array().filter(|t| !t.is_empty());
    if tactics.is_some() || techniques.is_some() {
        put(&mut d, "threat.framework", json!("MITRE ATT&CK"));
        put(&mut d, "threat.tactic.name", json!(tactics));
        put(&mut d, "threat.technique.id", json!(techniques));
    }
    let kind = a["kind"].as_str().unwrap_or("event");
    put(&mut d, "rule.name", json!(format!("oddity {kind} novelty")));
    put(&mut d, "rule.id", json!(format!("oddity-{kind}")));
    put(&mut d, "rule.ruleset", json!("oddity"));
    put(&mut d, "observer.vendor", json!("oddity"));
    put(&mut d, "observer.product", a["detector"]["name"].clone());
    put(&mut d, "observer.version", a["detector"]["version"].clone());
    put(&mut d, "observer.type", json!("detector"));
    if let Some(id) = a["campaign"]["id"].as_str() {
        put(&mut d, "labels.oddity_campaign_id", json!(id));
    }
    d.insert("oddity".to_owned(), a.clone());
    Value::Object(d)
}

/// The alert in Splunk's HTTP Event Collector envelope: `time` (the event's, in epoch seconds),
/// `source`, `sourcetype`, and the native alert as `event`.
fn hec(native: Value) -> Value {
    let time = native["eventTime"]
        .as_str()
        .or(native["detectedAt"].as_str())
        .and_then(crate::scored::parse_time);
    let mut envelope = Map::new();
    if let Some(t) = time {
        envelope.insert("time".to_owned(), json!(t));
    }
    envelope.insert("source".to_owned(), json!("oddity"));
    envelope.insert("sourcetype".to_owned(), json!("oddity:alert"));
    envelope.insert("event".to_owned(), native);
    Value::Object(envelope)
}
