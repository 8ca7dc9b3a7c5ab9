//! The component outside oddity: `oddity plugin export`, and the Node (jco) and Python
//! (wasmtime-py) examples, whose output must be byte for byte what the native filter writes.
//!
//! The examples' dependencies are installed when missing: `npm ci` in `examples/node`, and a
//! virtual environment under the cargo target's tmp directory with
//! `examples/python/requirements.txt`. A missing `node`, `npm` or `python3` fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{example, root, run, run_cmd, tempdir, test_data};

/// The wasm magic and the component layer's version and layer bytes.
const COMPONENT_HEADER: &[u8; 8] = b"\0asm\x0d\x00\x01\x00";

/// Exports the component to `dir/oddity.wasm`; returns its path.
fn export(dir: &Path) -> PathBuf {
    let wasm = dir.join("oddity.wasm");
    run(
        &["plugin", "export", "-o", wasm.to_str().expect("utf-8")],
        None,
    )
    .assert_ok();
    wasm
}

#[test]
fn plugin_export_writes_the_component_and_its_contract_beside_it() {
    let dir = tempdir();
    let wasm = dir.path().join("oddity.wasm");
    let out = run(
        &["plugin", "export", "-o", wasm.to_str().expect("utf-8")],
        None,
    );
    out.assert_ok();
    let bytes = std::fs::read(&wasm).expect("the component");
    assert_eq!(
        &bytes[..8],
        COMPONENT_HEADER,
        "a component, not a core module"
    );
    let contract = std::fs::read_to_string(dir.path().join("detector.wit")).expect("the WIT");
    let source =
        std::fs::read_to_string(root().join("wit/detector.wit")).expect("wit/detector.wit");
    assert_eq!(contract, source);
    let schema = std::fs::read_to_string(dir.path().join("note.schema.json")).expect("schema");
    let source = std::fs::read_to_string(root().join("wit/note.schema.json")).expect("schema");
    assert_eq!(schema, source);
    assert!(
        out.stderr.contains(wasm.to_str().expect("utf-8"))
            && out.stderr.contains("detector.wit")
            && out.stderr.contains("note.schema.json")
            && out.stderr.contains("oddity:detector@"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn plugin_export_to_an_unwritable_path_fails_naming_it() {
    let dir = tempdir();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").expect("write");
    let wasm = file.join("oddity.wasm");
    let out = run(
        &["plugin", "export", "-o", wasm.to_str().expect("utf-8")],
        None,
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot write the component")
            && out.stderr.contains(wasm.to_str().expect("utf-8")),
        "{}",
        out.stderr
    );
    let named = dir.path().join("detector.wit");
    let out = run(
        &["plugin", "export", "-o", named.to_str().expect("utf-8")],
        None,
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("choose another"), "{}", out.stderr);
    assert!(!named.exists());
}

/// The first 2,000 events of the bundled example, as JSON lines.
fn example_lines(dir: &Path) -> PathBuf {
    let file = std::fs::File::open(example("cloudtrail/events.jsonl.gz")).expect("example");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::MultiGzDecoder::new(file), &mut text)
        .expect("gunzip");
    let lines: String = text.lines().take(2000).map(|l| format!("{l}\n")).collect();
    let path = dir.join("example.jsonl");
    std::fs::write(&path, lines).expect("write");
    path
}

/// A Stratus Red Team detonation log as JSON lines, with the lines a filter meets besides
/// events: blank, not JSON, not an object, not UTF-8, a `\r\n` end, a byte-order mark, an
/// object without the fields the profile needs, and a last line without `\n`.
fn stratus_lines(dir: &Path) -> PathBuf {
    let file = test_data()
        .join("stratus-red-team_detonation_logs/aws.credential-access.ec2-get-password-data.json");
    let records: Vec<Value> =
        serde_json::from_slice(&std::fs::read(file).expect("read")).expect("a JSON array");
    assert!(records.len() > 20);
    let mut text = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let line = serde_json::to_string(record).expect("json");
        match i {
            3 => text.extend_from_slice(b"\n   \r\nnot json\r\n[1,2]\n\xff\xfe not UTF-8\n"),
            5 => text.extend_from_slice("\u{feff}".as_bytes()),
            7 => text.extend_from_slice(b"{\"eventName\":\"GetPasswordData\"}\n{ }\n"),
            _ => {}
        }
        text.extend_from_slice(line.as_bytes());
        text.extend_from_slice(if i == 9 { b"\r\n" } else { b"\n" });
    }
    text.extend_from_slice(br#"{"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/last"},"eventSource":"ec2.amazonaws.com","eventName":"GetPasswordData"}"#);
    let path = dir.join("stratus.jsonl");
    std::fs::write(&path, text).expect("write");
    path
}

/// What the native filter writes for `input`, with its default settings.
fn native(input: &Path) -> Vec<u8> {
    let out = run(&["-q", input.to_str().expect("utf-8")], None);
    out.assert_ok();
    out.stdout
}

/// Runs `cmd`, which must succeed; its standard output.
fn output_of(cmd: &mut Command, what: &str) -> Vec<u8> {
    let out = run_cmd(cmd, None);
    assert_eq!(out.code, Some(0), "{what} failed:\n{}", out.stderr);
    out.stdout
}

/// Runs a setup step (an installer), which must succeed; its output is shown when it fails.
fn setup(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run it ({e}); the portable tests need it"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts two outputs are the same bytes, naming the first line that differs.
#[track_caller]
fn assert_same_output(native: &[u8], other: &[u8], who: &str) {
    if native == other {
        return;
    }
    let (a, b): (Vec<&[u8]>, Vec<&[u8]>) = (
        native.split(|&b| b == b'\n').collect(),
        other.split(|&b| b == b'\n').collect(),
    );
    let at = a
        .iter()
        .zip(&b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    panic!(
        "{who} differs from oddity at line {} ({} and {} lines):\noddity: {}\n{who}: {}",
        at + 1,
        a.len(),
        b.len(),
        String::from_utf8_lossy(a.get(at).copied().unwrap_or_default()),
        String::from_utf8_lossy(b.get(at).copied().unwrap_or_default()),
    );
}

/// `examples/node` with its dependencies installed (`npm ci` when they are missing or older
/// than the lock file).
fn node_example() -> PathBuf {
    setup(Command::new("node").arg("--version"), "node");
    let dir = example("node");
    let installed = dir.join("node_modules/.package-lock.json");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&installed) < modified(&dir.join("package-lock.json")) {
        setup(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir),
            "npm ci in examples/node",
        );
    }
    dir.join("score.mjs")
}

/// The Python of a virtual environment with `examples/python/requirements.txt` installed.
fn python_example_env() -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        setup(
            Command::new("python3").arg("-m").arg("venv").arg(&venv),
            "python3 -m venv",
        );
    }
    setup(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(example("python/requirements.txt")),
        "pip install -r examples/python/requirements.txt",
    );
    python
}

#[test]
fn the_node_example_writes_what_oddity_writes() {
    let script = node_example();
    let dir = tempdir();
    let wasm = export(dir.path());
    let transpiled = dir.path().join("transpiled");
    for input in [example_lines(dir.path()), stratus_lines(dir.path())] {
        let node = output_of(
            Command::new("node")
                .arg(&script)
                .arg("--transpiled")
                .arg(&transpiled)
                .arg(&wasm)
                .arg(&input),
            "node score.mjs",
        );
        assert_same_output(&native(&input), &node, "node");
    }
}

#[test]
fn the_python_example_writes_what_oddity_writes() {
    let python = python_example_env();
    let dir = tempdir();
    let wasm = export(dir.path());
    for input in [example_lines(dir.path()), stratus_lines(dir.path())] {
        let out = output_of(
            Command::new(&python)
                .arg(example("python/score.py"))
                .arg(&wasm)
                .arg(&input),
            "python score.py",
        );
        assert_same_output(&native(&input), &out, "python");
    }
}
