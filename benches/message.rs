//! Message encryption against the raw primitives, in the same run.
//!
//! Baselines: AES-256-GCM encrypt / decrypt, Ed25519 sign / verify_strict and
//! SHA-256 over the same sizes. Ratios are what `docs/PERFORMANCE.md` records.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey};
use secret_chat::testing::VectorRng;
use secret_chat::{InboundSenderKey, Message, OutboundSenderKey, RoomId, SenderKeyMode};
use sha2::{Digest, Sha256};
use std::hint::black_box;
use std::time::Duration;

const SIZES: [usize; 4] = [64, 1024, 16 * 1024, 1024 * 1024];

fn aes_encrypt(cipher: &Aes256Gcm, buf: &mut [u8]) -> [u8; 16] {
    cipher
        .encrypt_inout_detached(&[7u8; 12].into(), b"header", buf.into())
        .unwrap()
        .into()
}

/// The counterpart of [`aes_encrypt`]: same nonce and associated data.
fn aes_decrypt(cipher: &Aes256Gcm, buf: &mut [u8], tag: &[u8; 16]) {
    cipher
        .decrypt_inout_detached(&[7u8; 12].into(), b"header", buf.into(), &(*tag).into())
        .unwrap();
}

fn raw(c: &mut Criterion) {
    let cipher = Aes256Gcm::new(&[1u8; 32].into());
    let signer = SigningKey::from_bytes(&[2u8; 32]);
    let verifier = signer.verifying_key();
    let mut g = c.benchmark_group("message");
    for &n in &SIZES {
        g.throughput(Throughput::Bytes(n as u64));
        let pt = vec![0x5au8; n];
        g.bench_with_input(BenchmarkId::new("raw aes-gcm encrypt", n), &n, |b, _| {
            let mut buf = pt.clone();
            b.iter(|| black_box(aes_encrypt(&cipher, &mut buf)))
        });
        g.bench_with_input(
            BenchmarkId::new("raw ed25519 sign + aes-gcm encrypt", n),
            &n,
            |b, _| {
                let mut buf = pt.clone();
                b.iter(|| {
                    let tag = aes_encrypt(&cipher, &mut buf);
                    black_box((tag, signer.sign(&buf)))
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("raw aes-gcm + sha256 + sign", n),
            &n,
            |b, _| {
                let mut buf = pt.clone();
                b.iter(|| {
                    let tag = aes_encrypt(&cipher, &mut buf);
                    let digest = Sha256::digest(&buf);
                    black_box((tag, signer.sign(&digest)))
                })
            },
        );
        // verify_strict + decrypt of a genuine (ciphertext, tag, signature).
        let mut ct = pt.clone();
        let tag = aes_encrypt(&cipher, &mut ct);
        let sig = signer.sign(&ct);
        g.bench_with_input(
            BenchmarkId::new("raw verify_strict + aes-gcm decrypt", n),
            &n,
            |b, _| {
                b.iter_batched_ref(
                    || ct.clone(),
                    |buf| {
                        verifier.verify_strict(buf, &sig).unwrap();
                        aes_decrypt(&cipher, buf, &tag);
                    },
                    BatchSize::SmallInput,
                )
            },
        );
        g.bench_with_input(
            BenchmarkId::new("raw aes-gcm encrypt + decrypt", n),
            &n,
            |b, _| {
                let mut buf = pt.clone();
                b.iter(|| {
                    let tag = aes_encrypt(&cipher, &mut buf);
                    aes_decrypt(&cipher, &mut buf, &tag);
                })
            },
        );

        for mode in [SenderKeyMode::Signed, SenderKeyMode::Pairwise] {
            let label = match mode {
                SenderKeyMode::Signed => "group",
                SenderKeyMode::Pairwise => "pairwise",
            };
            let room = RoomId::new(b"bench-room").unwrap();
            let mut out = OutboundSenderKey::new_with_rng(
                room.clone(),
                1,
                mode,
                &mut VectorRng::new(b"bench"),
            );
            let share = out.share();
            let wire = out.encrypt(&pt).unwrap();
            g.bench_with_input(
                BenchmarkId::new(format!("{label} encrypt"), n),
                &n,
                |b, _| b.iter(|| black_box(out.encrypt(&pt).unwrap())),
            );
            g.bench_with_input(
                BenchmarkId::new(format!("{label} decrypt"), n),
                &n,
                |b, _| {
                    b.iter_batched_ref(
                        || InboundSenderKey::new(room.clone(), 1, share.clone()),
                        |inb| black_box(inb.decrypt(&Message::from_bytes(&wire).unwrap()).unwrap()),
                        BatchSize::SmallInput,
                    )
                },
            );
            if mode == SenderKeyMode::Pairwise {
                g.bench_with_input(
                    BenchmarkId::new("pairwise encrypt + decrypt", n),
                    &n,
                    |b, _| {
                        b.iter_batched_ref(
                            || {
                                let o = OutboundSenderKey::new_with_rng(
                                    room.clone(),
                                    1,
                                    mode,
                                    &mut VectorRng::new(b"pw"),
                                );
                                let i = InboundSenderKey::new(room.clone(), 1, o.share());
                                (o, i)
                            },
                            |(o, i)| {
                                let w = o.encrypt(&pt).unwrap();
                                black_box(i.decrypt(&Message::from_bytes(&w).unwrap()).unwrap())
                            },
                            BatchSize::SmallInput,
                        )
                    },
                );
            }
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = raw
}
criterion_main!(benches);
