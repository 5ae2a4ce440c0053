//! Replays the committed fuzz corpora and regressions on stable `cargo test`:
//! every file under `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/`
//! goes through the same check function the libFuzzer target runs (one copy
//! of the logic: `fuzz/fuzz_targets/common/mod.rs`).
//!
//! `tests/fuzz/{common,corpus,regressions}` are symlinks into `fuzz/`: Cargo
//! never packages `fuzz/` (a package of its own), but it packages these links
//! as files, so the published crate's tests replay the same corpus.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "fuzz/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};

/// `tests/fuzz/`: symlinks into `fuzz/` in the repository, real directories in
/// the packaged crate.
fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    v.sort();
    v
}

fn replay(kind: &str, require: bool) {
    let root = fuzz_dir().join(kind);
    for (name, check) in common::TARGETS {
        let inputs = files(&root.join(name));
        assert!(
            !require || !inputs.is_empty(),
            "no {kind} for fuzz target {name}"
        );
        for path in inputs {
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{name}: {} failed", path.display());
        }
    }
}

#[test]
fn corpus_replays() {
    replay("corpus", true);
}

#[test]
fn regressions_replay() {
    replay("regressions", false);
}

/// The genuine seeds themselves pass every check (independently of what is
/// committed), so a change of the wire format shows up here first.
#[test]
fn generated_seeds_pass() {
    for (target, _, data) in common::seeds() {
        let check = common::TARGETS
            .iter()
            .find(|(n, _)| *n == target)
            .unwrap()
            .1;
        check(&data);
    }
}

/// Every generated seed is committed in `fuzz/corpus/<target>/seed-<name>`
/// with exactly these bytes; with `REGENERATE_VECTORS=1` the files are
/// (re)written instead: `REGENERATE_VECTORS=1 cargo test --test fuzz_corpus`.
#[test]
fn seed_corpus_is_committed_and_current() {
    let regenerate = std::env::var_os("REGENERATE_VECTORS").is_some();
    let root = fuzz_dir().join("corpus");
    for (target, name, data) in common::seeds() {
        let dir = root.join(target);
        let path = dir.join(format!("seed-{name}"));
        if regenerate {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &data).unwrap();
        }
        let stored = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(stored, data, "{} is stale", path.display());
    }
}
