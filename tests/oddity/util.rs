//! Helpers: run `oddity`, parse what it prints, check score records.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ is in the repository")
        .to_path_buf()
}

/// `tests/data`: the real CloudTrail captures in the repository (see its README.md).
pub fn test_data() -> PathBuf {
    root().join("tests/data")
}

pub fn example(rel: &str) -> PathBuf {
    root().join("examples").join(rel)
}

/// What one run printed.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    /// The raw output lines.
    pub fn raw_lines(&self) -> Vec<&[u8]> {
        self.stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// The output lines, each parsed as JSON.
    pub fn json(&self) -> Vec<Value> {
        self.stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_slice(l)
                    .unwrap_or_else(|e| panic!("output line {} is not JSON: {e}", i + 1))
            })
            .collect()
    }

    pub fn lines(&self) -> usize {
        self.stdout.iter().filter(|&&b| b == b'\n').count()
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Run {
        assert_eq!(
            self.code,
            Some(0),
            "oddity failed; stderr:\n{}",
            self.stderr
        );
        self
    }
}

/// A command for the built binary, with a private compile cache and quiet defaults.
pub fn oddity() -> Command {
    isolated(Command::new(env!("CARGO_BIN_EXE_oddity")))
}

/// `cmd` with the environment the tests give `oddity` (also when it runs `oddity` itself):
/// a private compile cache, no `RUST_LOG`, no other `ODDITY_` variables.
pub fn isolated(mut cmd: Command) -> Command {
    cmd.env(
        "ODDITY_CACHE_DIR",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache"),
    );
    cmd.env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("ODDITY_") && k != "ODDITY_CACHE_DIR" {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Runs `oddity` with `args`, feeding `stdin` (or nothing).
pub fn run(args: &[&str], stdin: Option<&[u8]>) -> Run {
    run_cmd(oddity().args(args), stdin)
}

pub fn run_cmd(cmd: &mut Command, stdin: Option<&[u8]>) -> Run {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start oddity");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let out = child.wait_with_output().expect("wait for oddity");
    Run {
        code: out.status.code(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The `observation` of an output line's novelty record, in the order written (the order that
/// `mostNovelComponent.index` refers to; `serde_json::Value` would sort the keys).
pub fn observation_in_order(line: &[u8], key: &str) -> Vec<(String, String)> {
    struct Ordered(Vec<(String, String)>);
    impl<'de> serde::Deserialize<'de> for Ordered {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Ordered;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("an object of strings")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut m: A,
                ) -> Result<Ordered, A::Error> {
                    let mut out = Vec::new();
                    while let Some(kv) = m.next_entry::<String, String>()? {
                        out.push(kv);
                    }
                    Ok(Ordered(out))
                }
            }
            d.deserialize_map(V)
        }
    }
    let v: Value = serde_json::from_slice(line).expect("json");
    let text = serde_json::to_string(&v[key]["observation"]).expect("json");
    // The annotation is the line's last member, so its observation is the last one.
    let raw = std::str::from_utf8(line).expect("utf-8");
    let start = raw
        .rfind("\"observation\":")
        .map(|i| i + "\"observation\":".len())
        .expect("observation");
    let mut de = serde_json::Deserializer::from_str(&raw[start..]);
    let ordered =
        <Ordered as serde::Deserialize>::deserialize(&mut de).expect("observation object");
    assert_eq!(
        ordered.0.len(),
        v[key]["observation"].as_object().map_or(0, |o| o.len()),
        "{text}"
    );
    ordered.0
}

/// Checks the explanation of an output line: `mostNovelComponent` names the component at its
/// index in the observation as written.
#[track_caller]
pub fn check_explanation(line: &[u8]) {
    let v: Value = serde_json::from_slice(line).expect("json");
    if v["novelty"]["error"].is_string() || !v["novelty"].is_object() {
        return;
    }
    let obs = observation_in_order(line, "novelty");
    let m = &v["novelty"]["mostNovelComponent"];
    let index = m["index"].as_u64().expect("index") as usize;
    let (field, value) = &obs[index];
    assert_eq!(
        m["field"],
        field.as_str(),
        "explanation names the component at its index"
    );
    assert_eq!(m["value"], value.as_str());
}

/// The score record of an output event, checked: every field present and in range.
#[track_caller]
pub fn score_record(event: &Value) -> &Value {
    let n = &event["novelty"];
    assert!(n.is_object(), "no novelty record in {event}");
    for key in ["score", "uniqueness", "probability"] {
        let v = n[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing in {n}"));
        assert!((0.0..=1.0).contains(&v), "{key} = {v} out of [0, 1] in {n}");
    }
    for key in ["infoContent", "novelty"] {
        let v = n[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing in {n}"));
        assert!(v >= 0.0 && v.is_finite(), "{key} = {v} in {n}");
    }
    assert!(
        n["sequence"].as_u64().is_some_and(|s| s >= 1),
        "sequence in {n}"
    );
    assert!(n["cold"].is_boolean());
    let obs = n["observation"].as_object().expect("observation object");
    let m = &n["mostNovelComponent"];
    let index = m["index"].as_u64().expect("index") as usize;
    assert!(
        index < obs.len(),
        "mostNovelComponent.index {index} out of the observation"
    );
    assert_eq!(
        obs.get(m["field"].as_str().expect("field")),
        Some(&m["value"]),
        "the explanation is a component"
    );
    let novelty = m["novelty"].as_f64().expect("novelty");
    assert!((0.0..=1.0).contains(&novelty));
    n
}

/// Checks that `run` printed one line per input event, each JSON, each scored or annotated with
/// why not; returns how many were scored.
#[track_caller]
pub fn check_all_scored_or_explained(run: &Run, expected_events: usize) -> usize {
    assert_eq!(
        run.lines(),
        expected_events,
        "one output line per input event; stderr:\n{}",
        run.stderr
    );
    let mut scored = 0;
    for line in run.raw_lines() {
        check_explanation(line);
    }
    for event in run.json() {
        if event["novelty"]["error"].is_string() {
            assert!(event["novelty"]["reason"].is_string());
        } else {
            score_record(&event);
            scored += 1;
        }
    }
    scored
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Makes a FIFO (named pipe) at `path`.
pub fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Sends `signal` (such as `-TERM`) to `child`.
pub fn send_signal(child: &std::process::Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill {signal}");
}
