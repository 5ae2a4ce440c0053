//! Fuzz target `attachment_chunk`: the check lives in `common::attachment::attachment_chunk` (shared
//! with the stable corpus replay in `tests/fuzz_corpus.rs`).
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::attachment_chunk(data));
