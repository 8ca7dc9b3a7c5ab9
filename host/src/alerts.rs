//! Alerts: the scored events that cross a threshold, as JSON lines ready for a SIEM.
//!
//! The scored stream keeps every event; the alert stream (`--alerts FILE`, or `-` for standard
//! output) holds at most one line per event, and only for events that qualify:
//!
//! - `"kind": "campaign"` when the event belongs to a campaign whose `score` has reached
//!   `campaign-threshold` bits with at least `campaign-min-events` events. The first alert of a
//!   campaign (`"firstAlert": true`) lists every event of the campaign so far in
//!   `campaignEvents`, so the one line that raises it tells the whole story (probing first, then
//!   the action); every later event of the campaign is one more alert (`"firstAlert": false`),
//!   so the SIEM sees each further step as it happens and can group them by `campaign.id`.
//! - `"kind": "event"` otherwise, when the event's `score` reaches `event-threshold`.
//!
//! Each line carries a stable `alertId` (a receiver dedupes on it: the same event and campaign
//! give the same id on every run), `detectedAt` (when oddity wrote it), the `detector` (name,
//! version, contract), the event id and time, the principal, severity, risk, tactics and
//! techniques, the score and raw novelty, the explanation, the observation, the event's own
//! fields an analyst triages with (`raw`: source IP, user agent, account, region, event name and
//! source, identity ARN and type, error code, as CloudTrail names them), the campaign record
//! (or null) and `source` (`file:line`, the record number for CloudTrail delivery files), so an
//! analyst can go from the alert to the event.
//!
//! Memory is bounded: the events of campaigns not yet alerted are kept for the first alert
//! (the most recent [`MAX_STAGES`] per campaign), for at most [`MAX_OPEN`] campaigns, the least
//! recently active ones being forgotten first.

use std::collections::{HashMap, VecDeque};

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::annotation::{Annotation, Campaign, Severity};

/// Events kept per campaign for its first alert (the engine keeps as many actions).
pub const MAX_STAGES: usize = 64;
/// Campaigns whose events are remembered at once.
pub const MAX_OPEN: usize = 10_000;

/// The `[alerts]` settings, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSettings {
    /// Where alerts go, each in its format (`[[alerts.sink]]`, `alerts.file`).
    pub sinks: Vec<crate::sinks::SinkSettings>,
    /// The network sinks' queues (`[alerts.queue]`).
    pub queue: crate::delivery::QueueSettings,
    /// An event alerts when its severity (of its risk, or its campaign's) reaches this...
    pub min_severity: Severity,
    /// ...as part of its campaign when that has at least this many events.
    pub campaign_min_events: u32,
    /// The suppression rules in force.
    pub suppress: crate::suppress::Rules,
}

/// The engine's severity levels are set in `[risk]`; see docs/risk.md for what each costs.
pub const DEFAULT_MIN_SEVERITY: Severity = Severity::Medium;
/// A campaign of one event is that event, which the event alert already covers.
pub const DEFAULT_CAMPAIGN_MIN_EVENTS: u32 = 2;

impl Default for AlertSettings {
    /// No sinks, the default thresholds and queue, nothing suppressed.
    fn default() -> AlertSettings {
        AlertSettings {
            sinks: Vec::new(),
            queue: crate::delivery::QueueSettings::default(),
            min_severity: DEFAULT_MIN_SEVERITY,
            campaign_min_events: DEFAULT_CAMPAIGN_MIN_EVENTS,
            suppress: crate::suppress::Rules::default(),
        }
    }
}

/// How many alerts of each kind were written.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AlertCounts {
    pub events: u64,
    pub campaigns: u64,
    /// Alerts a suppression rule kept out (not in `total`).
    pub suppressed: u64,
}

impl AlertCounts {
    pub fn total(&self) -> u64 {
        self.events + self.campaigns
    }
}

/// One event of a campaign, as listed in its first alert.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Stage {
    event_id: Option<String>,
    event_time: Option<String>,
    action: Option<String>,
    score: f64,
    novelty: f64,
    risk: f64,
    source: String,
}

#[derive(Debug, Default)]
struct OpenCampaign {
    stages: VecDeque<Stage>,
    alerted: bool,
    /// Value of the event counter when last seen, for forgetting the least recent.
    seen: u64,
}

/// Decides which events alert and renders their lines.
#[derive(Debug)]
pub struct Alerts {
    suppress: crate::suppress::Rules,
    min_severity: Severity,
    campaign_min_events: u32,
    open: HashMap<String, OpenCampaign>,
    observed: u64,
    counts: AlertCounts,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Explanation<'a> {
    view: &'a str,
    field: &'a str,
    value: &'a str,
    novelty: f64,
    bits: f64,
}

/// The observation as an object, in the engine's order.
struct Ordered<'a>(&'a [(String, String)]);

impl Serialize for Ordered<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// Who wrote an alert.
#[derive(Debug, Serialize)]
struct Detector {
    name: &'static str,
    version: &'static str,
    contract: &'static str,
}

const DETECTOR: Detector = Detector {
    name: "oddity",
    version: env!("CARGO_PKG_VERSION"),
    contract: "oddity:detector@0.6.1",
};

/// The event's own fields an analyst triages with, as CloudTrail names them (an EventBridge
/// envelope's `detail` read as the record); absent ones are left out.
#[derive(Debug, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Raw {
    #[serde(
        rename(deserialize = "sourceIPAddress"),
        skip_serializing_if = "Option::is_none"
    )]
    source_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<String>,
    #[serde(
        rename(deserialize = "recipientAccountId"),
        skip_serializing_if = "Option::is_none"
    )]
    account: Option<String>,
    #[serde(
        rename(deserialize = "awsRegion"),
        skip_serializing_if = "Option::is_none"
    )]
    region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<String>,
    #[serde(skip_serializing)]
    user_identity: Option<Identity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity_type: Option<String>,
}

#[derive(Debug, Default, Serialize, serde::Deserialize)]
struct Identity {
    arn: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// An EventBridge envelope, whose `detail` is the CloudTrail record.
#[derive(serde::Deserialize)]
struct Envelope {
    detail: Option<Raw>,
}

impl Raw {
    /// Reads the fields from an event line; nothing from a line that is not such an object.
    pub fn of(line: &[u8]) -> Raw {
        let mut raw: Raw = serde_json::from_slice(line).unwrap_or_default();
        if raw.event_name.is_none()
            && let Ok(Envelope {
                detail: Some(inner),
            }) = serde_json::from_slice(line)
        {
            raw = inner;
        }
        if let Some(id) = raw.user_identity.take() {
            raw.identity_arn = id.arn;
            raw.identity_type = id.kind;
        }
        raw
    }
}

/// A stable id for the alert of `kind` on the event `event` (its id, or where it was read) in
/// `campaign`: hex of a 64-bit hash.
fn alert_id(kind: &str, event: &str, campaign: Option<&str>) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for part in [kind, event, campaign.unwrap_or("")] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    format!("{:016x}", h.digest())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AlertLine<'a> {
    alert_id: String,
    detected_at: String,
    detector: &'static Detector,
    kind: &'static str,
    event_id: Option<&'a str>,
    event_time: Option<&'a str>,
    principal: &'a str,
    severity: Severity,
    risk: f64,
    score: f64,
    novelty: f64,
    tactics: &'a [String],
    techniques: &'a [String],
    cold: bool,
    explanation: Explanation<'a>,
    observation: Ordered<'a>,
    campaign: Option<&'a Campaign>,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_alert: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    campaign_events: Option<&'a VecDeque<Stage>>,
    raw: Raw,
    source: &'a str,
}

impl Alerts {
    pub fn new(settings: &AlertSettings) -> Alerts {
        Alerts {
            suppress: settings.suppress.clone(),
            min_severity: settings.min_severity,
            campaign_min_events: settings.campaign_min_events,
            open: HashMap::new(),
            observed: 0,
            counts: AlertCounts::default(),
        }
    }

    pub fn counts(&self) -> AlertCounts {
        self.counts
    }

    /// Whether an event of this severity, in a campaign or not, needs [`Alerts::observe`]:
    /// only those can alert or belong to a campaign that may alert. The others are counted
    /// with [`Alerts::pass`], without reading their annotation.
    pub fn wants(&self, severity: Severity, in_campaign: bool) -> bool {
        in_campaign || severity >= self.min_severity
    }

    /// Counts an event that cannot alert.
    pub fn pass(&mut self) {
        self.observed += 1;
        self.forget_if_full();
    }

    /// Judges one scored event from `source` (a name) at `line`, whose text is `event`; when it
    /// alerts, appends its line (with the newline) to `out`.
    pub fn observe(
        &mut self,
        note: &Annotation,
        source: &str,
        line: u64,
        event: &[u8],
        out: &mut Vec<u8>,
    ) {
        self.observed += 1;
        let source = format!("{source}:{line}");
        let mut first_alert = None;
        let mut open_id = None;
        if let Some(c) = &note.campaign {
            let open = self.open.entry(c.id.clone()).or_default();
            open.seen = self.observed;
            if !open.alerted {
                if open.stages.len() == MAX_STAGES {
                    open.stages.pop_front();
                }
                open.stages.push_back(Stage {
                    event_id: note.event_id.clone(),
                    event_time: note.event_time.clone(),
                    action: c.actions.last().cloned(),
                    score: note.score,
                    novelty: note.novelty,
                    risk: note.risk,
                    source: source.clone(),
                });
            }
            if note.severity >= self.min_severity && c.events >= self.campaign_min_events {
                first_alert = Some(!open.alerted);
                open_id = Some(c.id.clone());
            }
        }
        let kind = if first_alert.is_some() {
            "campaign"
        } else if note.severity >= self.min_severity {
            "event"
        } else {
            self.forget_if_full();
            return;
        };
        if self.suppressed(note, kind) {
            // Not alerted: a campaign's next alert that is not suppressed tells its story.
            self.counts.suppressed += 1;
            self.forget_if_full();
            return;
        }
        match kind {
            "campaign" => self.counts.campaigns += 1,
            _ => self.counts.events += 1,
        }
        let open = open_id.as_ref().and_then(|id| self.open.get(id));
        let m = &note.most_novel;
        let alert = AlertLine {
            alert_id: alert_id(
                kind,
                note.event_id.as_deref().unwrap_or(&source),
                note.campaign.as_ref().map(|c| c.id.as_str()),
            ),
            detected_at: jiff::Timestamp::now().to_string(),
            detector: &DETECTOR,
            kind,
            event_id: note.event_id.as_deref(),
            event_time: note.event_time.as_deref(),
            principal: &note.principal,
            severity: note.severity,
            risk: note.risk,
            score: note.score,
            novelty: note.novelty,
            tactics: &note.tactics,
            techniques: &note.techniques,
            cold: note.cold,
            explanation: Explanation {
                view: &m.view,
                field: &m.field,
                value: &m.value,
                novelty: m.novelty,
                bits: m.bits,
            },
            observation: Ordered(&note.observation),
            campaign: note.campaign.as_ref(),
            first_alert,
            campaign_events: open
                .filter(|_| first_alert == Some(true))
                .map(|o| &o.stages),
            raw: Raw::of(event),
            source: &source,
        };
        // Serialising plain strings and numbers into memory cannot fail.
        if serde_json::to_writer(&mut *out, &alert).is_ok() {
            out.push(b'\n');
        }
        if let Some(open) = open_id.and_then(|id| self.open.get_mut(&id))
            && !open.alerted
        {
            open.alerted = true;
            open.stages = VecDeque::new();
        }
        self.forget_if_full();
    }

    /// Whether a suppression rule keeps this alert out.
    fn suppressed(&self, note: &Annotation, kind: &str) -> bool {
        let field = |name: &str| {
            note.observation
                .iter()
                .find(|(k, _)| k == name)
                .map_or("", |(_, v)| v.as_str())
        };
        let subject = crate::suppress::Subject {
            principal: &note.principal,
            action: field("action"),
            network: field("network"),
            tactics: &note.tactics,
            kind,
        };
        self.suppress.matching(&subject).is_some()
    }

    /// Keeps at most [`MAX_OPEN`] campaigns: beyond, forgets the least recently active half.
    fn forget_if_full(&mut self) {
        if self.open.len() <= MAX_OPEN {
            return;
        }
        let mut seen: Vec<u64> = self.open.values().map(|o| o.seen).collect();
        let (_, median, _) = seen.select_nth_unstable(self.open.len() / 2);
        let cut = *median;
        self.open.retain(|_, o| o.seen > cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotation::ComponentNovelty;

    /// A note of `severity`, in a campaign of (id, events, risk, action) or not.
    fn note(id: &str, severity: Severity, campaign: Option<(&str, u32, f64, &str)>) -> Annotation {
        Annotation {
            score: 0.99,
            info_content: 10.0,
            novelty: 8.0,
            risk: 16.0,
            severity,
            tactics: vec!["defense-evasion".into()],
            techniques: vec!["T1578.001".into()],
            probability: 0.001,
            uniqueness: 1.0,
            sequence: 30,
            cold: false,
            principal: "IAMUser arn:aws:iam::1:user/raul".into(),
            observation: vec![
                ("type".into(), "IAMUser".into()),
                ("principal".into(), "arn:aws:iam::1:user/raul".into()),
                ("action".into(), "CreateSnapshot".into()),
            ],
            most_novel: ComponentNovelty {
                index: 2,
                view: "action".into(),
                field: "action".into(),
                value: "CreateSnapshot".into(),
                novelty: 0.99,
                bits: 9.0,
            },
            views: Vec::new(),
            event_id: Some(id.into()),
            event_time: Some("2024-03-04T12:00:00Z".into()),
            campaign: campaign.map(|(cid, events, risk, action)| Campaign {
                id: cid.into(),
                principal: "IAMUser arn:aws:iam::1:user/raul".into(),
                events,
                first: "2024-03-04T12:00:00Z".into(),
                last: "2024-03-04T12:00:00Z".into(),
                score: risk / 2.0,
                risk,
                tactics: vec!["defense-evasion".into()],
                actions: vec![action.into()],
            }),
        }
    }

    fn lines(out: &[u8]) -> Vec<serde_json::Value> {
        out.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).expect("json"))
            .collect()
    }

    fn settings() -> AlertSettings {
        AlertSettings::default()
    }

    #[test]
    fn the_raw_fields_come_from_the_record_or_its_eventbridge_envelope() {
        let record = r#"{"eventName":"StopLogging","eventSource":"cloudtrail.amazonaws.com","sourceIPAddress":"203.0.113.9","userAgent":"aws-cli/2.15","awsRegion":"eu-west-1","recipientAccountId":"111122223333","errorCode":"AccessDenied","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/raul"}}"#;
        let text = |raw: &Raw| serde_json::to_value(raw).expect("json");
        let plain = text(&Raw::of(record.as_bytes()));
        assert_eq!(plain["sourceIp"], "203.0.113.9");
        assert_eq!(plain["account"], "111122223333");
        assert_eq!(plain["identityArn"], "arn:aws:iam::111122223333:user/raul");
        assert_eq!(plain["identityType"], "IAMUser");
        assert_eq!(plain["errorCode"], "AccessDenied");
        assert!(plain.get("userIdentity").is_none());
        let wrapped = format!(
            r#"{{"version":"0","detail-type":"AWS API Call via CloudTrail","detail":{record}}}"#
        );
        assert_eq!(text(&Raw::of(wrapped.as_bytes())), plain);
        assert_eq!(
            text(&Raw::of(b"{\"path\":\"/etc\"}")),
            serde_json::json!({})
        );
        assert_eq!(text(&Raw::of(b"not json")), serde_json::json!({}));
    }

    #[test]
    fn an_alert_id_is_stable_and_tells_alerts_apart() {
        let a = alert_id("event", "e-1", None);
        assert_eq!(a, alert_id("event", "e-1", None));
        assert_eq!(a.len(), 16);
        assert_ne!(a, alert_id("event", "e-2", None));
        assert_ne!(a, alert_id("campaign", "e-1", Some("c1")));
        assert_ne!(
            alert_id("campaign", "e-1", Some("c1")),
            alert_id("campaign", "e-1", Some("c2"))
        );
    }

    #[test]
    fn events_of_the_severity_alert_once() {
        let mut a = Alerts::new(&settings());
        let mut out = Vec::new();
        a.observe(&note("quiet", Severity::Low, None), "f", 1, b"{}", &mut out);
        a.observe(&note("loud", Severity::High, None), "f", 2, b"{}", &mut out);
        let l = lines(&out);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0]["kind"], "event");
        assert_eq!(l[0]["eventId"], "loud");
        assert_eq!(l[0]["source"], "f:2");
        assert_eq!(l[0]["explanation"]["value"], "CreateSnapshot");
        assert_eq!(l[0]["severity"], "high");
        assert_eq!(l[0]["risk"], 16.0);
        assert_eq!(l[0]["tactics"][0], "defense-evasion");
        assert_eq!(l[0]["techniques"][0], "T1578.001");
        assert!(l[0]["campaign"].is_null());
        let text = String::from_utf8(out).expect("utf-8");
        assert!(
            text.find("\"type\"") < text.find("\"principal\":\"arn"),
            "observation in order: {text}"
        );
        assert_eq!(
            a.counts(),
            AlertCounts {
                events: 1,
                campaigns: 0,
                suppressed: 0
            }
        );
    }

    #[test]
    fn a_campaign_alerts_when_it_crosses_with_its_story_then_at_each_step() {
        let mut a = Alerts::new(&settings());
        let mut out = Vec::new();
        a.observe(
            &note(
                "probe",
                Severity::Low,
                Some(("c1", 1, 25.0, "GetCallerIdentity")),
            ),
            "f",
            1,
            b"{}",
            &mut out,
        );
        assert!(out.is_empty(), "one event, below the severity");
        a.observe(
            &note(
                "list",
                Severity::Low,
                Some(("c1", 2, 35.0, "DescribeInstances")),
            ),
            "f",
            2,
            b"{}",
            &mut out,
        );
        assert!(out.is_empty(), "low: not yet");
        a.observe(
            &note(
                "snap",
                Severity::Medium,
                Some(("c1", 3, 45.0, "CreateSnapshot")),
            ),
            "f",
            3,
            b"{}",
            &mut out,
        );
        a.observe(
            &note(
                "share",
                Severity::Critical,
                Some(("c1", 4, 95.0, "ModifySnapshotAttribute")),
            ),
            "f",
            4,
            b"{}",
            &mut out,
        );
        let l = lines(&out);
        assert_eq!(l.len(), 2, "{l:?}");
        assert_eq!(l[0]["kind"], "campaign");
        assert_eq!(l[0]["firstAlert"], true);
        let story: Vec<&str> = l[0]["campaignEvents"]
            .as_array()
            .expect("events")
            .iter()
            .map(|s| s["eventId"].as_str().expect("id"))
            .collect();
        assert_eq!(story, ["probe", "list", "snap"]);
        assert_eq!(l[0]["campaignEvents"][0]["action"], "GetCallerIdentity");
        assert_eq!(
            l[1]["kind"], "campaign",
            "a campaign alert wins over an event alert"
        );
        assert_eq!(l[1]["firstAlert"], false);
        assert!(l[1].get("campaignEvents").is_none());
        assert_eq!(l[1]["campaign"]["id"], "c1");
        assert_eq!(a.counts().campaigns, 2);
    }

    #[test]
    fn open_campaigns_are_bounded() {
        let mut a = Alerts::new(&settings());
        let mut out = Vec::new();
        for i in 0..(MAX_OPEN + 10) {
            let id = format!("c{i}");
            a.observe(
                &note("e", Severity::Info, Some((&id, 1, 1.0, "A"))),
                "f",
                1,
                b"{}",
                &mut out,
            );
        }
        assert!(a.open.len() <= MAX_OPEN);
        assert!(a.open.contains_key(&format!("c{}", MAX_OPEN + 9)));
        assert!(out.is_empty());
    }
}
