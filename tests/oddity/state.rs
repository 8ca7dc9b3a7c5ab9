//! State: snapshots restore exactly, and A then B equals A+B.

use serde_json::Value;

use crate::util::{run, tempdir, test_data};

/// The invictus events as JSON lines, in delivery order.
fn invictus_lines() -> Vec<String> {
    let dir = test_data().join("invictus-ir_aws_dataset/CloudTrail");
    let out = run(&["-q", "-k", "scratch", dir.to_str().expect("utf-8")], None);
    out.assert_ok();
    out.json()
        .into_iter()
        .map(|mut v| {
            v.as_object_mut().expect("object").remove("scratch");
            serde_json::to_string(&v).expect("json")
        })
        .collect()
}

fn novelty(run_stdout: &[u8]) -> Vec<Value> {
    run_stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice::<Value>(l).expect("json")["novelty"].clone())
        .collect()
}

#[test]
fn a_then_b_with_state_equals_a_plus_b() {
    let lines = invictus_lines();
    for split in [1, 1000, 2345] {
        let (a, b) = lines.split_at(split);
        let dir = tempdir();
        let state = dir.path().join("model.state");
        let state = state.to_str().expect("utf-8");
        let whole = run(&["-q"], Some((lines.join("\n") + "\n").as_bytes()));
        whole.assert_ok();
        let first = run(
            &["-q", "--state", state],
            Some((a.join("\n") + "\n").as_bytes()),
        );
        first.assert_ok();
        let second = run(
            &["-q", "--state", state],
            Some((b.join("\n") + "\n").as_bytes()),
        );
        second.assert_ok();
        let whole = novelty(&whole.stdout);
        let mut parts = novelty(&first.stdout);
        parts.extend(novelty(&second.stdout));
        assert_eq!(whole.len(), parts.len());
        for (i, (w, p)) in whole.iter().zip(&parts).enumerate() {
            assert_eq!(w, p, "split at {split}: event {} differs", i + 1);
        }
    }
}

#[test]
fn periodic_saves_do_not_change_scores_and_sequence_continues() {
    let lines = invictus_lines();
    let dir = tempdir();
    let state = dir.path().join("s");
    let state = state.to_str().expect("utf-8");
    let input = lines[..500].join("\n") + "\n";
    let plain = run(&["-q"], Some(input.as_bytes()));
    let saving = run(
        &[
            "-q",
            "--state",
            state,
            "--save-every-events",
            "7",
            "--batch-size",
            "5",
        ],
        Some(input.as_bytes()),
    );
    saving.assert_ok();
    assert_eq!(novelty(&plain.stdout), novelty(&saving.stdout));
    // Same principal again after a restart: its sequence goes on.
    let last = novelty(&saving.stdout).last().cloned().expect("events");
    let again = run(
        &["-q", "--state", state],
        // Event 499 again under a new id (the same id would be a duplicate, not learned).
        Some((lines[499].replacen("\"eventID\":\"", "\"eventID\":\"again-", 1) + "\n").as_bytes()),
    );
    let n = novelty(&again.stdout);
    assert_eq!(n[0]["principal"], last["principal"]);
    assert_eq!(
        n[0]["sequence"].as_u64(),
        last["sequence"].as_u64().map(|s| s + 1)
    );
}

#[test]
fn an_unreadable_state_file_is_refused_and_kept() {
    let dir = tempdir();
    let state = dir.path().join("s");
    std::fs::write(&state, b"not a snapshot at all").expect("write");
    let out = run(&["--state", state.to_str().expect("utf-8")], Some(b"{}\n"));
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("not a snapshot")
            && out.stderr.contains(state.to_str().expect("utf-8")),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read(&state).expect("read"),
        b"not a snapshot at all",
        "the file is left as it was"
    );
}

#[test]
fn a_damaged_or_foreign_snapshot_is_refused_by_name_and_kept() {
    let dir = tempdir();
    let state = dir.path().join("model.snap");
    let s = state.to_str().expect("utf-8");
    let lines = invictus_lines();
    run(
        &["-q", "--state", s],
        Some((lines[..300].join("\n") + "\n").as_bytes()),
    )
    .assert_ok();
    let good = std::fs::read(&state).expect("state");
    let config = dir.path().join("week.toml");
    std::fs::write(&config, "[engine]\nhalf-life = \"7d\"\n").expect("write");
    // The state file: `ODDITYST`, a version byte, the checkpoints' length and checksum and
    // JSON, then the engine's snapshot (docs/operations.md).
    assert!(good.starts_with(b"ODDITYST"));
    let json = u32::from_le_bytes(good[9..13].try_into().expect("length")) as usize;
    let snap = 21 + json;
    let version = u32::from_le_bytes(good[snap + 8..snap + 12].try_into().expect("version"));
    let mut checkpoints = good.clone();
    checkpoints[21] ^= 0x20;
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x01;
    let mut future = good.clone();
    future[snap + 8..snap + 12].copy_from_slice(&(version + 1).to_le_bytes());
    let mut appended = good.clone();
    appended.extend_from_slice(b"{\"eventName\":\"oops\"}\n");
    // What was done to the file, its bytes, extra flags, and what the message must name.
    type Case<'a> = (&'a str, Vec<u8>, &'a [&'a str], &'a [&'a str]);
    let cases: [Case; 7] = [
        (
            "damaged checkpoints",
            checkpoints,
            &[],
            &["checkpoints do not match their checksum"],
        ),
        (
            "bytes appended",
            appended,
            &[],
            &["not a snapshot", "bytes after its end"],
        ),
        (
            "truncated",
            good[..good.len() / 2].to_vec(),
            &[],
            &["not a snapshot", "truncated"],
        ),
        ("one flipped byte", flipped, &[], &["checksum"]),
        (
            "another format version",
            future,
            &[],
            &["format version", &format!("format {}", version + 1)],
        ),
        (
            "other settings",
            good.clone(),
            &["-c", config.to_str().expect("utf-8")],
            &["settings mismatch", "fingerprint", "move the file away"],
        ),
        (
            "not a snapshot",
            b"{\"some\":\"json\"}".to_vec(),
            &[],
            &["not a snapshot"],
        ),
    ];
    for (what, bytes, args, want) in cases {
        std::fs::write(&state, &bytes).expect("write");
        let mut all = vec!["--state", s];
        all.extend_from_slice(args);
        let out = run(&all, Some((lines[300].clone() + "\n").as_bytes()));
        assert_eq!(out.code, Some(1), "{what}: {}", out.stderr);
        for w in want {
            assert!(out.stderr.contains(w), "{what}: {w:?} in {}", out.stderr);
        }
        assert!(
            out.stderr.contains(s) && out.stderr.contains("left as it is"),
            "{what}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "{what}: nothing scored");
        assert_eq!(
            std::fs::read(&state).expect("read"),
            bytes,
            "{what}: the file is untouched"
        );
    }
}

/// Lines of the invictus capture written as two files in a directory.
fn two_files(dir: &std::path::Path, lines: &[String], split: usize) -> std::path::PathBuf {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).expect("mkdir");
    std::fs::write(logs.join("a.jsonl"), lines[..split].join("\n") + "\n").expect("write");
    std::fs::write(logs.join("b.jsonl"), lines[split..].join("\n") + "\n").expect("write");
    logs
}

#[test]
fn a_rerun_over_the_same_files_learns_nothing_twice() {
    let lines = invictus_lines();
    let (first, grown) = (1200, 2000);
    let dir = tempdir();
    let logs = two_files(dir.path(), &lines[..grown], first);
    let logs_s = logs.to_str().expect("utf-8");
    let state = dir.path().join("m.state");
    let s = state.to_str().expect("utf-8");
    let whole = run(&["-q"], Some((lines.join("\n") + "\n").as_bytes()));
    whole.assert_ok();
    let whole = novelty(&whole.stdout);

    let once = run(&["-q", "--state", s, logs_s], None);
    once.assert_ok();
    assert_eq!(novelty(&once.stdout), whole[..grown]);

    // The same files again: nothing read, nothing learned, and the summary says so.
    let again = run(&["--state", s, logs_s], None);
    again.assert_ok();
    assert!(again.stdout.is_empty(), "nothing new to score");
    assert!(
        again.stderr.contains(&format!("{grown} events skipped")),
        "{}",
        again.stderr
    );

    // One file grew (appended, then renamed as logrotate does): only its new events are read,
    // scored as one run over everything scores them.
    let b = logs.join("b.jsonl");
    let mut text = std::fs::read(&b).expect("read");
    text.extend_from_slice((lines[grown..].join("\n") + "\n").as_bytes());
    std::fs::write(&b, text).expect("write");
    std::fs::rename(&b, logs.join("b-rotated.jsonl")).expect("rename");
    let grew = run(&["-q", "--state", s, logs_s], None);
    grew.assert_ok();
    assert_eq!(novelty(&grew.stdout), whole[grown..]);

    // Forced: everything again.
    let forced = run(&["-q", "--reread", "--state", s, logs_s], None);
    forced.assert_ok();
    assert_eq!(novelty(&forced.stdout).len(), lines.len());
}

#[test]
fn a_file_replaced_in_place_is_read_from_its_start_with_a_warning() {
    let lines = invictus_lines();
    let dir = tempdir();
    let logs = two_files(dir.path(), &lines[..600], 300);
    let state = dir.path().join("m.state");
    let (s, logs_s) = (
        state.to_str().expect("utf-8"),
        logs.to_str().expect("utf-8"),
    );
    run(&["-q", "--state", s, logs_s], None).assert_ok();
    // a.jsonl rewritten with other events (its inode kept), b.jsonl cut short.
    let a = logs.join("a.jsonl");
    std::fs::write(&a, lines[600..1200].join("\n") + "\n").expect("write");
    let b = logs.join("b.jsonl");
    std::fs::write(&b, lines[300..310].join("\n") + "\n").expect("write");
    let out = run(&["--state", s, logs_s], None);
    out.assert_ok();
    assert_eq!(
        novelty(&out.stdout).len(),
        610,
        "both read from their start"
    );
    assert!(
        out.stderr.contains("a.jsonl") && out.stderr.contains("no longer starts as"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("b.jsonl") && out.stderr.contains("shorter than when it was read"),
        "{}",
        out.stderr
    );
}
