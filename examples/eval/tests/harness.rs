//! The Stratus injection and the harness end to end on a tiny generated stream.

use std::sync::Arc;

use oddity_cloudtrail_gen::{GenConfig, SCENARIOS, generate};
use oddity_eval::streams::{
    self, LabeledEvent, Origin, StreamSpec, Technique, Truth, merge, parse_unix, plan_injection,
    survey,
};
use oddity_eval::{harness, report};
use serde_json::{Value, json};

fn tiny(seed: u64, attacks: bool) -> GenConfig {
    GenConfig {
        seed,
        days: 1,
        humans: 6,
        roles: 4,
        attacks,
        ..GenConfig::default()
    }
}

fn record(name: &str, time: &str, ip: &str) -> Value {
    json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::999999999999:user/christophe",
                         "accessKeyId": "AKIAATTACKER", "userName": "christophe"},
        "eventTime": time,
        "eventSource": "ec2.amazonaws.com",
        "eventName": name,
        "awsRegion": "apiso-northsouth-3r",
        "sourceIPAddress": ip,
        "userAgent": "stratus-red-team_7fcd50f2-f1da-4c82-bb7d-38b82021b080",
        "errorCode": "AccessDenied",
        "requestParameters": {"snapshotId": "snap-1"}
    })
}

#[test]
fn stratus_injection_rewrites_identity_shifts_time_and_keeps_every_record() {
    let cfg = tiny(3, false);
    let s = survey(generate(&cfg).map(|e| (e.unix_time(), e.json)));
    assert!(!s.victims.is_empty(), "a day has IAM users");
    let techniques = vec![
        Technique {
            name: "a.first".into(),
            // Out of order in the file, 5 s apart.
            records: vec![
                record(
                    "ModifySnapshotAttribute",
                    "2024-08-01T12:28:07Z",
                    "253.76.43.253",
                ),
                record("CreateSnapshot", "2024-08-01T12:28:02Z", "253.76.43.253"),
            ],
        },
        Technique {
            name: "b.second".into(),
            records: vec![
                record("StopLogging", "2023-01-01T00:00:00Z", "198.51.100.7"),
                record("Decrypt", "2023-01-01T00:00:01Z", "ec2.amazonaws.com"),
            ],
        },
    ];
    let injected = plan_injection(&techniques, &s, Origin::Attacker).expect("victims exist");
    // With the victim's own client, only the user agent differs; with its own origin, also
    // the source address, unless the source is an AWS service.
    let client = plan_injection(&techniques, &s, Origin::VictimClient).expect("victims exist");
    let own = plan_injection(&techniques, &s, Origin::Victim).expect("victims exist");
    for ((a, b), c) in injected.iter().zip(&client).zip(&own) {
        let [mut a, b, c] =
            [a, b, c].map(|r| serde_json::from_str::<Value>(&r.json).expect("JSON"));
        let victim = s
            .victims
            .iter()
            .find(|v| v.identity == b["userIdentity"])
            .expect("a victim");
        assert!(victim.user_agent.is_some() && victim.source_ip.is_some());
        assert_eq!(b["userAgent"].as_str(), victim.user_agent.as_deref());
        let service = a["sourceIPAddress"] == "ec2.amazonaws.com";
        let want = if service {
            a["sourceIPAddress"].as_str()
        } else {
            victim.source_ip.as_deref()
        };
        assert_eq!(c["sourceIPAddress"].as_str(), want);
        a["userAgent"] = b["userAgent"].clone();
        assert_eq!(a, b);
        a["sourceIPAddress"] = c["sourceIPAddress"].clone();
        assert_eq!(a, c);
    }
    assert_eq!(injected.len(), 4, "every record injected once");
    // Sorted by time, within the window after 30 % of the stream.
    assert!(injected.windows(2).all(|w| w[0].time <= w[1].time));
    assert!(
        injected
            .iter()
            .all(|r| r.time >= s.window.0 && r.time <= s.window.1)
    );
    for r in &injected {
        let v: Value = serde_json::from_str(&r.json).expect("JSON");
        let victim = s
            .victims
            .iter()
            .find(|x| x.arn == r.victim)
            .expect("a surveyed victim");
        assert_eq!(
            v["userIdentity"], victim.identity,
            "identity is the victim's"
        );
        assert_eq!(v["userIdentity"]["type"], "IAMUser");
        assert_ne!(
            v["userIdentity"]["arn"],
            "arn:aws:iam::999999999999:user/christophe"
        );
        // The attacker's own fields stay.
        assert!(
            v["userAgent"]
                .as_str()
                .expect("ua")
                .starts_with("stratus-red-team_")
        );
        assert_eq!(v["errorCode"], "AccessDenied");
        assert_eq!(v["requestParameters"]["snapshotId"], "snap-1");
        // The logs' made-up region names become the background's own region.
        assert_eq!(
            v["awsRegion"].as_str(),
            s.region.as_deref(),
            "the region is the background's"
        );
        assert!(s.region.as_deref().is_some_and(|r| r.contains('-')));
        let t = parse_unix(v["eventTime"].as_str().expect("time")).expect("RFC 3339");
        assert_eq!(t, r.time);
        assert!(r.truth.positive);
    }
    // Relative timing kept; steps are positions in the file.
    let first: Vec<_> = injected
        .iter()
        .filter(|r| r.truth.group.as_deref() == Some("a.first"))
        .collect();
    assert_eq!(first.len(), 2);
    assert_eq!(first[1].time - first[0].time, 5);
    assert_eq!(
        (first[0].truth.step, first[1].truth.step),
        (2, 1),
        "CreateSnapshot is the file's second record"
    );
    // Different techniques, different victims (when there are two).
    let second = injected
        .iter()
        .find(|r| r.truth.group.as_deref() == Some("b.second"))
        .expect("injected");
    if s.victims.len() > 1 {
        assert_ne!(second.victim, first[0].victim);
    }

    // Merged into the background: count preserved, time order kept.
    let bg = generate(&cfg).map(|e| {
        (
            e.unix_time(),
            LabeledEvent {
                json: e.json,
                truth: Truth::default(),
            },
        )
    });
    let merged: Vec<LabeledEvent> = merge(bg, injected).collect();
    assert_eq!(merged.len(), s.events + 4);
    assert_eq!(merged.iter().filter(|e| e.truth.positive).count(), 4);
    let times: Vec<i64> = merged
        .iter()
        .map(|e| {
            let v: Value = serde_json::from_str(&e.json).expect("JSON");
            parse_unix(v["eventTime"].as_str().expect("time")).expect("time")
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "time order");
}

#[test]
fn stratus_stream_from_the_repository_data() {
    let dir = oddity_eval::default_data_dir().join("stratus-red-team_detonation_logs");
    let techniques = streams::load_techniques(&dir).expect("readable");
    let records: usize = techniques.iter().map(|t| t.records.len()).sum();
    let spec = StreamSpec::Stratus {
        background: tiny(4, false),
        dir,
        origin: Origin::Attacker,
    };
    let stream = spec.open().expect("opens");
    let events: Vec<LabeledEvent> = stream.events.collect();
    let positives = events.iter().filter(|e| e.truth.positive).count();
    assert_eq!(positives, records, "every detonation record injected");
    let groups: std::collections::BTreeSet<Arc<str>> = events
        .iter()
        .filter_map(|e| e.truth.group.clone())
        .collect();
    assert_eq!(groups.len(), techniques.len());
}

#[test]
fn stratus_techniques_are_checked_for_their_own_tactic() {
    let dir = oddity_eval::default_data_dir().join("stratus-red-team_detonation_logs");
    let techniques = streams::load_techniques(&dir).expect("readable").len();
    let spec = StreamSpec::Stratus {
        background: tiny(4, false),
        dir,
        origin: Origin::Attacker,
    };
    let scored = harness::run(spec.open().expect("opens"), "").expect("runs");
    let t = report::evaluate(&scored).alerts.tactics;
    assert_eq!(t.techniques, techniques);
    assert!(t.named >= techniques - 5, "{t:?}");
    assert!(t.named_alerting <= t.named);
    assert_eq!(t.not_named.len(), techniques - t.named);
    assert!(t.not_named.iter().all(|(g, _)| g.contains('.')), "{t:?}");
}

#[test]
fn harness_runs_end_to_end_with_finite_metrics() {
    let stream = StreamSpec::Generated(tiny(7, true)).open().expect("opens");
    let scored = harness::run(stream, "").expect("runs");
    assert!(scored.rows.len() > 1000);
    assert!(scored.errors.is_empty(), "{:?}", scored.errors);
    assert_eq!(scored.unreadable, 0);
    assert_eq!(
        scored.detectors.len(),
        5,
        "oddity, oddity-risk and three baselines"
    );
    for s in &scored.scores {
        assert_eq!(s.len(), scored.rows.len());
        assert!(s.iter().all(|x| x.is_finite()));
    }
    let r = report::evaluate(&scored);
    assert_eq!(
        r.alerts.tactics.techniques, 0,
        "scenario names name no tactic"
    );
    assert!(r.positives > 0);
    assert!(!r.groups.is_empty());
    assert!(
        r.groups
            .iter()
            .all(|g| SCENARIOS.contains(&g.name.as_str()))
    );
    for d in &r.detectors {
        for m in [
            d.roc_auc,
            d.average_precision,
            d.recall_top_small,
            d.recall_top_large,
        ] {
            let m = m.expect("defined with both classes");
            assert!(
                m.is_finite() && (0.0..=1.0).contains(&m),
                "{}: {m}",
                d.detector
            );
        }
        assert!((0.0..=1.0).contains(&d.precision_at_10));
    }
    assert!(r.best_baseline.is_some());
    // Ranked among the non-attack events only, an attack can only move up, and by no more
    // than the other attacks' events.
    for g in &r.groups {
        for d in &g.detectors {
            let others = (r.positives - g.events) as f64;
            assert!(
                d.best_rank_alone >= 1.0
                    && d.best_rank_alone <= d.best_rank
                    && d.best_rank_alone >= d.best_rank - others - 0.5,
                "{} {}: {} alone vs {} of all",
                g.name,
                d.detector,
                d.best_rank_alone,
                d.best_rank
            );
        }
    }
    for d in &r.detectors {
        assert!(d.groups_detected_alone >= d.groups_detected_small);
    }
    assert!(!r.steps.is_empty());
    // Rendering and JSON work on it.
    let text = report::render_stream(&r, false, report::Steps::All);
    assert!(text.contains("Detection") && text.contains("oddity"));
    let md = report::render_stream(&r, true, report::Steps::All);
    assert!(md.contains("| detector"));
    let summary = report::summarize(std::slice::from_ref(&r));
    assert_eq!(summary.len(), 5);
    serde_json::to_string(&r).expect("serialises");
    // The per-event dump: a header and one row per event, one column per detector.
    let mut csv = Vec::new();
    scored
        .write_csv(&mut csv, report::warm_up_of(scored.rows.len()))
        .expect("written");
    let csv = String::from_utf8(csv).expect("UTF-8");
    let mut lines = csv.lines();
    let header = lines.next().expect("header");
    assert!(
        header.ends_with(",oddity,oddity-risk,avf,first-seen,rare-by-user"),
        "{header}"
    );
    assert_eq!(lines.count(), scored.rows.len());
}
