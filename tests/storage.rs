//! State at rest through the public API: export -> import changes nothing a
//! conversation can observe; every damaged blob and a wrong key are typed
//! errors; the published storage vector.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit};
use common::{hex, unhex};
use proptest::prelude::*;
use rand_core::Rng;
use secret_chat::labels::{STORAGE, STORAGE_KIND_IDENTITY, STORAGE_KIND_ROOM, STORAGE_VERSION};
use secret_chat::room::{OutgoingShare, RotationPolicy};
use secret_chat::storage::{ENVELOPE_HEADER_LEN, ENVELOPE_OVERHEAD};
use secret_chat::testing::VectorRng;
use secret_chat::{
    DecodeError, DeviceBundle, Error, IdentityKeyPair, MemberId, Room, RoomId, StorageKey,
};
use serde_json::{Value, json};

struct Device {
    name: MemberId,
    identity: IdentityKeyPair,
    rng: VectorRng,
}

impl Device {
    fn new(name: &str) -> Self {
        let mut rng = VectorRng::new(name.as_bytes());
        Self {
            name: MemberId::new(name.as_bytes()).unwrap(),
            identity: IdentityKeyPair::generate_at(1_000, &mut rng),
            rng,
        }
    }

    fn entry(&self) -> (MemberId, DeviceBundle) {
        (self.name.clone(), self.identity.bundle())
    }
}

/// Three (or more) devices in one room, every initial share delivered.
struct World {
    devices: Vec<Device>,
    rooms: Vec<Room>,
}

fn world(names: &[&str], policy: RotationPolicy) -> World {
    let mut devices: Vec<Device> = names.iter().map(|n| Device::new(n)).collect();
    let members: Vec<_> = devices.iter().map(Device::entry).collect();
    let opts = secret_chat::RoomOptions {
        rotation: policy,
        ..Default::default()
    };
    let mut rooms = Vec::new();
    let mut all_shares = Vec::new();
    let d0 = &mut devices[0];
    let (r0, s0) = Room::create_with_rng(
        &d0.identity,
        RoomId::new(b"stored room").unwrap(),
        d0.name.clone(),
        &members,
        &opts,
        1_000,
        &mut d0.rng,
    )
    .unwrap();
    let welcome = r0.welcome(&d0.identity).unwrap();
    rooms.push(r0);
    all_shares.push((d0.name.clone(), s0));
    for d in devices.iter_mut().skip(1) {
        let (r, s) = Room::join_with_rng(
            &d.identity,
            d.name.clone(),
            &RoomId::new(b"stored room").unwrap(),
            &welcome,
            policy,
            1_000,
            &mut d.rng,
        )
        .unwrap();
        rooms.push(r);
        all_shares.push((d.name.clone(), s));
    }
    let mut w = World { devices, rooms };
    for (from, shares) in &all_shares {
        w.deliver_shares(from, shares, 1_000);
    }
    w
}

impl World {
    fn index_of(&self, name: &MemberId) -> usize {
        self.devices.iter().position(|d| d.name == *name).unwrap()
    }

    fn deliver_shares(&mut self, from: &MemberId, shares: &[OutgoingShare], now: u64) -> String {
        let mut log = String::new();
        for s in shares {
            let i = self.index_of(&s.to);
            let r = self.rooms[i].receive_share_at(&self.devices[i].identity, &s.bytes, now);
            log.push_str(&format!("share {:?}->{:?}: {r:?}; ", from, s.to));
        }
        log
    }

    /// Replaces every identity and room by `import(export(..))`, checking
    /// that the state encoding is canonical on the way.
    fn export_import(&mut self, key: &StorageKey, nonce_seed: &[u8]) {
        for (d, room) in self.devices.iter_mut().zip(self.rooms.iter_mut()) {
            let blob = d
                .identity
                .export_with_rng(key, &mut VectorRng::new(nonce_seed))
                .unwrap();
            d.identity = IdentityKeyPair::import(&blob, key).unwrap();
            let again = d
                .identity
                .export_with_rng(key, &mut VectorRng::new(nonce_seed))
                .unwrap();
            assert_eq!(blob, again, "identity encoding is not canonical");

            let blob = room
                .export_with_rng(key, &mut VectorRng::new(nonce_seed))
                .unwrap();
            *room = Room::import(&blob, key).unwrap();
            let again = room
                .export_with_rng(key, &mut VectorRng::new(nonce_seed))
                .unwrap();
            assert_eq!(blob, again, "room encoding is not canonical");
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// A member sends; its rotation shares (if any) are delivered at once.
    Send(usize),
    /// One pending (message, recipient) pair is delivered.
    Deliver(usize),
    /// One already delivered pair is delivered again.
    Redeliver(usize),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..3).prop_map(Op::Send),
        any::<usize>().prop_map(Op::Deliver),
        any::<usize>().prop_map(Op::Deliver),
        any::<usize>().prop_map(Op::Redeliver),
    ]
}

/// A delivery: recipient index and message bytes.
type Delivery = (usize, Vec<u8>);

/// Runs `ops` (then delivers everything left), exporting and importing every
/// device at step `export_at` if given; returns what the devices observed.
fn run(ops: &[Op], export_at: Option<usize>) -> (Vec<String>, World) {
    let policy = RotationPolicy {
        max_messages: 3,
        ..RotationPolicy::default()
    };
    let mut w = world(&["alice", "bob", "carol"], policy);
    let key = StorageKey::from_bytes([7; 32]);
    let mut pending: Vec<Delivery> = Vec::new();
    let mut delivered: Vec<Delivery> = Vec::new();
    let mut log = Vec::new();
    let mut counter = 0u32;
    for (t, op) in ops
        .iter()
        .map(Some)
        .chain(core::iter::once(None))
        .enumerate()
    {
        if export_at == Some(t) {
            w.export_import(&key, b"nonce");
        }
        let now = 1_000 + 60 * t as u64;
        match op {
            Some(Op::Send(s)) => {
                counter += 1;
                let text = format!("message {counter} from {s}");
                let d = &mut w.devices[*s];
                let out = w.rooms[*s]
                    .encrypt_with_rng(&d.identity, text.as_bytes(), now, &mut d.rng)
                    .unwrap();
                let from = d.name.clone();
                log.push(format!("send {s}: {}", hex(&out.message)));
                log.push(w.deliver_shares(&from, &out.shares, now));
                for to in (0..3).filter(|to| to != s) {
                    pending.push((to, out.message.clone()));
                }
            }
            Some(Op::Deliver(c)) if !pending.is_empty() => {
                let (to, m) = pending.remove(c % pending.len());
                log.push(observe(&mut w.rooms[to], to, &m, now));
                delivered.push((to, m));
            }
            Some(Op::Redeliver(c)) if !delivered.is_empty() => {
                let (to, m) = delivered[c % delivered.len()].clone();
                log.push(observe(&mut w.rooms[to], to, &m, now));
            }
            Some(_) => log.push("nothing to deliver".into()),
            None => {
                for (to, m) in pending.drain(..) {
                    log.push(observe(&mut w.rooms[to], to, &m, now));
                }
            }
        }
    }
    for (i, r) in w.rooms.iter().enumerate() {
        log.push(format!(
            "{i}: epoch {} missing {:?}",
            r.epoch(),
            r.missing()
        ));
    }
    (log, w)
}

fn observe(room: &mut Room, to: usize, m: &[u8], now: u64) -> String {
    match room.decrypt_at(m, now) {
        Ok(got) => format!(
            "{to} got {:?} e{} i{} {:?}",
            got.sender,
            got.epoch,
            got.index,
            String::from_utf8_lossy(got.plaintext())
        ),
        Err(e) => format!("{to} refused: {e:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// For random conversations with random delivery orders (rotations,
    /// out-of-order messages with skipped keys, replays), exporting and
    /// importing every device at a random point changes nothing the devices
    /// observe, and leaves states that export to the very same bytes.
    #[test]
    fn export_import_at_any_point_changes_nothing(
        ops in proptest::collection::vec(op_strategy(), 4..40),
        at in any::<prop::sample::Index>(),
    ) {
        let export_at = at.index(ops.len() + 1);
        let (expected, twin) = run(&ops, None);
        let (observed, stored) = run(&ops, Some(export_at));
        prop_assert_eq!(&expected, &observed);
        prop_assert!(expected.iter().any(|l| l.contains(" got ")) || !ops.iter().any(|o| matches!(o, Op::Send(_))));
        let key = StorageKey::from_bytes([9; 32]);
        for (a, b) in twin.rooms.iter().zip(&stored.rooms) {
            prop_assert_eq!(
                a.export_with_rng(&key, &mut VectorRng::new(b"end")).unwrap(),
                b.export_with_rng(&key, &mut VectorRng::new(b"end")).unwrap()
            );
        }
    }
}

/// A small two-member room with skipped keys on the receiving side.
fn small_room() -> (World, Vec<u8>) {
    let mut w = world(&["ann", "ben"], RotationPolicy::default());
    let mut last = Vec::new();
    for i in 0..4u8 {
        let d = &mut w.devices[0];
        last = w.rooms[0]
            .encrypt_with_rng(&d.identity, &[i; 5], 1_000, &mut d.rng)
            .unwrap()
            .message;
    }
    w.rooms[1].decrypt_at(&last, 1_000).unwrap();
    let blob = w.rooms[1]
        .export_with_rng(&StorageKey::from_bytes([1; 32]), &mut VectorRng::new(b"n"))
        .unwrap();
    (w, blob)
}

/// Imports a blob, discarding the value.
type Importer<'a> = dyn Fn(&[u8]) -> Result<(), Error> + 'a;

fn expected_damage(blob: &[u8], damaged: &[u8]) -> Error {
    match damaged {
        [] | [_] => Error::Malformed(DecodeError::Truncated),
        [v, ..] if *v != STORAGE_VERSION => Error::Malformed(DecodeError::UnsupportedVersion(*v)),
        [_, k, ..] if *k != blob[1] && (*k == STORAGE_KIND_IDENTITY || *k == STORAGE_KIND_ROOM) => {
            Error::WrongStateKind
        }
        [_, k, ..] if *k != blob[1] => Error::Malformed(DecodeError::InvalidValue),
        d if d.len() < ENVELOPE_OVERHEAD => Error::Malformed(DecodeError::Truncated),
        _ => Error::StorageDecrypt,
    }
}

#[test]
fn every_bit_flip_and_truncation_is_a_typed_error() {
    let key = StorageKey::from_bytes([1; 32]);
    let (w, room_blob) = small_room();
    let id_blob = w.devices[1]
        .identity
        .export_with_rng(&key, &mut VectorRng::new(b"n"))
        .unwrap();
    // Ed25519 seed, key count, two share keys (suite, serial, created, flag, secret).
    assert_eq!(
        id_blob.len(),
        ENVELOPE_OVERHEAD + 32 + 1 + 2 * (1 + 4 + 8 + 1 + 32)
    );
    let import_room = |b: &[u8]| Room::import(b, &key).map(|_| ());
    let import_id = |b: &[u8]| IdentityKeyPair::import(b, &key).map(|_| ());
    let cases: [(&[u8], &Importer<'_>); 2] = [(&room_blob, &import_room), (&id_blob, &import_id)];
    for (blob, import) in cases {
        assert_eq!(import(blob), Ok(()));
        for i in 0..blob.len() {
            for bit in 0..8 {
                let mut d = blob.to_vec();
                d[i] ^= 1 << bit;
                assert_eq!(
                    import(&d).unwrap_err(),
                    expected_damage(blob, &d),
                    "byte {i} bit {bit}"
                );
            }
        }
        for len in 0..blob.len() {
            let d = &blob[..len];
            assert_eq!(
                import(d).unwrap_err(),
                expected_damage(blob, d),
                "length {len}"
            );
        }
        let mut longer = blob.to_vec();
        longer.push(0);
        assert_eq!(import(&longer).unwrap_err(), Error::StorageDecrypt);
    }
}

#[test]
fn wrong_key_wrong_kind_and_future_version_are_refused() {
    let key = StorageKey::from_bytes([1; 32]);
    let (w, room_blob) = small_room();
    let wrong = StorageKey::from_bytes([2; 32]);
    assert_eq!(
        Room::import(&room_blob, &wrong).unwrap_err(),
        Error::StorageDecrypt
    );
    let id_blob = w.devices[0].identity.export(&key).unwrap();
    assert_eq!(
        IdentityKeyPair::import(&id_blob, &wrong).unwrap_err(),
        Error::StorageDecrypt
    );
    // A room blob is not an identity, nor the other way round.
    assert_eq!(
        IdentityKeyPair::import(&room_blob, &key).unwrap_err(),
        Error::WrongStateKind
    );
    assert_eq!(
        Room::import(&id_blob, &key).unwrap_err(),
        Error::WrongStateKind
    );
    let mut future = room_blob.clone();
    future[0] = 2;
    assert_eq!(
        Room::import(&future, &key).unwrap_err(),
        Error::Malformed(DecodeError::UnsupportedVersion(2))
    );
    // Fresh nonces: two exports of the same state differ.
    assert_ne!(
        w.rooms[1].export(&key).unwrap(),
        w.rooms[1].export(&key).unwrap()
    );
}

#[test]
fn storage_key_debug_prints_no_bytes() {
    let key = StorageKey::from_bytes([0x42; 32]);
    assert_eq!(format!("{key:?}"), "StorageKey(..)");
    assert_eq!(format!("{key:#?}"), "StorageKey(..)");
    assert_eq!(key, StorageKey::from_bytes([0x42; 32]));
    assert_ne!(key, StorageKey::from_bytes([0x43; 32]));
    let generated = StorageKey::generate_with_rng(&mut VectorRng::new(b"k"));
    let mut expected = [0u8; 32];
    VectorRng::new(b"k").fill_bytes(&mut expected);
    assert_eq!(*generated.to_bytes(), expected);
}

/// Decrypts an envelope with the raw primitive, as another implementation
/// would: key, AAD = label || header.
fn raw_open(key: &[u8], blob: &[u8]) -> Vec<u8> {
    let (header, rest) = blob.split_at(ENVELOPE_HEADER_LEN);
    let (ct, tag) = rest.split_at(rest.len() - 16);
    let aad = [STORAGE, header].concat();
    let mut buf = ct.to_vec();
    let key: [u8; 32] = key.try_into().unwrap();
    let nonce: [u8; 12] = header[2..].try_into().unwrap();
    let tag: [u8; 16] = tag.try_into().unwrap();
    Aes256Gcm::new(&key.into())
        .decrypt_inout_detached(&nonce.into(), &aad, buf.as_mut_slice().into(), &tag.into())
        .unwrap();
    buf
}

fn storage_vectors() -> Value {
    let key = StorageKey::generate_with_rng(&mut VectorRng::new(b"storage key"));
    let identity = IdentityKeyPair::generate_at(1_000, &mut VectorRng::new(b"stored identity"));
    let id_blob = identity
        .export_with_rng(&key, &mut VectorRng::new(b"identity nonce"))
        .unwrap();

    // Three members; bob has received ann's third message only, so his room
    // holds two skipped keys of ann's sender key.
    let mut w = world(&["ann", "bob", "cyd"], RotationPolicy::default());
    let mut third = Vec::new();
    for i in 0..3u8 {
        let d = &mut w.devices[0];
        third = w.rooms[0]
            .encrypt_with_rng(&d.identity, &[b'a' + i], 1_000, &mut d.rng)
            .unwrap()
            .message;
    }
    w.rooms[1].decrypt_at(&third, 1_000).unwrap();
    let room_blob = w.rooms[1]
        .export_with_rng(&key, &mut VectorRng::new(b"room nonce"))
        .unwrap();
    let case = |what: &str, seed: &str, kind: u8, blob: &[u8]| {
        json!({
            "what": what,
            "kind": kind,
            "nonce_rng_seed": seed,
            "nonce": hex(&blob[2..ENVELOPE_HEADER_LEN]),
            "aad": hex(&[STORAGE, &blob[..ENVELOPE_HEADER_LEN]].concat()),
            "plaintext": hex(&raw_open(&key.to_bytes()[..], blob)),
            "blob": hex(blob),
        })
    };
    json!({
        "description": "Storage envelopes (docs/PROTOCOL.md section 7). RNG = testing::VectorRng; \
            the nonce is the first 12 bytes drawn from VectorRng(nonce_rng_seed).",
        "storage_key_rng_seed": "storage key",
        "storage_key": hex(&key.to_bytes()[..]),
        "cases": [
            case("identity from IdentityKeyPair::generate_at(1000, VectorRng(\"stored identity\"))", "identity nonce", STORAGE_KIND_IDENTITY, &id_blob),
            case("bob's room: members ann, bob, cyd (VectorRng seeded by name), room id \"stored room\"; \
                  ann sent 3 messages, bob received the third", "room nonce", STORAGE_KIND_ROOM, &room_blob),
        ],
    })
}

/// The published vector equals what the code produces and decrypts with the
/// raw primitive; its blobs import and export back to the same bytes. With
/// `REGENERATE_VECTORS=1` the file is rewritten instead.
#[test]
fn storage_vectors_are_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/storage.json");
    let fresh = storage_vectors();
    if std::env::var_os("REGENERATE_VECTORS").is_some() {
        std::fs::write(path, serde_json::to_string_pretty(&fresh).unwrap() + "\n").unwrap();
    }
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(stored, fresh, "tests/vectors/storage.json is stale");

    let key_bytes = unhex(stored["storage_key"].as_str().unwrap());
    let key = StorageKey::from_bytes(key_bytes.clone().try_into().unwrap());
    for case in stored["cases"].as_array().unwrap() {
        let blob = unhex(case["blob"].as_str().unwrap());
        let plaintext = unhex(case["plaintext"].as_str().unwrap());
        assert_eq!(raw_open(&key_bytes, &blob), plaintext);
        let mut nonce = [0u8; 12];
        VectorRng::new(case["nonce_rng_seed"].as_str().unwrap().as_bytes()).fill_bytes(&mut nonce);
        assert_eq!(
            blob[..2],
            [STORAGE_VERSION, case["kind"].as_u64().unwrap() as u8]
        );
        assert_eq!(blob[2..14], nonce);
        let mut nonce_rng = VectorRng::new(case["nonce_rng_seed"].as_str().unwrap().as_bytes());
        let again = if case["kind"] == STORAGE_KIND_IDENTITY {
            // The identity plaintext: the Ed25519 seed its generator drew,
            // then two share keys (suite, serial 1, created 1000, current,
            // HPKE private key = DeriveKeyPair of the next 32 drawn bytes).
            use hpke::{Kem, Serializable};
            let mut drawn = [0u8; 96];
            VectorRng::new(b"stored identity").fill_bytes(&mut drawn);
            let mut doc = drawn[..32].to_vec();
            doc.push(2);
            let x = hpke::kem::X25519HkdfSha256::derive_keypair(&drawn[32..64])
                .0
                .to_bytes();
            let w = hpke::kem::XWing::derive_keypair(&drawn[64..96])
                .0
                .to_bytes();
            for (suite, secret) in [(1u8, &x[..]), (2u8, &w[..])] {
                doc.push(suite);
                doc.extend_from_slice(&1u32.to_be_bytes());
                doc.extend_from_slice(&1000u64.to_be_bytes());
                doc.push(0);
                doc.extend_from_slice(secret);
            }
            assert_eq!(plaintext, doc);
            IdentityKeyPair::import(&blob, &key)
                .unwrap()
                .export_with_rng(&key, &mut nonce_rng)
                .unwrap()
        } else {
            Room::import(&blob, &key)
                .unwrap()
                .export_with_rng(&key, &mut nonce_rng)
                .unwrap()
        };
        assert_eq!(again, blob);
    }
}

/// Out-of-order messages whose skipped keys were stored decrypt after import,
/// exactly once.
#[test]
fn skipped_keys_survive_export_import() {
    let mut w = world(&["ann", "ben"], RotationPolicy::default());
    let msgs: Vec<Vec<u8>> = (0..4u8)
        .map(|i| {
            let d = &mut w.devices[0];
            w.rooms[0]
                .encrypt_with_rng(&d.identity, &[i; 5], 1_000, &mut d.rng)
                .unwrap()
                .message
        })
        .collect();
    w.rooms[1].decrypt_at(&msgs[3], 1_000).unwrap();
    let key = StorageKey::generate();
    let blob = w.rooms[1].export(&key).unwrap();
    let mut ben = Room::import(&blob, &key).unwrap();
    assert_eq!(ben.missing()[0].indices, vec![0, 1, 2]);
    for i in [2usize, 0, 1] {
        let got = ben.decrypt_at(&msgs[i], 1_000).unwrap();
        assert_eq!((got.index, got.plaintext()), (i as u32, &[i as u8; 5][..]));
    }
    for m in &msgs {
        assert_eq!(ben.decrypt_at(m, 1_000).unwrap_err(), Error::Replay);
    }
}
