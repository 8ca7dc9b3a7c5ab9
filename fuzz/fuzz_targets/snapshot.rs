//! Arbitrary bytes as a snapshot: see `oddity_engine::fuzzing::snapshot`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| oddity_engine::fuzzing::snapshot(data));
