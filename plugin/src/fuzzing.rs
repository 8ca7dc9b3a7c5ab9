//! The bodies of the fuzz targets (`fuzz/`), here so that the saved corpus is replayed by an
//! ordinary test (`tests/fuzz_corpus.rs`) without cargo-fuzz. Each takes arbitrary bytes and
//! panics only when a property of the engine fails.

use crate::engine::{Batch, Engine};
use crate::snapshot::{FORMAT_VERSION, MAGIC};

/// The configuration both targets use: the built-in CloudTrail profile with a small node cap,
/// so that pruning is reached by short inputs too.
pub const CONFIG: &str = "profile = \"cloudtrail\"\n[engine]\nmax-nodes = 1000\nwarm-up = 2\n";

/// Lines of `batch`: each ends at `\n`, and a last line without one counts.
fn line_count(batch: &[u8]) -> usize {
    let newlines = batch.iter().filter(|&&b| b == b'\n').count();
    newlines + usize::from(batch.last().is_some_and(|&b| b != b'\n'))
}

/// Arbitrary bytes as batches of lines (split at `0x00`), scored alternately through the
/// typed path and the judging path, with a snapshot → restore → snapshot round trip between
/// batches. Checks one result per line, one note per line (a JSON object, or nothing for a line
/// that is not an object), and snapshots that restore to the same bytes.
pub fn score(data: &[u8]) {
    let mut engine = Engine::new(CONFIG).expect("the fuzzing configuration is valid");
    for (i, batch) in data.split(|&b| b == 0).take(4).enumerate() {
        let lines = line_count(batch);
        if i % 2 == 0 {
            assert_eq!(
                engine.score_lines(batch).len(),
                lines,
                "one result per line"
            );
        } else {
            let judged = engine.judge(Batch::Lines(batch)).expect("lines");
            assert_eq!(judged.verdicts.len(), lines, "one verdict per line");
            let notes: Vec<&[u8]> = judged.notes.split_inclusive(|&b| b == b'\n').collect();
            assert_eq!(notes.len(), lines, "one note per line");
            for (note, verdict) in notes.into_iter().zip(&judged.verdicts) {
                let note = note
                    .strip_suffix(b"\n")
                    .expect("a note ends with a newline");
                match verdict {
                    Ok(v) => {
                        assert!((0.0..=1.0).contains(&v.score), "score {}", v.score);
                        let object: serde_json::Map<String, serde_json::Value> =
                            serde_json::from_slice(note).expect("a note is a JSON object");
                        assert!(object.contains_key("score"));
                    }
                    Err(crate::ScoreError::FieldMissing(_)) => {
                        let object: serde_json::Map<String, serde_json::Value> =
                            serde_json::from_slice(note).expect("a note is a JSON object");
                        assert_eq!(object["error"], "field-missing");
                    }
                    Err(_) => assert!(note.is_empty(), "no note for a line that is no object"),
                }
            }
        }
        let bytes = engine.snapshot();
        let restored = Engine::restore(CONFIG, &bytes).expect("a snapshot restores");
        assert!(
            restored.snapshot() == bytes,
            "snapshot → restore → snapshot"
        );
        engine = restored;
    }
}

/// Arbitrary bytes as a snapshot: restoring returns a typed error or an engine, never panics;
/// a restored engine snapshots to the same bytes and scores a few events. With the first byte
/// even, the rest is taken as the payload of a snapshot with a valid header (magic, version,
/// fingerprint, length, checksum), so the fuzzer explores the payload decoder, not the checksum.
pub fn snapshot(data: &[u8]) {
    let bytes = match data.split_first() {
        Some((flag, payload)) if flag % 2 == 0 => framed(payload),
        _ => data.to_vec(),
    };
    let Ok(mut engine) = Engine::restore(CONFIG, &bytes) else {
        return;
    };
    let again = engine.snapshot();
    let restored = Engine::restore(CONFIG, &again).expect("a snapshot restores");
    assert!(
        restored.snapshot() == again,
        "snapshot → restore → snapshot"
    );
    let events = concat!(
        r#"{"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/a"},"eventSource":"s3.amazonaws.com","eventName":"GetObject","eventTime":"2024-03-04T09:15:02Z","sourceIPAddress":"198.51.100.7"}"#,
        "\n",
        r#"{"userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/r/s"},"eventSource":"ec2.amazonaws.com","eventName":"RunInstances","eventTime":"2030-01-01T00:00:00Z"}"#,
        "\n",
        r#"{"eventName":"X","eventTime":"1999-01-01T00:00:00Z"}"#,
        "\n",
    );
    assert_eq!(engine.score_lines(events.as_bytes()).len(), 3);
    let _ = engine.judge(Batch::Lines(events.as_bytes()));
    let _ = Engine::restore(CONFIG, &engine.snapshot()).expect("a snapshot restores");
}

/// `payload` behind a valid snapshot header for [`CONFIG`].
pub fn framed(payload: &[u8]) -> Vec<u8> {
    let fingerprint = Engine::new(CONFIG)
        .expect("the fuzzing configuration is valid")
        .fingerprint()
        .to_owned();
    let mut fp = [b'0'; 16];
    let n = fingerprint.len().min(16);
    fp[..n].copy_from_slice(&fingerprint.as_bytes()[..n]);
    let mut out = Vec::with_capacity(44 + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&fp);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}
