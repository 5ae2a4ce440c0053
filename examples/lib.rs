//! Runnable examples of `secret-chat`, in their own workspace member so they
//! build without the library's test-only dev-dependencies. The examples are
//! the `[[example]]` targets beside this file (`cargo run --example
//! secret_chat` from the repository root); this empty library only gives the
//! package a primary target.
