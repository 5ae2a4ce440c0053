//! A whole 1:1 chat, run natively by `cargo test` and on
//! `wasm32-unknown-unknown` under Node by `.ci/run` (wasm-bindgen-test):
//!
//! ```sh
//! CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
//!   cargo test --target wasm32-unknown-unknown --no-default-features \
//!   --features wasm_js,testing --test wasm
//! ```
//!
//! On wasm the OS RNG is `crypto.getRandomValues` (the `wasm_js` feature).
//! `std::time::SystemTime::now()` traps on `wasm32-unknown-unknown`, so the
//! room calls here pass the clock explicitly (`*_with_rng`, `*_at`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use secret_chat::testing::VectorRng;
use secret_chat::{
    IdentityKeyPair, MemberId, PairVerification, Room, RoomId, StorageKey, room::RotationPolicy,
};

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

const NOW: u64 = 1_800_000_000;

/// The OS RNG works (and differs call to call): identities, room ids and
/// storage keys from the default, non-`_with_rng` constructors.
#[test]
fn os_rng_backed_constructors() {
    let (a, b) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    assert_ne!(a.public(), b.public());
    assert_ne!(RoomId::random(), RoomId::random());
    assert_ne!(
        *StorageKey::generate().to_bytes(),
        *StorageKey::generate().to_bytes()
    );
}

#[test]
fn one_to_one_chat_with_an_explicit_clock() {
    // Share keys created at NOW, so the room's clock and theirs agree.
    let mut keys = VectorRng::new(b"wasm identities");
    let (alice, bob) = (
        IdentityKeyPair::generate_at(NOW, &mut keys),
        IdentityKeyPair::generate_at(NOW, &mut keys),
    );
    let (a, b) = (
        MemberId::new(b"alice").unwrap(),
        MemberId::new(b"bob").unwrap(),
    );
    let members = [(a.clone(), alice.bundle()), (b.clone(), bob.bundle())];
    let id = RoomId::random();
    let mut rng = VectorRng::new(b"wasm");
    let policy = RotationPolicy::default();
    let options = secret_chat::RoomOptions {
        rotation: policy,
        ..Default::default()
    };
    let (mut at_alice, to_bob) = Room::create_with_rng(
        &alice,
        id.clone(),
        a.clone(),
        &members,
        &options,
        NOW,
        &mut rng,
    )
    .unwrap();
    let welcome = at_alice.welcome(&alice).unwrap();
    let (mut at_bob, to_alice) =
        Room::join_with_rng(&bob, b.clone(), &id, &welcome, policy, NOW, &mut rng).unwrap();
    at_bob
        .receive_share_at(&bob, &to_bob[0].bytes, NOW)
        .unwrap();
    at_alice
        .receive_share_at(&alice, &to_alice[0].bytes, NOW)
        .unwrap();

    let sent = at_alice
        .encrypt_with_rng(&alice, b"hi from wasm", NOW, &mut rng)
        .unwrap();
    let got = at_bob.decrypt_at(&sent.message, NOW).unwrap();
    assert_eq!(got.sender, a);
    assert_eq!(got.plaintext(), b"hi from wasm");
    assert!(at_bob.decrypt_at(&sent.message, NOW).is_err(), "replay");

    // State at rest round-trips (the export draws its nonce from the OS RNG).
    let key = StorageKey::generate();
    let blob = at_bob.export(&key).unwrap();
    let mut restored = Room::import(&blob, &key).unwrap();
    let again = at_alice
        .encrypt_with_rng(&alice, b"after restore", NOW, &mut rng)
        .unwrap();
    assert_eq!(
        restored
            .decrypt_at(&again.message, NOW)
            .unwrap()
            .plaintext(),
        b"after restore"
    );

    // Both sides see the same public key image.
    let on_alice: PairVerification = at_alice.verification(&b).unwrap();
    let on_bob = at_bob.verification(&a).unwrap();
    assert_eq!(on_alice.numeric_code(), on_bob.numeric_code());
    on_alice
        .verify_scanned(&on_bob.payload().to_bytes())
        .unwrap();
}
