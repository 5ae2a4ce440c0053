//! A 1000-member room against the raw primitives, in the same run.
//!
//! - creation (one device, suite X-Wing): 999 key shares, against 999 raw
//!   X-Wing HPKE seals and 999 (HPKE seal + Ed25519 sign);
//! - one message: encrypt / decrypt in the big room, against Ed25519 sign +
//!   AES-256-GCM and verify_strict + AES-256-GCM;
//! - one removal (one device rotates and re-shares to 998), against 998
//!   (HPKE seal + sign). Every remaining member does the same on its own
//!   device, so the room-wide cost is 998 times this.
//! - receiving one key share in rooms of 3, 100, 1000 and 4096 members,
//!   against one raw X-Wing HPKE open + one Ed25519 `verify_strict` (the
//!   cryptography a share needs), and joining a 1000-member room from its
//!   welcome.
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

/// Receiving one key share as the room grows: the room's own work must stay
/// near the cryptography's at every size.
fn receive_share_by_size(c: &mut Criterion) {
    use secret_chat::keyshare::{Recipient, seal_shares_with_rng};
    use secret_chat::testing::{sender_key_binding, shared_sender_key, signed_sender_key_id};
    let mut g = c.benchmark_group("receive-share");
    // Raw baseline: one X-Wing open of a share-sized plaintext + one verify_strict.
    let (sk, pk) = X::derive_keypair(&[5; 32]);
    let (enc, ct) =
        hpke::single_shot_seal_with_rng::<hpke::aead::AesGcm256, hpke::kdf::HkdfSha256, X>(
            &OpModeS::Base,
            &pk,
            &[1u8; 200],
            &[0x42u8; 153],
            &[2u8; 1500],
            &mut VectorRng::new(b"raw"),
        )
        .unwrap();
    let signer = SigningKey::from_bytes(&[9; 32]);
    let verifier = signer.verifying_key();
    let signed = vec![7u8; 2700];
    let sig = signer.sign(&signed);
    g.bench_function("raw xwing open + verify_strict", |b| {
        b.iter(|| {
            verifier.verify_strict(&signed, &sig).unwrap();
            black_box(
                hpke::single_shot_open::<hpke::aead::AesGcm256, hpke::kdf::HkdfSha256, X>(
                    &hpke::OpModeR::Base,
                    &sk,
                    &enc,
                    &[1u8; 200],
                    &ct,
                    &[2u8; 1500],
                )
                .unwrap(),
            )
        })
    });
    for n in [3usize, 100, 1000, 4096] {
        let mut rng = VectorRng::new(format!("receive-{n}").as_bytes());
        let ids: Vec<IdentityKeyPair> = (0..n)
            .map(|_| IdentityKeyPair::generate_at(0, &mut rng))
            .collect();
        let list: Vec<(MemberId, DeviceBundle)> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                (
                    MemberId::new(format!("m-{i:04}").as_bytes()).unwrap(),
                    id.bundle(),
                )
            })
            .collect();
        let room_id = RoomId::new(b"sized").unwrap();
        let (creator, _) = Room::create_with_rng(
            &ids[0],
            room_id.clone(),
            list[0].0.clone(),
            &list,
            &secret_chat::RoomOptions::default(),
            0,
            &mut rng,
        )
        .unwrap();
        let welcome = creator.welcome(&ids[0]).unwrap();
        if n == 1000 {
            g.bench_function(
                "join a 1000-member room (verify the log, seal 999 shares)",
                |b| {
                    b.iter(|| {
                        black_box(
                            Room::join_with_rng(
                                &ids[1],
                                list[1].0.clone(),
                                &room_id,
                                &welcome,
                                RotationPolicy::default(),
                                0,
                                &mut VectorRng::new(b"j"),
                            )
                            .unwrap(),
                        )
                    })
                },
            );
        }
        let (mut receiver, _) = Room::join_with_rng(
            &ids[1],
            list[1].0.clone(),
            &room_id,
            &welcome,
            RotationPolicy::default(),
            0,
            &mut rng,
        )
        .unwrap();
        let instance = *creator
            .membership()
            .instance_of(&list[0].0)
            .unwrap()
            .as_bytes();
        let owner = ids[0].public().to_bytes();
        let b1 = ids[1].bundle();
        let to = [Recipient::new(
            b1.identity(),
            b1.share_key(Suite::XWing).unwrap(),
        )];
        let mut epoch = 0u32;
        g.bench_function(format!("receive one share, {n} members"), |b| {
            b.iter_custom(|iters| {
                // Fresh shares of the creator's next epochs, sealed untimed.
                let shares: Vec<Vec<u8>> = (0..iters)
                    .map(|_| {
                        epoch += 1;
                        let mut seed = [7u8; 32];
                        seed[..4].copy_from_slice(&epoch.to_le_bytes());
                        let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
                        let key = shared_sender_key(
                            signed_sender_key_id(&public).unwrap(),
                            secret_chat::SenderKeyMode::Signed,
                            0,
                            &[3; 32],
                            Some(&seed),
                            &sender_key_binding(&room_id, &owner, &instance, epoch),
                            0,
                        )
                        .unwrap();
                        seal_shares_with_rng(
                            &ids[0],
                            &room_id,
                            Suite::XWing,
                            epoch,
                            &instance,
                            &key,
                            &to,
                            &mut VectorRng::new(b"s"),
                        )
                        .unwrap()
                        .remove(0)
                        .to_bytes()
                    })
                    .collect();
                let start = std::time::Instant::now();
                for s in &shares {
                    black_box(receiver.receive_share_at(&ids[1], s, 0).unwrap());
                }
                start.elapsed()
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10);
    targets = bench, receive_share_by_size
}
criterion_main!(benches);
