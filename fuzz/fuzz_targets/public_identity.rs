//! Fuzz target `public_identity`: the check lives in `common::public_identity` (shared with the
//! stable corpus replay in `tests/fuzz_corpus.rs`).
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::public_identity(data));
