//! Replays the saved fuzz corpus (`fuzz/corpus/<target>/`) through the fuzz targets' bodies
//! (`oddity_engine::fuzzing`), so that every input the fuzzer kept, crashes it found included,
//! is checked in the ordinary test run.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "{} holds {} inputs",
        dir.display(),
        files.len()
    );
    for file in files {
        let bytes = std::fs::read(&file).expect("read");
        let outcome = std::panic::catch_unwind(|| run(&bytes));
        assert!(outcome.is_ok(), "{} fails", file.display());
    }
}

#[test]
fn the_score_corpus_passes() {
    replay("score", oddity_engine::fuzzing::score);
}

#[test]
fn the_snapshot_corpus_passes() {
    replay("snapshot", oddity_engine::fuzzing::snapshot);
}
