//! Alert formats for SIEMs: oddity's own JSON (`native`), the Elastic Common Schema 8.x (`ecs`),
//! OCSF 1.x's Detection Finding (`ocsf`: the format of AWS Security Lake and Splunk's OCSF
//! add-on), and Splunk's HTTP Event Collector envelope (`splunk-hec`). Each takes the native alert, as
//! [`crate::alerts`] renders it, and gives the line to write.

use serde_json::{Map, Value, json};

/// An alert format (`alerts.format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Native,
    Ecs,
    Ocsf,
    SplunkHec,
}

impl Format {
    pub fn from_name(name: &str) -> Option<Format> {
        match name {
            "native" => Some(Format::Native),
            "ecs" => Some(Format::Ecs),
            "ocsf" => Some(Format::Ocsf),
            "splunk-hec" => Some(Format::SplunkHec),
            _ => None,
        }
    }

    /// The alert `native` in this format.
    pub fn render(self, native: Value) -> Value {
        match self {
            Format::Native => native,
            Format::Ecs => ecs(&native),
            Format::Ocsf => ocsf(&native),
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

/// The OCSF version the `ocsf` format follows.
pub const OCSF_VERSION: &str = "1.2.0";

/// Milliseconds since the epoch of an event time or a detection time.
fn millis(text: Option<&str>) -> Option<i64> {
    text.and_then(crate::scored::parse_time)
        .map(|s| (s * 1000.0).round() as i64)
}

/// The alert as an OCSF Detection Finding (class 2004): the finding (`finding_info`: the alert
/// id, a title, the explanation, ATT&CK tactics and techniques), the call as evidence (actor,
/// API, source endpoint), `cloud`, and the whole native alert as `unmapped.oddity`.
fn ocsf(a: &Value) -> Value {
    let severity = a["severity"].as_str().unwrap_or("info");
    let (severity_id, severity_name) = match severity {
        "info" => (1, "Informational"),
        "low" => (2, "Low"),
        "medium" => (3, "Medium"),
        "high" => (4, "High"),
        _ => (5, "Critical"),
    };
    let (detected, happened) = (
        millis(a["detectedAt"].as_str()),
        millis(a["eventTime"].as_str()),
    );
    let mut d = Map::new();
    for (path, value) in [
        ("activity_id", json!(1)),
        ("activity_name", json!("Create")),
        ("category_uid", json!(2)),
        ("category_name", json!("Findings")),
        ("class_uid", json!(2004)),
        ("class_name", json!("Detection Finding")),
        ("type_uid", json!(200_401)),
        ("type_name", json!("Detection Finding: Create")),
        ("severity_id", json!(severity_id)),
        ("severity", json!(severity_name)),
        ("status_id", json!(1)),
        ("status", json!("New")),
        ("time", json!(detected.or(happened))),
        ("start_time", json!(happened)),
        (
            "risk_score",
            json!(a["risk"].as_f64().map(|r| r.round() as i64)),
        ),
        ("metadata.version", json!(OCSF_VERSION)),
        ("metadata.uid", a["alertId"].clone()),
        ("metadata.product.vendor_name", json!("oddity")),
        ("metadata.product.name", a["detector"]["name"].clone()),
        ("metadata.product.version", a["detector"]["version"].clone()),
    ] {
        put(&mut d, path, value);
    }
    let kind = a["kind"].as_str().unwrap_or("event");
    let title = ocsf_finding_info(a, &mut d, detected, happened);
    put(
        &mut d,
        "message",
        json!(format!("oddity {severity} {kind} alert: {title}")),
    );
    put(&mut d, "evidences", json!([ocsf_evidence(a)]));
    let raw = &a["raw"];
    if raw["eventSource"]
        .as_str()
        .is_some_and(|s| s.ends_with(".amazonaws.com"))
    {
        put(&mut d, "cloud.provider", json!("AWS"));
        put(&mut d, "cloud.account.uid", raw["account"].clone());
        put(&mut d, "cloud.region", raw["region"].clone());
    }
    put(&mut d, "unmapped.oddity", a.clone());
    Value::Object(d)
}

/// The action of an alert: the call's name, or the observation's action.
fn action(a: &Value) -> &str {
    a["raw"]["eventName"]
        .as_str()
        .or(a["observation"]["action"].as_str())
        .unwrap_or("?")
}

/// OCSF's `finding_info` of an alert: its id, title, explanation, times and ATT&CK attacks.
/// Returns the title.
fn ocsf_finding_info(
    a: &Value,
    d: &mut Map<String, Value>,
    detected: Option<i64>,
    happened: Option<i64>,
) -> String {
    let explanation = &a["explanation"];
    let text = |v: &Value| v.as_str().unwrap_or("?").to_owned();
    let title = format!(
        "{} {}: new {}",
        text(&a["principal"]),
        action(a),
        text(&explanation["field"])
    );
    let desc = format!(
        "{} = {} is new in the {} view ({} bits)",
        text(&explanation["field"]),
        text(&explanation["value"]),
        text(&explanation["view"]),
        explanation["bits"]
    );
    let kind = a["kind"].as_str().unwrap_or("event");
    let first = millis(a["campaign"]["first"].as_str()).or(happened);
    let list = |key: &str| a[key].as_array().cloned().unwrap_or_default();
    let attacks: Vec<Value> = list("tactics")
        .into_iter()
        .map(|t| json!({"tactic": {"name": t}}))
        .chain(
            list("techniques")
                .into_iter()
                .map(|t| json!({"technique": {"uid": t}})),
        )
        .collect();
    for (path, value) in [
        ("finding_info.uid", a["alertId"].clone()),
        ("finding_info.title", json!(title)),
        ("finding_info.desc", json!(desc)),
        (
            "finding_info.types",
            json!([format!("oddity {kind} novelty")]),
        ),
        ("finding_info.created_time", json!(detected)),
        ("finding_info.first_seen_time", json!(first)),
        ("finding_info.last_seen_time", json!(happened)),
    ] {
        put(d, path, value);
    }
    if !attacks.is_empty() {
        put(d, "finding_info.attacks", json!(attacks));
    }
    title
}

/// The call behind an alert as OCSF evidence: who (actor), what (API) and from where.
fn ocsf_evidence(a: &Value) -> Value {
    let raw = &a["raw"];
    let mut evidence = Map::new();
    put(&mut evidence, "actor.user.uid", raw["identityArn"].clone());
    put(&mut evidence, "actor.user.name", a["principal"].clone());
    put(
        &mut evidence,
        "actor.user.type",
        raw["identityType"].clone(),
    );
    put(&mut evidence, "api.operation", json!(action(a)));
    put(
        &mut evidence,
        "api.service.name",
        raw["eventSource"].clone(),
    );
    if let Some(ip) = raw["sourceIp"].as_str() {
        let key = if ip.parse::<std::net::IpAddr>().is_ok() {
            "src_endpoint.ip"
        } else {
            "src_endpoint.name"
        };
        put(&mut evidence, key, json!(ip));
    }
    Value::Object(evidence)
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

/// The id of a formatted alert line, wherever its format puts it (native `alertId`, ECS
/// `event.id`, OCSF `finding_info.uid`, Splunk HEC `event.alertId`); empty if none.
pub fn alert_id(line: &[u8]) -> String {
    let alert: Value = serde_json::from_slice(line).unwrap_or_default();
    [
        &alert["alertId"],
        &alert["event"]["id"],
        &alert["finding_info"]["uid"],
        &alert["event"]["alertId"],
    ]
    .into_iter()
    .find_map(|v| v.as_str())
    .unwrap_or_default()
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_keeps_the_alert_id_where_alert_id_finds_it() {
        let native = serde_json::json!({
            "alertId": "9d6658ec8a34d5ee",
            "kind": "event",
            "severity": "high",
            "event": {"principal": "IAMUser alice", "time": "2024-03-05T10:00:00Z"},
        });
        for format in [Format::Native, Format::Ecs, Format::Ocsf, Format::SplunkHec] {
            let line = serde_json::to_vec(&format.render(native.clone())).expect("json");
            assert_eq!(alert_id(&line), "9d6658ec8a34d5ee", "{format:?}");
        }
        assert_eq!(alert_id(b"not json"), "");
    }
}
