//! Criterion benchmarks of `secret-chat`, in their own workspace member so the
//! library's dev-dependencies stay light. The benches are the `[[bench]]`
//! targets beside this file; this empty library only gives the package a
//! primary target. Run them with `cargo bench -p secret-chat-benches`.
