//! oddity on NATS JetStream, for real: `examples/scale-out/run.py` starts Debian's nats-server
//! on 127.0.0.1, runs the route stage and two workers over four partitions on the bundled
//! example, kills a worker with SIGKILL midway and starts it again, and compares every scored
//! line with an uninterrupted run; the partitions share population knowledge every 1,000 raw
//! messages (the default), so the comparison covers replaying shares and merges too. `.ci/run`
//! installs nats-server.

use std::process::Command;

use crate::util::{example, root};

#[test]
fn a_worker_killed_midway_loses_nothing_and_doubles_nothing() {
    assert!(
        std::path::Path::new("/usr/sbin/nats-server").is_file(),
        "/usr/sbin/nats-server is missing: install Debian's nats-server (apt-get install nats-server; .ci/run does)"
    );
    let events = example("cloudtrail/events.jsonl.gz");
    let out = crate::util::isolated(Command::new("python3"))
        .arg(root().join("examples/scale-out/run.py"))
        .arg(&events)
        .args(["--workers", "2", "--partitions", "4", "--kill"])
        .env("ODDITY", env!("CARGO_BIN_EXE_oddity"))
        .output()
        .expect("run examples/scale-out/run.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "run.py failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(summary["in"], 30_709, "{summary}");
    assert_eq!(summary["out"], 30_709, "{summary}");
    assert_eq!(summary["lost"], 0, "{summary}");
    assert_eq!(summary["duplicates"], 0, "{summary}");
    assert_eq!(summary["score_mismatches"], 0, "{summary}");
    assert_eq!(summary["killed"], true, "{summary}");
    assert_eq!(
        summary["shares"],
        4 * (30_709 / 1000),
        "a share per partition at each marker: {summary}"
    );
}
