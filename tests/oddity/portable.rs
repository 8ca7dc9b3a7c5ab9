//! The component outside oddity: `oddity plugin export`.

use crate::util::{root, run, tempdir};

/// The wasm magic and the component layer's version and layer bytes.
const COMPONENT_HEADER: &[u8; 8] = b"\0asm\x0d\x00\x01\x00";

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
    assert!(
        out.stderr.contains(wasm.to_str().expect("utf-8"))
            && out.stderr.contains("detector.wit")
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
