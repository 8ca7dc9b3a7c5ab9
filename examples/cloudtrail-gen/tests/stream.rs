//! End-to-end properties of generated streams: determinism, record shape, ordering, labels and
//! the attack scenarios.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use oddity_cloudtrail_gen::{
    BENIGN_NOVELTIES, EXFIL_CHAIN, Event, GenConfig, INSIDER, INSIDER_TRUST, SCENARIOS,
    SLOW_INSIDER, UNTUNED_SCENARIOS, generate,
};
use serde_json::Value;

fn shared_config() -> GenConfig {
    GenConfig {
        seed: 5,
        days: 8,
        humans: 12,
        roles: 8,
        ..GenConfig::default()
    }
}

/// One stream shared by the tests that only read it.
fn shared() -> &'static [Event] {
    static EVENTS: OnceLock<Vec<Event>> = OnceLock::new();
    EVENTS.get_or_init(|| generate(&shared_config()).collect())
}

fn parse(e: &Event) -> Value {
    serde_json::from_str(&e.json).unwrap_or_else(|err| panic!("invalid JSON ({err}): {}", e.json))
}

#[test]
fn same_seed_same_bytes_different_seed_different_bytes() {
    let cfg = GenConfig {
        days: 2,
        humans: 6,
        roles: 5,
        ..GenConfig::default()
    };
    let a: Vec<String> = generate(&cfg).map(|e| e.json).collect();
    let b: Vec<String> = generate(&cfg).map(|e| e.json).collect();
    assert!(a.len() > 1000, "{}", a.len());
    assert_eq!(a, b);
    let c: Vec<String> = generate(&GenConfig {
        seed: cfg.seed + 1,
        ..cfg.clone()
    })
    .map(|e| e.json)
    .collect();
    assert_ne!(a, c);
    assert_ne!(a[..100], c[..100]);
}

#[test]
fn records_have_the_cloudtrail_shape_and_are_ordered() {
    let events = shared();
    let mut last = i64::MIN;
    let mut ids = BTreeSet::new();
    let mut sources = BTreeSet::new();
    let mut identity_types = BTreeSet::new();
    for e in events {
        assert!(!e.json.contains('\n') && !e.json.ends_with('\n'));
        assert!(
            !e.json.contains("benign_novelty") && !e.json.contains(EXFIL_CHAIN),
            "labels leak: {}",
            e.json
        );
        let v = parse(e);
        for key in [
            "eventVersion",
            "userIdentity",
            "eventTime",
            "eventSource",
            "eventName",
            "awsRegion",
            "sourceIPAddress",
            "userAgent",
            "requestParameters",
            "responseElements",
            "eventID",
            "readOnly",
            "eventType",
            "managementEvent",
            "recipientAccountId",
            "eventCategory",
        ] {
            assert!(v.get(key).is_some(), "missing {key}: {}", e.json);
        }
        assert_eq!(v["eventVersion"], "1.08");
        let t = v["eventTime"].as_str().unwrap_or_default();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.ends_with('Z') && &t[10..11] == "T");
        assert_eq!(t, e.event_time());
        assert!(e.unix_time() >= last, "out of order at {t}");
        last = e.unix_time();
        assert_eq!(v["eventID"], e.event_id());
        assert!(ids.insert(e.event_id()), "duplicate eventID");
        let ty = v["userIdentity"]["type"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if let Some(arn) = v["userIdentity"]["arn"].as_str() {
            assert_eq!(arn, e.principal());
        }
        match ty.as_str() {
            "AssumedRole" => {
                let arn = v["userIdentity"]["arn"].as_str().unwrap_or_default();
                assert!(
                    arn.starts_with("arn:aws:sts::") && arn.contains(":assumed-role/"),
                    "{arn}"
                );
                let issuer = &v["userIdentity"]["sessionContext"]["sessionIssuer"];
                assert_eq!(issuer["type"], "Role");
                assert!(
                    issuer["arn"]
                        .as_str()
                        .unwrap_or_default()
                        .starts_with("arn:aws:iam::")
                );
                assert!(
                    v["userIdentity"]["sessionContext"]["attributes"]["creationDate"].is_string()
                );
                assert!(
                    v["userIdentity"]["accessKeyId"]
                        .as_str()
                        .unwrap_or_default()
                        .starts_with("ASIA")
                );
            }
            "AWSService" => {
                assert_eq!(v["userIdentity"]["invokedBy"], v["sourceIPAddress"]);
                assert_eq!(v["userAgent"], v["sourceIPAddress"]);
            }
            _ => {}
        }
        identity_types.insert(ty);
        if v["eventName"] == "ConsoleLogin" {
            assert_eq!(v["eventType"], "AwsConsoleSignIn");
        } else {
            assert_eq!(v["eventType"], "AwsApiCall");
            assert!(v["requestID"].is_string());
        }
        if v.get("errorCode").is_some() {
            assert!(v["responseElements"].is_null());
        }
        let data = v["eventCategory"] == "Data";
        assert_eq!(v["managementEvent"].as_bool(), Some(!data));
        sources.insert(v["eventSource"].as_str().unwrap_or_default().to_owned());
    }
    for ty in [
        "AssumedRole",
        "IAMUser",
        "AWSService",
        "SAMLUser",
        "WebIdentityUser",
    ] {
        assert!(identity_types.contains(ty), "no {ty} identity");
    }
    assert!(sources.len() >= 20, "only {} services", sources.len());
    // A SAML provider's name qualifier is one per provider (AWS derives it from the issuer,
    // the account and the provider's name), the same in every sign-in.
    let qualifiers: BTreeSet<String> = events
        .iter()
        .map(parse)
        .filter(|v| v["userIdentity"]["type"] == "SAMLUser")
        .map(|v| v["userIdentity"]["identityProvider"].to_string())
        .collect();
    assert_eq!(qualifiers.len(), 1, "{qualifiers:?}");
}

#[test]
fn every_scenario_appears_with_its_steps_in_order() {
    let events = shared();
    let mut steps: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for e in events {
        if let Some(s) = e.label.scenario {
            assert!(e.label.benign_novelty.is_none());
            steps.entry(s).or_default().push(e.label.step);
        } else {
            assert_eq!(e.label.step, 0);
        }
    }
    for s in SCENARIOS {
        let seen = steps
            .get(s)
            .unwrap_or_else(|| panic!("scenario {s} missing"));
        assert!(
            seen.windows(2).all(|w| w[0] <= w[1]),
            "{s} steps out of order: {seen:?}"
        );
        assert_eq!(seen[0], 1, "{s}");
        let max = seen.iter().max().copied().unwrap_or(0);
        let distinct: BTreeSet<u32> = seen.iter().copied().collect();
        assert_eq!(distinct.len() as u32, max, "{s} skips a step: {seen:?}");
    }
    // After the first fifth of the stream.
    let (first, last) = (events[0].unix_time(), events[events.len() - 1].unix_time());
    let fifth = first + (last - first) / 5;
    assert!(
        events
            .iter()
            .filter(|e| e.label.scenario.is_some())
            .all(|e| e.unix_time() >= fifth)
    );
}

#[test]
fn untuned_scenarios_come_only_when_named_from_the_insiders_usual_place() {
    assert!(
        shared()
            .iter()
            .filter_map(|e| e.label.scenario)
            .all(|s| SCENARIOS.contains(&s))
    );
    let cfg = GenConfig {
        only: UNTUNED_SCENARIOS.iter().map(|s| (*s).to_owned()).collect(),
        ..shared_config()
    };
    let events: Vec<Event> = generate(&cfg).collect();
    for s in UNTUNED_SCENARIOS {
        let mine: Vec<Value> = events
            .iter()
            .filter(|e| e.label.scenario == Some(*s))
            .map(parse)
            .collect();
        assert!(!mine.is_empty(), "{s} missing");
        let who: BTreeSet<String> = mine
            .iter()
            .map(|v| v["userIdentity"]["arn"].to_string())
            .collect();
        assert_eq!(who.len(), 1, "{s}: one insider");
        // The insider's own address: seen in their events outside the scenario too.
        let (arn, ip) = (&mine[0]["userIdentity"]["arn"], &mine[0]["sourceIPAddress"]);
        assert!(
            events
                .iter()
                .filter(|e| e.label.scenario.is_none())
                .map(parse)
                .any(|v| v["userIdentity"]["arn"] == *arn && v["sourceIPAddress"] == *ip),
            "{s}: {ip} is not the insider's usual address"
        );
        let span = events
            .iter()
            .filter(|e| e.label.scenario == Some(*s))
            .map(Event::unix_time)
            .fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
        assert!(span.1 - span.0 >= 20 * 3600, "{s}: over two working days");
    }
    let trust = events
        .iter()
        .filter(|e| e.label.scenario == Some(INSIDER_TRUST))
        .map(parse)
        .find(|v| v["eventName"] == "UpdateAssumeRolePolicy")
        .expect("UpdateAssumeRolePolicy");
    let account = trust["recipientAccountId"].as_str().unwrap_or_default();
    let doc = trust["requestParameters"]["policyDocument"]
        .as_str()
        .unwrap_or_default();
    assert!(
        doc.contains(":root") && !doc.contains(&format!("{account}:root")),
        "{doc}"
    );
}

#[test]
fn exfil_chain_shares_the_snapshot_with_a_foreign_account() {
    let events = shared();
    let exfil: Vec<Value> = events
        .iter()
        .filter(|e| e.label.scenario == Some(EXFIL_CHAIN))
        .map(parse)
        .collect();
    let account = exfil[0]["recipientAccountId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let created = exfil
        .iter()
        .find(|v| v["eventName"] == "CreateSnapshot")
        .expect("CreateSnapshot");
    let snap = created["responseElements"]["snapshotId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(snap.starts_with("snap-"));
    let modify = exfil
        .iter()
        .find(|v| v["eventName"] == "ModifySnapshotAttribute")
        .expect("ModifySnapshotAttribute");
    assert_eq!(modify["requestParameters"]["snapshotId"], snap.as_str());
    let user = modify["requestParameters"]["createVolumePermission"]["add"]["items"][0]["userId"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(user.len(), 12);
    assert!(user.bytes().all(|b| b.is_ascii_digit()));
    assert_ne!(user, account);
    let delete = exfil
        .iter()
        .find(|v| v["eventName"] == "DeleteSnapshot")
        .expect("DeleteSnapshot");
    assert_eq!(delete["requestParameters"]["snapshotId"], snap.as_str());
    // One principal, one foreign address, spread over minutes.
    let principals: BTreeSet<&str> = exfil
        .iter()
        .filter_map(|v| v["userIdentity"]["arn"].as_str())
        .collect();
    assert_eq!(principals.len(), 1);
    let ips: BTreeSet<&str> = exfil
        .iter()
        .filter_map(|v| v["sourceIPAddress"].as_str())
        .collect();
    assert_eq!(ips.len(), 1);
    let times: Vec<i64> = events
        .iter()
        .filter(|e| e.label.scenario == Some(EXFIL_CHAIN))
        .map(Event::unix_time)
        .collect();
    let minutes = (times[times.len() - 1] - times[0]) / 60;
    assert!((5..=60).contains(&minutes), "{minutes} minutes");
    // The victim never used that address before the attack.
    let victim = principals.iter().next().copied().unwrap_or_default();
    let ip = ips.iter().next().copied().unwrap_or_default();
    assert!(
        !events
            .iter()
            .filter(|e| e.label.scenario.is_none() && e.principal() == victim)
            .any(|e| parse(e)["sourceIPAddress"] == ip)
    );
    // Snapshots are normal for someone: the backup role.
    assert!(
        events
            .iter()
            .any(|e| e.label.scenario.is_none()
                && e.json.contains("\"eventName\":\"CreateSnapshot\""))
    );
}

#[test]
fn insiders_use_usual_address_and_client() {
    insider_uses_usual_address_and_client(INSIDER);
    insider_uses_usual_address_and_client(SLOW_INSIDER);
}

#[test]
fn the_slow_insider_takes_three_days() {
    let slow: Vec<&Event> = shared()
        .iter()
        .filter(|e| e.label.scenario == Some(SLOW_INSIDER))
        .collect();
    let span = slow[slow.len() - 1].unix_time() - slow[0].unix_time();
    assert!(span >= 44 * 3600, "{span} s");
    assert_eq!(slow.last().map(|e| e.label.step), Some(5));
}

fn insider_uses_usual_address_and_client(scenario: &str) {
    let events = shared();
    let insider: Vec<Value> = events
        .iter()
        .filter(|e| e.label.scenario == Some(scenario))
        .map(parse)
        .collect();
    let who = events
        .iter()
        .find(|e| e.label.scenario == Some(scenario))
        .map(|e| e.principal().to_owned())
        .unwrap_or_default();
    let ip = insider[0]["sourceIPAddress"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let before: Vec<Value> = events
        .iter()
        .filter(|e| e.label.scenario.is_none() && e.principal() == who)
        .map(parse)
        .collect();
    assert!(
        before.iter().any(|v| v["sourceIPAddress"] == ip.as_str()),
        "insider address {ip} never seen before"
    );
    let client = |v: &Value| {
        v["userAgent"]
            .as_str()
            .unwrap_or_default()
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    let family = client(&insider[0]);
    assert!(
        before
            .iter()
            .any(|v| client(v).split('/').next() == family.split('/').next())
    );
    assert!(insider.iter().any(|v| v["eventName"] == "GetSecretValue"));
}

#[test]
fn label_counts_are_sensible() {
    let events: Vec<Event> = generate(&GenConfig {
        days: 10,
        humans: 15,
        roles: 10,
        ..GenConfig::default()
    })
    .collect();
    let total = events.len();
    let attacks = events.iter().filter(|e| e.label.scenario.is_some()).count();
    let benign: BTreeMap<&str, usize> =
        events
            .iter()
            .filter_map(|e| e.label.benign_novelty)
            .fold(BTreeMap::new(), |mut m, b| {
                *m.entry(b).or_default() += 1;
                m
            });
    assert!(
        attacks >= 50 && attacks * 200 < total,
        "{attacks} attack events of {total}"
    );
    for b in BENIGN_NOVELTIES {
        assert!(benign.contains_key(b), "no {b} events: {benign:?}");
    }
    let labelled: usize = benign.values().sum();
    assert!(
        labelled * 20 < total,
        "{labelled} benign-novelty events of {total}"
    );

    let quiet: Vec<Event> = generate(&GenConfig {
        attacks: false,
        days: 3,
        humans: 6,
        roles: 4,
        ..GenConfig::default()
    })
    .collect();
    assert!(quiet.iter().all(|e| e.label.scenario.is_none()));
}

#[test]
fn the_estimate_tracks_the_volume() {
    let cfg = GenConfig {
        days: 7,
        humans: 10,
        roles: 6,
        ..GenConfig::default()
    };
    let n = generate(&cfg).count() as f64;
    let est = cfg.estimated_events_per_day() * 7.0;
    assert!((0.8..1.3).contains(&(est / n)), "estimate {est} vs {n}");
}

#[test]
fn stolen_credentials_are_the_victims_own() {
    use oddity_cloudtrail_gen::{DISCOVERY_BURST, ROLE_CREDENTIAL_THEFT};
    let events = shared();
    let key_of = |v: &Value| {
        v["userIdentity"]["accessKeyId"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let theft: Vec<Value> = events
        .iter()
        .filter(|e| e.label.scenario == Some(ROLE_CREDENTIAL_THEFT))
        .map(parse)
        .collect();
    let key = key_of(&theft[0]);
    assert!(key.starts_with("ASIA"));
    assert!(theft.iter().all(|v| key_of(v) == key));
    assert!(
        events
            .iter()
            .any(|e| e.label.scenario.is_none() && e.json.contains(&key)),
        "the instance itself never used {key}"
    );
    let burst: Vec<Value> = events
        .iter()
        .filter(|e| e.label.scenario == Some(DISCOVERY_BURST))
        .map(parse)
        .collect();
    assert!(burst.len() >= 30);
    let failed = burst
        .iter()
        .filter(|v| v.get("errorCode").is_some())
        .count();
    assert!(
        failed * 5 >= burst.len(),
        "{failed} of {} failed",
        burst.len()
    );
    let regions: BTreeSet<&str> = burst
        .iter()
        .filter_map(|v| v["awsRegion"].as_str())
        .collect();
    assert!(regions.len() >= 4, "{regions:?}");
    let services: BTreeSet<&str> = burst
        .iter()
        .filter_map(|v| v["eventSource"].as_str())
        .collect();
    assert!(services.len() >= 10, "{services:?}");
}
