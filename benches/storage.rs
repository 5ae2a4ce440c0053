//! State at rest: export and import of a 1000-member room against raw
//! AES-256-GCM over the same number of bytes, in the same run.
//!
//! The room is Alice's view: 1000 pinned members, her sender key, and one
//! received sender key per other member with three skipped message keys
//! each. Ratios are what `docs/PERFORMANCE.md` records.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use secret_chat::storage::ENVELOPE_OVERHEAD;
use secret_chat::{Room, StorageKey};
use std::hint::black_box;
use std::time::Duration;

const MEMBERS: usize = 1000;

fn storage(c: &mut Criterion) {
    let room = secret_chat_benches::big_room(MEMBERS).room;
    let key = StorageKey::from_bytes([5; 32]);
    let blob = room.export(&key).unwrap();
    let n = blob.len() - ENVELOPE_OVERHEAD;
    eprintln!(
        "1000-member room: state {n} bytes, blob {} bytes",
        blob.len()
    );

    let cipher = Aes256Gcm::new(&[5u8; 32].into());
    let pt = vec![0x5au8; n];
    let mut ct = pt.clone();
    let tag = cipher
        .encrypt_inout_detached(&[7u8; 12].into(), b"header", ct.as_mut_slice().into())
        .unwrap();

    let mut g = c.benchmark_group("storage 1000 members");
    g.throughput(Throughput::Bytes(n as u64));
    g.bench_function("raw aes-gcm encrypt", |b| {
        let mut buf = pt.clone();
        b.iter(|| {
            black_box(
                cipher
                    .encrypt_inout_detached(&[7u8; 12].into(), b"header", buf.as_mut_slice().into())
                    .unwrap(),
            )
        })
    });
    g.bench_function("room export", |b| {
        b.iter(|| black_box(room.export(&key).unwrap()))
    });
    g.bench_function("raw aes-gcm decrypt", |b| {
        b.iter_batched_ref(
            || ct.clone(),
            |buf| {
                cipher
                    .decrypt_inout_detached(
                        &[7u8; 12].into(),
                        b"header",
                        buf.as_mut_slice().into(),
                        &tag,
                    )
                    .unwrap()
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("room import", |b| {
        b.iter(|| black_box(Room::import(&blob, &key).unwrap()))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10);
    targets = storage
}
criterion_main!(benches);
