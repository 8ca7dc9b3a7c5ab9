//! Real data: the bundled examples and the public CloudTrail captures in `tests/data`.

use std::path::Path;

use serde_json::Value;

use crate::util::{check_all_scored_or_explained, example, run, score_record, tempdir, test_data};

/// Records in a delivery envelope or a JSON array file.
fn records(path: &Path) -> Vec<Value> {
    let v: Value = serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json");
    match v {
        Value::Array(a) => a,
        Value::Object(mut o) => match o.remove("Records") {
            Some(Value::Array(a)) => a,
            _ => panic!("{} has no Records", path.display()),
        },
        _ => panic!("{}: unexpected JSON", path.display()),
    }
}

fn files(dir: &Path, ext: &str) -> Vec<std::path::PathBuf> {
    let mut f: Vec<_> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    f.sort();
    f
}

#[test]
fn invictus_delivery_files_in_a_directory() {
    let dir = test_data().join("invictus-ir_aws_dataset/CloudTrail");
    let expected: usize = files(&dir, "json").iter().map(|f| records(f).len()).sum();
    assert_eq!(expected, 2900);
    let out = run(&[dir.to_str().expect("utf-8")], None);
    out.assert_ok();
    assert_eq!(
        check_all_scored_or_explained(&out, expected),
        expected,
        "every invictus record is scorable"
    );
    // Records come out in directory name order, each with its event id kept.
    let first_file = &files(&dir, "json")[0];
    let first_id = records(first_file)[0]["eventID"].clone();
    assert_eq!(out.json()[0]["eventID"], first_id);
}

#[test]
fn stratus_red_team_array_files() {
    let dir = test_data().join("stratus-red-team_detonation_logs");
    let paths = files(&dir, "json");
    let expected: usize = paths.iter().map(|f| records(f).len()).sum();
    let mut args: Vec<&str> = paths.iter().map(|p| p.to_str().expect("utf-8")).collect();
    args.push("-q");
    let out = run(&args, None);
    out.assert_ok();
    assert_eq!(check_all_scored_or_explained(&out, expected), expected);
}

#[test]
fn panther_rule_test_events_as_json_lines() {
    let src = std::fs::read_to_string(
        test_data().join("panther-analysis/panther_cloudtrail_rule_tests.jsonl"),
    )
    .expect("read");
    let mut events = String::new();
    for line in src.lines() {
        let v: Value = serde_json::from_str(line).expect("json");
        events.push_str(&serde_json::to_string(&v["event"]).expect("json"));
        events.push('\n');
    }
    let n = src.lines().count();
    let out = run(&["-q"], Some(events.as_bytes()));
    out.assert_ok();
    let scored = check_all_scored_or_explained(&out, n);
    // Hand-made partial events (no eventName, odd identities) are explained, never dropped.
    assert!(scored > n * 3 / 4, "{scored} of {n} scored");
}

#[test]
fn otrf_logstash_lines_without_event_time() {
    let path =
        test_data().join("otrf_security_datasets/ec2_proxy_s3_exfiltration_2020-09-14011940.json");
    let n = std::fs::read_to_string(&path)
        .expect("read")
        .lines()
        .count();
    let out = run(&[path.to_str().expect("utf-8")], None);
    out.assert_ok();
    assert_eq!(check_all_scored_or_explained(&out, n), n);
}

#[test]
fn gzip_and_odd_delivery_files_with_one_broken_file() {
    let dir = test_data().join("aws-cloudtrail-processing-library_fixtures");
    let good: usize = files(&dir, "json")
        .iter()
        .filter(|p| !p.ends_with("SerializerTestFileBadJsonFormat.json"))
        .map(|f| records(f).len())
        .sum::<usize>()
        + 6; // SerializerTestFileCompact.json.gz
    // The broken file is a pretty-printed envelope whose first record lacks a closing brace
    // (its `userIdentity` is not closed): that record's lines are written through one by one,
    // and its second record, which follows, is an event.
    let broken =
        std::fs::read_to_string(dir.join("SerializerTestFileBadJsonFormat.json")).expect("read");
    let out = run(&[dir.to_str().expect("utf-8")], None);
    // The broken file is reported by name, the others are read: exit code 2 says "partial".
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("SerializerTestFileBadJsonFormat.json")
            && out.stderr.contains("not a well-formed delivery file"),
        "{}",
        out.stderr
    );
    // The records of the good files and the broken file's second record are events (scored,
    // or with the error that kept them from it); every other line is a line of the broken
    // file's first record, written through as it was.
    let mut events = 0;
    for line in out.raw_lines() {
        match serde_json::from_slice::<Value>(line) {
            Ok(event) if event.is_object() => {
                events += 1;
                if event["novelty"]["error"].is_null() {
                    score_record(&event);
                }
            }
            _ => {
                let text = String::from_utf8_lossy(line);
                assert!(
                    broken.lines().any(|l| l.trim() == text),
                    "not a line of the broken file: {text}"
                );
            }
        }
    }
    // Two from the broken file: its second record, and the one object of its first record's
    // lines that stands on its own line (a `resources` entry, an event without `eventName`).
    assert_eq!(events, good + 2, "and nothing of SOURCES.md");
}

#[test]
fn process_launch_example_with_its_profile() {
    let events = example("process-launch/events.jsonl");
    let profile = example("process-launch/profile.toml");
    let out = run(
        &[
            "-q",
            "--profile",
            profile.to_str().expect("utf-8"),
            events.to_str().expect("utf-8"),
        ],
        None,
    );
    out.assert_ok();
    let n = std::fs::read_to_string(&events)
        .expect("read")
        .lines()
        .count();
    assert_eq!(check_all_scored_or_explained(&out, n), n);
    // The web shell (nginx spawning a shell on web-2) is among the most novel events.
    let mut json = out.json();
    json.sort_by(|a, b| {
        b["novelty"]["score"]
            .as_f64()
            .partial_cmp(&a["novelty"]["score"].as_f64())
            .expect("numbers")
    });
    let top: Vec<&str> = json[..10]
        .iter()
        .map(|e| e["event_id"].as_str().expect("id"))
        .collect();
    assert!(
        top.contains(&"evt-002001"),
        "nginx -> sh is in the top 10: {top:?}"
    );
}

#[test]
fn a_directory_is_read_in_name_order_and_gzip_is_sniffed() {
    let dir = tempdir();
    let line = |name: &str| {
        format!(
            "{{\"userIdentity\":{{\"type\":\"IAMUser\",\"arn\":\"arn:aws:iam::1:user/{name}\"}},\"eventSource\":\"s3.amazonaws.com\",\"eventName\":\"ListBuckets\"}}\n"
        )
    };
    std::fs::create_dir(dir.path().join("b")).expect("mkdir");
    std::fs::write(dir.path().join("b/2.jsonl"), line("two")).expect("write");
    std::fs::write(dir.path().join("a.jsonl"), line("one")).expect("write");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(
        &mut gz,
        format!("{{\"Records\":[{}]}}", line("three").trim()).as_bytes(),
    )
    .expect("gzip");
    std::fs::write(dir.path().join("c.json.gz"), gz.finish().expect("gzip")).expect("write");
    std::fs::write(dir.path().join("notes.md"), "not a log\n").expect("write");
    std::fs::create_dir(dir.path().join("CloudTrail-Digest")).expect("mkdir");
    std::fs::write(
        dir.path().join("CloudTrail-Digest/d.json"),
        "{\"digestStartTime\":\"x\"}\n",
    )
    .expect("write");
    std::fs::create_dir(dir.path().join("CloudTrail-Insight")).expect("mkdir");
    std::fs::write(
        dir.path().join("CloudTrail-Insight/i.json"),
        "{\"Records\":[{\"eventType\":\"AwsCloudTrailInsight\",\"eventCategory\":\"Insight\"}]}\n",
    )
    .expect("write");
    let out = run(&["-q", dir.path().to_str().expect("utf-8")], None);
    out.assert_ok();
    let principals: Vec<String> = out
        .json()
        .iter()
        .map(|e| {
            e["novelty"]["principal"]
                .as_str()
                .expect("principal")
                .to_owned()
        })
        .collect();
    assert_eq!(principals.len(), 3, "digests and non-log files are skipped");
    for (p, want) in principals.iter().zip(["one", "two", "three"]) {
        assert!(p.ends_with(want), "{principals:?}");
    }
}

/// The ground truth of the bundled CloudTrail example: event id -> (scenario, step).
pub fn example_labels() -> std::collections::HashMap<String, (String, u32)> {
    let text = std::fs::read_to_string(example("cloudtrail/labels.csv")).expect("labels");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect("column");
    let (id, scenario, step) = (col("eventID"), col("scenario"), col("step"));
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| !f[scenario].is_empty())
        .map(|f| {
            (
                f[id].to_owned(),
                (f[scenario].to_owned(), f[step].parse().expect("step")),
            )
        })
        .collect()
}

#[test]
fn cloudtrail_example_exfiltration_chain_ranks_on_top() {
    let events = example("cloudtrail/events.jsonl.gz");
    let out = run(&["-q", events.to_str().expect("utf-8")], None);
    out.assert_ok();
    let labels = example_labels();
    assert!(
        labels.values().all(|(s, _)| s == "exfil-chain") && labels.len() >= 6,
        "{labels:?}"
    );
    let mut json = out.json();
    let n = json.len();
    assert_eq!(check_all_scored_or_explained(&out, n), n);
    json.sort_by(|a, b| {
        let key = |e: &Value| {
            (
                e["novelty"]["score"].as_f64().expect("score"),
                e["novelty"]["novelty"].as_f64().expect("bits"),
            )
        };
        key(b).partial_cmp(&key(a)).expect("numbers")
    });
    let rank_of = |step: u32| {
        json.iter()
            .position(|e| {
                labels
                    .get(e["eventID"].as_str().expect("id"))
                    .is_some_and(|(_, s)| *s == step)
            })
            .expect("step present")
            + 1
    };
    // Among thirty thousand events of five days, the chain's most novel event is in the top
    // 0.5 %, and every one of its six steps in the top 2 %.
    let best = (1..=6).map(rank_of).min().expect("steps");
    assert!(
        best <= n / 200,
        "the chain's best event ranks {best} of {n}"
    );
    for step in 1..=6 {
        assert!(
            rank_of(step) <= n / 50,
            "step {step} ranks {} of {n}",
            rank_of(step)
        );
    }
    // The README's first command: after the first day (the learning period), the chain is
    // among the twenty most novel events `oddity top` shows.
    let dir = tempdir();
    let scored = dir.path().join("scored.jsonl");
    std::fs::write(&scored, &out.stdout).expect("write");
    let top = run(
        &[
            "top",
            "--since",
            "2024-03-05",
            scored.to_str().expect("utf-8"),
        ],
        None,
    );
    top.assert_ok();
    let table = String::from_utf8_lossy(&top.stdout);
    let chain_rows = table
        .lines()
        .skip(1)
        .filter(|row| labels.keys().any(|id| row.contains(id.as_str())))
        .count();
    assert!(
        chain_rows >= 3,
        "the chain's events are among the top 20 after the first day:\n{table}"
    );
}
