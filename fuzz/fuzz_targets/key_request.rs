//! Fuzz target `key_request`: the check lives in `common::key_request` (shared
//! with the stable corpus replay in `tests/fuzz_corpus.rs`).
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::key_request(data));
