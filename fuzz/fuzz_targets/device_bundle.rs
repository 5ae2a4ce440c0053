//! Fuzz target `device_bundle`: the check lives in `common::device_bundle` (shared with the
//! stable corpus replay in `tests/fuzz_corpus.rs`).
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::device_bundle(data));
