//! Crashes and stops: `kill -9` at any moment leaves a snapshot that loads, a save that fails
//! keeps the previous snapshot, SIGTERM and SIGINT finish the batch in flight and save, and a
//! closed downstream pipe saves and ends quietly.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{example, mkfifo, oddity, run, send_signal, tempdir};

fn event(n: usize) -> String {
    format!(
        r#"{{"eventVersion":"1.08","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/raul"}},"eventTime":"2024-03-04T09:{:02}:{:02}Z","eventSource":"ec2.amazonaws.com","eventName":"Describe{}","sourceIPAddress":"198.51.100.7","userAgent":"aws-cli/2.15.1","eventID":"e{n}"}}"#,
        n / 60 % 60,
        n % 60,
        n % 5
    )
}

/// The sequence the saved state gives raul's next event (`None`: the state did not load).
fn next_sequence(state: &Path) -> Option<u64> {
    // A new event each time: a replay (of event 0, or of an earlier probe the state learned)
    // would be a duplicate, not learned.
    static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let probe = event(0).replace("\"eventID\":\"e0\"", &format!("\"eventID\":\"probe-{n}\""));
    let out = run(
        &["-q", "--state", state.to_str().expect("utf-8")],
        Some((probe + "\n").as_bytes()),
    );
    if out.code != Some(0) {
        eprintln!("the state did not load: {}", out.stderr);
        return None;
    }
    out.json()[0]["novelty"]["sequence"].as_u64()
}

/// Waits for `child` at most `limit`; kills it and fails when it takes longer.
fn wait(child: &mut Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("oddity did not stop within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn kill_9_at_any_moment_leaves_a_snapshot_that_loads() {
    let dir = tempdir();
    let state = dir.path().join("model.snap");
    let input = example("cloudtrail/events.jsonl.gz");
    let mut loaded = 0;
    // Saving after every batch of 64 events, the run takes seconds; the kills land before the
    // first save, between saves and in the middle of them.
    for delay in [30, 150, 280, 400, 530, 660, 800, 950, 1100, 1300] {
        let mut child = oddity()
            .args(["-q", "--batch-size", "64", "--save-every-events", "50"])
            .args(["--state", state.to_str().expect("utf-8")])
            .arg("-o")
            .arg(dir.path().join("out.jsonl"))
            .arg(&input)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start oddity");
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().expect("kill -9");
        child.wait().expect("wait");
        if state.exists() {
            assert!(
                next_sequence(&state).is_some(),
                "killed after {delay} ms: the snapshot loads"
            );
            loaded += 1;
        }
    }
    assert!(loaded >= 8, "only {loaded} rounds had saved a snapshot");
}

#[test]
fn a_save_that_fails_keeps_the_previous_snapshot_and_the_run_goes_on() {
    let dir = tempdir();
    let state = dir.path().join("model.snap");
    let s = state.to_str().expect("utf-8");
    let input: String = (0..100).map(|n| event(n) + "\n").collect();
    run(&["-q", "--state", s], Some(input.as_bytes())).assert_ok();
    let before = std::fs::read(&state).expect("state");
    // The save's temporary file cannot be written, as on a full disk.
    std::fs::create_dir(dir.path().join(".model.snap.tmp")).expect("mkdir");
    let out = run(
        &[
            "--state",
            s,
            "--save-every-events",
            "10",
            "--batch-size",
            "10",
        ],
        Some(input.as_bytes()),
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert_eq!(out.json().len(), 100, "every event is written");
    assert!(
        out.stderr.contains("saving the state failed")
            && out
                .stderr
                .contains("state saves failed (the previous state file is intact)"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read(&state).expect("state"),
        before,
        "the previous snapshot is intact"
    );
    std::fs::remove_dir(dir.path().join(".model.snap.tmp")).expect("rmdir");
    assert_eq!(next_sequence(&state), Some(101));
}

#[test]
fn a_second_run_on_the_same_state_refuses_to_start() {
    let dir = tempdir();
    let state = dir.path().join("model.snap");
    let s = state.to_str().expect("utf-8");
    let mut first = oddity()
        .args(["-q", "--state", s])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start oddity");
    // Wait until the first has taken the lock.
    let lock = dir.path().join(".model.snap.lock");
    let start = Instant::now();
    while !lock.exists() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = run(&["-q", "--state", s], Some(b"{}\n"));
    assert_eq!(second.code, Some(1), "{}", second.stderr);
    assert!(
        second.stderr.contains("in use by another oddity process"),
        "{}",
        second.stderr
    );
    drop(first.stdin.take());
    assert_eq!(wait(&mut first, Duration::from_secs(30)), Some(0));
}

/// Starts `cmd` with its standard input and output piped: the child, its input, its output.
fn live(
    cmd: &mut std::process::Command,
) -> (
    Child,
    std::process::ChildStdin,
    BufReader<std::process::ChildStdout>,
) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start oddity");
    let stdin = child.stdin.take().expect("stdin");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    (child, stdin, stdout)
}

/// Feeds `n` events on a live stdin, waits for their output, sends `signal`.
fn stop_with(signal: &str) {
    let dir = tempdir();
    let state = dir.path().join("model.snap");
    let (mut child, mut stdin, mut stdout) =
        live(oddity().args(["-q", "--state", state.to_str().expect("utf-8")]));
    const N: usize = 30;
    let mut seen = Vec::new();
    for round in 0..3 {
        for n in 0..N / 3 {
            writeln!(stdin, "{}", event(round * 10 + n)).expect("feed");
        }
        stdin.flush().expect("flush");
        // Their lines arrive while the input stays open.
        for _ in 0..N / 3 {
            let mut line = String::new();
            stdout.read_line(&mut line).expect("read");
            seen.push(serde_json::from_str::<Value>(&line).expect("json"));
        }
    }
    send_signal(&child, signal);
    assert_eq!(
        wait(&mut child, Duration::from_secs(30)),
        Some(0),
        "{signal}: exit 0"
    );
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("read");
    assert!(rest.is_empty(), "{signal}: nothing more: {rest}");
    let seqs: Vec<u64> = seen
        .iter()
        .map(|e| e["novelty"]["sequence"].as_u64().expect("scored"))
        .collect();
    assert_eq!(seqs, (1..=N as u64).collect::<Vec<_>>());
    drop(stdin);
    assert_eq!(
        next_sequence(&state),
        Some(N as u64 + 1),
        "{signal}: the state holds every event"
    );
}

#[test]
fn sigterm_finishes_saves_and_exits_0() {
    stop_with("-TERM");
}

#[test]
fn sigint_finishes_saves_and_exits_0() {
    stop_with("-INT");
}

#[test]
fn a_closed_downstream_pipe_saves_the_state_and_ends_quietly() {
    let dir = tempdir();
    let state = dir.path().join("model.snap");
    let mut child = oddity()
        .args(["-q", "--state", state.to_str().expect("utf-8")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start oddity");
    let mut stdin = child.stdin.take().expect("stdin");
    let feeder = std::thread::spawn(move || {
        // Until oddity goes away (a broken pipe here too), at most 200,000 events.
        for n in 0..200_000 {
            if writeln!(stdin, "{}", event(n)).is_err() {
                return n;
            }
        }
        200_000
    });
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("read");
    assert!(first.contains("\"novelty\""));
    drop(stdout);
    assert_eq!(wait(&mut child, Duration::from_secs(60)), Some(0));
    let fed = feeder.join().expect("feeder");
    assert!(fed < 200_000, "oddity stopped reading");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert!(stderr.is_empty(), "quiet: {stderr}");
    assert!(
        next_sequence(&state).is_some_and(|s| s > 1),
        "the state was saved"
    );
}

/// A stop request ends a wait for an input that never comes: here a FIFO no one opens for
/// writing, after an input that was read.
#[test]
fn sigterm_ends_a_wait_on_an_input_that_never_opens() {
    let dir = tempdir();
    let fifo = dir.path().join("nobody-writes.jsonl");
    mkfifo(&fifo);
    let (mut child, mut stdin, mut stdout) = live(oddity().args(["-q", "-"]).arg(&fifo));
    writeln!(stdin, "{}", event(0)).expect("feed");
    stdin.flush().expect("flush");
    // Its line proves the run is under way (and the signal handler in place).
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read");
    assert!(line.contains("novelty"), "{line}");
    // The end of the first input: oddity opens the FIFO and waits there.
    drop(stdin);
    std::thread::sleep(Duration::from_millis(300));
    send_signal(&child, "-TERM");
    assert_eq!(wait(&mut child, Duration::from_secs(20)), Some(0));
}

/// Waits until `path` holds `lines` lines (at most 30 s).
fn wait_for_lines(path: &Path, lines: usize) {
    let start = Instant::now();
    loop {
        let n = std::fs::read(path).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count());
        if n >= lines {
            assert_eq!(n, lines, "{}", path.display());
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} has {n} lines",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until `path` exists (at most 30 s).
fn wait_for_file(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sighup_saves_the_state_and_reopens_the_files_after_a_rotation() {
    let dir = tempdir();
    let state = dir.path().join("model.snap");
    let out = dir.path().join("scored.jsonl");
    let bad = dir.path().join("bad.jsonl");
    let (mut child, mut stdin, _stdout) = live(oddity().args([
        "-q",
        "--state",
        state.to_str().expect("utf-8"),
        "--save-every",
        "off",
        "--save-every-events",
        "0",
        "-o",
        out.to_str().expect("utf-8"),
        "--dead-letter",
        bad.to_str().expect("utf-8"),
    ]));
    for n in 0..20 {
        writeln!(stdin, "{}", event(n)).expect("feed");
    }
    writeln!(stdin, "not json").expect("feed");
    stdin.flush().expect("flush");
    wait_for_lines(&out, 20);
    wait_for_lines(&bad, 1);
    assert!(!state.exists(), "no save yet");

    // logrotate's `create`: the files are renamed, then oddity is told.
    let (out_1, bad_1) = (
        dir.path().join("scored.jsonl.1"),
        dir.path().join("bad.jsonl.1"),
    );
    std::fs::rename(&out, &out_1).expect("rename");
    std::fs::rename(&bad, &bad_1).expect("rename");
    send_signal(&child, "-HUP");
    wait_for_file(&state);
    assert_eq!(next_sequence_after(&state), Some(21), "saved on SIGHUP");
    for n in 20..30 {
        writeln!(stdin, "{}", event(n)).expect("feed");
    }
    writeln!(stdin, "still not json").expect("feed");
    stdin.flush().expect("flush");
    wait_for_lines(&out, 10);
    wait_for_lines(&bad, 1);
    wait_for_lines(&out_1, 20);
    wait_for_lines(&bad_1, 1);

    // `copytruncate`: copied, then cut to nothing in place; written on from its start, with no
    // hole before the new lines.
    std::fs::copy(&out, dir.path().join("scored.jsonl.2")).expect("copy");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&out)
        .and_then(|f| f.set_len(0))
        .expect("truncate");
    for n in 30..35 {
        writeln!(stdin, "{}", event(n)).expect("feed");
    }
    drop(stdin);
    assert_eq!(wait(&mut child, Duration::from_secs(30)), Some(0));
    let text = std::fs::read(&out).expect("read");
    assert!(!text.contains(&0), "no hole of zero bytes");
    assert_eq!(text.iter().filter(|&&b| b == b'\n').count(), 5);
    assert_eq!(next_sequence_after(&state), Some(36), "saved at the end");
}

/// The sequence the saved state gives raul's next event, checked on a copy (the state file is
/// locked while its run goes on).
fn next_sequence_after(state: &Path) -> Option<u64> {
    let copy = state.with_extension("copy");
    std::fs::copy(state, &copy).expect("copy the state");
    next_sequence(&copy)
}

/// Appends events `from..to` to `path`.
fn append_events(path: &Path, from: usize, to: usize) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open");
    for n in from..to {
        writeln!(f, "{}", event(n)).expect("append");
    }
}

#[test]
fn follow_reads_a_growing_file_across_rotation_until_stopped() {
    let dir = tempdir();
    let log = dir.path().join("events.jsonl");
    let out = dir.path().join("scored.jsonl");
    let state = dir.path().join("model.snap");
    append_events(&log, 0, 5);
    let mut child = oddity()
        .args(["-q", "--follow", "-o", out.to_str().expect("utf-8")])
        .args(["--state", state.to_str().expect("utf-8")])
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start oddity");
    wait_for_lines(&out, 5);
    append_events(&log, 5, 10);
    wait_for_lines(&out, 10);
    // Rotated: renamed, and a new file under the name.
    std::fs::rename(&log, dir.path().join("events.jsonl.1")).expect("rename");
    append_events(&log, 10, 13);
    wait_for_lines(&out, 13);
    send_signal(&child, "-TERM");
    assert_eq!(wait(&mut child, Duration::from_secs(30)), Some(0));
    let text = std::fs::read_to_string(&out).expect("read");
    let seqs: Vec<u64> = text
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("json");
            v["novelty"]["sequence"].as_u64().expect("scored")
        })
        .collect();
    assert_eq!(
        seqs,
        (1..=13).collect::<Vec<_>>(),
        "every event once, in order"
    );
    assert_eq!(next_sequence(&state), Some(14), "the state holds them all");
}
