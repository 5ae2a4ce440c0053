//! Message encryption (protocol v2) against the raw primitives of its
//! design, in the same run.
//!
//! Baselines over the same sizes:
//! - `raw v2 encrypt` = salted HKDF-SHA256 to 76 bytes (key, nonce,
//!   commitment) + AES-256-GCM encrypt + SHA-256 of the ciphertext + Ed25519
//!   sign of the digest;
//! - `raw v2 decrypt` = the same HKDF + constant-time commitment compare +
//!   SHA-256 + `verify_strict` of the digest + AES-256-GCM decrypt;
//! - `raw aes-gcm encrypt + decrypt` for the pairwise goal.
//!
//! The crate's figures include everything: salt from the OS RNG, ratchet
//! step, HKDF, padding, header, allocation of the output, signature input,
//! and (decrypt) wiping the plaintext when it is dropped. Ratios are what
//! `docs/PERFORMANCE.md` records.
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
use subtle::ConstantTimeEq;

const SIZES: [usize; 4] = [64, 1024, 16 * 1024, 1024 * 1024];
const BINDING: [u8; 32] = [0xb1; 32];

fn aes_encrypt(cipher: &Aes256Gcm, nonce: &[u8; 12], buf: &mut [u8]) -> [u8; 16] {
    cipher
        .encrypt_inout_detached(&(*nonce).into(), b"header", buf.into())
        .unwrap()
        .into()
}

/// The counterpart of [`aes_encrypt`]: same nonce and associated data.
fn aes_decrypt(cipher: &Aes256Gcm, nonce: &[u8; 12], buf: &mut [u8], tag: &[u8; 16]) {
    cipher
        .decrypt_inout_detached(&(*nonce).into(), b"header", buf.into(), &(*tag).into())
        .unwrap();
}

/// The v2 per-message derivation with the raw hkdf crate.
fn hkdf76(seed: &[u8; 32], salt: &[u8; 16]) -> [u8; 76] {
    let mut okm = [0u8; 76];
    hkdf::Hkdf::<Sha256>::new(Some(salt), seed)
        .expand_multi_info(&[b"secret-chat/v2/message-key", &BINDING], &mut okm)
        .unwrap();
    okm
}

fn raw(c: &mut Criterion) {
    let signer = SigningKey::from_bytes(&[2u8; 32]);
    let verifier = signer.verifying_key();
    let (seed, salt) = ([3u8; 32], [4u8; 16]);
    let mut g = c.benchmark_group("message");
    for &n in &SIZES {
        g.throughput(Throughput::Bytes(n as u64));
        let pt = vec![0x5au8; n];
        g.bench_with_input(BenchmarkId::new("raw v2 encrypt", n), &n, |b, _| {
            let mut buf = pt.clone();
            b.iter(|| {
                let okm = hkdf76(&seed, &salt);
                let cipher = Aes256Gcm::new_from_slice(&okm[..32]).unwrap();
                let tag = aes_encrypt(&cipher, &okm[32..44].try_into().unwrap(), &mut buf);
                let digest = Sha256::digest(&buf);
                black_box((tag, signer.sign(&digest)))
            })
        });
        // A genuine (ciphertext, tag, signature) under the derived key.
        let okm = hkdf76(&seed, &salt);
        let nonce: [u8; 12] = okm[32..44].try_into().unwrap();
        let cipher = Aes256Gcm::new_from_slice(&okm[..32]).unwrap();
        let mut ct = pt.clone();
        let tag = aes_encrypt(&cipher, &nonce, &mut ct);
        let sig = signer.sign(&Sha256::digest(&ct));
        let commitment: [u8; 32] = okm[44..].try_into().unwrap();
        g.bench_with_input(BenchmarkId::new("raw v2 decrypt", n), &n, |b, _| {
            b.iter_batched_ref(
                || ct.clone(),
                |buf| {
                    let okm = hkdf76(&seed, &salt);
                    assert!(bool::from(okm[44..].ct_eq(&commitment)));
                    let digest = Sha256::digest(&*buf);
                    verifier.verify_strict(&digest, &sig).unwrap();
                    let cipher = Aes256Gcm::new_from_slice(&okm[..32]).unwrap();
                    aes_decrypt(&cipher, &okm[32..44].try_into().unwrap(), buf, &tag);
                },
                BatchSize::SmallInput,
            )
        });
        g.bench_with_input(
            BenchmarkId::new("raw aes-gcm encrypt + decrypt", n),
            &n,
            |b, _| {
                let mut buf = pt.clone();
                b.iter(|| {
                    let tag = aes_encrypt(&cipher, &nonce, &mut buf);
                    aes_decrypt(&cipher, &nonce, &mut buf, &tag);
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
                BINDING,
                0,
                &mut VectorRng::new(b"bench"),
            );
            let share = out.share();
            let wire = out.encrypt(&pt).unwrap();
            if mode == SenderKeyMode::Signed {
                g.bench_with_input(
                    BenchmarkId::new(format!("{label} encrypt"), n),
                    &n,
                    |b, _| b.iter(|| black_box(out.encrypt(&pt).unwrap())),
                );
                // The plaintext is dropped (and wiped) inside the timing.
                g.bench_with_input(
                    BenchmarkId::new(format!("{label} decrypt"), n),
                    &n,
                    |b, _| {
                        b.iter_batched_ref(
                            || {
                                InboundSenderKey::new(room.clone(), 1, share.clone(), BINDING)
                                    .unwrap()
                            },
                            |inb| {
                                let d = inb.decrypt(&Message::from_bytes(&wire).unwrap()).unwrap();
                                black_box(d.plaintext().len());
                            },
                            BatchSize::SmallInput,
                        )
                    },
                );
            } else if n <= 16 * 1024 {
                g.bench_with_input(BenchmarkId::new("pairwise encrypt", n), &n, |b, _| {
                    b.iter(|| black_box(out.encrypt(&pt).unwrap()))
                });
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
                                    BINDING,
                                    0,
                                    &mut VectorRng::new(b"pw"),
                                );
                                let i = InboundSenderKey::new(room.clone(), 1, o.share(), BINDING)
                                    .unwrap();
                                (o, i)
                            },
                            |(o, i)| {
                                let w = o.encrypt(&pt).unwrap();
                                let d = i.decrypt(&Message::from_bytes(&w).unwrap()).unwrap();
                                black_box(d.plaintext().len());
                            },
                            BatchSize::SmallInput,
                        )
                    },
                );
            }
        }
    }
    // Fixed costs per message, for the breakdown in docs/PERFORMANCE.md.
    g.throughput(Throughput::Elements(1));
    g.bench_function("fixed: salted hkdf to 76 bytes", |b| {
        b.iter(|| black_box(hkdf76(black_box(&seed), &salt)))
    });
    g.bench_function("fixed: 16-byte salt from the OS RNG", |b| {
        b.iter(|| {
            let mut s = [0u8; 16];
            getrandom::fill(&mut s).unwrap();
            black_box(s)
        })
    });
    g.bench_function("fixed: ratchet step + salted hkdf", |b| {
        b.iter(|| {
            black_box(secret_chat::testing::derive_message_keys(
                &seed, &salt, &BINDING,
            ))
        })
    });
    // Wiping a 1 MiB plaintext: element by element with volatile writes
    // (what v1's wipe amounted to) against zeroize's bulk slice path (v2).
    let mut big = vec![0x5au8; 1024 * 1024];
    g.throughput(Throughput::Bytes(big.len() as u64));
    g.bench_function("wipe 1 MiB: volatile byte writes (v1)", |b| {
        b.iter(|| {
            for x in big.iter_mut() {
                // One volatile write per byte (`u8::zeroize`).
                zeroize::Zeroize::zeroize(x);
            }
        })
    });
    g.bench_function("wipe 1 MiB: zeroize bulk slice (v2)", |b| {
        b.iter(|| zeroize::Zeroize::zeroize(black_box(&mut big[..])))
    });
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
