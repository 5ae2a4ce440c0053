//! Fuzz target `key_share`: the check lives in `common::key_share` (shared with the
//! stable corpus replay in `tests/fuzz_corpus.rs`).
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::key_share(data));
