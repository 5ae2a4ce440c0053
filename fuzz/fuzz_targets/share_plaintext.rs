//! Fuzz target `share_plaintext`: the check lives in `common::share_plaintext`
//! (shared with the stable corpus replay in `tests/fuzz_corpus.rs`).
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::share_plaintext(data));
