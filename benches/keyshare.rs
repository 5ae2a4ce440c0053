//! Key-share fan-out and open against raw HPKE (and raw HPKE + Ed25519).
//!
//! `seal_shares/N` makes N signed shares; its baselines are N raw HPKE
//! single-shot seals of the same plaintext, info and aad (`raw_seal/N`), and
//! N × (raw seal + Ed25519 sign of the same bytes) (`raw_seal_sign/N`).
//! `open_share` parses, checks and opens one share; its baseline is one raw
//! HPKE open plus one strict Ed25519 verification (`raw_open_verify`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ed25519_dalek::Signer;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use secret_chat::testing::{VectorRng, shared_sender_key};
use secret_chat::{IdentityKeyPair, RoomId, SenderKeyMode, open_share, seal_shares_with_rng};
use std::hint::black_box;

type Kem = hpke::kem::X25519HkdfSha256;
type Kdf = hpke::kdf::HkdfSha256;
type Aead = hpke::aead::AesGcm256;

fn bench(c: &mut Criterion) {
    let alice = IdentityKeyPair::generate_with_rng(&mut VectorRng::new(b"alice"));
    let alice_raw = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let room = RoomId::new(b"bench-room-0123456789abcdef").unwrap();
    let signing = ed25519_dalek::SigningKey::from_bytes(&[5; 32])
        .verifying_key()
        .to_bytes();
    let id = secret_chat::testing::signed_sender_key_id(&signing).unwrap();
    let key = shared_sender_key(
        id,
        SenderKeyMode::Signed,
        0,
        &[2; 32],
        Some(&[5; 32]),
        &[0; 32],
        0,
    )
    .unwrap();
    let members: Vec<IdentityKeyPair> = (0u32..1000)
        .map(|i| IdentityKeyPair::generate_with_rng(&mut VectorRng::new(&i.to_be_bytes())))
        .collect();
    let hpke_pks: Vec<<Kem as hpke::Kem>::PublicKey> = members
        .iter()
        .map(|m| <Kem as hpke::Kem>::PublicKey::from_bytes(m.public().dh_key().as_bytes()).unwrap())
        .collect();
    // Same sizes as a real signed share: plaintext 85, info 29+7+27+258, aad 70.
    let pt = [3u8; 85];
    let info = [4u8; 29 + 7 + 27 + 258];
    let aad = [5u8; 70];

    let mut g = c.benchmark_group("key_shares");
    for n in [1usize, 10, 100, 1000] {
        if n >= 100 {
            g.sample_size(10);
        }
        let recips: Vec<_> = members[..n].iter().map(|m| m.public()).collect();
        g.bench_with_input(BenchmarkId::new("seal_shares", n), &n, |b, _| {
            let mut rng = VectorRng::new(b"seal");
            b.iter(|| seal_shares_with_rng(&alice, &room, 1, &key, &recips, &mut rng).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("raw_seal", n), &n, |b, _| {
            let mut rng = VectorRng::new(b"seal");
            b.iter(|| {
                hpke_pks[..n]
                    .iter()
                    .map(|pk| {
                        hpke::single_shot_seal_with_rng::<Aead, Kdf, Kem>(
                            &OpModeS::Base,
                            pk,
                            &info,
                            &pt,
                            &aad,
                            &mut rng,
                        )
                        .unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        });
        g.bench_with_input(BenchmarkId::new("raw_seal_sign", n), &n, |b, _| {
            let mut rng = VectorRng::new(b"seal");
            b.iter(|| {
                hpke_pks[..n]
                    .iter()
                    .map(|pk| {
                        let (enc, ct) = hpke::single_shot_seal_with_rng::<Aead, Kdf, Kem>(
                            &OpModeS::Base,
                            pk,
                            &info,
                            &pt,
                            &aad,
                            &mut rng,
                        )
                        .unwrap();
                        let mut m = aad.to_vec();
                        m.extend_from_slice(&enc.to_bytes());
                        m.extend_from_slice(&ct);
                        let sig = alice_raw.sign(&m);
                        (m, sig)
                    })
                    .collect::<Vec<_>>()
            })
        });
    }
    g.sample_size(100);

    let bob = &members[0];
    let share = seal_shares_with_rng(
        &alice,
        &room,
        1,
        &key,
        &[bob.public()],
        &mut VectorRng::new(b"x"),
    )
    .unwrap()
    .remove(0)
    .to_bytes();
    g.bench_function("open_share", |b| {
        b.iter(|| open_share(black_box(&share), bob, alice.public(), &room, 1).unwrap())
    });

    let (sk_r, pk_r) = Kem::derive_keypair(&[9; 32]);
    let (enc, ct) = hpke::single_shot_seal_with_rng::<Aead, Kdf, Kem>(
        &OpModeS::Base,
        &pk_r,
        &info,
        &pt,
        &aad,
        &mut VectorRng::new(b"y"),
    )
    .unwrap();
    let signed = [&aad[..], &enc.to_bytes(), &ct].concat();
    let sig = alice_raw.sign(&signed);
    let vk = alice_raw.verifying_key();
    g.bench_function("raw_open_verify", |b| {
        b.iter(|| {
            vk.verify_strict(black_box(&signed), &sig).unwrap();
            hpke::single_shot_open::<Aead, Kdf, Kem>(
                &OpModeR::Base,
                &sk_r,
                &enc,
                &info,
                black_box(&ct),
                &aad,
            )
            .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
