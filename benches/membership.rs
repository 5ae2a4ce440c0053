//! The membership log against the raw primitives, in the same run.
//!
//! - verifying a log of a 2-member genesis + 998 additions (a 1000-member
//!   room grown one by one) with `Membership::from_log`, against 999 raw
//!   `verify_strict` calls over messages of the same size, and against 999 x
//!   (`verify_strict` + one point decompression + one SHA-256 of the op);
//! - verifying a welcome whose genesis lists 1000 members (one signature,
//!   1000 identity keys to decompress and check), against 1 `verify_strict`
//!   and against 1 `verify_strict` + 1000 point decompressions;
//! - applying one received addition to the 1000-member state (the common
//!   case: its parents are my heads), against 1 `verify_strict`; the first
//!   operation after a clone / load also grows the node vector;
//! - applying 50 additions in a row (amortised), against 50 `verify_strict`;
//! - applying one concurrent addition (its parents are not my heads: the
//!   membership of its causal past is recomputed) to the same state;
//! - the membership digest of 1000 members, against one raw SHA-256 over the
//!   same bytes.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use secret_chat::membership::{Genesis, IdentityKey, Membership, RoomPolicy};
use secret_chat::testing::VectorRng;
use secret_chat::{IdentityKeyPair, MemberId, RoomId};
use sha2::{Digest, Sha256};
use std::hint::black_box;
use std::time::Duration;

const N: usize = 1000;

fn ids(n: usize) -> Vec<(IdentityKeyPair, MemberId)> {
    let mut rng = VectorRng::new(b"bench-membership");
    (0..n)
        .map(|i| {
            (
                IdentityKeyPair::generate_with_rng(&mut rng),
                MemberId::new(format!("member-{i:04}@example.org").as_bytes()).unwrap(),
            )
        })
        .collect()
}

fn room() -> RoomId {
    RoomId::new(b"bench-room-0123456789abcdef").unwrap()
}

/// A 2-member genesis grown to N members by additions (each member adds
/// the next one, so every operation is by a different author).
fn grown(people: &[(IdentityKeyPair, MemberId)]) -> Membership {
    let g = Genesis::create(
        &people[0].0,
        &room(),
        2,
        RoomPolicy::default(),
        &people[0].1,
        &[
            (people[0].1.clone(), IdentityKey::of(&people[0].0)),
            (people[1].1.clone(), IdentityKey::of(&people[1].0)),
        ],
        &[],
    )
    .unwrap();
    let mut m = Membership::new(g);
    for i in 2..people.len() {
        let (by, _) = &people[i - 1];
        let (new, id) = &people[i];
        m.add(by, id, &IdentityKey::of(new)).unwrap();
    }
    m
}

fn big_genesis(people: &[(IdentityKeyPair, MemberId)]) -> Membership {
    let members: Vec<_> = people
        .iter()
        .map(|(k, id)| (id.clone(), IdentityKey::of(k)))
        .collect();
    let g = Genesis::create(
        &people[0].0,
        &room(),
        2,
        RoomPolicy::default(),
        &people[0].1,
        &members,
        &[],
    )
    .unwrap();
    Membership::new(g)
}

fn bench(c: &mut Criterion) {
    let all = ids(N + 2 + 50);
    let (people, later) = all.split_at(N + 2);
    let (extra, extra_id) = (&people[N].0, &people[N].1);
    let (extra2, extra2_id) = (&people[N + 1].0, &people[N + 1].1);
    let people = &people[..N];

    // Raw baselines: N-1 signatures over ~170-byte messages (an addition's
    // signature input), verified strictly.
    let raw: Vec<(VerifyingKey, Vec<u8>, Signature)> = (0..N - 1)
        .map(|i| {
            let seed: [u8; 32] = Sha256::digest((i as u64).to_be_bytes()).into();
            let sk = SigningKey::from_bytes(&seed);
            let msg = vec![i as u8; 170];
            let sig = sk.sign(&msg);
            (sk.verifying_key(), msg, sig)
        })
        .collect();
    let raw_keys: Vec<[u8; 32]> = raw.iter().map(|(k, _, _)| k.to_bytes()).collect();

    let log_m = grown(people);
    let log = log_m.to_log();
    let genesis_m = big_genesis(people);
    let welcome = genesis_m.to_log();

    let mut g = c.benchmark_group("membership");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);

    g.bench_function("verify_log_998_adds", |b| {
        b.iter(|| Membership::from_log(black_box(&log), &room()).unwrap())
    });
    g.bench_function("raw_verify_strict_x999", |b| {
        b.iter(|| {
            for (k, m, s) in &raw {
                k.verify_strict(black_box(m), s).unwrap();
            }
        })
    });
    g.bench_function("raw_decompress_verify_sha_x999", |b| {
        b.iter(|| {
            for ((_, m, s), kb) in raw.iter().zip(&raw_keys) {
                let k = VerifyingKey::from_bytes(black_box(kb)).unwrap();
                black_box(Sha256::digest(m));
                k.verify_strict(black_box(m), s).unwrap();
            }
        })
    });

    g.bench_function("verify_genesis_1000_members", |b| {
        b.iter(|| Membership::from_log(black_box(&welcome), &room()).unwrap())
    });
    g.bench_function("raw_verify_strict_x1", |b| {
        let (k, m, s) = &raw[0];
        b.iter(|| k.verify_strict(black_box(m), s).unwrap())
    });
    g.bench_function("raw_verify_plus_decompress_x1000", |b| {
        let (k, m, s) = &raw[0];
        b.iter(|| {
            k.verify_strict(black_box(m), s).unwrap();
            for kb in raw_keys.iter().chain(raw_keys.iter().take(1)) {
                black_box(VerifyingKey::from_bytes(black_box(kb)).unwrap());
            }
        })
    });

    // One received addition on top of the grown 1000-member state.
    let op = {
        let mut sender = log_m.clone();
        sender
            .add(&people[5].0, extra_id, &IdentityKey::of(extra))
            .unwrap()
            .bytes()
            .to_vec()
    };
    // 50 received additions in a row (amortised cost per operation).
    let fifty: Vec<Vec<u8>> = {
        let mut sender = log_m.clone();
        let mut by = &people[N - 1].0;
        let _ = &later;
        later
            .iter()
            .map(|(k, id)| {
                let op = sender
                    .add(by, id, &IdentityKey::of(k))
                    .unwrap()
                    .bytes()
                    .to_vec();
                by = k;
                op
            })
            .collect()
    };
    g.bench_function("apply_50_adds_1000_members", |b| {
        b.iter_batched(
            || log_m.clone(),
            |mut m| {
                for op in &fifty {
                    m.receive(black_box(op)).unwrap();
                }
                m
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("raw_verify_strict_x50", |b| {
        b.iter(|| {
            for (k, m, s) in &raw[..50] {
                k.verify_strict(black_box(m), s).unwrap();
            }
        })
    });
    g.bench_function("apply_one_add_1000_members", |b| {
        b.iter_batched(
            || log_m.clone(),
            |mut m| {
                m.receive(black_box(&op)).unwrap();
                m
            },
            BatchSize::LargeInput,
        )
    });
    // A concurrent one: made on a state that lacks the last 100 additions,
    // received by the full state (its causal past is recomputed).
    let concurrent = {
        let mut partial = Membership::from_log(&truncate_log(&log, N - 2 - 100), &room()).unwrap();
        partial
            .add(&people[5].0, extra2_id, &IdentityKey::of(extra2))
            .unwrap()
            .bytes()
            .to_vec()
    };
    g.bench_function("apply_one_concurrent_add_1000_members", |b| {
        b.iter_batched(
            || log_m.clone(),
            |mut m| {
                m.receive(black_box(&concurrent)).unwrap();
                m
            },
            BatchSize::LargeInput,
        )
    });

    // The digest of 1000 members against one SHA-256 over the same bytes.
    let digest_input: Vec<u8> = {
        let mut v = Vec::new();
        for (id, k, inst) in genesis_m.members() {
            v.extend_from_slice(&(id.as_bytes().len() as u16).to_be_bytes());
            v.extend_from_slice(id.as_bytes());
            v.extend_from_slice(k.as_bytes());
            v.extend_from_slice(inst.as_bytes());
        }
        v
    };
    g.bench_function("digest_1000_members", |b| {
        b.iter(|| black_box(&genesis_m).digest())
    });
    g.bench_function("raw_sha256_same_bytes", |b| {
        b.iter(|| Sha256::digest(black_box(&digest_input)))
    });
    g.finish();
}

/// The log with only its first `keep` operations (they are in causal order).
fn truncate_log(log: &[u8], keep: usize) -> Vec<u8> {
    let glen = u32::from_be_bytes(log[2..6].try_into().unwrap()) as usize;
    let mut at = 6 + glen + 4;
    for _ in 0..keep {
        let l = u16::from_be_bytes(log[at..at + 2].try_into().unwrap()) as usize;
        at += 2 + l;
    }
    let mut out = log[..at].to_vec();
    out[6 + glen..6 + glen + 4].copy_from_slice(&(keep as u32).to_be_bytes());
    out
}

criterion_group!(benches, bench);
criterion_main!(benches);
