//! Fuzz target `attachment_pointer`: the check lives in `common::attachment::attachment_pointer` (shared
//! with the stable corpus replay in `tests/fuzz_corpus.rs`).
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::attachment_pointer(data));
