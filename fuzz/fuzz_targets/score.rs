//! Arbitrary bytes as batches of log lines through the engine: see `oddity_engine::fuzzing::score`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| oddity_engine::fuzzing::score(data));
