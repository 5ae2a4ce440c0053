//! Fuzz target `scannable_payload`: the check lives in `common::scannable_payload` (shared with the
//! stable corpus replay in `tests/fuzz_corpus.rs`).
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::scannable_payload(data));
