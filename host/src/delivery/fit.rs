//! Shortening an alert to a receiver's message size, keeping it whole JSON.
//!
//! A receiver that cuts a message past its limit (rsyslog's default is 8 KB) leaves a SIEM a
//! line that is not JSON, so the alert is lost. An alert over the budget loses, in this order:
//! the oldest events of `campaignEvents` (wherever the format put the list), counted in
//! `campaignEventsOmitted` beside it; then the tails of its longest strings (a user agent or a
//! resource name can be as long as an attacker wants), each marked with how much was cut.

use std::borrow::Cow;

use serde_json::{Map, Value};

/// Strings are never cut below this many bytes.
const KEEP: usize = 64;

/// `line` (one JSON alert) in at most `budget` bytes where it can be, and whether it had to be
/// shortened. A line that is not JSON, or that its keys alone make too long, comes back as it is.
pub fn fit(line: &[u8], budget: usize) -> (Cow<'_, [u8]>, bool) {
    if line.len() <= budget {
        return (Cow::Borrowed(line), false);
    }
    let Ok(mut alert) = serde_json::from_slice::<Value>(line) else {
        return (Cow::Borrowed(line), false);
    };
    let mut len = line.len();
    while len > budget && drop_oldest_events(&mut alert, len - budget) {
        len = size(&alert);
    }
    while len > budget && cut_longest_string(&mut alert, len - budget) {
        len = size(&alert);
    }
    (Cow::Owned(bytes(&alert)), true)
}

fn bytes(alert: &Value) -> Vec<u8> {
    // Serialising a JSON value into memory cannot fail.
    serde_json::to_vec(alert).unwrap_or_default()
}

fn size(alert: &Value) -> usize {
    bytes(alert).len()
}

/// Removes the oldest campaign events worth at least `excess` bytes (at least one), counting
/// them in `campaignEventsOmitted`; false if there are none left.
fn drop_oldest_events(alert: &mut Value, excess: usize) -> bool {
    let Some(parent) = holder_of(alert, "campaignEvents") else {
        return false;
    };
    let Some(Value::Array(events)) = parent.get_mut("campaignEvents") else {
        return false;
    };
    if events.is_empty() {
        return false;
    }
    let mut freed = 0;
    let mut n = 0;
    while n < events.len() && (n == 0 || freed < excess) {
        freed += size(&events[n]) + 1;
        n += 1;
    }
    events.drain(..n);
    let before = parent
        .get("campaignEventsOmitted")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    parent.insert(
        "campaignEventsOmitted".to_owned(),
        (before + n as u64).into(),
    );
    true
}

/// The object holding `key`, searched depth first (the native alert holds it at the top, the
/// formats nest the native alert).
fn holder_of<'a>(value: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    let Value::Object(map) = value else {
        return None;
    };
    if map.contains_key(key) {
        return Some(map);
    }
    map.values_mut().find_map(|v| holder_of(v, key))
}

/// Cuts the longest string by `excess` bytes and a little more (never below [`KEEP`]), at a
/// character boundary, ending it with `…[cut N bytes]`; false if no string is long enough.
fn cut_longest_string(alert: &mut Value, excess: usize) -> bool {
    let Some(longest) = longest_string(alert) else {
        return false;
    };
    if longest.len() <= KEEP {
        return false;
    }
    // The marker adds about 20 bytes; escapes make the serialised string longer than its text,
    // so a string is cut to at most what it holds.
    let mut keep = longest.len().saturating_sub(excess + 24).max(KEEP);
    while !longest.is_char_boundary(keep) {
        keep -= 1;
    }
    let cut = longest.len() - keep;
    longest.truncate(keep);
    longest.push_str(&format!("…[cut {cut} bytes]"));
    true
}

fn longest_string(value: &mut Value) -> Option<&mut String> {
    match value {
        Value::String(s) => Some(s),
        Value::Array(items) => items
            .iter_mut()
            .filter_map(longest_string)
            .max_by_key(|s| s.len()),
        Value::Object(map) => map
            .values_mut()
            .filter_map(longest_string)
            .max_by_key(|s| s.len()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn campaign(events: usize) -> Value {
        json!({
            "alertId": "a1",
            "severity": "high",
            "raw": {"userAgent": "aws-cli/2.15.0"},
            "campaignEvents": (0..events)
                .map(|i| json!({"eventId": format!("e{i:03}"), "action": "GetObject", "risk": 12.5}))
                .collect::<Vec<_>>(),
        })
    }

    fn fitted(alert: &Value, budget: usize) -> (Value, bool) {
        let line = serde_json::to_vec(alert).expect("json");
        let (out, shortened) = fit(&line, budget);
        assert!(out.len() <= budget, "{} bytes over {budget}", out.len());
        (serde_json::from_slice(&out).expect("still JSON"), shortened)
    }

    #[test]
    fn an_alert_within_the_budget_is_left_as_it_is() {
        let alert = campaign(3);
        let line = serde_json::to_vec(&alert).expect("json");
        let (out, shortened) = fit(&line, line.len());
        assert!(!shortened);
        assert_eq!(&*out, &line[..]);
    }

    #[test]
    fn the_oldest_campaign_events_go_first_and_are_counted() {
        let alert = campaign(64);
        let (got, shortened) = fitted(&alert, 2048);
        assert!(shortened);
        let kept = got["campaignEvents"].as_array().expect("events");
        let omitted = got["campaignEventsOmitted"].as_u64().expect("count") as usize;
        assert_eq!(kept.len() + omitted, 64);
        assert!(omitted > 0 && !kept.is_empty());
        assert_eq!(
            kept.last(),
            alert["campaignEvents"].as_array().expect("e").last()
        );
        assert_eq!(kept[0]["eventId"], format!("e{omitted:03}"), "newest kept");
        assert_eq!(got["raw"], alert["raw"], "nothing else cut");
    }

    #[test]
    fn events_nested_in_a_format_are_found() {
        let alert = json!({"class_uid": 2004, "unmapped": {"oddity": campaign(64)}});
        let (got, _) = fitted(&alert, 2048);
        let oddity = &got["unmapped"]["oddity"];
        assert!(oddity["campaignEventsOmitted"].as_u64().expect("count") > 0);
    }

    #[test]
    fn a_hostile_long_string_is_cut_when_no_events_are_left() {
        let mut alert = campaign(2);
        alert["raw"]["userAgent"] = json!(format!("{}é", "x".repeat(20_000)));
        let (got, _) = fitted(&alert, 4096);
        let agent = got["raw"]["userAgent"].as_str().expect("agent");
        assert!(
            agent.starts_with("xxxx") && agent.contains("…[cut "),
            "{agent:.80}"
        );
        assert_eq!(got["campaignEventsOmitted"], 2);
        assert_eq!(got["alertId"], "a1");
    }

    #[test]
    fn a_line_that_is_not_json_is_sent_as_it_is() {
        let line = vec![b'x'; 5000];
        let (out, shortened) = fit(&line, 2048);
        assert!(!shortened);
        assert_eq!(out.len(), 5000);
    }
}
