//! Rooms as records (issue 15), against the raw primitives in the same run:
//!
//! - bytes written per received (and per sent) message in rooms of 2, 100
//!   and 1000 members: what the sealed store hands its backend (envelopes
//!   and the meta record), and what SQLite appends to its write-ahead log;
//!   printed, not timed (the v1 whole-room export beside it);
//! - loading a 100-member room from its records against one Ed25519
//!   `verify_strict` (goal: at most 15 verifications' worth);
//! - decrypt-and-persist into a SQLite file against decrypt alone.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey};
use secret_chat::store::{MemoryStore, SealedStore, SqliteStore};
use secret_chat::{OutboundSenderKey, Room, StorageKey};
use secret_chat_benches::{BigRoom, big_room, with_stack_offset};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const T: u64 = 1_000;

fn temp_db(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sc-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("state.db")
}

fn wal_len(db: &std::path::Path) -> u64 {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).map_or(0, |m| m.len())
}

/// Bytes written per received and per sent message, printed.
fn bytes_per_message(members: usize) {
    let BigRoom {
        mut room,
        me,
        mut sender,
    } = big_room(members);
    let key = StorageKey::from_bytes([1; 32]);
    let export = room.export(&key).unwrap().len();
    let mut store = SealedStore::open(MemoryStore::new(), &key, None).unwrap();
    room.save(&mut store).unwrap();
    let (w0, b0) = (store.backend().bytes_written(), store.backend().batches());
    const N: u64 = 50;
    for _ in 0..N {
        let m = sender.encrypt(&[0x42; 64]).unwrap();
        room.decrypt_at(&m, T).unwrap();
        room.save(&mut store).unwrap();
    }
    let received = (store.backend().bytes_written() - w0) / N;
    assert_eq!(store.backend().batches() - b0, N);
    let w1 = store.backend().bytes_written();
    let mut rng = secret_chat::testing::VectorRng::new(b"send");
    for _ in 0..N {
        let out = room
            .encrypt_with_rng(&me, &[0x42; 64], T, &mut rng)
            .unwrap();
        assert!(out.shares.is_empty());
        room.save(&mut store).unwrap();
    }
    let sent = (store.backend().bytes_written() - w1) / N;

    // The same through a SQLite file: what its write-ahead log grows by.
    let db = temp_db(&format!("bytes-{members}"));
    let mut sql = SealedStore::open(SqliteStore::open(&db).unwrap(), &key, None).unwrap();
    let mut copy = Room::import(&room.export(&key).unwrap(), &key).unwrap();
    copy.save(&mut sql).unwrap();
    // Closing checkpoints the log; reopen and measure from an empty log.
    drop(sql);
    let mut sql = SealedStore::open(SqliteStore::open(&db).unwrap(), &key, None).unwrap();
    for _ in 0..5 {
        let m = sender.encrypt(&[0x42; 64]).unwrap();
        copy.decrypt_at(&m, T).unwrap();
        copy.save(&mut sql).unwrap();
    }
    let before = wal_len(&db);
    const M: u64 = 20;
    for _ in 0..M {
        let m = sender.encrypt(&[0x42; 64]).unwrap();
        copy.decrypt_at(&m, T).unwrap();
        copy.save(&mut sql).unwrap();
    }
    let wal = wal_len(&db).saturating_sub(before) / M;
    drop(sql);
    let _ = std::fs::remove_dir_all(db.parent().unwrap());
    eprintln!(
        "{members:>4} members: {received} B written per received message, {sent} B per sent \
         message (sealed records + meta record); SQLite WAL +{wal} B per received message; \
         v1-style whole-room export {export} B"
    );
}

/// Times receiving `iters * per_save` fresh 64-byte messages of `sender`
/// (made before the clock starts), calling `after` once per `per_save`
/// messages (a save, or nothing), and returns the time per `per_save`
/// messages divided by `per_save`: the time per message.
fn time_receive(
    room: &mut Room,
    sender: &mut OutboundSenderKey,
    iters: u64,
    per_save: u64,
    mut after: impl FnMut(&mut Room),
) -> Duration {
    let msgs: Vec<Vec<u8>> = (0..iters * per_save)
        .map(|_| sender.encrypt(&[0x42; 64]).unwrap())
        .collect();
    let start = Instant::now();
    for chunk in msgs.chunks(per_save as usize) {
        for m in chunk {
            black_box(room.decrypt_at(m, T).unwrap());
        }
        after(room);
    }
    let t = start.elapsed() / per_save as u32;
    room.mark_saved();
    t
}

fn bench(c: &mut Criterion) {
    for members in [2, 100, 1000] {
        bytes_per_message(members);
    }

    // Loading a 100-member room.
    let BigRoom { room, .. } = big_room(100);
    let key = StorageKey::from_bytes([2; 32]);
    let mut store = SealedStore::open(MemoryStore::new(), &key, None).unwrap();
    let mut saved = Room::import(&room.export(&key).unwrap(), &key).unwrap();
    saved.save(&mut store).unwrap();
    let backend = store.backend().clone();
    let blob = room.export(&key).unwrap();
    let signer = SigningKey::from_bytes(&[7; 32]);
    let verifier = signer.verifying_key();
    let sig = signer.sign(b"a message of moderate length");

    let mut g = c.benchmark_group("load 100-member room");
    g.bench_function("raw ed25519 verify_strict", |b| {
        let mut pad = 0usize;
        b.iter(|| {
            pad = (pad + 64) % 4096;
            with_stack_offset(pad, || {
                verifier
                    .verify_strict(b"a message of moderate length", &sig)
                    .unwrap();
            })
        })
    });
    g.bench_function("Room::load (store open)", |b| {
        let mut pad = 0usize;
        b.iter(|| {
            pad = (pad + 64) % 4096;
            with_stack_offset(pad, || {
                black_box(Room::load(&store, room.id()).unwrap().unwrap());
            })
        })
    });
    g.bench_function("SealedStore::open + Room::load", |b| {
        b.iter_batched(
            || backend.clone(),
            |backend| {
                let s = SealedStore::open(backend, &key, None).unwrap();
                black_box(Room::load(&s, room.id()).unwrap().unwrap())
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("whole-blob import (Room::import)", |b| {
        b.iter(|| black_box(Room::import(&blob, &key).unwrap()))
    });
    g.finish();

    // Decrypt and persist in a 1000-member room (memory store): what the
    // per-member record costs when the room is large.
    let BigRoom {
        room: mut big,
        mut sender,
        ..
    } = big_room(1000);
    let mut mem_store = SealedStore::open(MemoryStore::new(), &key, None).unwrap();
    big.save(&mut mem_store).unwrap();
    let mut g = c.benchmark_group("receive a 64-byte message (1000 members)");
    g.bench_function("decrypt", |b| {
        b.iter_custom(|iters| time_receive(&mut big, &mut sender, iters, 1, |_| {}))
    });
    g.bench_function("decrypt + save (memory store)", |b| {
        b.iter_custom(|iters| {
            time_receive(&mut big, &mut sender, iters, 1, |r| {
                r.save(&mut mem_store).unwrap();
            })
        })
    });
    g.finish();
    drop((big, mem_store));

    // Decrypt and persist, one message a transaction, in a SQLite file.
    let BigRoom {
        room: mut at_me,
        mut sender,
        ..
    } = big_room(3);
    let db = temp_db("persist");
    let mut sql = SealedStore::open(SqliteStore::open(&db).unwrap(), &key, None).unwrap();
    let mut g = c.benchmark_group("receive a 64-byte message (3 members)");
    g.bench_function("decrypt", |b| {
        b.iter_custom(|iters| time_receive(&mut at_me, &mut sender, iters, 1, |_| {}))
    });
    // Both stores get the whole room first (an import marks every record).
    let mut mem = SealedStore::open(SqliteStore::open_in_memory().unwrap(), &key, None).unwrap();
    at_me = Room::import(&at_me.export(&key).unwrap(), &key).unwrap();
    at_me.save(&mut mem).unwrap();
    at_me = Room::import(&at_me.export(&key).unwrap(), &key).unwrap();
    at_me.save(&mut sql).unwrap();
    g.bench_function("decrypt + save (sqlite memory db)", |b| {
        b.iter_custom(|iters| {
            time_receive(&mut at_me, &mut sender, iters, 1, |r| {
                r.save(&mut mem).unwrap();
            })
        })
    });
    g.bench_function("decrypt + save (sqlite file, fsync)", |b| {
        b.iter_custom(|iters| {
            time_receive(&mut at_me, &mut sender, iters, 1, |r| {
                r.save(&mut sql).unwrap();
            })
        })
    });
    g.bench_function(
        "decrypt 10 + one save (sqlite file, fsync), per message",
        |b| {
            b.iter_custom(|iters| {
                time_receive(&mut at_me, &mut sender, iters, 10, |r| {
                    r.save(&mut sql).unwrap();
                })
            })
        },
    );
    g.finish();
    drop(sql);
    let _ = std::fs::remove_dir_all(db.parent().unwrap());
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10);
    targets = bench
}
criterion_main!(benches);
