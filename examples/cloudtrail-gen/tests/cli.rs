//! The `cloudtrail-gen` binary: JSON lines out, labels CSV beside them, stdout mode.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cloudtrail-gen"))
}

#[test]
fn writes_events_and_labels() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("g.jsonl");
    let labels = dir.path().join("g.csv");
    let status = bin()
        .args([
            "--seed", "3", "--events", "4000", "--humans", "6", "--roles", "4", "--out",
        ])
        .arg(&out)
        .arg("--labels")
        .arg(&labels)
        .status()
        .expect("run cloudtrail-gen");
    assert!(status.success());
    let events = std::fs::read_to_string(&out).expect("events file");
    let lines: Vec<&str> = events.lines().collect();
    assert_eq!(lines.len(), 4000);
    assert!(events.ends_with('\n'));
    let csv = std::fs::read_to_string(&labels).expect("labels file");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows[0],
        "line,eventID,eventTime,principal,scenario,step,benign_novelty"
    );
    assert_eq!(rows.len(), 4001);
    for (i, row) in rows[1..].iter().enumerate() {
        let cols: Vec<&str> = row.split(',').collect();
        assert_eq!(cols.len(), 7, "{row}");
        assert_eq!(cols[0], (i + 1).to_string());
        let v: serde_json::Value = serde_json::from_str(lines[i]).expect("JSON line");
        assert_eq!(v["eventID"], cols[1]);
        assert_eq!(v["eventTime"], cols[2]);
        assert!(!lines[i].contains("benign_novelty"));
    }
}

#[test]
fn stdout_is_the_default_and_reproducible() {
    let run = || {
        bin()
            .args([
                "--events",
                "500",
                "--humans",
                "4",
                "--roles",
                "3",
                "--no-attacks",
            ])
            .output()
            .expect("run")
    };
    let a = run();
    let b = run();
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    assert_eq!(a.stdout.iter().filter(|&&c| c == b'\n').count(), 500);
}
