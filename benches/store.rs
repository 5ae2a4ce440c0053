//! Records and stores against the raw primitives, in the same run:
//!
//! - sealing / opening one 300-byte record against raw AES-256-GCM on the
//!   same bytes (key setup included in both);
//! - committing one changed 300-byte record (record + meta record, two
//!   HMACs) to a `MemoryStore`, and to a `SqliteStore` file (WAL,
//!   `synchronous = FULL`: one fsync per commit), against raw AES-GCM;
//! - opening a store of 101 records (a 100-member room: core + one inbound
//!   record per member) and reading every record, against one Ed25519
//!   `verify_strict`.
//!
//! Ratios are what `docs/PERFORMANCE.md` records.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit};
use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey};
use secret_chat::StorageKey;
use secret_chat::labels::{RECORD_KIND_INBOUND_KEYS, RECORD_KIND_ROOM_CORE};
use secret_chat::record::{RecordKey, RecordSealer};
use secret_chat::store::{Changes, MemoryStore, SealedStore, Store};
use std::hint::black_box;
use std::time::Duration;

const RECORD_LEN: usize = 300;

fn raw_encrypt(key: &[u8; 32], buf: &mut [u8]) -> [u8; 16] {
    Aes256Gcm::new(&(*key).into())
        .encrypt_inout_detached(&[7u8; 12].into(), b"aad", buf.into())
        .unwrap()
        .into()
}

fn member(i: usize) -> RecordKey {
    RecordKey::new(
        RECORD_KIND_INBOUND_KEYS,
        b"bench-room",
        format!("member-{i:04}@example.org").as_bytes(),
    )
    .unwrap()
}

fn room_of_100<S: Store>(backend: S, key: &StorageKey) -> SealedStore<S> {
    let mut store = SealedStore::open(backend, key, None).unwrap();
    let mut c = Changes::new();
    c.put(
        RecordKey::new(RECORD_KIND_ROOM_CORE, b"bench-room", b"").unwrap(),
        vec![1; 2000],
    )
    .unwrap();
    for i in 0..100 {
        c.put(member(i), vec![2; RECORD_LEN]).unwrap();
    }
    store.commit(&c).unwrap();
    store
}

fn one_change(i: usize) -> Changes {
    let mut c = Changes::new();
    c.put(member(i % 100), vec![3; RECORD_LEN]).unwrap();
    c
}

fn store(c: &mut Criterion) {
    let key = StorageKey::from_bytes([5; 32]);
    let raw_key = [5u8; 32];
    let sealer = RecordSealer::new(&key);
    let name = member(1);
    let plain = vec![9u8; RECORD_LEN];
    let env = sealer.seal(&name, 1, &plain).unwrap();

    let mut g = c.benchmark_group("record 300 B");
    g.bench_function("raw aes-gcm encrypt", |b| {
        b.iter(|| {
            let mut buf = plain.clone();
            black_box(raw_encrypt(&raw_key, &mut buf))
        })
    });
    g.bench_function("seal", |b| {
        b.iter(|| black_box(sealer.seal(&name, 1, &plain).unwrap()))
    });
    g.bench_function("open", |b| {
        b.iter(|| black_box(sealer.open(&name, &env).unwrap()))
    });
    g.finish();

    let mut g = c.benchmark_group("commit one record");
    g.bench_function("raw aes-gcm encrypt", |b| {
        b.iter(|| {
            let mut buf = plain.clone();
            black_box(raw_encrypt(&raw_key, &mut buf))
        })
    });
    let mut mem = room_of_100(MemoryStore::new(), &key);
    let mut i = 0;
    g.bench_function("memory store", |b| {
        b.iter(|| {
            i += 1;
            black_box(mem.commit(&one_change(i)).unwrap())
        })
    });
    #[cfg(feature = "sqlite")]
    {
        let dir = std::env::temp_dir().join(format!("sc-bench-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let backend = secret_chat::store::SqliteStore::open(dir.join("bench.db")).unwrap();
        let mut sql = room_of_100(backend, &key);
        // Bytes SQLite appends to its WAL per commit of one changed record
        // (whole 4 KiB pages plus frame headers), against the envelope bytes.
        let wal = dir.join("bench.db-wal");
        let before = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        for k in 0..100 {
            sql.commit(&one_change(k)).unwrap();
        }
        let after = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        eprintln!(
            "sqlite: {} WAL bytes per commit of one {RECORD_LEN}-byte record ({} envelope bytes + {} meta)",
            (after - before) / 100,
            RECORD_LEN + secret_chat::record::RECORD_OVERHEAD,
            40 + secret_chat::record::RECORD_OVERHEAD
        );
        g.bench_function("sqlite store (file, fsync)", |b| {
            b.iter(|| {
                i += 1;
                black_box(sql.commit(&one_change(i)).unwrap())
            })
        });
        drop(sql);
        std::fs::remove_dir_all(&dir).unwrap();
    }
    g.finish();

    let mut g = c.benchmark_group("load 100-member room records");
    let signer = SigningKey::from_bytes(&[4; 32]);
    let vk = signer.verifying_key();
    let sig = signer.sign(b"message");
    g.bench_function("raw ed25519 verify_strict", |b| {
        b.iter(|| black_box(vk.verify_strict(b"message", &sig).is_ok()))
    });
    let backend = room_of_100(MemoryStore::new(), &key).into_backend();
    g.bench_function("open store + read 101 records", |b| {
        b.iter(|| {
            let s = SealedStore::open(backend.clone(), &key, Some(1)).unwrap();
            for i in 0..100 {
                black_box(s.get(&member(i)).unwrap());
            }
            s
        })
    });
    g.bench_function("clone of the backend alone", |b| {
        b.iter(|| black_box(backend.clone()))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10);
    targets = store
}
criterion_main!(benches);
