//! Fuzz target `stored_state`: the check lives in `common::stored_state` (shared with the
//! stable corpus replay in `tests/fuzz_corpus.rs`).
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::stored_state(data));
