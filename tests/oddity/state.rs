//! State: snapshots restore exactly, and A then B equals A+B.

use serde_json::Value;

use crate::util::{run, shared_data, tempdir};

/// The invictus events as JSON lines, in delivery order.
fn invictus_lines() -> Vec<String> {
    let dir = shared_data().join("invictus-ir_aws_dataset/CloudTrail");
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
        Some((lines[499].clone() + "\n").as_bytes()),
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
