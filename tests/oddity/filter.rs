//! `oddity` as a stdin/stdout filter: one line out per line in, originals kept, errors explained.

use serde_json::Value;

use crate::util::{example, oddity, run, run_cmd, score_record};

const EVENT: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/raul"},"eventTime":"2024-03-04T09:15:02Z","eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","awsRegion":"eu-west-1","sourceIPAddress":"198.51.100.7","userAgent":"aws-cli/2.15.1 Python/3.11.6 Linux/6.1","eventID":"0b4a7c2e-0000-4000-8000-000000000001"}"#;

#[test]
fn every_line_gives_one_line_and_bad_lines_pass_through() {
    let input = format!(
        "{EVENT}\nnot json at all\n{{\"eventSource\":\"s3.amazonaws.com\"}}\n[1,2]\n\n{}\r\n",
        EVENT.replace("DescribeInstances", "CreateSnapshot")
    );
    let out = run(&[], Some(input.as_bytes()));
    out.assert_ok();
    let lines: Vec<&[u8]> = out.stdout.split(|&b| b == b'\n').collect();
    assert_eq!(
        lines.len(),
        7,
        "six lines and the final newline: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    let first: Value = serde_json::from_slice(lines[0]).expect("json");
    score_record(&first);
    assert_eq!(
        lines[1], b"not json at all",
        "non-JSON passes through unchanged"
    );
    let missing: Value = serde_json::from_slice(lines[2]).expect("json");
    assert_eq!(missing["novelty"]["error"], "field-missing");
    assert!(
        missing["novelty"]["reason"]
            .as_str()
            .expect("reason")
            .contains("eventName")
    );
    assert_eq!(lines[3], b"[1,2]");
    assert_eq!(lines[4], b"", "an empty line stays an empty line");
    let crlf: Value = serde_json::from_slice(lines[5]).expect("json");
    score_record(&crlf);
    assert!(
        !lines[5].ends_with(b"\r"),
        "output lines end in a bare newline"
    );
    for (line, kind) in [
        (2, "not-json"),
        (3, "field-missing"),
        (4, "not-object"),
        (5, "empty"),
    ] {
        assert!(
            out.stderr.contains(&format!("line={line}")) && out.stderr.contains(kind),
            "stderr reports line {line} ({kind}):\n{}",
            out.stderr
        );
    }
    assert!(out.stderr.contains("<stdin>"), "{}", out.stderr);
}

#[test]
fn reading_observations_in_a_second_instance_changes_no_byte() {
    let events = example("cloudtrail/events.jsonl.gz");
    let staged = |on: &str| {
        let out = run_cmd(
            oddity()
                .env("ODDITY_STAGED", on)
                .args(["--batch-size", "97"])
                .arg(&events),
            None,
        );
        out.assert_ok();
        out.stdout
    };
    let (two, one) = (staged("true"), staged("false"));
    assert!(two.len() > 1_000_000, "the bundled example is scored");
    assert!(two == one, "staged and unstaged runs differ");
}

/// Filters one event with `args`; checks that the output line is the event byte for byte with
/// the annotation added as its last member, and returns the output line, the annotation and
/// standard error.
fn kept_with_annotation(args: &[&str], event: &str) -> (String, Value, String) {
    let out = run(args, Some(format!("{event}\n").as_bytes()));
    out.assert_ok();
    let line = String::from_utf8(out.stdout.clone()).expect("utf-8");
    let prefix = &event[..event.len() - 1];
    assert!(
        line.starts_with(prefix),
        "annotation is appended, the rest untouched:\n{line}"
    );
    let rest = &line[prefix.len()..];
    assert!(rest.starts_with(",\"novelty\":{"), "{line}");
    let note: Value = serde_json::from_str(&rest[",\"novelty\":".len()..rest.len() - 2])
        .expect("the annotation is JSON");
    score_record(&serde_json::json!({ "novelty": note }));
    (line, note, out.stderr)
}

#[test]
fn the_original_event_is_kept_byte_for_byte() {
    let spaced = EVENT.replace(
        r#""awsRegion":"eu-west-1""#,
        r#""awsRegion" : "eu-west-1", "n": 1.50"#,
    );
    let (line, _, _) = kept_with_annotation(&["--quiet"], &spaced);
    let v: Value = serde_json::from_str(&line).expect("json");
    assert_eq!(
        v["eventID"], "0b4a7c2e-0000-4000-8000-000000000001",
        "event id stays in the event"
    );
    assert_eq!(v["eventTime"], "2024-03-04T09:15:02Z");
}

#[test]
fn the_output_key_is_configurable() {
    let out = run(
        &["-k", "oddity", "-q"],
        Some(format!("{EVENT}\n").as_bytes()),
    );
    out.assert_ok();
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        v["oddity"]["score"].is_number() && v.get("novelty").is_none(),
        "{v}"
    );
}

#[test]
fn over_long_lines_pass_through_whole() {
    let long = format!("{{\"pad\":\"{}\"}}", "x".repeat(5000));
    let again = EVENT.replace("000000000001", "000000000002");
    let input = format!("{EVENT}\n{long}\n{again}\n");
    let out = run(&["--max-line-bytes", "1000"], Some(input.as_bytes()));
    out.assert_ok();
    let lines: Vec<&[u8]> = out.stdout.split(|&b| b == b'\n').collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[1], long.as_bytes());
    assert!(out.stderr.contains("too-long"), "{}", out.stderr);
    score_record(&serde_json::from_slice(lines[2]).expect("json"));
}

#[test]
fn the_line_limit_is_the_same_for_crlf_line_ends() {
    // A line of exactly the limit is scored whether it ends with `\n` or `\r\n`; one byte more
    // is too long either way.
    let limit = EVENT.len();
    let flag = limit.to_string();
    for end in ["\n", "\r\n"] {
        let input = format!("{EVENT}{end}{EVENT} {end}");
        let out = run(&["--max-line-bytes", &flag], Some(input.as_bytes()));
        out.assert_ok();
        let lines: Vec<&[u8]> = out.stdout.split(|&b| b == b'\n').collect();
        assert_eq!(lines.len(), 3, "{end:?}");
        score_record(&serde_json::from_slice(lines[0]).expect("json"));
        assert!(
            out.stderr.contains("1 scored, 1 not scored: too-long=1"),
            "{end:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn the_summary_counts_events() {
    let input = format!("{EVENT}\nnope\n");
    let out = run(&[], Some(input.as_bytes()));
    out.assert_ok();
    assert!(
        out.stderr
            .contains("2 events (1 scored, 1 not scored: not-json=1)"),
        "{}",
        out.stderr
    );
    let quiet = run(&["-q"], Some(format!("{EVENT}\n").as_bytes()));
    assert!(
        quiet.stderr.is_empty(),
        "quiet runs print nothing: {}",
        quiet.stderr
    );
}

#[test]
fn a_byte_order_mark_before_the_first_event_is_not_part_of_it() {
    // Files written on Windows begin with a UTF-8 byte-order mark; the first event is scored.
    // Two such files concatenated (`cat a.jsonl b.jsonl`) put one at the start of a line in
    // the middle of the stream: that event is scored too, and no output line carries one.
    let input = format!(
        "\u{feff}{EVENT}\r\n{}\r\n\u{feff}{}\r\n",
        EVENT.replace("DescribeInstances", "DescribeVolumes"),
        EVENT.replace("DescribeInstances", "DescribeSnapshots")
    );
    let out = run(&[], Some(input.as_bytes()));
    out.assert_ok();
    let lines: Vec<&[u8]> = out.stdout.split(|&b| b == b'\n').collect();
    assert_eq!(lines.len(), 4, "{}", String::from_utf8_lossy(&out.stdout));
    for line in &lines[..3] {
        assert!(line.starts_with(b"{"), "{}", String::from_utf8_lossy(line));
        let event: Value = serde_json::from_slice(line).expect("json");
        score_record(&event);
    }
    assert!(!out.stderr.contains("not-json"), "{}", out.stderr);
}

#[test]
fn a_lone_surrogate_in_a_field_does_not_make_the_event_unscorable() {
    // `\ud800` alone is not a character: strict JSON readers refuse the line. An attacker who
    // sets their user agent must not be able to hide the call from scoring that way.
    let evil = EVENT.replace("aws-cli/2.15.1", r"aws-cli/2.15.1 \ud800");
    let (_, note, stderr) = kept_with_annotation(&[], &evil);
    assert_eq!(
        note["observation"]["agent"], "aws-cli linux",
        "the agent's family is read past the broken character: {note}"
    );
    assert!(!stderr.contains("not-json"), "{stderr}");
}

#[test]
fn a_number_beyond_a_float_in_a_field_does_not_make_the_event_unscorable() {
    // `1e999` is well-formed JSON that strict readers refuse (out of range for a float).
    let evil = EVENT.replace(
        r#""awsRegion":"eu-west-1""#,
        r#""awsRegion":"eu-west-1","errorCode":1e999"#,
    );
    let (_, note, _) = kept_with_annotation(&["--quiet"], &evil);
    assert_eq!(note["observation"]["outcome"], "error", "{note}");
}

/// On a live stream, a first event shorter than the bytes a source is sniffed by is scored at
/// once: the sniffing stops at the end of a whole first line (it waited for 256 bytes or the
/// end of the stream).
#[test]
fn a_short_first_event_on_a_live_stream_is_scored_at_once() {
    use std::io::{BufRead as _, Write as _};
    let short = r#"{"eventName":"Short","userIdentity":{"type":"IAMUser","arn":"a"}}"#;
    assert!(short.len() < 256);
    let mut child = oddity()
        .args(["-q"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start oddity");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{short}").expect("write");
    stdin.flush().expect("flush");
    // The stream stays open; the scored line must come anyway.
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(std::time::Duration::from_secs(30));
    drop(stdin);
    let _ = child.wait();
    let line = line.expect("the first event is scored while the stream is open");
    let v: Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(v["eventName"], "Short");
    assert!(v["novelty"]["score"].is_number(), "{line}");
}
