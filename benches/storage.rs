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
use secret_chat::room::RotationPolicy;
use secret_chat::storage::ENVELOPE_OVERHEAD;
use secret_chat::testing::VectorRng;
use secret_chat::{
    IdentityKeyPair, MemberId, OutboundSenderKey, Room, RoomId, SenderKeyMode, StorageKey,
    seal_shares_with_rng,
};
use std::hint::black_box;
use std::time::Duration;

const MEMBERS: usize = 1000;

fn big_room() -> Room {
    let mut rng = VectorRng::new(b"bench storage");
    let ids: Vec<IdentityKeyPair> = (0..MEMBERS)
        .map(|_| IdentityKeyPair::generate_with_rng(&mut rng))
        .collect();
    let names: Vec<MemberId> = (0..MEMBERS)
        .map(|i| MemberId::new(format!("member-{i:04}@example.org").as_bytes()).unwrap())
        .collect();
    let members: Vec<_> = names
        .iter()
        .cloned()
        .zip(ids.iter().map(|k| k.bundle()))
        .collect();
    let room_id = RoomId::new(b"bench-big-room").unwrap();
    let (mut room, _) = Room::create_with_rng(
        &ids[0],
        room_id.clone(),
        names[0].clone(),
        &members,
        &secret_chat::RoomOptions {
            suite: secret_chat::Suite::XWing,
            rotation: RotationPolicy::default(),
            ..Default::default()
        },
        1_000,
        &mut rng,
    )
    .unwrap();
    for i in 1..MEMBERS {
        let instance = *room.membership().instance_of(&names[i]).unwrap().as_bytes();
        let binding = secret_chat::testing::sender_key_binding(
            &room_id,
            &ids[i].public().to_bytes(),
            &instance,
            0,
        );
        let mut out = OutboundSenderKey::new_with_rng(
            room_id.clone(),
            0,
            SenderKeyMode::Signed,
            binding,
            0,
            &mut rng,
        );
        let b0 = ids[0].bundle();
        let share = seal_shares_with_rng(
            &ids[i],
            &room_id,
            secret_chat::Suite::XWing,
            0,
            &instance,
            &out.share(),
            &[secret_chat::Recipient::new(
                b0.identity(),
                b0.share_key(secret_chat::Suite::XWing).unwrap(),
            )],
            &mut rng,
        )
        .unwrap();
        room.receive_share_at(&ids[0], &share[0].to_bytes(), 1_000)
            .unwrap();
        let mut last = Vec::new();
        for _ in 0..4 {
            last = out.encrypt(b"hello").unwrap();
        }
        room.decrypt_at(&last, 1_000).unwrap();
    }
    room
}

fn storage(c: &mut Criterion) {
    let room = big_room();
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
