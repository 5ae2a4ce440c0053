//! Fuzz target `id_text`: the check lives in `common::id_text` (shared with the
//! stable corpus replay in `tests/fuzz_corpus.rs`).
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::id_text(data));
