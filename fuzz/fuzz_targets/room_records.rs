//! Fuzz target `room_records`: the check lives in `common::room_records` (shared with the
//! stable corpus replay in `tests/fuzz_corpus.rs`).
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::room_records(data));
