//! Hostile input, end to end: bad lines under both policies, corrupt files among good ones,
//! deep nesting, huge lines, duplicate keys and values of the wrong type. Nothing crashes,
//! nothing is lost, everything is explained.

use std::io::Write as _;

use serde_json::Value;

use crate::util::{mkfifo, oddity, run, run_cmd, score_record, tempdir};

/// A CloudTrail event of `user` calling `action`, with `extra` members spliced in at the end.
fn event(user: &str, action: &str, extra: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.08","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/{user}"}},"eventTime":"2024-03-04T09:15:02Z","eventSource":"ec2.amazonaws.com","eventName":"{action}","sourceIPAddress":"198.51.100.7","userAgent":"aws-cli/2.15.1","eventID":"{user}-{action}"{extra}}}"#
    )
}

/// Every kind of bad line, one event before and after each, and an event without `eventName`.
fn mixed_input() -> Vec<u8> {
    let mut input = Vec::new();
    let bad: [&[u8]; 7] = [
        b"not json at all",
        b"[1,2,3]",
        b"\"a string\"",
        b"",
        b"   \t",
        b"{\"userAgent\":\"\xff\xfe\"}",
        b"{\"truncated\":",
    ];
    for (i, line) in bad.iter().enumerate() {
        writeln!(input, "{}", event("raul", &format!("Good{i}"), "")).expect("write");
        input.extend_from_slice(line);
        input.push(b'\n');
    }
    writeln!(input, r#"{{"eventSource":"s3.amazonaws.com"}}"#).expect("write");
    write!(input, "{}\r\n", event("raul", "Crlf", "")).expect("write");
    input
}

#[test]
fn bad_lines_pass_through_by_default() {
    let input = mixed_input();
    let out = run(&[], Some(&input));
    out.assert_ok();
    let lines: Vec<&[u8]> = out.stdout.split(|&b| b == b'\n').collect();
    let want: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    assert_eq!(lines.len(), want.len(), "one line out per line in");
    for (i, (got, want)) in lines.iter().zip(&want).enumerate() {
        let want = want.strip_suffix(b"\r").unwrap_or(want);
        if serde_json::from_slice::<Value>(got).is_ok_and(|v| v.get("novelty").is_some()) {
            assert!(got.starts_with(&want[..want.len() - 1]), "line {}", i + 1);
        } else {
            assert_eq!(got, &want, "line {} passes through unchanged", i + 1);
        }
    }
    for kind in [
        "not-json=2",
        "not-object=2",
        "empty=2",
        "not-utf8=1",
        "field-missing=1",
    ] {
        assert!(out.stderr.contains(kind), "{kind} in {}", out.stderr);
    }
}

#[test]
fn bad_lines_go_to_the_dead_letter_file_with_their_position() {
    let dir = tempdir();
    let dead = dir.path().join("dead.jsonl");
    let input = mixed_input();
    let out = run(
        &["--dead-letter", dead.to_str().expect("utf-8")],
        Some(&input),
    );
    out.assert_ok();
    let kept = out.json();
    // The events, in order: seven good, the one without eventName (annotated), the CRLF one.
    assert_eq!(kept.len(), 9, "{}", String::from_utf8_lossy(&out.stdout));
    for (i, e) in kept[..7].iter().enumerate() {
        assert_eq!(score_record(e)["observation"]["action"], format!("Good{i}"));
    }
    assert_eq!(kept[7]["novelty"]["error"], "field-missing");
    assert_eq!(score_record(&kept[8])["observation"]["action"], "Crlf");
    let records: Vec<Value> = std::fs::read_to_string(&dead)
        .expect("dead-letter file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON record"))
        .collect();
    let summary: Vec<(u64, &str)> = records
        .iter()
        .map(|r| {
            assert_eq!(r["source"], "<stdin>");
            assert!(r["detail"].is_string() && r["bytes"].is_u64(), "{r}");
            (
                r["line"].as_u64().expect("line"),
                r["reason"].as_str().expect("reason"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (2, "not-json"),
            (4, "not-object"),
            (6, "not-object"),
            (8, "empty"),
            (10, "empty"),
            (12, "not-utf8"),
            (14, "not-json"),
        ]
    );
    assert_eq!(records[0]["text"], "not json at all", "the line itself");
    assert_eq!(records[4]["text"], "   \t");
    assert_eq!(
        records[5]["base64"], "eyJ1c2VyQWdlbnQiOiL//iJ9",
        "not UTF-8: the bytes in base64"
    );
    assert!(
        out.stderr.contains("7 bad lines to the dead-letter file")
            && out.stderr.contains("line=12"),
        "counted, and reported with the line number:\n{}",
        out.stderr
    );
    // A second run appends.
    run(
        &["--dead-letter", dead.to_str().expect("utf-8"), "-q"],
        Some(&input),
    )
    .assert_ok();
    let again = std::fs::read_to_string(&dead)
        .expect("read")
        .lines()
        .count();
    assert_eq!(again, 14);
}

#[test]
fn an_over_long_line_is_dead_lettered_whole_in_base64() {
    let dir = tempdir();
    let dead = dir.path().join("dead.jsonl");
    let long = event(
        "raul",
        "Long",
        &format!(",\"pad\":\"{}\"", "x".repeat(10_000)),
    );
    let input = format!(
        "{}\n{long}\n{}\n",
        event("raul", "A", ""),
        event("raul", "B", "")
    );
    let out = run(
        &[
            "--max-line-bytes",
            "1000",
            "--dead-letter",
            dead.to_str().expect("utf-8"),
        ],
        Some(input.as_bytes()),
    );
    out.assert_ok();
    assert_eq!(out.json().len(), 2);
    let record: Value =
        serde_json::from_str(std::fs::read_to_string(&dead).expect("read").trim()).expect("json");
    assert_eq!(record["reason"], "too-long");
    assert_eq!(record["line"], 2);
    assert_eq!(record["bytes"], long.len());
    let encoded = record["base64"].as_str().expect("base64");
    assert_eq!(encoded.len(), long.len().div_ceil(3) * 4);
}

#[test]
fn the_bad_lines_policy_is_validated() {
    let dir = tempdir();
    let config = dir.path().join("oddity.toml");
    let dead = dir.path().join("dead.jsonl");
    let check = |text: &str, want: &str| {
        std::fs::write(&config, text).expect("write");
        let out = run(&["-c", config.to_str().expect("utf-8")], Some(b"x\n"));
        assert_eq!(out.code, Some(1), "{text}: {}", out.stderr);
        assert!(out.stderr.contains(want), "{want} in {}", out.stderr);
    };
    check("[bad-lines]\npolicy = \"drop\"\n", "bad-lines.policy");
    check("[bad-lines]\npolicy = \"dead-letter\"\n", "bad-lines.file");
    check(
        "[bad-lines]\npolicy = \"pass\"\nfile = \"x.jsonl\"\n",
        "bad-lines.file",
    );
    std::fs::write(
        &config,
        format!("[bad-lines]\nfile = {:?}\n", dead.to_str().expect("utf-8")),
    )
    .expect("write");
    let out = run(&["-q", "-c", config.to_str().expect("utf-8")], Some(b"x\n"));
    out.assert_ok();
    assert!(out.stdout.is_empty());
    assert!(
        std::fs::read_to_string(&dead)
            .expect("read")
            .contains("\"line\":1")
    );
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).expect("gzip");
    gz.finish().expect("gzip")
}

#[test]
fn a_truncated_gzip_keeps_its_events_and_the_run_goes_on() {
    let dir = tempdir();
    let events: Vec<String> = (0..3000)
        .map(|i| event(&format!("u{}", i % 7), &format!("Action{i}"), ""))
        .collect();
    let gz = gzip((events.join("\n") + "\n").as_bytes());
    let cut = dir.path().join("cut.jsonl.gz");
    std::fs::write(&cut, &gz[..gz.len() * 6 / 10]).expect("write");
    let after = dir.path().join("after.jsonl");
    std::fs::write(&after, event("raul", "After", "") + "\n").expect("write");
    let out = run_cmd(oddity().arg(&cut).arg(&after), None);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("cut.jsonl.gz") && out.stderr.contains("input failed"),
        "the error names the file:\n{}",
        out.stderr
    );
    let lines = out.raw_lines();
    // The events before the cut, what was read of the line it cut, the next file's event.
    let kept = lines.len() - 2;
    assert!(kept > 1000 && kept < 3000, "{kept} events before the cut");
    for (i, line) in lines[..kept].iter().enumerate() {
        let e: Value = serde_json::from_slice(line).expect("a scored event");
        assert_eq!(e["eventID"], format!("u{}-Action{i}", i % 7), "in order");
        score_record(&e);
    }
    let cut = String::from_utf8_lossy(lines[kept]);
    assert!(
        events[kept].starts_with(cut.as_ref()) && !cut.is_empty(),
        "the cut line is kept as read: {cut}"
    );
    let after: Value = serde_json::from_slice(lines[kept + 1]).expect("JSON");
    assert_eq!(after["eventName"], "After", "the next file is read");
}

/// Files that start as envelopes or arrays and stop being JSON: every record is an event,
/// whatever is not a record is a bad line written through, nothing is lost; the file is
/// reported and the next one read.
#[test]
fn a_delivery_file_that_breaks_loses_nothing() {
    let dir = tempdir();
    let write = |name: &str, text: String| {
        std::fs::write(dir.path().join(name), text).expect("write");
    };
    // `Records` is not an array: a file of JSON lines whose line is an event without
    // `eventName`.
    write(
        "1-not-array.json",
        r#"{"Records": {"eventName": "NotAnArray"}}"#.to_owned(),
    );
    // Cut inside its third record.
    write(
        "2-cut.json",
        format!(
            r#"{{"Records": [{}, {}, {{"eventName": "#,
            event("raul", "One", ""),
            event("raul", "Two", "")
        ),
    );
    // `[` alone on the first line, then JSON lines without commas, then `]`.
    let mut lines = "[\n".to_owned();
    for name in ["Three", "Four", "Five"] {
        lines += &event("raul", name, "");
        lines.push('\n');
    }
    lines += "]\n";
    write("3-bracket-then-lines.json", lines);
    // A record broken inside (a missing colon) in a one-line envelope: the records after it
    // are events.
    write(
        "4-broken-record.json",
        format!(
            r#"{{"Records":[{},{{"eventName" "Broken"}},{}]}}"#,
            event("raul", "Six", ""),
            event("raul", "Seven", "")
        ),
    );
    // An envelope, then text that is not JSON, then an envelope.
    write(
        "5-envelope-then-text.json",
        format!(
            "{{\"Records\": [{}]}}\nnot json at all\n{{\"Records\": [{}]}}\n",
            event("raul", "Eight", ""),
            event("raul", "Nine", "")
        ),
    );
    write(
        "6-good.json",
        format!(r#"{{"Records": [{}]}}"#, event("raul", "Ten", "")),
    );
    let out = run_cmd(oddity().arg(dir.path()), None);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    let lines: Vec<String> = out
        .raw_lines()
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    let names: Vec<String> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["novelty"]["score"].is_number())
        .filter_map(|e| e["eventName"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        names,
        [
            "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten"
        ],
        "every record is scored"
    );
    // The other lines, in their places: the object that is not an envelope, the cut record,
    // the broken record, the text.
    assert!(
        lines[0].starts_with(r#"{"Records": {"eventName": "NotAnArray"}"#),
        "a line as it was: {}",
        lines[0]
    );
    assert_eq!(lines[3], r#"{"eventName":"#);
    assert_eq!(lines[8], r#"{"eventName""Broken"}"#);
    assert_eq!(lines[11], "not json at all");
    assert_eq!(lines.len(), 14, "{lines:#?}");
    for (file, said) in [
        ("2-cut.json", "the text ends inside an object"),
        (
            "3-bracket-then-lines.json",
            "after record 1: unexpected `{` after an element of an array",
        ),
        (
            "5-envelope-then-text.json",
            "unexpected `n` where an envelope, an array or an object belongs",
        ),
    ] {
        assert!(
            out.stderr
                .lines()
                .any(|l| l.contains("input failed") && l.contains(file) && l.contains(said)),
            "{file}: {said}\n{}",
            out.stderr
        );
    }
    // A broken record inside a well-formed envelope is the plugin's to refuse (a bad line), and
    // an object that is not an envelope is a record: neither is a fault of the file.
    for file in ["1-not-array.json", "4-broken-record.json", "6-good.json"] {
        assert!(
            !out.stderr.contains(&format!("{file}: not")),
            "{file}: {}",
            out.stderr
        );
    }
}

/// A delivery envelope on a later line of a file of JSON lines, and a JSON array of envelopes:
/// their records are events, in order.
#[test]
fn envelopes_inside_lines_and_arrays_give_their_records() {
    let lines = format!(
        "{}\n{{\"Records\":[{},{}]}}\n{}\n",
        event("raul", "One", ""),
        event("raul", "Two", ""),
        event("raul", "Three", ""),
        event("raul", "Four", "")
    );
    let array = format!(
        "[{{\"Records\":[{},{}]}},{{\"Records\":[{}]}}]",
        event("raul", "Five", ""),
        event("raul", "Six", ""),
        event("raul", "Seven", "")
    );
    for (input, want) in [
        (lines, &["One", "Two", "Three", "Four"][..]),
        (array, &["Five", "Six", "Seven"][..]),
    ] {
        let out = run(&["-q"], Some(input.as_bytes()));
        out.assert_ok();
        let names: Vec<String> = out
            .json()
            .iter()
            .map(|e| {
                score_record(e);
                e["eventName"].as_str().expect("name").to_owned()
            })
            .collect();
        assert_eq!(names, want);
    }
}

/// A line of JSON lines that looks like an envelope but gives no record (cut before its first
/// record, or empty) is still one line in and one line out, in its place; before, it vanished
/// without a word (the lines after it took its place).
#[test]
fn an_envelope_line_without_records_still_gives_its_line() {
    let input = format!(
        "{}\n{{\"Records\":[\n{}\n{{\"Records\": []}}\n{}\n",
        event("raul", "One", ""),
        event("raul", "Two", ""),
        event("raul", "Three", ""),
    );
    let out = run(&["-q"], Some(input.as_bytes()));
    out.assert_ok();
    let lines = out.raw_lines();
    assert_eq!(lines.len(), 5, "{}", String::from_utf8_lossy(&out.stdout));
    // The cut envelope is not JSON: written through unchanged.
    assert_eq!(lines[1], b"{\"Records\":[");
    for (i, name) in [(0, "One"), (2, "Two"), (4, "Three")] {
        let e: Value = serde_json::from_slice(lines[i]).expect("json");
        assert_eq!(e["eventName"], name);
        score_record(&e);
    }
    // The empty envelope is an object without the action: an event that cannot be scored.
    let empty: Value = serde_json::from_slice(lines[3]).expect("json");
    assert_eq!(empty["Records"], serde_json::json!([]));
    assert_eq!(empty["novelty"]["error"], "field-missing");
}

/// A gzipped envelope cut short (a download that stopped): the records before the cut are
/// events, and what was read of the record being read is one bad line.
#[test]
fn a_truncated_gzip_envelope_keeps_the_record_it_cut() {
    let dir = tempdir();
    let records: Vec<String> = (0..3000)
        .map(|i| event(&format!("u{}", i % 7), &format!("Action{i}"), ""))
        .collect();
    let gz = gzip(format!("{{\"Records\":[{}]}}", records.join(",")).as_bytes());
    let cut = dir.path().join("cut.json.gz");
    std::fs::write(&cut, &gz[..gz.len() * 6 / 10]).expect("write");
    let out = run_cmd(oddity().arg(&cut), None);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("read error"), "{}", out.stderr);
    let lines = out.raw_lines();
    let kept = lines.len() - 1;
    assert!(kept > 1000 && kept < 3000, "{kept} records before the cut");
    for (i, line) in lines[..kept].iter().enumerate() {
        let e: Value = serde_json::from_slice(line).expect("a scored record");
        assert_eq!(e["eventID"], format!("u{}-Action{i}", i % 7), "in order");
        score_record(&e);
    }
    let last = String::from_utf8_lossy(lines[kept]);
    assert!(
        last.starts_with(r#"{"eventVersion":"1.08""#),
        "the cut record is kept: {last}"
    );
    assert!(
        out.stderr.contains(&format!("after {} events", kept + 1)),
        "{}",
        out.stderr
    );
}

#[test]
fn a_file_that_vanishes_before_it_is_read_fails_alone() {
    let dir = tempdir();
    // The first input is a FIFO: oddity has listed every input and waits on it; the test then
    // removes the second input and feeds the first.
    let fifo = dir.path().join("live.jsonl");
    mkfifo(&fifo);
    let vanishing = dir.path().join("vanishing.jsonl");
    std::fs::write(&vanishing, event("raul", "Never", "") + "\n").expect("write");
    let last = dir.path().join("last.jsonl");
    std::fs::write(&last, event("raul", "Last", "") + "\n").expect("write");
    let child = oddity()
        .arg(&fifo)
        .arg(&vanishing)
        .arg(&last)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start oddity");
    // Opening the FIFO for writing succeeds once oddity has opened it for reading (without
    // O_NONBLOCK it would wait for ever if oddity never got there).
    let mut writer = {
        use std::os::unix::fs::OpenOptionsExt as _;
        const O_NONBLOCK: i32 = 0o4000; // Linux
        let start = std::time::Instant::now();
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(O_NONBLOCK)
                .open(&fifo)
            {
                Ok(w) => break w,
                Err(e) if start.elapsed() < std::time::Duration::from_secs(60) => {
                    let _ = e;
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(e) => panic!("oddity never opened its first input: {e}"),
            }
        }
    };
    std::fs::remove_file(&vanishing).expect("remove");
    writeln!(writer, "{}", event("raul", "Live", "")).expect("write");
    drop(writer);
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("vanishing.jsonl") && stderr.contains("cannot open"),
        "{stderr}"
    );
    let names: Vec<Value> = out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice::<Value>(l).expect("json")["eventName"].clone())
        .collect();
    assert_eq!(names, ["Live", "Last"]);
}

/// Deep nesting on and off the observation's paths, as JSON lines and in an envelope.
#[test]
fn deep_nesting_does_not_overflow_anything() {
    const DEPTH: usize = 100_000;
    let arrays = format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    let objects = |key: &str| {
        format!(
            "{}1{}",
            format!("{{\"{key}\":").repeat(DEPTH),
            "}".repeat(DEPTH)
        )
    };
    let lines = [
        // Off the paths.
        event("raul", "OffPath", &format!(",\"deep\":{arrays}")),
        // On a path: the value of a profile field is itself deep.
        event(
            "raul",
            "OnPath",
            &format!(",\"requestParameters\":{{\"bucketName\":{}}}", objects("a")),
        ),
        // The required field, deep: it is missing, not crashing.
        event("raul", "X", "").replace("\"eventName\":\"X\"", &format!("\"eventName\":{arrays}")),
        // A line that is nothing but nesting.
        arrays.clone(),
        objects("a"),
        event("raul", "After", ""),
    ];
    let input = lines.join("\n") + "\n";
    let out = run(&[], Some(input.as_bytes()));
    out.assert_ok();
    let got = out.raw_lines();
    assert_eq!(got.len(), lines.len());
    let text = |i: usize| std::str::from_utf8(got[i]).expect("utf-8");
    for i in [0, 1, 5] {
        assert!(
            text(i).contains("\"novelty\":{\"score\""),
            "line {} scored",
            i + 1
        );
    }
    for i in [2, 4] {
        assert!(text(i).contains("field-missing"), "line {}", i + 1);
    }
    assert_eq!(got[3], arrays.as_bytes(), "not an object: passes through");
    // In an envelope too: records are read without recursion.
    let dir = tempdir();
    let envelope = dir.path().join("deep.json");
    std::fs::write(
        &envelope,
        format!(
            r#"{{"Records":[{},{}]}}"#,
            event("raul", "Before", ""),
            event("raul", "Deep", &format!(",\"deep\":{arrays}"))
        ),
    )
    .expect("write");
    let out = run_cmd(oddity().arg(&envelope), None);
    out.assert_ok();
    let got = out.raw_lines();
    assert_eq!(got.len(), 2);
    let deep = std::str::from_utf8(got[1]).expect("utf-8");
    assert!(deep.contains("\"eventName\":\"Deep\"") && deep.contains("\"novelty\":{\"score\""));
}

#[test]
fn a_fifty_megabyte_line_passes_through_or_is_scored() {
    let huge = event(
        "raul",
        "Huge",
        &format!(
            ",\"userAgent\":\"{}\"",
            "Mozilla/5.0 ".repeat((50 << 20) / 12 + 1)
        ),
    );
    assert!(huge.len() > 50 << 20);
    let input = format!(
        "{}\n{huge}\n{}\n",
        event("raul", "A", ""),
        event("raul", "B", "")
    );
    // Default maximum (1 MiB): written through unchanged, in pieces.
    let out = run(&["-q"], Some(input.as_bytes()));
    out.assert_ok();
    let got = out.raw_lines();
    assert_eq!(got.len(), 3);
    assert_eq!(got[1], huge.as_bytes());
    // A maximum above it: the plugin parses it (1 GiB memory cap) and scores it.
    let out = run(
        &["-q", "--max-line-bytes", "60000000"],
        Some(input.as_bytes()),
    );
    out.assert_ok();
    let got = out.raw_lines();
    assert_eq!(got.len(), 3);
    assert!(got[1].starts_with(&huge.as_bytes()[..huge.len() - 1]));
    let tail = std::str::from_utf8(&got[1][huge.len() - 1..]).expect("utf-8");
    let note: Value = serde_json::from_str(&format!("{{{}", &tail[1..])).expect("the note");
    assert!(note["novelty"]["score"].is_number(), "{note}");
    let agent = note["novelty"]["observation"]["agent"]
        .as_str()
        .expect("agent");
    assert!(
        agent.len() < 1000,
        "normalised and bounded: {} bytes",
        agent.len()
    );
}

#[test]
fn duplicate_keys_last_one_wins() {
    let line = event(
        "raul",
        "First",
        r#","eventName":"Second","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/ana"}"#,
    );
    let out = run(&["-q"], Some((line.clone() + "\n").as_bytes()));
    out.assert_ok();
    let raw = std::str::from_utf8(out.raw_lines()[0]).expect("utf-8");
    assert!(
        raw.starts_with(&line[..line.len() - 1]),
        "kept byte for byte"
    );
    let v: Value = serde_json::from_str(raw).expect("json");
    let n = score_record(&v);
    assert_eq!(n["observation"]["action"], "Second");
    assert!(
        n["principal"]
            .as_str()
            .expect("principal")
            .ends_with("user/ana"),
        "{n}"
    );
}

#[test]
fn values_of_the_wrong_type() {
    let with = |value: &str| {
        event("raul", "X", "").replace("\"eventName\":\"X\"", &format!("\"eventName\":{value}"))
    };
    let lines = [
        with("42"),
        with("-1.5e300"),
        with("true"),
        with("null"),
        with(r#"{"a":"b"}"#),
        with(r#"["CreateUser"]"#),
        // Optional fields of the wrong type fall back to their defaults.
        event("raul", "Y", "")
            .replace(
                "\"userAgent\":\"aws-cli/2.15.1\"",
                "\"userAgent\":{\"x\":[1,2]}",
            )
            .replace(
                "\"sourceIPAddress\":\"198.51.100.7\"",
                "\"sourceIPAddress\":12345",
            )
            .replace("\"eventTime\":\"2024-03-04T09:15:02Z\"", "\"eventTime\":[]"),
    ];
    let out = run(&["-q"], Some((lines.join("\n") + "\n").as_bytes()));
    out.assert_ok();
    let got = out.json();
    assert_eq!(got.len(), lines.len());
    let action = |i: usize| score_record(&got[i])["observation"]["action"].clone();
    assert_eq!(action(0), "42", "a number is read as its text");
    // As the number's digits, cut at the field's maximum length like any long value.
    assert!(
        action(1)
            .as_str()
            .expect("text")
            .starts_with("-15000000000")
    );
    assert_eq!(action(2), "true");
    for line in &got[3..6] {
        assert_eq!(line["novelty"]["error"], "field-missing", "{line}");
    }
    let n = score_record(&got[6]);
    assert_eq!(n["observation"]["action"], "Y");
    assert_eq!(n["observation"]["agent"], "none");
}

#[test]
fn one_event_stamped_a_century_ahead_does_not_move_the_clock() {
    // A day of one user's calls, with one event in the middle stamped in 2124: the scores of
    // the events after it are those of the same stream with that event's time left out.
    let stream = |stamp: Option<&str>| {
        let mut input = String::new();
        for i in 0..300u32 {
            let action = ["DescribeInstances", "DescribeVolumes", "ListBuckets"][i as usize % 3];
            let time = format!(
                "2024-03-04T{:02}:{:02}:{:02}Z",
                i * 240 / 3600,
                i * 240 / 60 % 60,
                i * 240 % 60
            );
            let line = event("raul", action, "").replace("2024-03-04T09:15:02Z", &time);
            let line = match (i, stamp) {
                (150, Some(s)) => line.replace(&time, s),
                (150, None) => line.replace(&format!(r#""eventTime":"{time}","#), ""),
                _ => line,
            };
            input.push_str(&line);
            input.push('\n');
        }
        let out = run(&["--quiet"], Some(input.as_bytes()));
        out.assert_ok();
        out.stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .skip(151)
            .map(|l| {
                let v: Value = serde_json::from_slice(l).expect("json");
                score_record(&v)["novelty"].as_f64().expect("novelty")
            })
            .collect::<Vec<f64>>()
    };
    let (forged, untimed) = (stream(Some("2124-03-04T09:15:02Z")), stream(None));
    assert_eq!(forged.len(), 149);
    assert_eq!(forged, untimed);
}

/// Over-long lines keep their own line numbers, and so does every line after them, however
/// their pieces fall across batches.
#[test]
fn line_numbers_survive_over_long_lines() {
    let dir = tempdir();
    let dead = dir.path().join("dead.jsonl");
    let mut input = Vec::new();
    let mut want_bad = Vec::new();
    for i in 1..=40u64 {
        if i % 3 == 0 {
            // 300 KB: pieces of 64 KiB, several batches' worth.
            input.extend_from_slice(&vec![b'x'; 300_000]);
            want_bad.push(i);
        } else {
            input.extend_from_slice(event("raul", &format!("Call{i}"), "").as_bytes());
        }
        input.push(b'\n');
    }
    let out = run_cmd(
        oddity()
            .args([
                "--max-line-bytes",
                "65536",
                "--batch-size",
                "2",
                "--dead-letter",
            ])
            .arg(&dead),
        Some(&input),
    );
    out.assert_ok();
    assert_eq!(out.lines(), 40 - want_bad.len());
    let got: Vec<u64> = std::fs::read_to_string(&dead)
        .expect("dead letters")
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("json")["line"]
                .as_u64()
                .expect("line")
        })
        .collect();
    assert_eq!(got, want_bad);
}

/// A file of JSON lines whose first line looks like an envelope or an array is read as records:
/// the objects after it are events, none is dropped.
#[test]
fn a_first_line_like_an_envelope_or_an_array_drops_nothing() {
    for first in [r#"{"Records":[]}"#, "[1,2]", "[]"] {
        let mut input = format!("{first}\n");
        for i in 0..50 {
            input += &event("raul", &format!("Call{i}"), "");
            input.push('\n');
        }
        let out = run(&[], Some(input.as_bytes()));
        out.assert_ok();
        let names: Vec<String> = out
            .json()
            .iter()
            .filter_map(|e| e["eventName"].as_str().map(str::to_owned))
            .collect();
        let want: Vec<String> = (0..50).map(|i| format!("Call{i}")).collect();
        assert_eq!(names, want, "after {first}");
        // `[1,2]` has two records of its own (not objects: written through).
        assert_eq!(
            out.lines(),
            if first == "[1,2]" { 52 } else { 50 },
            "after {first}"
        );
    }
}

#[test]
fn writing_over_an_input_or_another_output_is_refused() {
    let dir = tempdir();
    let input = dir.path().join("events.jsonl");
    let text = event("raul", "One", "") + "\n";
    std::fs::write(&input, &text).expect("write");
    let out = run_cmd(oddity().arg(&input).arg("-o").arg(&input), None);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("both an input and the output"),
        "{}",
        out.stderr
    );
    // Also through a directory, and for the state file.
    let out = run_cmd(
        oddity()
            .arg(dir.path())
            .arg("--state")
            .arg(dir.path().join("./events.jsonl")),
        None,
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("the state file"), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(&input).expect("read"),
        text,
        "input intact"
    );
    let scored = dir.path().join("scored.jsonl");
    let out = run_cmd(
        oddity()
            .arg(&input)
            .arg("-o")
            .arg(&scored)
            .arg("--state")
            .arg(&scored),
        None,
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("state file") && out.stderr.contains("also the output file"),
        "{}",
        out.stderr
    );
    // A hard link is another name of the same file: the output and the dead-letter file.
    let link = dir.path().join("link.jsonl");
    std::fs::hard_link(&input, &link).expect("hard link");
    for flag in ["-o", "--dead-letter"] {
        let out = run_cmd(oddity().arg(&input).arg(flag).arg(&link), None);
        assert_eq!(out.code, Some(1), "{flag}: {}", out.stderr);
        assert!(out.stderr.contains("both an input and"), "{}", out.stderr);
    }
    assert_eq!(
        std::fs::read_to_string(&input).expect("read"),
        text,
        "input intact"
    );
}

#[test]
fn a_missing_input_fails_alone() {
    let dir = tempdir();
    let good = dir.path().join("good.jsonl");
    std::fs::write(&good, event("raul", "One", "") + "\n").expect("write");
    let out = run_cmd(
        oddity().arg(dir.path().join("missing.jsonl")).arg(&good),
        None,
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("missing.jsonl"), "{}", out.stderr);
    assert_eq!(out.lines(), 1);
}

/// `oddity top` never sends an event's control characters to the terminal.
#[test]
fn top_shows_control_characters_escaped() {
    let input = event(
        "evil\\u001b[2J\\u001b]0;pwned\\u0007",
        "GetObject",
        r#","eventID":"id\r\nFAKE ROW""#,
    ) + "\n";
    let scored = run(&[], Some(input.as_bytes()));
    scored.assert_ok();
    let dir = tempdir();
    let path = dir.path().join("scored.jsonl");
    let mut text = scored.stdout.clone();
    text.extend_from_slice(b"not json\n");
    std::fs::write(&path, text).expect("write");
    let top = run_cmd(oddity().arg("top").arg(&path), None);
    top.assert_ok();
    let table = String::from_utf8_lossy(&top.stdout);
    assert!(
        !table.chars().any(|c| c.is_control() && c != '\n'),
        "{table:?}"
    );
    assert!(table.contains(r"\u{1b}[2J"), "{table}");
    assert!(table.contains(r"id\u{d}\u{a}FAKE ROW"), "{table}");
    assert!(top.stderr.contains("1 of 2 lines"), "{}", top.stderr);
}
