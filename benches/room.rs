//! A 1000-member room against the raw primitives, in the same run.
//!
//! - creation (one device, suite X-Wing): 999 key shares, against 999 raw
//!   X-Wing HPKE seals and 999 (HPKE seal + Ed25519 sign);
//! - one message: encrypt / decrypt in the big room, against Ed25519 sign +
//!   AES-256-GCM and verify_strict + AES-256-GCM;
//! - one removal (one device rotates and re-shares to 998), against 998
//!   (HPKE seal + sign). Every remaining member does the same on its own
//!   device, so the room-wide cost is 998 times this.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey};
use hpke::{Deserializable, Kem, OpModeS, Serializable};
use secret_chat::room::RotationPolicy;
use secret_chat::testing::VectorRng;
use secret_chat::{DeviceBundle, IdentityKeyPair, MemberId, Room, RoomId, Suite};
use std::hint::black_box;
use std::time::Duration;

type X = hpke::kem::XWing;
const N: usize = 1000;

fn members() -> (Vec<IdentityKeyPair>, Vec<(MemberId, DeviceBundle)>) {
    let mut rng = VectorRng::new(b"bench-room");
    let ids: Vec<_> = (0..N)
        .map(|_| IdentityKeyPair::generate_with_rng(&mut rng))
        .collect();
    let list = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            (
                MemberId::new(format!("member-{i:04}").as_bytes()).unwrap(),
                id.bundle(),
            )
        })
        .collect();
    (ids, list)
}

fn create(ids: &[IdentityKeyPair], list: &[(MemberId, DeviceBundle)], who: usize) -> Room {
    Room::create_with_rng(
        &ids[who],
        RoomId::new(b"big").unwrap(),
        list[who].0.clone(),
        list,
        &secret_chat::RoomOptions { suite: Suite::XWing, rotation: // No automatic rotation inside the per-message benches.
        RotationPolicy {
            max_messages: u32::MAX,
            max_age_secs: u64::MAX,
            ..Default::default()
        }, ..Default::default() },
        0,
        &mut VectorRng::new(&[who as u8]),
    )
    .unwrap()
    .0
}

fn bench(c: &mut Criterion) {
    let (ids, list) = members();
    let recipients: Vec<<X as Kem>::PublicKey> = list
        .iter()
        .skip(1)
        .map(|(_, p)| {
            <X as Kem>::PublicKey::from_bytes(p.share_key(Suite::XWing).unwrap().public_key())
                .unwrap()
        })
        .collect();
    let signer = SigningKey::from_bytes(&[9u8; 32]);
    let plaintext = [0x42u8; 117];
    let info = [0x11u8; 300];
    let mut g = c.benchmark_group("room-1000");

    let seal_all = |n: usize, sign: bool| {
        let mut rng = VectorRng::new(b"raw");
        for pk in recipients.iter().take(n) {
            let (enc, ct) = hpke::single_shot_seal_with_rng::<
                hpke::aead::AesGcm256,
                hpke::kdf::HkdfSha256,
                X,
            >(&OpModeS::Base, pk, &info, &plaintext, b"aad", &mut rng)
            .unwrap();
            if sign {
                black_box(signer.sign(&ct));
            }
            black_box((enc.to_bytes(), ct));
        }
    };
    g.bench_function("raw 999 hpke seals", |b| b.iter(|| seal_all(N - 1, false)));
    g.bench_function("raw 999 (hpke seal + sign)", |b| {
        b.iter(|| seal_all(N - 1, true))
    });
    g.bench_function("create (999 shares)", |b| {
        b.iter(|| black_box(create(&ids, &list, 0)))
    });
    g.bench_function("raw 998 (hpke seal + sign)", |b| {
        b.iter(|| seal_all(N - 2, true))
    });
    g.bench_function("remove one member (998 shares)", |b| {
        b.iter_batched(
            || create(&ids, &list, 0),
            |mut room| {
                let shares = room
                    .remove_member_with_rng(&ids[0], &list[N - 1].0, 0, &mut VectorRng::new(b"rm"))
                    .unwrap();
                black_box(shares)
            },
            BatchSize::LargeInput,
        )
    });

    // One message in the big room.
    let mut sender = create(&ids, &list, 0);
    let (sender0, shares) = Room::create_with_rng(
        &ids[0],
        RoomId::new(b"big").unwrap(),
        list[0].0.clone(),
        &list,
        &secret_chat::RoomOptions {
            suite: Suite::XWing,
            rotation: RotationPolicy {
                max_messages: u32::MAX,
                max_age_secs: u64::MAX,
                ..Default::default()
            },
            ..Default::default()
        },
        0,
        &mut VectorRng::new(&[0u8]),
    )
    .unwrap();
    let welcome = sender0.welcome(&ids[0]).unwrap();
    let (mut receiver, _) = Room::join_with_rng(
        &ids[1],
        list[1].0.clone(),
        &RoomId::new(b"big").unwrap(),
        &welcome,
        RotationPolicy::default(),
        0,
        &mut VectorRng::new(b"join"),
    )
    .unwrap();
    let to_1 = shares.iter().find(|s| s.to == list[1].0).unwrap();
    receiver.receive_share_at(&ids[1], &to_1.bytes, 0).unwrap();
    let cipher = Aes256Gcm::new(&[1u8; 32].into());
    let verifier = signer.verifying_key();
    let text = [0x33u8; 1024];
    g.bench_function("raw sign + aes-gcm (1 KiB)", |b| {
        let mut buf = text;
        b.iter(|| {
            let tag = cipher.encrypt_inout_detached(&[0u8; 12].into(), b"h", (&mut buf[..]).into());
            black_box((tag, signer.sign(&buf)))
        })
    });
    g.bench_function("encrypt 1 KiB", |b| {
        b.iter(|| black_box(sender.encrypt_with_rng(&ids[0], &text, 0, &mut VectorRng::new(b"m"))))
    });
    let mut ct = text;
    let tag = cipher
        .encrypt_inout_detached(&[0u8; 12].into(), b"h", (&mut ct[..]).into())
        .unwrap();
    let sig = signer.sign(&ct);
    g.bench_function("raw verify_strict + aes-gcm (1 KiB)", |b| {
        b.iter_batched_ref(
            || ct,
            |buf| {
                verifier.verify_strict(&buf[..], &sig).unwrap();
                cipher
                    .decrypt_inout_detached(&[0u8; 12].into(), b"h", (&mut buf[..]).into(), &tag)
                    .unwrap();
            },
            BatchSize::SmallInput,
        )
    });
    // A fresh message each iteration (made outside the timing), decrypted
    // in order by one receiver.
    let mut fresh_sender = create(&ids, &list, 0);
    g.bench_function("decrypt 1 KiB", |b| {
        b.iter_batched(
            || {
                fresh_sender
                    .encrypt_with_rng(&ids[0], &text, 0, &mut VectorRng::new(b"m"))
                    .unwrap()
            },
            |out| black_box(receiver.decrypt_at(&out.message, 0).unwrap()),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10);
    targets = bench
}
criterion_main!(benches);
