//! Configuration: errors name the key and the file, and exit non-zero; layering works.

use crate::util::{oddity, run, run_cmd, tempdir};

const EVENT: &str = r#"{"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/a"},"eventSource":"s3.amazonaws.com","eventName":"ListBuckets"}"#;

#[test]
fn an_unknown_key_in_the_config_file_is_named_with_the_file() {
    let dir = tempdir();
    let path = dir.path().join("oddity.toml");
    std::fs::write(&path, "batch-size = 10\nbatchsize = 3\n").expect("write");
    let out = run(&["--config", path.to_str().expect("utf-8")], Some(b""));
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("batchsize") && out.stderr.contains("oddity.toml"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
}

/// A flag that is unknown or whose value does not parse is a run that could not start (exit 1,
/// not 2, which says an input failed); `--help` and `--version` exit 0.
#[test]
fn a_bad_flag_exits_with_one() {
    for args in [
        &["--max-line-bytes", "abc"][..],
        &["--no-such-flag"][..],
        &["top", "--count", "x"][..],
    ] {
        let out = run(args, Some(EVENT.as_bytes()));
        assert_eq!(out.code, Some(1), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("error"), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    for args in [&["--help"][..], &["--version"][..], &["top", "--help"][..]] {
        let out = run(args, None);
        assert_eq!(out.code, Some(0), "{args:?}: {}", out.stderr);
        assert!(!out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn an_invalid_engine_setting_is_named() {
    let dir = tempdir();
    let path = dir.path().join("oddity.toml");
    std::fs::write(&path, "[engine]\nhalf-life = \"fortnight\"\n").expect("write");
    let out = run(
        &["-c", path.to_str().expect("utf-8")],
        Some(EVENT.as_bytes()),
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("engine.half-life") && out.stderr.contains("fortnight"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_broken_profile_is_named_with_its_file() {
    let dir = tempdir();
    let path = dir.path().join("profile.toml");
    std::fs::write(&path, "entity = [\"user\"]\n[fields.user]\npath = \"user\"\n[[views]]\nname = \"v\"\ncomponents = [\"proc\"]\n").expect("write");
    let out = run(&["--profile", path.to_str().expect("utf-8")], Some(b"{}\n"));
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("views[0].components")
            && out.stderr.contains("proc")
            && out.stderr.contains("profile.toml"),
        "{}",
        out.stderr
    );
    let out = run(&["--profile", "syslog"], Some(b"{}\n"));
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("syslog") && out.stderr.contains("cloudtrail"),
        "{}",
        out.stderr
    );
}

#[test]
fn environment_variables_configure_and_flags_win() {
    let out = run_cmd(
        oddity().env("ODDITY_OUTPUT_KEY", "fromenv").arg("-q"),
        Some(format!("{EVENT}\n").as_bytes()),
    );
    out.assert_ok();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"fromenv\":{"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = run_cmd(
        oddity()
            .env("ODDITY_OUTPUT_KEY", "fromenv")
            .args(["-q", "-k", "fromflag"]),
        Some(format!("{EVENT}\n").as_bytes()),
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"fromflag\":{"));
    let out = run_cmd(oddity().env("ODDITY_BATCH_SIZE", "zero"), Some(b""));
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("batch-size"), "{}", out.stderr);
}

/// `cargo run` (the README's first command) and `cargo test` give the binary the variables of the
/// build script's `rustc-env`; oddity reads `ODDITY_*` variables as settings, so those must not
/// be named so (they once were: the README's first command failed with "unknown field
/// `plugin-wasm`"). This runs oddity with exactly those variables, as `cargo run` does.
#[test]
fn the_environment_cargo_run_gives_is_accepted() {
    let out = run_cmd(
        oddity()
            .env("EMBEDDED_PLUGIN_WASM", env!("EMBEDDED_PLUGIN_WASM"))
            .env("HOSTILE_PLUGIN_WASM", env!("HOSTILE_PLUGIN_WASM"))
            .arg("-q"),
        Some(format!("{EVENT}\n").as_bytes()),
    );
    out.assert_ok();
    // And an `ODDITY_*` variable that is not a setting is refused, naming it.
    let out = run_cmd(oddity().env("ODDITY_PLUGIN_WASM", "x.wasm"), Some(b""));
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("plugin-wasm"), "{}", out.stderr);
}

/// A missing input is an input that fails (exit 2), named; the other inputs are still read
/// (`hostile::a_missing_input_fails_alone`).
#[test]
fn a_missing_input_file_is_an_error() {
    let out = run(&["/nonexistent/events.jsonl"], None);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("/nonexistent/events.jsonl"),
        "{}",
        out.stderr
    );
}
