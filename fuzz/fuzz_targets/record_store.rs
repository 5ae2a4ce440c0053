//! Fuzz target `record_store`: the check lives in `common::record_store` (shared with the
//! stable corpus replay in `tests/fuzz_corpus.rs`).
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::record_store(data));
