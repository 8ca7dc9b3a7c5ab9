//! Properties of the engine over arbitrary CloudTrail-like streams (proptest): scoring is
//! deterministic, a snapshot restores to the same bytes, and scoring A, saving, restoring and
//! scoring B gives exactly the records of scoring A+B, for any split.

use oddity_engine::{Batch, Engine};
use proptest::prelude::*;

/// A small node cap and warm-up, so that short streams reach pruning and warm principals.
const CONFIG: &str = "profile = \"cloudtrail\"\n[engine]\nmax-nodes = 1000\nwarm-up = 3\n";

const USERS: [&str; 4] = ["alice", "bob", "carol", "deploy"];
const ACTIONS: [(&str, &str); 8] = [
    ("s3.amazonaws.com", "GetObject"),
    ("s3.amazonaws.com", "PutObject"),
    ("s3.amazonaws.com", "ListBuckets"),
    ("ec2.amazonaws.com", "DescribeInstances"),
    ("ec2.amazonaws.com", "CreateSnapshot"),
    ("iam.amazonaws.com", "CreateAccessKey"),
    ("sts.amazonaws.com", "GetCallerIdentity"),
    ("secretsmanager.amazonaws.com", "GetSecretValue"),
];
const NETWORKS: [&str; 4] = ["198.51.100.7", "198.51.100.99", "203.0.113.5", "10.1.2.3"];
const AGENTS: [&str; 3] = [
    "aws-cli/2.15.1 Python/3.11",
    "Boto3/1.34.0",
    "console.amazonaws.com",
];
const ERRORS: [&str; 3] = ["", "AccessDenied", "NoSuchKey"];

/// One event: indices into the tables above and a gap in seconds since the previous one.
type Pick = (usize, usize, usize, usize, usize, u32, usize);

fn line(i: usize, p: &Pick, t: i64) -> String {
    let (user, action, net, agent, error, _, bucket) = *p;
    let (service, name) = ACTIONS[action % ACTIONS.len()];
    let error = ERRORS[error % ERRORS.len()];
    let error = if error.is_empty() {
        String::new()
    } else {
        format!(r#","errorCode":"{error}""#)
    };
    let time = 1_709_500_000 + t;
    // The last choice of each is a value never seen before, so that streams reach the node cap.
    let bucket = if bucket == 4 {
        format!("u{i}")
    } else {
        format!("b{bucket}")
    };
    let network = match net % NETWORKS.len() {
        3 => format!("203.{}.{}.9", i % 200, i / 200),
        n => NETWORKS[n].to_owned(),
    };
    format!(
        r#"{{"userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/{}"}},"eventTime":"{time}","eventSource":"{service}","eventName":"{name}","sourceIPAddress":"{}","userAgent":"{}","requestParameters":{{"bucketName":"{bucket}"}},"eventID":"e{i}"{error}}}"#,
        USERS[user % USERS.len()],
        network,
        AGENTS[agent % AGENTS.len()],
    )
}

fn stream() -> impl Strategy<Value = Vec<String>> {
    let pick = (
        0..4usize,
        0..8usize,
        0..4usize,
        0..3usize,
        0..3usize,
        0..200_000u32,
        0..5usize,
    );
    prop::collection::vec(pick, 1..400).prop_map(|picks| {
        let mut t = 0i64;
        picks
            .iter()
            .enumerate()
            .map(|(i, p)| {
                t += i64::from(p.5);
                line(i, p, t)
            })
            .collect()
    })
}

fn batch(lines: &[String]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| l.bytes().chain([b'\n']))
        .collect()
}

/// The notes of the judging path for `lines`.
fn annotate(engine: &mut Engine, lines: &[String]) -> Vec<u8> {
    engine
        .judge(Batch::Lines(&batch(lines)))
        .expect("lines")
        .notes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_same_stream_gives_the_same_records(lines in stream()) {
        let mut one = Engine::new(CONFIG).expect("config");
        let mut two = Engine::new(CONFIG).expect("config");
        prop_assert_eq!(one.score_lines(&batch(&lines)), two.score_lines(&batch(&lines)));
        prop_assert_eq!(one.snapshot(), two.snapshot());
        let mut three = Engine::new(CONFIG).expect("config");
        let mut four = Engine::new(CONFIG).expect("config");
        prop_assert_eq!(annotate(&mut three, &lines), annotate(&mut four, &lines));
    }

    #[test]
    fn a_snapshot_restores_to_the_same_bytes(lines in stream()) {
        let mut engine = Engine::new(CONFIG).expect("config");
        engine.score_lines(&batch(&lines));
        let bytes = engine.snapshot();
        let restored = Engine::restore(CONFIG, &bytes).expect("restore");
        prop_assert!(restored.snapshot() == bytes);
        prop_assert_eq!(restored.stats(), engine.stats());
    }

    #[test]
    fn a_then_b_equals_a_plus_b_at_any_split(lines in stream(), at in any::<prop::sample::Index>()) {
        let split = at.index(lines.len() + 1);
        let (a, b) = lines.split_at(split);
        let mut whole = Engine::new(CONFIG).expect("config");
        let all = whole.score_lines(&batch(&lines));
        let mut first = Engine::new(CONFIG).expect("config");
        let mut parts = first.score_lines(&batch(a));
        let mut second = Engine::restore(CONFIG, &first.snapshot()).expect("restore");
        parts.extend(second.score_lines(&batch(b)));
        prop_assert_eq!(&all, &parts);
        prop_assert!(whole.snapshot() == second.snapshot());
        // The same through the judging path.
        let mut whole = Engine::new(CONFIG).expect("config");
        let all = annotate(&mut whole, &lines);
        let mut first = Engine::new(CONFIG).expect("config");
        let mut parts = annotate(&mut first, a);
        let mut second = Engine::restore(CONFIG, &first.snapshot()).expect("restore");
        parts.extend(annotate(&mut second, b));
        prop_assert_eq!(all, parts);
    }
}

#[test]
fn long_streams_reach_the_node_cap() {
    let picks: Vec<Pick> = (0..600)
        .map(|i| (i % 4, i * 7 % 8, 3, i % 3, i % 3, 3600, 4))
        .collect();
    let lines: Vec<String> = picks
        .iter()
        .enumerate()
        .map(|(i, p)| line(i, p, i as i64 * 3600))
        .collect();
    let mut engine = Engine::new(CONFIG).expect("config");
    engine.score_lines(&batch(&lines));
    let stats = engine.stats();
    eprintln!("{stats:?}");
    assert!(stats.prunes > 0, "{stats:?}");
}
