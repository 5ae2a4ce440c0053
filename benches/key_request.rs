//! Key requests (recovery) against the raw primitives, in the same run.
//!
//! For each suite (X25519, X-Wing), in a three-member group room:
//! - `answer (re-share)`: the owner answers a genuine request with a
//!   re-share of its current key (parse, checks, `verify_strict`, limiter,
//!   then the re-share);
//! - `answer (forged, refused)`: a request with a bad signature (parse,
//!   checks, `verify_strict`, refused);
//! - baselines: raw `verify_strict` of a request-sized message
//!   (`ed25519-dalek`), `Room::reshare_with_rng` alone (what the answer does
//!   after its checks), and a raw `hpke` seal + Ed25519 sign of a
//!   share-sized plaintext (the primitives of one re-share).
//!
//! `cargo bench -p secret-chat-benches --bench key_request`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey};
use hpke::{Deserializable, Kem, OpModeS, Serializable};
use secret_chat::testing::VectorRng;
use secret_chat::{
    IdentityKeyPair, KeyRequestAnswer, MemberId, Room, RoomId, RoomOptions, RotationPolicy, Suite,
};
use std::cell::Cell;
use std::hint::black_box;
use std::time::Duration;

type Aead = hpke::aead::AesGcm256;
type Kdf = hpke::kdf::HkdfSha256;

const T0: u64 = 1_700_000_000;
/// The share keys' creation time: far after every clock the bench uses, so
/// they stay fresh however many minutes the answer loop advances.
const SHARE_KEYS_AT: u64 = T0 + 3_000_000_000;

fn m(n: &str) -> MemberId {
    MemberId::new(n.as_bytes()).unwrap()
}

struct Setup {
    alice: IdentityKeyPair,
    carol: IdentityKeyPair,
    at_alice: Room,
    at_carol: Room,
    message: Vec<u8>,
}

/// Alice, bob and carol; carol never got alice's share.
fn setup(suite: Suite) -> Setup {
    let ids: Vec<IdentityKeyPair> = ["alice", "bob", "carol"]
        .iter()
        .map(|n| IdentityKeyPair::generate_at(SHARE_KEYS_AT, &mut VectorRng::new(n.as_bytes())))
        .collect();
    let members: Vec<_> = ["alice", "bob", "carol"]
        .iter()
        .zip(&ids)
        .map(|(n, id)| (m(n), id.bundle()))
        .collect();
    let room = RoomId::new(b"bench-key-request").unwrap();
    let (mut at_alice, _) = Room::create_with_rng(
        &ids[0],
        room.clone(),
        m("alice"),
        &members,
        &RoomOptions {
            suite,
            ..RoomOptions::default()
        },
        T0,
        &mut VectorRng::new(b"create"),
    )
    .unwrap();
    let welcome = at_alice.welcome(&ids[0]).unwrap();
    let (at_carol, _) = Room::join_with_rng(
        &ids[2],
        m("carol"),
        &room,
        &welcome,
        RotationPolicy::default(),
        T0,
        &mut VectorRng::new(b"join"),
    )
    .unwrap();
    let message = at_alice
        .encrypt_with_rng(&ids[0], b"x", T0, &mut VectorRng::new(b"send"))
        .unwrap()
        .message;
    let mut ids = ids.into_iter();
    let alice = ids.next().unwrap();
    let carol = ids.nth(1).unwrap();
    Setup {
        alice,
        carol,
        at_alice,
        at_carol,
        message,
    }
}

fn raw_seal_sign<K: Kem>(pk: &K::PublicKey, signer: &SigningKey, rng: &mut VectorRng) {
    let pt = [0x42u8; 153];
    let (enc, ct) = hpke::single_shot_seal_with_rng::<Aead, Kdf, K>(
        &OpModeS::Base,
        pk,
        &[0x11; 150],
        &pt,
        &[0x22; 200],
        rng,
    )
    .unwrap();
    black_box(signer.sign(&ct));
    black_box((enc.to_bytes(), ct));
}

fn bench_suite<K: Kem>(c: &mut Criterion, suite: Suite, name: &str) {
    let mut s = setup(suite);
    let mut g = c.benchmark_group(format!("key_request/{name}"));
    // Every answer one interval after the last, so the limiter never refuses.
    let t = Cell::new(T0);
    g.bench_function("answer (re-share)", |b| {
        b.iter_batched(
            || {
                t.set(t.get() + 60);
                let req = s
                    .at_carol
                    .request_key_at(&s.carol, &m("alice"), &s.message, t.get())
                    .unwrap();
                (req.bytes, t.get())
            },
            |(req, now)| {
                let a = s
                    .at_alice
                    .answer_key_request_with_rng(&s.alice, &req, now, &mut VectorRng::new(b"a"))
                    .unwrap();
                assert!(matches!(a, KeyRequestAnswer::Reshared { .. }));
                black_box(a)
            },
            BatchSize::SmallInput,
        )
    });
    let mut forged = s
        .at_carol
        .request_key_at(&s.carol, &m("alice"), &s.message, T0)
        .unwrap()
        .bytes;
    let last = forged.len() - 1;
    forged[last] ^= 1;
    g.bench_function("answer (forged, refused)", |b| {
        b.iter(|| {
            black_box(
                s.at_alice
                    .answer_key_request_with_rng(&s.alice, &forged, T0, &mut VectorRng::new(b"a"))
                    .unwrap_err(),
            )
        })
    });
    // Baselines.
    let signer = SigningKey::from_bytes(&[9; 32]);
    let msg = [0x33u8; 36 + 170];
    let sig = signer.sign(&msg);
    let vk = signer.verifying_key();
    g.bench_function("raw verify_strict", |b| {
        b.iter(|| vk.verify_strict(black_box(&msg), &sig).unwrap())
    });
    g.bench_function("Room::reshare", |b| {
        b.iter(|| {
            black_box(
                s.at_alice
                    .reshare_with_rng(&s.alice, &m("carol"), T0, &mut VectorRng::new(b"r"))
                    .unwrap(),
            )
        })
    });
    let pk =
        K::PublicKey::from_bytes(s.carol.bundle().share_key(suite).unwrap().public_key()).unwrap();
    let mut rng = VectorRng::new(b"raw");
    g.bench_function("raw hpke seal + sign", |b| {
        b.iter(|| raw_seal_sign::<K>(&pk, &signer, &mut rng))
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    bench_suite::<hpke::kem::X25519HkdfSha256>(c, Suite::X25519, "x25519");
    bench_suite::<hpke::kem::XWing>(c, Suite::XWing, "xwing");
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = bench
}
criterion_main!(benches);
