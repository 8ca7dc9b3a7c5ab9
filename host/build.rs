//! Builds the plugin (`plugin/`, crate `oddity-engine`) for `wasm32-wasip2` and exposes the
//! component's path as `EMBEDDED_PLUGIN_WASM`, so `oddity` embeds it and is one self-contained file.
//! In the same cargo run it builds the hostile test plugin (`tests/plugins/hostile/`), whose path
//! the sandbox tests get as `HOSTILE_PLUGIN_WASM` (nothing embeds it).
//!
//! The nested cargo uses its own target directory (sharing the outer one deadlocks on its lock)
//! and drops the outer build's compiler wrappers and flags (clippy, coverage, host RUSTFLAGS),
//! which are meant for the host, not for the guest.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let root = manifest_dir
        .parent()
        .expect("host/ lives in the workspace")
        .to_path_buf();
    for watched in [
        "plugin/src",
        "plugin/Cargo.toml",
        "tests/plugins/hostile/src",
        "tests/plugins/hostile/Cargo.toml",
        "wit",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), PathBuf::from)
        .join("plugin-wasm");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--release",
        "--lib",
        "--target",
        "wasm32-wasip2",
        "-p",
        "oddity-engine",
        "-p",
        "oddity-hostile-plugin",
        "--manifest-path",
    ])
    .arg(root.join("Cargo.toml"))
    .arg("--target-dir")
    .arg(&target_dir)
    // A small, fast component: no debug info, whole-program optimisation.
    .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
    .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
    .env("CARGO_PROFILE_RELEASE_LTO", "true")
    .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
    .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "3")
    .env("CARGO_PROFILE_RELEASE_PANIC", "abort")
    // 128-bit SIMD (standard WebAssembly, on by default in wasmtime and other component
    // hosts): byte scanning in the JSON parser and memchr run several times faster.
    .env(
        "CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS",
        "-C target-feature=+simd128",
    );
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_RUSTC_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_LLVM_COV",
        "LLVM_PROFILE_FILE",
        "__CARGO_FIX_PLZ",
        "CLIPPY_ARGS",
        "CLIPPY_CONF_DIR",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .expect("failed to run cargo to build the plugin");
    if !status.success() {
        panic!(
            "building the plugin for wasm32-wasip2 failed (see above). If the target is missing, \
             run `rustup target add wasm32-wasip2` (the README's first command does)."
        );
    }
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // Not `ODDITY_*`: `cargo run` and `cargo test` also set these variables when they run the
    // binary, and oddity reads every `ODDITY_*` variable as a setting (an unknown one is an error).
    for (file, var) in [
        ("oddity_engine.wasm", "EMBEDDED_PLUGIN_WASM"),
        ("oddity_hostile_plugin.wasm", "HOSTILE_PLUGIN_WASM"),
    ] {
        let wasm = target_dir.join("wasm32-wasip2/release").join(file);
        let out = out_dir.join(file);
        std::fs::copy(&wasm, &out)
            .unwrap_or_else(|e| panic!("copying {} to {}: {e}", wasm.display(), out.display()));
        println!("cargo:rustc-env={var}={}", out.display());
    }
}
