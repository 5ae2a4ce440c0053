//! Crash safety of a real conversation in a real SQLite file (issue 15): a
//! child process (this test binary, re-run as `room_crash_child`) is Bob's
//! app. It works through Alice's key shares and messages, replies to every
//! third one. Each step commits the room's changes with the app's own
//! records (its progress, the decrypted message, an outbox entry with the
//! reply and any key shares) in one transaction
//! ([`Room::save_with`]), and only then hands the outbox to the relay
//! (appends it to `sent`) and drops it. The parent kills the child with
//! SIGKILL at random points, at least 50 times, and after every kill checks
//! that the file opens and the room loads. At the end:
//!
//! - every message of Alice's is in Bob's store exactly once: none lost,
//!   none decrypted twice (the child panics on a replay);
//! - every reply of Bob's reaches Alice and decrypts exactly once (a copy
//!   sent again after a kill is refused as a replay), none is lost, and no
//!   two replies share a sender key and index: no AES-GCM key and nonce
//!   reused after a crash, and the shares of a rotation that a kill
//!   interrupted still reach Alice;
//! - the conversation went on to its end.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use secret_chat::labels::RECORD_KIND_APP;
use secret_chat::record::RecordKey;
use secret_chat::room::RotationPolicy;
use secret_chat::store::{Changes, SealedStore, SqliteStore};
use secret_chat::testing::VectorRng;
use secret_chat::{
    Error, IdentityKeyPair, MemberId, Message, Room, RoomId, RoomOptions, StorageKey,
};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
mod common;
use common::{hex, unhex};

const CHILD_ENV: &str = "SECRET_CHAT_ROOM_CRASH_DIR";
const T0: u64 = 2_000_000;
const MESSAGES: usize = 1200;
const KILLS: usize = 55;

fn key() -> StorageKey {
    StorageKey::from_bytes([0x29; 32])
}

fn room_id() -> RoomId {
    RoomId::new(b"crash-conversation").unwrap()
}

fn policy() -> RotationPolicy {
    RotationPolicy {
        max_messages: 7,
        ..RotationPolicy::default()
    }
}

/// Complete lines of a file (a line cut by a kill has no newline yet).
fn lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    complete.lines().map(str::to_owned).collect()
}

fn append(path: &Path, line: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(format!("{line}\n").as_bytes()).unwrap();
}

/// Alice and Bob; Bob's identity and joined room saved in `dir`'s SQLite
/// file; Alice's shares and messages written to `dir/inbox` (one item a
/// line: `S hex` or `M hex`). Returns Alice's room.
fn set_up(dir: &Path) -> (IdentityKeyPair, Room) {
    let mut rng = VectorRng::new(b"room crash");
    let alice = IdentityKeyPair::generate_at(T0, &mut rng);
    let bob = IdentityKeyPair::generate_at(T0, &mut rng);
    let (a, b) = (
        MemberId::new(b"alice").unwrap(),
        MemberId::new(b"bob").unwrap(),
    );
    let members = [(a.clone(), alice.bundle()), (b.clone(), bob.bundle())];
    let opts = RoomOptions {
        rotation: policy(),
        ..RoomOptions::default()
    };
    let (mut at_alice, to_bob) =
        Room::create_with_rng(&alice, room_id(), a, &members, &opts, T0, &mut rng).unwrap();
    let (mut at_bob, to_alice) = Room::join_with_rng(
        &bob,
        b,
        &room_id(),
        &at_alice.welcome(&alice).unwrap(),
        policy(),
        T0,
        &mut rng,
    )
    .unwrap();
    at_alice
        .receive_share_at(&alice, &to_alice[0].bytes, T0)
        .unwrap();
    let mut store = SealedStore::open(SqliteStore::open(db(dir)).unwrap(), &key(), None).unwrap();
    bob.save(&mut store).unwrap();
    at_bob.save(&mut store).unwrap();
    let inbox = dir.join("inbox");
    append(&inbox, &format!("S {}", hex(&to_bob[0].bytes)));
    for k in 0..MESSAGES {
        let out = at_alice
            .encrypt_with_rng(&alice, format!("alice {k}").as_bytes(), T0, &mut rng)
            .unwrap();
        for s in &out.shares {
            append(&inbox, &format!("S {}", hex(&s.bytes)));
        }
        append(&inbox, &format!("M {}", hex(&out.message)));
    }
    (alice, at_alice)
}

fn db(dir: &Path) -> PathBuf {
    dir.join("bob.db")
}

fn app(key: &str) -> RecordKey {
    RecordKey::new(RECORD_KIND_APP, b"crash-conversation", key.as_bytes()).unwrap()
}

/// Hands every outbox entry to the relay (appends it to `sent`), then
/// drops the entries in one commit. A kill in between sends them twice
/// (the receiver refuses the copy as a replay), never zero times.
fn flush_outbox(dir: &Path, store: &mut SealedStore<SqliteStore>) {
    let names: Vec<RecordKey> = store
        .names(RECORD_KIND_APP, b"crash-conversation")
        .filter(|n| n.key().starts_with(b"out/"))
        .cloned()
        .collect();
    let mut done = Changes::new();
    for n in names {
        let entry = store.get(&n).unwrap().unwrap();
        for line in std::str::from_utf8(&entry).unwrap().lines() {
            append(&dir.join("sent"), line);
        }
        done.delete(n).unwrap();
    }
    store.commit(&done).unwrap();
}

/// Bob's app: continues from the progress it committed, `limit` items at
/// most. Each step commits the room's changes together with the app's own
/// records (progress, the decrypted message, the outbox entry of the
/// reply) in one transaction; only then is the reply handed to the relay.
fn bob_loop(dir: &Path, limit: usize) {
    let mut store = SealedStore::open(SqliteStore::open(db(dir)).unwrap(), &key(), None).unwrap();
    let bob = IdentityKeyPair::load(&store).unwrap().unwrap();
    let mut room = Room::load(&store, &room_id()).unwrap().unwrap();
    // What a kill left in the outbox goes out first.
    flush_outbox(dir, &mut store);
    let inbox = lines(&dir.join("inbox"));
    let next = store.get(&app("progress")).unwrap().map_or(0, |p| {
        std::str::from_utf8(&p).unwrap().parse::<usize>().unwrap()
    });
    // The RNG differs per run (as the OS RNG would).
    let mut rng = VectorRng::new(format!("bob {next} {}", std::process::id()).as_bytes());
    for (i, item) in inbox.iter().enumerate().skip(next).take(limit) {
        let (kind, bytes) = item.split_once(' ').unwrap();
        let bytes = unhex(bytes);
        let mut records = Changes::new();
        if kind == "S" {
            // A share or message seen twice would be refused as a replay:
            // with the progress committed with the state, that never happens.
            room.receive_share_at(&bob, &bytes, T0)
                .unwrap_or_else(|e| panic!("item {i}: share refused: {e}"));
        } else {
            let text = room
                .decrypt_at(&bytes, T0)
                .unwrap_or_else(|e| panic!("item {i}: {e}"))
                .into_plaintext();
            records.put(app(&format!("msg/{i:06}")), text).unwrap();
        }
        records
            .put(app("progress"), (i + 1).to_string().into_bytes())
            .unwrap();
        if i % 3 == 0 {
            let out = room
                .encrypt_with_rng(&bob, format!("bob {i}").as_bytes(), T0, &mut rng)
                .unwrap();
            let mut entry = String::new();
            for s in &out.shares {
                entry.push_str(&format!("S {}\n", hex(&s.bytes)));
            }
            entry.push_str(&format!("M {}\n", hex(&out.message)));
            records
                .put(app(&format!("out/{i:06}")), entry.into_bytes())
                .unwrap();
        }
        room.save_with(&mut store, records).unwrap();
        append(&dir.join("shown"), &i.to_string());
        flush_outbox(dir, &mut store);
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sc-room-crash-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The child's entry point; without the environment variable (a plain
/// `cargo test`) it runs the conversation in-process in three pieces.
#[test]
fn room_crash_child() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        bob_loop(Path::new(&dir), usize::MAX);
        return;
    }
    let dir = temp_dir("inproc");
    let (alice, mut at_alice) = set_up(&dir);
    bob_loop(&dir, 100);
    bob_loop(&dir, 100);
    bob_loop(&dir, usize::MAX);
    let total = lines(&dir.join("inbox")).len();
    check_end(&dir, &alice, &mut at_alice, total, 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The end state: every message of Alice's is in Bob's store exactly once,
/// and Alice reads every reply of Bob's exactly once.
fn check_end(dir: &Path, alice: &IdentityKeyPair, at_alice: &mut Room, total: usize, kills: usize) {
    let store = SealedStore::open(SqliteStore::open(db(dir)).unwrap(), &key(), None).unwrap();
    let progress = store.get(&app("progress")).unwrap().unwrap();
    assert_eq!(std::str::from_utf8(&progress).unwrap(), total.to_string());
    let mut texts = BTreeSet::new();
    for n in store.names(RECORD_KIND_APP, b"crash-conversation") {
        if n.key().starts_with(b"msg/") {
            assert!(texts.insert(store.get(n).unwrap().unwrap().to_vec()));
        }
        assert!(
            !n.key().starts_with(b"out/"),
            "an outbox entry was never sent"
        );
    }
    let expected: BTreeSet<Vec<u8>> = (0..MESSAGES)
        .map(|k| format!("alice {k}").into_bytes())
        .collect();
    assert_eq!(texts, expected, "messages lost or shown twice");
    // Bob's replies, in the order he handed them over (copies included).
    let (mut used, mut read, mut copies) = (BTreeSet::new(), BTreeSet::new(), 0);
    let mut seen: BTreeSet<Vec<u8>> = BTreeSet::new();
    for line in lines(&dir.join("sent")) {
        let (kind, bytes) = line.split_once(' ').unwrap();
        let bytes = unhex(bytes);
        if !seen.insert(bytes.clone()) {
            copies += 1;
        }
        if kind == "S" {
            match at_alice.receive_share_at(alice, &bytes, T0) {
                Ok(_) | Err(Error::Replay) => {}
                Err(e) => panic!("Bob's share refused: {e}"),
            }
        } else {
            match at_alice.decrypt_at(&bytes, T0) {
                Ok(r) => {
                    let m = Message::from_bytes(&bytes).unwrap();
                    assert!(
                        used.insert((m.sender_key(), m.index())),
                        "a sender key and index used twice"
                    );
                    assert!(read.insert(r.into_plaintext()), "a reply read twice");
                }
                Err(Error::Replay) => {}
                Err(e) => panic!("Bob's reply unreadable: {e}"),
            }
        }
    }
    let replies: BTreeSet<Vec<u8>> = (0..total)
        .filter(|i| i % 3 == 0)
        .map(|i| format!("bob {i}").into_bytes())
        .collect();
    assert_eq!(read, replies, "replies lost");
    eprintln!(
        "{kills} kills: every message kept once, {} replies read, {copies} copies sent again",
        read.len()
    );
}

#[test]
fn a_killed_app_never_shows_a_message_twice_nor_reuses_a_nonce() {
    let dir = temp_dir("kill");
    let (alice, mut at_alice) = set_up(&dir);
    let total = lines(&dir.join("inbox")).len();
    let mut rng = VectorRng::new(b"room crash kill points");
    let mut kills = 0;
    for round in 0..KILLS * 3 {
        if kills == KILLS {
            break;
        }
        let before = lines(&dir.join("shown")).len();
        if lines(&dir.join("shown"))
            .last()
            .is_some_and(|l| l.parse::<usize>().unwrap() + 30 >= total)
        {
            break;
        }
        // Kill once the child showed a step of its own, 0..8 ms later
        // (every fifth round: during its startup).
        common::run_and_kill(
            "room_crash_child",
            CHILD_ENV,
            &dir,
            round,
            &mut rng,
            8_000,
            || lines(&dir.join("shown")).len() > before,
        );
        kills += 1;
        // The file opens and the room loads after every kill.
        let store = SealedStore::open(SqliteStore::open(db(&dir)).unwrap(), &key(), None).unwrap();
        assert!(Room::load(&store, &room_id()).unwrap().is_some());
    }
    assert!(kills >= 50, "only {kills} kills");
    // The conversation continues to its end.
    bob_loop(&dir, usize::MAX);
    check_end(&dir, &alice, &mut at_alice, total, kills);
    std::fs::remove_dir_all(&dir).unwrap();
}
