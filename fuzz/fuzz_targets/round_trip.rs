//! Fuzz target `round_trip`: the check lives in `common::round_trip` (shared with the
//! stable corpus replay in `tests/fuzz_corpus.rs`).
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::round_trip(data));
