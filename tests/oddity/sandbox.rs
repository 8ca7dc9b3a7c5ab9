//! The sandbox: an untrusted plugin (`--plugin`) gets no files, environment, clock, randomness
//! or network, and a plugin that traps, spins, exhausts its memory, sleeps or breaks the
//! contract costs its batch's scores, never the lines or the run. The hostile plugin is
//! `tests/plugins/hostile/` (built by `host/build.rs`).

use std::io::Write as _;

use serde_json::Value;

use crate::util::{oddity, run_cmd, tempdir};

const HOSTILE: &str = env!("HOSTILE_PLUGIN_WASM");

/// Limits small enough that the misbehaving lines fail fast.
const LIMITS: [&str; 4] = ["--fuel", "50000000", "--memory-mib", "32"];

#[test]
fn an_untrusted_plugin_sees_no_file_environment_clock_randomness_or_network() {
    let dir = tempdir();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "the-secret-file-content").expect("write");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let probe = format!(
        "{{\"cmd\":\"probe\",\"file\":\"{}\",\"port\":{port}}}\n",
        secret.display()
    );
    let out = run_cmd(
        oddity()
            .args(["--plugin", HOSTILE])
            .env("HOSTILE_SECRET", "the-secret-env-value"),
        Some(probe.as_bytes()),
    );
    out.assert_ok();
    let lines = out.json();
    assert_eq!(lines.len(), 1);
    let reason = lines[0]["novelty"]["reason"]
        .as_str()
        .unwrap_or_else(|| panic!("a probe report: {}", lines[0]));
    for denied in [
        // Files: nothing is preopened, so no path resolves.
        "preopens=0",
        "file[/etc/hostname]=err:",
        "file[/]=err:",
        "file=err:",
        // Environment, arguments, working directory.
        "env=0 std-env=0 args=0 cwd=None",
        // Both clocks stopped at the epoch, also through std.
        "wall=0.000000000 mono=0 std-time=Ok(0ns)",
        // Randomness: a constant stream.
        "random=00000000000000000000000000000000",
        "insecure=00000000000000000000000000000000 seed=00",
        // Network: no TCP, UDP or name lookup.
        "tcp=err:access-denied",
        "udp=err:access-denied",
        "dns=err:",
        // Its stdio goes nowhere.
        "stdout=true stderr=true",
    ] {
        assert!(
            reason.contains(denied),
            "{denied:?} in the report:\n{reason}"
        );
    }
    for leak in [
        "the-secret-file-content",
        "the-secret-env-value",
        "HOSTILE-STDOUT",
        "HOSTILE-STDERR",
    ] {
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains(leak) && !out.stderr.contains(leak),
            "{leak} leaked"
        );
    }
    assert_eq!(
        listener.accept().map(|_| ()).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::WouldBlock),
        "nobody connected to the test's listener"
    );
}

fn sequence(line: &Value) -> Option<u64> {
    line["novelty"]["sequence"].as_u64()
}

#[test]
fn every_misbehaviour_costs_only_its_batch() {
    let dir = tempdir();
    for (cmd, why) in [
        ("panic", "unreachable"),
        ("spin", "fuel"),
        ("oom", "unreachable"),
        ("sleep", "waiting is not allowed"),
        ("exit", "Exited"),
        ("short", "broke the contract"),
    ] {
        // A file, so that the batches are exactly two lines: [ok ok] [cmd ok] [ok].
        let input = dir.path().join(format!("{cmd}.jsonl"));
        let lines = [
            r#"{"cmd":"ok","n":1}"#.to_owned(),
            r#"{"cmd":"ok","n":2}"#.to_owned(),
            format!(r#"{{"cmd":"{cmd}","n":3}}"#),
            r#"{"cmd":"ok","n":4}"#.to_owned(),
            r#"{"cmd":"ok","n":5}"#.to_owned(),
        ];
        std::fs::write(&input, lines.join("\n") + "\n").expect("write");
        let started = std::time::Instant::now();
        let out = run_cmd(
            oddity()
                .args(["--plugin", HOSTILE, "--batch-size", "2"])
                .args(LIMITS)
                .arg(&input),
            None,
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{cmd}: the run took {:?}",
            started.elapsed()
        );
        assert_eq!(
            out.code,
            Some(2),
            "{cmd}: exit code; stderr:\n{}",
            out.stderr
        );
        let got = out.json();
        assert_eq!(got.len(), 5, "{cmd}: one line out per line in");
        for (i, line) in got.iter().enumerate() {
            assert_eq!(line["n"], i + 1, "{cmd}: in order");
        }
        assert_eq!(sequence(&got[0]), Some(1), "{cmd}");
        assert_eq!(sequence(&got[1]), Some(2), "{cmd}");
        for failed in &got[2..4] {
            assert_eq!(
                failed["novelty"]["error"], "plugin-failed",
                "{cmd}: {failed}"
            );
            let reason = failed["novelty"]["reason"].as_str().expect("reason");
            assert!(reason.contains(why), "{cmd}: {why:?} in {reason:?}");
        }
        assert!(
            sequence(&got[4]).is_some(),
            "{cmd}: the recovered plugin scores the next batch: {}",
            got[4]
        );
        assert!(
            out.stderr.contains("the plugin failed on 1 batches") && out.stderr.contains(why),
            "{cmd}: stderr reports it:\n{}",
            out.stderr
        );
    }
}

#[test]
fn a_failing_reader_instance_costs_nothing() {
    // Staged: a second instance reads the observations. When it traps, or the scorer's
    // instance refuses what it read, the scorer reads the batch itself: every line is scored
    // once, in order, and nothing is lost.
    let input = [
        "ok",
        "ok",
        "extract-panic",
        "ok",
        "refuse-staged",
        "ok",
        "ok",
    ]
    .iter()
    .enumerate()
    .map(|(i, cmd)| format!(r#"{{"cmd":"{cmd}","n":{}}}"#, i + 1) + "\n")
    .collect::<String>();
    let out = run_cmd(
        oddity()
            .env("ODDITY_STAGED", "true")
            .args(["--plugin", HOSTILE, "--batch-size", "2"])
            .args(LIMITS),
        Some(input.as_bytes()),
    );
    assert_eq!(out.code, Some(0), "stderr:\n{}", out.stderr);
    let got = out.json();
    assert_eq!(got.len(), 7);
    for (i, line) in got.iter().enumerate() {
        assert_eq!(line["n"], i + 1);
        assert_eq!(sequence(line), Some(i as u64 + 1), "{line}");
    }
    assert!(
        out.stderr.contains("reading a batch's observations failed")
            && out.stderr.contains("refused the batch's observations"),
        "stderr:\n{}",
        out.stderr
    );
}

#[test]
fn recovery_restores_the_last_good_state() {
    let dir = tempdir();
    let state = dir.path().join("hostile.state");
    let mut lines: Vec<String> = (1..=5)
        .map(|n| format!(r#"{{"cmd":"ok","n":{n}}}"#))
        .collect();
    lines.push(r#"{"cmd":"panic","n":6}"#.to_owned());
    lines.push(r#"{"cmd":"ok","n":7}"#.to_owned());
    let out = run_cmd(
        oddity()
            .args([
                "--plugin",
                HOSTILE,
                "--batch-size",
                "1",
                "--save-every-events",
                "3",
            ])
            .args(["--state", state.to_str().expect("utf-8")])
            .args(LIMITS),
        Some((lines.join("\n") + "\n").as_bytes()),
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    let got = out.json();
    let seqs: Vec<Option<u64>> = got.iter().map(sequence).collect();
    // Saved after the third line; the panic rolls the plugin back to that state, so the line
    // after it is the fourth the model has learned, not the seventh or the first.
    assert_eq!(
        seqs,
        [Some(1), Some(2), Some(3), Some(4), Some(5), None, Some(4)]
    );
    // The state saved at the end is the recovered model's.
    let again = run_cmd(
        oddity()
            .args(["--plugin", HOSTILE])
            .args(["--state", state.to_str().expect("utf-8")]),
        Some(b"{\"cmd\":\"ok\"}\n"),
    );
    again.assert_ok();
    assert_eq!(sequence(&again.json()[0]), Some(5));
}

#[test]
fn a_plugin_that_fails_on_every_batch_never_stops_the_stream() {
    let mut input = Vec::new();
    for n in 0..50 {
        let cmd = ["panic", "ok", "short", "ok", "spin"][n % 5];
        writeln!(input, r#"{{"cmd":"{cmd}","n":{n}}}"#).expect("write");
    }
    let out = run_cmd(
        oddity()
            .args(["--plugin", HOSTILE, "--batch-size", "1", "-q"])
            .args(LIMITS),
        Some(&input),
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    let got = out.json();
    assert_eq!(got.len(), 50);
    for (n, line) in got.iter().enumerate() {
        assert_eq!(line["n"], n);
        let failed = line["novelty"]["error"] == "plugin-failed";
        assert_eq!(failed, n % 5 != 1 && n % 5 != 3, "{line}");
    }
    assert!(
        out.stderr.contains("the plugin failed on 30 batches"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_untrusted_plugins_notes_cannot_rewrite_or_break_an_event() {
    // The plugin only gives a note per line, which the host adds. `forge` gives a note that
    // tries to add members to the event (`{"score":1},"forged":true,...`), `bad-note` one that
    // is not JSON: neither is one JSON value, so those lines are written as they came, with a
    // note that the plugin failed on them; the lines around them are scored. Staged or not.
    let input = concat!(
        "{\"cmd\":\"ok\",\"n\":1}\n{\"cmd\":\"forge\",\"n\":2}\n",
        "{\"cmd\":\"bad-note\",\"n\":3}\n{\"cmd\":\"ok\",\"n\":4}\n"
    );
    for staged in ["true", "false"] {
        let out = run_cmd(
            oddity()
                .env("ODDITY_STAGED", staged)
                .args(["--plugin", HOSTILE])
                .args(LIMITS),
            Some(input.as_bytes()),
        );
        assert_eq!(out.code, Some(2), "{}", out.stderr);
        let got = out.json();
        assert_eq!(got.len(), 4);
        assert!(got[1].get("forged").is_none(), "{}", got[1]);
        for (i, line) in got.iter().enumerate() {
            assert_eq!(line["n"], i + 1, "{line}");
        }
        for bad in &got[1..3] {
            assert_eq!(bad["novelty"]["error"], "plugin-failed", "{bad}");
        }
        assert_eq!(sequence(&got[3]), Some(4), "{}", got[3]);
        assert!(
            out.stderr
                .contains("gave 2 notes that are not one JSON value"),
            "{}",
            out.stderr
        );
    }
}
