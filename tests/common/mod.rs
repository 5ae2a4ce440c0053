//! Helpers shared by the integration tests.
#![allow(dead_code)]

use serde_json::Value;

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub(crate) fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub(crate) fn load(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Crash tests: runs this test binary's test `child_test` in a child process
/// with the environment variable `env` set to `dir`, lets it work, and kills
/// it with SIGKILL. Four rounds in five wait until `progressed()` says the
/// child made progress of its own (so the kill lands mid-work however slow
/// the machine), then 0..`jitter_us` µs more; every fifth round kills it at
/// a random point of its first 30 ms (startup, open, first commits). Panics
/// if the child made no progress in two minutes or ended on its own.
#[cfg(unix)]
pub(crate) fn run_and_kill(
    child_test: &str,
    env: &str,
    dir: &std::path::Path,
    round: usize,
    rng: &mut secret_chat::testing::VectorRng,
    jitter_us: u32,
    progressed: impl Fn() -> bool,
) {
    use rand_core::Rng;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    use std::time::Duration;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", child_test, "--nocapture", "--test-threads=1"])
        .env(env, dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    if round % 5 != 4 {
        while !progressed() {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "round {round}: the child made no progress in two minutes"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_micros(u64::from(rng.next_u32() % jitter_us)));
    } else {
        std::thread::sleep(Duration::from_micros(u64::from(rng.next_u32() % 30_000)));
    }
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.signal(),
        Some(9),
        "round {round}: the child ended on its own: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
