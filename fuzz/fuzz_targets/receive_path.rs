//! Fuzz target `receive_path`: the check lives in `common::receive_path` (shared with the
//! stable corpus replay in `tests/fuzz_corpus.rs`).
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::receive_path(data));
