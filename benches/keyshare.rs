//! Key shares (protocol v2) against the raw primitives, in the same run.
//!
//! For each suite (X25519, X-Wing):
//! - sealing one sender key to 1, 100 and 1000 recipients, against the same
//!   number of raw `hpke` single-shot seals, and of (seal + Ed25519 sign);
//! - opening one share, against raw HPKE open + Ed25519 `verify_strict`;
//! - share-key rotation (both suites' key pairs and their signatures),
//!   against raw `DeriveKeyPair` of both KEMs + two signatures.
//!
//! Bytes per recipient are printed once at start (they are deterministic).
//! Opening is measured at several stack offsets (Ed25519 verification
//! moves with the stack position of the call on this machine).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey};
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use secret_chat::keyshare::{Recipient, seal_shares_with_rng};
use secret_chat::testing::{VectorRng, shared_sender_key};
use secret_chat::{DeviceBundle, IdentityKeyPair, RoomId, SenderKeyMode, Suite};
use secret_chat_benches::with_stack_offset;
use std::hint::black_box;
use std::time::Duration;

type Aead = hpke::aead::AesGcm256;
type Kdf = hpke::kdf::HkdfSha256;
type KX = hpke::kem::X25519HkdfSha256;
type KW = hpke::kem::XWing;

const INST: [u8; 32] = [7; 32];

fn raw_seal<K: Kem>(pks: &[K::PublicKey], signer: Option<&SigningKey>, pt: &[u8]) {
    let mut rng = VectorRng::new(b"raw");
    let info = [0x11u8; 190];
    let aad = [0x22u8; 200];
    for pk in pks {
        let (enc, ct) = hpke::single_shot_seal_with_rng::<Aead, Kdf, K>(
            &OpModeS::Base,
            pk,
            &info,
            pt,
            &aad,
            &mut rng,
        )
        .unwrap();
        if let Some(s) = signer {
            black_box(s.sign(&ct));
        }
        black_box((enc.to_bytes(), ct));
    }
}

fn pks<K: Kem>(bundles: &[DeviceBundle], suite: Suite) -> Vec<K::PublicKey> {
    bundles
        .iter()
        .map(|b| K::PublicKey::from_bytes(b.share_key(suite).unwrap().public_key()).unwrap())
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut rng = VectorRng::new(b"bench keyshare");
    let alice = IdentityKeyPair::generate_at(1, &mut rng);
    let bob = IdentityKeyPair::generate_at(1, &mut rng);
    let members: Vec<IdentityKeyPair> = (0..1000)
        .map(|_| IdentityKeyPair::generate_at(1, &mut rng))
        .collect();
    let bundles: Vec<DeviceBundle> = members.iter().map(|m| m.bundle()).collect();
    let room = RoomId::new(b"bench-room").unwrap();
    let signing_public = SigningKey::from_bytes(&[3; 32]).verifying_key().to_bytes();
    let id = secret_chat::testing::signed_sender_key_id(&signing_public).unwrap();
    let key = shared_sender_key(
        id,
        SenderKeyMode::Signed,
        0,
        &[2; 32],
        Some(&[3; 32]),
        &[4; 32],
        0,
    )
    .unwrap();
    let pt = vec![0x42u8; 1 + 16 + 4 + 32 + 32 + 64 + 4];
    let signer = SigningKey::from_bytes(&[9u8; 32]);

    for suite in Suite::ALL {
        let name = match suite {
            Suite::X25519 => "x25519",
            _ => "xwing",
        };
        let one = seal_shares_with_rng(
            &alice,
            &room,
            suite,
            0,
            &INST,
            &key,
            &[Recipient::new(
                bundles[0].identity(),
                bundles[0].share_key(suite).unwrap(),
            )],
            &mut rng,
        )
        .unwrap();
        println!(
            "keyshare/{name}: {} bytes per recipient (signed sender key, 10-byte room id)",
            one[0].as_bytes().len()
        );
        let mut g = c.benchmark_group(format!("keyshare-{name}"));
        for n in [1usize, 100, 1000] {
            let recips: Vec<Recipient<'_>> = bundles[..n]
                .iter()
                .map(|b| Recipient::new(b.identity(), b.share_key(suite).unwrap()))
                .collect();
            match suite {
                Suite::X25519 => {
                    let keys = pks::<KX>(&bundles[..n], suite);
                    g.bench_function(format!("raw {n} hpke seals"), |b| {
                        b.iter(|| raw_seal::<KX>(&keys, None, &pt))
                    });
                    g.bench_function(format!("raw {n} (hpke seal + sign)"), |b| {
                        b.iter(|| raw_seal::<KX>(&keys, Some(&signer), &pt))
                    });
                }
                _ => {
                    let keys = pks::<KW>(&bundles[..n], suite);
                    g.bench_function(format!("raw {n} hpke seals"), |b| {
                        b.iter(|| raw_seal::<KW>(&keys, None, &pt))
                    });
                    g.bench_function(format!("raw {n} (hpke seal + sign)"), |b| {
                        b.iter(|| raw_seal::<KW>(&keys, Some(&signer), &pt))
                    });
                }
            }
            g.bench_function(format!("seal_shares to {n}"), |b| {
                let mut rng = VectorRng::new(b"seal");
                b.iter(|| {
                    seal_shares_with_rng(&alice, &room, suite, 0, &INST, &key, &recips, &mut rng)
                        .unwrap()
                })
            });
        }

        // Opening one share vs raw open + verify_strict, at several stack offsets.
        let bob_bundle = bob.bundle();
        let share = seal_shares_with_rng(
            &alice,
            &room,
            suite,
            1,
            &INST,
            &key,
            &[Recipient::new(
                bob_bundle.identity(),
                bob_bundle.share_key(suite).unwrap(),
            )],
            &mut rng,
        )
        .unwrap()
        .remove(0);
        let bytes = share.to_bytes();
        let verifier = signer.verifying_key();
        let sig = signer.sign(&bytes);
        match suite {
            Suite::X25519 => {
                let (sk, pk) = KX::derive_keypair(&[5; 32]);
                let (enc, ct) = hpke::single_shot_seal_with_rng::<Aead, Kdf, KX>(
                    &OpModeS::Base,
                    &pk,
                    b"info",
                    &pt,
                    b"aad",
                    &mut rng,
                )
                .unwrap();
                g.bench_function("raw open + verify_strict", |b| {
                    let mut pad = 0usize;
                    b.iter(|| {
                        pad = (pad + 64) % 4096;
                        with_stack_offset(pad, || {
                            verifier.verify_strict(&bytes, &sig).unwrap();
                            black_box(
                                hpke::single_shot_open::<Aead, Kdf, KX>(
                                    &OpModeR::Base,
                                    &sk,
                                    &enc,
                                    b"info",
                                    &ct,
                                    b"aad",
                                )
                                .unwrap(),
                            );
                        })
                    })
                });
            }
            _ => {
                let (sk, pk) = KW::derive_keypair(&[5; 32]);
                let (enc, ct) = hpke::single_shot_seal_with_rng::<Aead, Kdf, KW>(
                    &OpModeS::Base,
                    &pk,
                    b"info",
                    &pt,
                    b"aad",
                    &mut rng,
                )
                .unwrap();
                g.bench_function("raw open + verify_strict", |b| {
                    let mut pad = 0usize;
                    b.iter(|| {
                        pad = (pad + 64) % 4096;
                        with_stack_offset(pad, || {
                            verifier.verify_strict(&bytes, &sig).unwrap();
                            black_box(
                                hpke::single_shot_open::<Aead, Kdf, KW>(
                                    &OpModeR::Base,
                                    &sk,
                                    &enc,
                                    b"info",
                                    &ct,
                                    b"aad",
                                )
                                .unwrap(),
                            );
                        })
                    })
                });
            }
        }
        g.bench_function("open one share", |b| {
            let mut pad = 0usize;
            b.iter(|| {
                pad = (pad + 64) % 4096;
                with_stack_offset(pad, || {
                    black_box(
                        secret_chat::open_share(&bytes, &bob, alice.public(), &room, 1, &INST)
                            .unwrap(),
                    );
                })
            })
        });
        g.finish();
    }

    let mut g = c.benchmark_group("share-key-rotation");
    g.bench_function("raw derive both KEM key pairs + 2 signatures", |b| {
        b.iter(|| {
            let (_, x) = KX::derive_keypair(&[1; 32]);
            let (_, w) = KW::derive_keypair(&[2; 32]);
            black_box(signer.sign(&x.to_bytes()));
            black_box(signer.sign(&w.to_bytes()));
        })
    });
    g.bench_function("rotate_share_keys_at", |b| {
        b.iter_batched(
            || IdentityKeyPair::generate_at(1, &mut VectorRng::new(b"rot")),
            |mut id| {
                black_box(
                    id.rotate_share_keys_at(2, &mut VectorRng::new(b"r"))
                        .unwrap(),
                )
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
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
