//! Population knowledge shared between the engines of a stream partitioned by principal.

use oddity_engine::{BatchError, Engine, ScoreRecord};

const CONFIG: &str = "profile = \"cloudtrail\"\n[engine]\nwarm-up = 3\n";

fn event(i: usize, user: &str, source: &str, name: &str, ip: &str) -> String {
    let time = 1_709_500_000 + i as i64 * 60;
    format!(
        r#"{{"userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/{user}"}},"eventTime":"{time}","eventSource":"{source}","eventName":"{name}","sourceIPAddress":"{ip}","userAgent":"aws-cli/2.15.1","eventID":"e{i}"}}"#
    )
}

/// Fifty days of routine: `users` each list buckets and describe instances from their network.
fn routine(engine: &mut Engine, users: &[&str], from: usize) -> usize {
    let mut i = from;
    for round in 0..50 {
        for (u, user) in users.iter().enumerate() {
            let ip = format!("198.51.{u}.{}", round % 3);
            for (source, name) in [
                ("s3.amazonaws.com", "ListBuckets"),
                ("ec2.amazonaws.com", "DescribeInstances"),
            ] {
                engine
                    .score_line(event(i, user, source, name, &ip).as_bytes())
                    .expect("scored");
                i += 1;
            }
        }
    }
    i
}

/// Two fresh engines, both recording what they learn into the population.
fn sharing_pair() -> (Engine, Engine) {
    let mut a = Engine::new(CONFIG).expect("engine");
    let mut b = Engine::new(CONFIG).expect("engine");
    a.share_population();
    b.share_population();
    (a, b)
}

/// `user` reading a secret from `ip`.
fn secret(i: usize, user: &str, ip: &str) -> String {
    event(
        i,
        user,
        "secretsmanager.amazonaws.com",
        "GetSecretValue",
        ip,
    )
}

fn score(engine: &mut Engine, line: &str) -> ScoreRecord {
    engine.score_line(line.as_bytes()).expect("scored")
}

/// What a new user's first `GetSecretValue` costs in the population view.
fn secret_novelty(engine: &Engine) -> f64 {
    let mut probe = Engine::restore(CONFIG, &engine.snapshot()).expect("restores");
    let r = score(&mut probe, &secret(90_000, "newcomer", "198.51.9.9"));
    r.views
        .iter()
        .find(|v| v.name == "action")
        .expect("an action view")
        .info_content
}

#[test]
fn what_one_partition_learns_about_the_population_reaches_another() {
    let (mut a, mut b) = sharing_pair();
    routine(&mut a, &["alice", "bob"], 0);
    let from = routine(&mut b, &["carol", "dave"], 10_000);
    for i in from..from + 30 {
        score(&mut b, &secret(i, "carol", "198.51.0.1"));
    }
    let before = secret_novelty(&a);
    a.merge_population(&b.share_population()).expect("merges");
    let after = secret_novelty(&a);
    assert!(
        after + 3.0 < before,
        "a call routine in the other partition is less surprising after merging: {before} -> {after} bits"
    );
    assert_eq!(a.stats().events, 200, "merging learns no event of a's own");
}

#[test]
fn merged_knowledge_is_never_shared_on_and_a_principal_stays_its_own() {
    let (mut a, mut b) = sharing_pair();
    routine(&mut b, &["carol"], 0);
    let empty = a.share_population();
    a.merge_population(&b.share_population()).expect("merges");
    assert_eq!(
        a.share_population(),
        empty,
        "a shares nothing it did not learn itself"
    );
    // carol is b's: in a she is still a principal never seen.
    let r = score(
        &mut a,
        &event(
            20_000,
            "carol",
            "s3.amazonaws.com",
            "ListBuckets",
            "198.51.0.0",
        ),
    );
    assert_eq!(
        r.sequence, 1,
        "a principal's own history stays in its partition"
    );
}

#[test]
fn sharing_is_deterministic_and_survives_a_snapshot() {
    let run = |restart: bool| {
        let mut e = Engine::new(CONFIG).expect("engine");
        e.share_population();
        let i = routine(&mut e, &["alice"], 0);
        if restart {
            e = Engine::restore(CONFIG, &e.snapshot()).expect("restores");
        }
        routine(&mut e, &["bob"], i);
        e.share_population()
    };
    let whole = run(false);
    assert_eq!(whole, run(true), "the outbox is in the snapshot");
    assert!(whole.len() > 100);
}

#[test]
fn an_engine_that_does_not_share_keeps_its_snapshot_and_merges_anyway() {
    let mut a = Engine::new(CONFIG).expect("engine");
    let mut b = Engine::new(CONFIG).expect("engine");
    b.share_population();
    routine(&mut a, &["alice"], 0);
    routine(&mut b, &["bob"], 0);
    let restored = Engine::restore(CONFIG, &a.snapshot()).expect("restores");
    assert_eq!(restored.snapshot(), a.snapshot());
    a.merge_population(&b.share_population()).expect("merges");
}

#[test]
fn foreign_or_corrupt_knowledge_is_refused_and_nothing_merged() {
    let mut a = Engine::new(CONFIG).expect("engine");
    let mut other =
        Engine::new("profile = \"cloudtrail\"\n[engine]\nwarm-up = 9\n").expect("engine");
    other.share_population();
    routine(&mut other, &["zed"], 0);
    let foreign = other.share_population();
    let before = a.snapshot();
    assert!(matches!(
        a.merge_population(&foreign),
        Err(BatchError::Foreign(_))
    ));
    let mut b = Engine::new(CONFIG).expect("engine");
    b.share_population();
    routine(&mut b, &["bob"], 0);
    let good = b.share_population();
    for bad in [
        &b"not a delta"[..],
        &good[..good.len() - 1],
        &[&good[..], b"x"].concat()[..],
    ] {
        assert!(
            matches!(a.merge_population(bad), Err(BatchError::Corrupt(_))),
            "refused"
        );
    }
    let mut flipped = good.clone();
    let last = flipped.len() - 3;
    flipped[last] ^= 0x40;
    assert!(matches!(
        a.merge_population(&flipped),
        Err(BatchError::Corrupt(_))
    ));
    assert_eq!(a.snapshot(), before, "nothing merged");
}

/// `bytes` framed as a share of an engine of `fingerprint` (a correct header and checksum).
fn framed(fingerprint: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = b"ODDITYPD".to_vec();
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(fingerprint.as_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

    /// A hostile peer's share, correctly framed, never panics the engine: it is merged or
    /// refused with nothing merged, and the engine keeps scoring with finite numbers.
    #[test]
    fn any_framed_share_is_merged_or_refused(payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
        let mut a = Engine::new(CONFIG).expect("engine");
        routine(&mut a, &["alice"], 0);
        let before = a.snapshot();
        let bytes = framed(a.fingerprint(), &payload);
        if a.merge_population(&bytes).is_err() {
            proptest::prop_assert_eq!(a.snapshot(), before);
        }
        let r = score(&mut a, &event(99_999, "alice", "iam.amazonaws.com", "CreateUser", "198.51.0.1"));
        proptest::prop_assert!(r.score.is_finite() && r.novelty.is_finite());
    }
}

/// A well-formed share's payload: `nodes` as (parent choice, key, weight fraction, backoff).
fn payload(now: u32, events: f64, nodes: &[(u32, u64, f64, f64)], bins: &[(u32, f64)]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&now.to_le_bytes());
    p.extend_from_slice(&events.to_le_bytes());
    p.extend_from_slice(&(nodes.len() as u32).to_le_bytes());
    for (i, &(parent, key, fraction, backoff)) in nodes.iter().enumerate() {
        let parent = if i == 0 || parent % 3 == 0 {
            u32::MAX
        } else {
            parent % i as u32
        };
        p.extend_from_slice(&parent.to_le_bytes());
        p.extend_from_slice(&(key % 7).to_le_bytes());
        p.extend_from_slice(&(events * fraction).max(1e-3).to_le_bytes());
        p.extend_from_slice(&backoff.to_le_bytes());
    }
    p.extend_from_slice(&now.to_le_bytes());
    p.extend_from_slice(&(bins.len() as u32).to_le_bytes());
    for &(bin, w) in bins {
        p.extend_from_slice(&(bin % 330).to_le_bytes());
        p.extend_from_slice(&w.to_le_bytes());
    }
    p
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 128, ..Default::default() })]

    /// Well-formed shares with any tree shape, keys, weights and times merge, and the engine
    /// keeps judging with finite numbers.
    #[test]
    fn any_well_formed_share_merges(
        now in 0u32..2_000_000_000,
        events in 1.0f64..1e6,
        nodes in proptest::collection::vec((0u32..64, 0u64..1000, 0.0f64..=1.0, 0.0f64..64.0), 0..40),
        bins in proptest::collection::vec((0u32..400, 0.0f64..100.0), 0..20),
    ) {
        let mut a = Engine::new(CONFIG).expect("engine");
        routine(&mut a, &["alice"], 0);
        let bytes = framed(a.fingerprint(), &payload(now, events, &nodes, &bins));
        let merged = a.merge_population(&bytes);
        proptest::prop_assert!(merged.is_ok() || bins.iter().any(|b| b.0 % 330 >= 322), "{merged:?}");
        let r = score(&mut a, &event(99_999, "alice", "iam.amazonaws.com", "CreateUser", "198.51.0.1"));
        proptest::prop_assert!(r.score.is_finite() && r.novelty.is_finite());
        let restored = Engine::restore(CONFIG, &a.snapshot());
        proptest::prop_assert!(restored.is_ok(), "{:?}", restored.err());
    }
}
