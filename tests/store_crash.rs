//! Crash safety of the SQLite store: a child process (this test binary,
//! re-run as `crash_child`) commits batches to a real SQLite file in a loop;
//! the parent kills it with SIGKILL at random points, at least 50 times,
//! and after every kill reopens the file and checks:
//!
//! - it opens with the generation the parent remembered (no rollback, no
//!   inconsistency), and every record decrypts;
//! - the state is one whole batch: the counter record and every member
//!   record carry the same batch number (never a mix of two batches);
//! - the state is the last batch the child acknowledged or the one after
//!   (a commit that landed before its acknowledgement), never older: no
//!   acknowledged batch is lost, so no message is shown twice;
//! - the conversation continues: the parent commits the next batch itself.
//!
//! The synthetic conversation stands in for a room: batch `n` writes the
//! counter record (`n`) and one record per member (`n` and filler of a size
//! that varies with `n`), except that every fifth batch deletes one member's
//! record instead. The child appends `n` to an acknowledgement file after
//! each commit returns, as an app shows a message only once its state is
//! committed.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use secret_chat::StorageKey;
use secret_chat::labels::{RECORD_KIND_INBOUND_KEYS, RECORD_KIND_ROOM_CORE};
use secret_chat::record::RecordKey;
use secret_chat::store::{Changes, SealedStore, SqliteStore};
use secret_chat::testing::VectorRng;
use std::io::Write;
use std::path::{Path, PathBuf};
mod common;

const CHILD_ENV: &str = "SECRET_CHAT_CRASH_CHILD_DIR";
const MEMBERS: usize = 6;
const KILLS: usize = 60;

fn key() -> StorageKey {
    StorageKey::from_bytes([0x17; 32])
}

fn counter_name() -> RecordKey {
    RecordKey::new(RECORD_KIND_ROOM_CORE, b"crash-room", b"").unwrap()
}

fn member_name(i: usize) -> RecordKey {
    RecordKey::new(
        RECORD_KIND_INBOUND_KEYS,
        b"crash-room",
        format!("m{i}").as_bytes(),
    )
    .unwrap()
}

/// The member whose record batch `n` deletes, if any.
fn deleted_in(n: u64) -> Option<usize> {
    n.is_multiple_of(5)
        .then(|| ((n / 5) % MEMBERS as u64) as usize)
}

fn member_plaintext(n: u64, i: usize) -> Vec<u8> {
    let mut v = n.to_be_bytes().to_vec();
    v.resize(8 + ((n as usize * 37 + i * 101) % 900), i as u8);
    v
}

fn batch(n: u64) -> Changes {
    let mut c = Changes::new();
    c.put(counter_name(), n.to_be_bytes().to_vec()).unwrap();
    for i in 0..MEMBERS {
        if deleted_in(n) == Some(i) {
            c.delete(member_name(i)).unwrap();
        } else {
            c.put(member_name(i), member_plaintext(n, i)).unwrap();
        }
    }
    c
}

fn db(dir: &Path) -> PathBuf {
    dir.join("state.db")
}

fn acks(dir: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(dir.join("acked")).unwrap_or_default();
    // A line cut by the kill has no newline yet: ignore it.
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    complete.lines().map(|l| l.parse().unwrap()).collect()
}

fn ack(dir: &Path, n: u64) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("acked"))
        .unwrap();
    f.write_all(format!("{n}\n").as_bytes()).unwrap();
}

/// Checks the store is exactly batch `n` for some `n`, and returns it.
fn check_state(store: &SealedStore<SqliteStore>) -> u64 {
    let n = match store.get(&counter_name()).unwrap() {
        Some(p) => u64::from_be_bytes(p[..].try_into().unwrap()),
        None => 0,
    };
    for i in 0..MEMBERS {
        let got = store.get(&member_name(i)).unwrap().map(|p| p.to_vec());
        let want = (n > 0 && deleted_in(n) != Some(i)).then(|| member_plaintext(n, i));
        assert_eq!(got, want, "member {i} at batch {n}: a mix of two batches");
    }
    assert_eq!(store.generation(), n, "one generation per batch");
    n
}

/// The writer: continues the conversation from whatever the store holds,
/// `limit` batches at most.
fn write_loop(dir: &Path, limit: u64) {
    let backend = SqliteStore::open(db(dir)).unwrap();
    let mut store = SealedStore::open(backend, &key(), None).unwrap();
    let start = check_state(&store);
    for n in start + 1..=start + limit {
        assert_eq!(store.commit(&batch(n)).unwrap(), n);
        ack(dir, n);
    }
}

/// The child's entry point. Run without the environment variable (as in a
/// plain `cargo test`), it writes 30 batches in a fresh directory in-process
/// and checks the result, so it is a test of the writer too.
#[test]
fn crash_child() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        write_loop(Path::new(&dir), 1_000_000);
        return;
    }
    let dir = temp_dir("inproc");
    write_loop(&dir, 30);
    write_loop(&dir, 30);
    let store = SealedStore::open(SqliteStore::open(db(&dir)).unwrap(), &key(), Some(60)).unwrap();
    assert_eq!(check_state(&store), 60);
    assert_eq!(acks(&dir), (1..=60).collect::<Vec<_>>());
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sc-crash-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn killed_writer_leaves_one_whole_batch_and_loses_no_acknowledged_one() {
    let dir = temp_dir("kill");
    let mut rng = VectorRng::new(b"crash kill points");
    let mut remembered: Option<u64> = None;
    let (mut landed_unacked, mut max_batches_per_run) = (0, 0);
    for round in 0..KILLS {
        let before = remembered.unwrap_or(0);
        // Four rounds in five: kill once the child acknowledged a batch of
        // its own, 0..15 ms later; every fifth: during its startup.
        common::run_and_kill(
            "crash_child",
            CHILD_ENV,
            &dir,
            round,
            &mut rng,
            15_000,
            || acks(&dir).last().copied().unwrap_or(0) > before,
        );

        let backend = SqliteStore::open(db(&dir)).unwrap();
        let mut store = SealedStore::open(backend, &key(), remembered)
            .unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        let n = check_state(&store);
        let acked = acks(&dir);
        // Each batch is acknowledged (its message shown) at most once, in
        // order; a gap of one is a batch that landed but was never shown.
        assert!(
            acked.windows(2).all(|w| w[1] > w[0] && w[1] <= w[0] + 2),
            "round {round}: acknowledgements out of order or repeated"
        );
        let last = acked.last().copied().unwrap_or(0);
        assert!(
            n == last || n == last + 1,
            "round {round}: state {n}, last acknowledged {last}"
        );
        landed_unacked += usize::from(n == last + 1);
        max_batches_per_run = max_batches_per_run.max(n - before);

        // The conversation continues here, then in the next child.
        let next = n + 1;
        assert_eq!(store.commit(&batch(next)).unwrap(), next);
        ack(&dir, next);
        remembered = Some(next);
    }
    eprintln!(
        "{KILLS} kills; final batch {}; {landed_unacked} kills fell between a commit and its \
         acknowledgement; at most {max_batches_per_run} batches in one run",
        remembered.unwrap_or(0)
    );
    // Most kills landed while the child was writing (each of those rounds
    // waited for one batch of the child's own), not only during startup.
    assert!(remembered.unwrap_or(0) >= KILLS as u64 + (KILLS as u64 * 4 / 5));
    std::fs::remove_dir_all(&dir).unwrap();
}
