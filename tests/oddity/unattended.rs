//! Running unattended: no HOME (as log shippers start their children), machine-readable logs.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::util::{example, run_cmd, tempdir};

/// `oddity` with an empty environment but `PATH`, as rsyslog's `omprog` starts it.
fn bare() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oddity"));
    cmd.env_clear().env("PATH", "/usr/bin:/bin");
    cmd
}

fn first_lines(n: usize) -> Vec<u8> {
    let file = std::fs::File::open(example("cloudtrail/events.jsonl.gz")).expect("example");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::MultiGzDecoder::new(file), &mut text)
        .expect("gunzip");
    text.lines()
        .take(n)
        .flat_map(|l| [l, "\n"])
        .collect::<String>()
        .into_bytes()
}

#[test]
fn without_home_the_compiled_plugin_is_cached_beside_the_state_and_said_so() {
    let dir = tempdir();
    let state = dir.path().join("m.state");
    let input = first_lines(50);
    let out = run_cmd(
        bare().args(["-v", "--state", state.to_str().expect("utf-8")]),
        Some(&input),
    );
    out.assert_ok();
    let cache = dir.path().join(".oddity-cache");
    assert!(
        out.stderr
            .contains("neither XDG_CACHE_HOME nor HOME is set")
            && out.stderr.contains(cache.to_str().expect("utf-8")),
        "{}",
        out.stderr
    );
    let cached: Vec<_> = std::fs::read_dir(&cache)
        .expect("the cache directory")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .collect();
    assert_eq!(cached.len(), 1, "the compiled plugin is cached");
    // The next start loads it: the same file, not written again.
    let before = std::fs::metadata(cached[0].path())
        .and_then(|m| m.modified())
        .expect("time");
    run_cmd(
        bare().args(["-q", "--state", state.to_str().expect("utf-8")]),
        Some(&input),
    )
    .assert_ok();
    let after = std::fs::metadata(cached[0].path())
        .and_then(|m| m.modified())
        .expect("time");
    assert_eq!(before, after);
}

#[test]
fn json_logs_are_one_object_per_line_and_stdout_holds_only_events() {
    let input = [first_lines(20), b"not json\n".to_vec()].concat();
    let mut cmd = crate::util::oddity();
    cmd.args(["-v", "--log-format", "json"]);
    let out = run_cmd(&mut cmd, Some(&input));
    out.assert_ok();
    let logs: Vec<Value> = out
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        logs.iter()
            .all(|l| l["level"].is_string() && l["message"].is_string())
    );
    let summary = logs.last().expect("a summary");
    assert_eq!(
        (summary["message"].as_str(), summary["events"].as_u64()),
        (Some("summary"), Some(21))
    );
    assert_eq!(summary["unscored"], 1);
    assert!(logs.iter().any(|l| {
        l["message"]
            .as_str()
            .is_some_and(|m| m.contains("not JSON"))
    }));
    let lines: Vec<&[u8]> = out
        .stdout
        .strip_suffix(b"\n")
        .expect("newline")
        .split(|&b| b == b'\n')
        .collect();
    assert_eq!(
        lines.len(),
        21,
        "stdout: the 20 events and the bad line, nothing else"
    );
    for line in &lines[..20] {
        let event: Value = serde_json::from_slice(line).expect("an event");
        assert!(event["novelty"]["score"].is_number());
    }
    assert_eq!(lines[20], b"not json");
}

#[test]
fn a_delivery_file_received_twice_is_learned_once() {
    let dir = tempdir();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("mkdir");
    let events = first_lines(300);
    std::fs::write(logs.join("a.jsonl"), &events).expect("write");
    // The same delivery under another name (another identity: the checkpoints do not know it).
    std::fs::write(logs.join("b.jsonl"), &events).expect("write");
    let out = run_cmd(
        crate::util::oddity().arg(logs.to_str().expect("utf-8")),
        None,
    );
    out.assert_ok();
    let got = out.json();
    assert_eq!(got.len(), 600, "one output line per input line");
    for event in &got[..300] {
        assert!(event["novelty"]["score"].is_number(), "{event}");
    }
    for event in &got[300..] {
        assert_eq!(event["novelty"]["error"], "duplicate", "{event}");
    }
    assert!(out.stderr.contains("duplicate=300"), "{}", out.stderr);
}

#[test]
fn reply_modes_answer_every_message_once_whatever_the_bad_line_policy() {
    let dir = tempdir();
    let dead = dir.path().join("bad.jsonl");
    let log = dir.path().join("oddity.log");
    let input = [first_lines(20), b"not json\n\n[1,2]\n{ }\n".to_vec()].concat();
    let out = run_cmd(
        crate::util::oddity().args([
            "--reply",
            "mmexternal",
            "--dead-letter",
            dead.to_str().expect("utf-8"),
            "--log-file",
            log.to_str().expect("utf-8"),
        ]),
        Some(&input),
    );
    out.assert_ok();
    assert!(out.stderr.is_empty(), "nothing on stderr: {}", out.stderr);
    let replies: Vec<Value> = out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("a JSON reply"))
        .collect();
    assert_eq!(replies.len(), 24, "one reply per message");
    for r in &replies[..20] {
        let event: Value = serde_json::from_str(r["msg"].as_str().expect("msg")).expect("event");
        assert!(event["novelty"]["score"].is_number());
    }
    assert_eq!(
        replies[20..23],
        [
            serde_json::json!({}),
            serde_json::json!({}),
            serde_json::json!({})
        ]
    );
    assert!(
        replies[23]["msg"]
            .as_str()
            .is_some_and(|m| m.contains("field-missing"))
    );
    let dead = std::fs::read_to_string(&dead).expect("dead letters");
    assert_eq!(
        dead.lines().count(),
        3,
        "the bad lines are dead-lettered and still answered"
    );
    let log = std::fs::read_to_string(&log).expect("the log file");
    assert!(
        log.contains("oddity: 24 events"),
        "the summary goes to the log file: {log}"
    );

    let scored = dir.path().join("scored.jsonl");
    let out = run_cmd(
        crate::util::oddity().args([
            "--reply",
            "omprog",
            "-q",
            "-o",
            scored.to_str().expect("utf-8"),
        ]),
        Some(&input),
    );
    out.assert_ok();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "OK\n".repeat(25),
        "one at start, one per message"
    );
    assert_eq!(
        std::fs::read(&scored)
            .expect("scored")
            .iter()
            .filter(|&&b| b == b'\n')
            .count(),
        24
    );
    let refused = run_cmd(
        crate::util::oddity().args(["--reply", "omprog"]),
        Some(&input),
    );
    assert_eq!(refused.code, Some(1));
    assert!(refused.stderr.contains("-o FILE"), "{}", refused.stderr);
}

/// `GET path` on `addr`: the status line and the body.
fn get(addr: &str, path: &str) -> (String, String) {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read");
    let (head, body) = text.split_once("\r\n\r\n").expect("a response");
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

#[test]
fn metrics_are_served_while_the_run_lasts() {
    // A free port on the loopback interface.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = crate::util::oddity()
        .args(["-q", "--metrics", &addr])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start oddity");
    let mut stdin = child.stdin.take().expect("stdin");
    std::io::Write::write_all(
        &mut stdin,
        &[first_lines(40), b"not json\n".to_vec()].concat(),
    )
    .expect("feed");
    std::io::Write::flush(&mut stdin).expect("flush");
    // The live stream stays open: poll until the 41 lines are counted (at most 30 s).
    let start = std::time::Instant::now();
    let body = loop {
        if let Ok(stream) = std::net::TcpStream::connect(&addr) {
            drop(stream);
            let (status, body) = get(&addr, "/metrics");
            assert!(status.contains("200"), "{status}");
            if body.contains("oddity_events_out_total 41") {
                break body;
            }
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "no metrics"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    for want in [
        "oddity_events_in_total 41",
        "oddity_events_scored_total 40",
        "oddity_events_unscored_total{kind=\"not-json\"} 1",
        "oddity_batch_seconds_count",
        "# EOF",
    ] {
        assert!(body.contains(want), "{want} in:\n{body}");
    }
    assert_eq!(
        get(&addr, "/healthz"),
        ("HTTP/1.1 200 OK".to_owned(), "ok\n".to_owned())
    );
    assert!(get(&addr, "/other").0.contains("404"));
    drop(stdin);
    let status = child.wait().expect("wait");
    assert!(status.success());
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "served only while the run lasts"
    );
}

/// An invictus delivery file (`n`th in name order), gzipped into `dir` as a syncer writes it:
/// under a temporary name, then renamed; its event ids.
fn deliver(dir: &Path, n: usize) -> Vec<String> {
    let source = crate::util::test_data().join("invictus-ir_aws_dataset/CloudTrail");
    let mut names: Vec<_> = std::fs::read_dir(&source)
        .expect("invictus")
        .map(|e| e.expect("entry").path())
        .collect();
    names.sort();
    let text = std::fs::read(&names[n]).expect("read");
    let name = names[n].file_name().expect("a name").to_string_lossy();
    let part = dir.join(format!("{name}.gz.a1B2c3D4"));
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&part).expect("create"),
        flate2::Compression::default(),
    );
    std::io::Write::write_all(&mut gz, &text).expect("gzip");
    gz.finish().expect("gzip");
    std::fs::rename(&part, dir.join(format!("{name}.gz"))).expect("rename");
    let records: Value = serde_json::from_slice(&text).expect("json");
    records["Records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["eventID"].as_str().expect("an id").to_owned())
        .collect()
}

/// `oddity --follow` with `args`, its log in `log`.
fn follow(args: &[&Path], log: &Path) -> std::process::Child {
    crate::util::oddity()
        .arg("--follow")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).expect("log"))
        .spawn()
        .expect("start oddity")
}

/// The lines of `path` once it holds `n` (at most 30 s).
fn wait_for_lines(path: &Path, n: usize) -> Vec<Value> {
    let start = std::time::Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().count() >= n {
            return text
                .lines()
                .map(|l| serde_json::from_str(l).expect("json"))
                .collect();
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "{} has {} lines, not {n}",
            path.display(),
            text.lines().count()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Stops `child` with SIGTERM; it must exit 0 within 30 s.
fn stop(mut child: std::process::Child) {
    crate::util::send_signal(&child, "-TERM");
    let start = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            panic!("oddity did not stop");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(child.wait().expect("wait").code(), Some(0));
}

fn ids(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l["eventID"].as_str().expect("an id").to_owned())
        .collect()
}

fn novelty(lines: &[Value]) -> Vec<Value> {
    lines.iter().map(|l| l["novelty"].clone()).collect()
}

#[test]
fn follow_reads_a_directory_s_delivery_files_as_they_come_each_once() {
    let dir = tempdir();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("mkdir");
    let (state, log) = (dir.path().join("m.state"), dir.path().join("oddity.log"));
    let (out, again) = (dir.path().join("out.jsonl"), dir.path().join("again.jsonl"));
    let mut first = [deliver(&logs, 0), deliver(&logs, 1)].concat();
    let oddity = follow(
        &[Path::new("--state"), &state, Path::new("-o"), &out, &logs],
        &log,
    );
    wait_for_lines(&out, first.len());
    first.extend(deliver(&logs, 4));
    let written = wait_for_lines(&out, first.len());
    stop(oddity);
    let written_then = std::fs::read_to_string(&out).expect("read").lines().count();
    assert_eq!(written_then, first.len(), "every event once");
    assert_eq!(ids(&written), first, "in name order");

    // Stopped, a file came: the next run reads it alone.
    let fourth = deliver(&logs, 8);
    let oddity = follow(
        &[Path::new("--state"), &state, Path::new("-o"), &again, &logs],
        &log,
    );
    let read = wait_for_lines(&again, fourth.len());
    stop(oddity);
    assert_eq!(ids(&read), fourth);
    let summary = std::fs::read_to_string(&log).expect("log");
    assert!(
        summary.contains(&format!("{} events skipped", first.len())),
        "{summary}"
    );

    // Nothing was learned twice: the two runs scored as one run over the four files does.
    let whole = run_cmd(crate::util::oddity().args(["-q"]).arg(&logs), None);
    whole.assert_ok();
    assert_eq!(
        novelty(&whole.json()),
        [novelty(&written), novelty(&read)].concat()
    );
}

#[test]
fn follow_takes_files_and_directories_and_never_reads_what_it_writes() {
    let dir = tempdir();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("mkdir");
    let (file, out, log) = (
        dir.path().join("app.jsonl"),
        dir.path().join("out.jsonl"),
        dir.path().join("oddity.log"),
    );
    let lines = first_lines(10);
    std::fs::write(&file, &lines).expect("write");
    let oddity = follow(&[Path::new("-o"), &out, &file, &logs], &log);
    wait_for_lines(&out, 10);
    let delivered = deliver(&logs, 2);
    let mut appended = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .expect("open");
    std::io::Write::write_all(&mut appended, &first_lines(12)[lines.len()..]).expect("append");
    let written = wait_for_lines(&out, 12 + delivered.len());
    stop(oddity);
    let written = ids(&written);
    assert!(
        delivered.iter().all(|id| written.contains(id)),
        "the directory's file"
    );
    assert_eq!(written.len(), 12 + delivered.len(), "and the file's lines");

    let inside = logs.join("scored.jsonl");
    let refused = run_cmd(
        crate::util::oddity()
            .args(["--follow", "-o"])
            .args([&inside, &logs]),
        None,
    );
    assert_eq!(refused.code, Some(1));
    assert!(
        refused.stderr.contains("in the followed directory"),
        "{}",
        refused.stderr
    );
}
